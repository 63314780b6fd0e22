"""From a BuildSpec to an image on disk: layout directory, oci-archive and image.json."""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.names import LAYER_NAME_ANNOTATION
from mlbuild.oci.archive import write_oci_archive
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.determinism import Compressor
from mlbuild.oci.errors import UserError
from mlbuild.oci.image import Image, add_layer, canonical, set_annotations, set_config
from mlbuild.oci.layer import Layer
from mlbuild.oci.layer_writer import write_layer
from mlbuild.oci.layout import read_layout, write_layout
from mlbuild.oci.spec import BuildSpec, LayerSpec

LAYOUT_DIR = "layout"
ARCHIVE_FILE = "image.tar"
SUMMARY_FILE = "image.json"


@dataclass(frozen=True)
class BuildOutputs:
    layout_dir: Path
    archive: Path
    summary: Path
    summary_data: dict[str, Any]


# NB: Docker refuses images of more than 127 layers and overlayfs mounts get slow well before:
# past this, group more small distributions per layer.
MAX_LAYERS = 100


def split_by_bytes(layer: LayerSpec) -> list[LayerSpec]:
    """`layer` as consecutive layers (by path) of at most `max_bytes` of content each.

    NB: the cut points follow from the sorted paths and their sizes only, so a part's digest
    depends on its own contents; one file bigger than the cap is a part of its own.
    """
    if layer.max_bytes is None or sum(e.content_bytes for e in layer.entries) <= layer.max_bytes:
        return [layer]
    parts: list[list] = [[]]
    filled = 0
    for entry in sorted(layer.entries, key=lambda e: e.path):
        size = entry.content_bytes
        if parts[-1] and filled + size > layer.max_bytes:
            parts.append([])
            filled = 0
        parts[-1].append(entry)
        filled += size
    n = len(parts)
    return [LayerSpec(f"{layer.name}-{i}of{n}", tuple(part)) for i, part in enumerate(parts, 1)]


def _write_layer(args: tuple) -> Layer:
    entries, store_root, compressor, name = args
    return write_layer(entries, BlobStore(store_root), compressor, {LAYER_NAME_ANNOTATION: name})


def _die_with_parent() -> None:
    """A pool worker dies with the build (Linux PR_SET_PDEATHSIG): a build killed by Pants or
    Ctrl-C leaves no worker waiting on its queue forever."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


PR_SET_PDEATHSIG = 1


def write_layers(layers: list[LayerSpec], store: BlobStore, compressor: Compressor, workers: int) -> list[Layer]:
    """Each layer tarred, hashed and compressed, `workers` at a time (processes: one core each)."""
    jobs = [(layer.entries, store.root, compressor, layer.name) for layer in layers]
    if workers <= 1 or len(jobs) <= 1:
        return [_write_layer(job) for job in jobs]
    # NB: fork: the workers need nothing but the job (no re-import of the tool); results keep their order.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context, initializer=_die_with_parent
    ) as pool:
        return list(pool.map(_write_layer, jobs))


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def build_image(spec: BuildSpec, store: BlobStore, compressor: Compressor, workers: int = 1) -> Image:
    """The image a spec describes; new layer blobs land in `store` (reused if cached there)."""
    image = (
        canonical(read_layout(spec.base.layout, spec.base.ref, layer_blobs=not spec.base.thin))
        if spec.base
        else Image()
    )
    layers = [part for layer_spec in spec.layers for part in split_by_bytes(layer_spec)]
    total = len(image.layers) + len(layers)
    if total > MAX_LAYERS:
        raise UserError(
            f"the image would have {total} layers ({len(image.layers)} from its base, {len(layers)} new); registries and"
            f" container runtimes handle at most {MAX_LAYERS} well. Fix: group more per layer (raise `layer_split_mb`"
            " or `layer_max_mb` on the ml_pipeline)."
        )
    for layer_spec, layer in zip(layers, write_layers(layers, store, compressor, workers)):
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


def thin_base_layers(spec: BuildSpec, image: Image) -> frozenset[str]:
    """The layers a thin base contributes (the bottom ones): referenced, not written."""
    if not (spec.base and spec.base.thin):
        return frozenset()
    count = len(read_layout(spec.base.layout, spec.base.ref, layer_blobs=False).layers)
    return frozenset(layer.digest for layer in image.layers[:count])


def write_outputs(
    image: Image,
    out_dir: Path,
    ref: str,
    name: str | None = None,
    archive: bool = True,
    omit_layers: frozenset[str] = frozenset(),
) -> BuildOutputs:
    """The layout (minus `omit_layers`' blobs), the oci-archive unless `archive=False`, and the summary."""
    if archive and omit_layers:
        raise UserError(
            "an oci-archive needs every layer blob; a thin base's are elsewhere (build the archive from the whole layout)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout_name, archive_name, summary_name = output_names(name)
    layout_dir = out_dir / layout_name
    manifest = write_layout(image, layout_dir, ref, omit_layers)
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
