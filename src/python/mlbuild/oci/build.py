"""From a BuildSpec to an image on disk: layout directory, oci-archive and image.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.names import LAYER_NAME_ANNOTATION
from mlbuild.oci.archive import write_oci_archive
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.determinism import Compressor
from mlbuild.oci.image import Image, add_layer, canonical, set_annotations, set_config
from mlbuild.oci.layer_writer import write_layer
from mlbuild.oci.layout import read_layout, write_layout
from mlbuild.oci.spec import BuildSpec

LAYOUT_DIR = "layout"
ARCHIVE_FILE = "image.tar"
SUMMARY_FILE = "image.json"


@dataclass(frozen=True)
class BuildOutputs:
    layout_dir: Path
    archive: Path
    summary: Path
    summary_data: dict[str, Any]


def build_image(spec: BuildSpec, store: BlobStore, compressor: Compressor) -> Image:
    """The image a spec describes; new layer blobs land in `store` (reused if cached there)."""
    image = canonical(read_layout(spec.base.layout, spec.base.ref)) if spec.base else Image()
    for layer_spec in spec.layers:
        layer = write_layer(layer_spec.entries, store, compressor, {LAYER_NAME_ANNOTATION: layer_spec.name})
        image = add_layer(image, layer, created_by=f"mlbuild layer {layer_spec.name}")
    c = spec.config
    image = set_config(
        image,
        entrypoint=c.get("entrypoint"),
        cmd=c.get("cmd"),
        env=c.get("env"),
        workdir=c.get("workdir"),
        labels=c.get("labels"),
    )
    return set_annotations(image, spec.annotations)


def output_names(name: str | None) -> tuple[str, str, str]:
    """(layout dir, oci-archive, summary) file names: fixed, or `<name>.oci/`, `<name>.oci.tar`, `<name>.image.json`."""
    if not name:
        return LAYOUT_DIR, ARCHIVE_FILE, SUMMARY_FILE
    return f"{name}.oci", f"{name}.oci.tar", f"{name}.image.json"


def write_outputs(image: Image, out_dir: Path, ref: str, name: str | None = None, archive: bool = True) -> BuildOutputs:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout_name, archive_name, summary_name = output_names(name)
    layout_dir = out_dir / layout_name
    manifest = write_layout(image, layout_dir, ref)
    archive_path = out_dir / archive_name
    if archive:
        write_oci_archive(layout_dir, archive_path)
    summary_data = {
        "ref": ref,
        "manifest_digest": manifest.digest,
        "manifest_size": manifest.size,
        "config_digest": image.config_descriptor().digest,
        "layers": [
            {
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "size": layer.descriptor.size,
                "media_type": layer.descriptor.media_type,
                "annotations": dict(sorted(layer.descriptor.annotations.items())),
            }
            for layer in image.layers
        ],
        "layout": layout_name,
        **({"archive": archive_name} if archive else {}),
    }
    summary = out_dir / summary_name
    summary.write_text(json.dumps(summary_data, indent=2, sort_keys=True) + "\n")
    return BuildOutputs(layout_dir, archive_path, summary, summary_data)
