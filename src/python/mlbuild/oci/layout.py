"""OCI image layout directories: write an Image under a ref name, and read one back.

    <dir>/oci-layout            {"imageLayoutVersion": "1.0.0"}
    <dir>/index.json            manifests, each annotated with org.opencontainers.image.ref.name
    <dir>/blobs/sha256/<hex>    config, manifests and layers

https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlbuild.names import image_entries, ref_name
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.descriptor import (
    DOCKER_LAYER_GZIP,
    INDEX_TYPES,
    LAYER_TYPES,
    LINUX_AMD64,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    REF_NAME_ANNOTATION,
    Descriptor,
)
from mlbuild.oci.digest import digest_of
from mlbuild.oci.errors import UserError
from mlbuild.oci.image import Image, canonical_json
from mlbuild.oci.layer import Layer

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


def write_layout(image: Image, layout_dir: Path, ref: str, omit_layers: frozenset[str] = frozenset()) -> Descriptor:
    """Write `image` into `layout_dir` as `ref`; other refs already there are kept.

    `omit_layers`: layer digests whose blobs the layout leaves out (a thin base's, which the
    caller places beside the rest); the manifest lists them all the same.
    """
    layout_dir = Path(layout_dir)
    store = BlobStore(layout_dir / "blobs")
    for layer in image.layers:
        if layer.digest not in omit_layers:
            store.link_into(layer.digest, layer.blob_path)
    store.put_bytes(image.config_bytes())
    store.put_bytes(image.manifest_bytes())
    manifest = image.manifest_descriptor()
    entry = Descriptor(
        manifest.media_type, manifest.digest, manifest.size, {REF_NAME_ANNOTATION: ref}, manifest.platform
    )

    others = (
        [m for m in read_index(layout_dir).get("manifests", []) if _ref_of(m) != ref] if _has_index(layout_dir) else []
    )
    write_index(layout_dir, [*others, entry.to_json()])
    return entry


def read_layout(layout_dir: Path, ref: str | None = None, layer_blobs: bool = True) -> Image:
    """Read the linux/amd64 image named `ref` (or the only image, if `ref` is None).

    `layer_blobs=False`: a thin layout, whose layer blobs are elsewhere; its layers are only
    referenced (their `blob_path` may not exist), never read.
    """
    layout_dir = Path(layout_dir)
    where = f"OCI layout {layout_dir}"
    if not (layout_dir / LAYOUT_FILE).is_file():
        raise UserError(f"{where}: no {LAYOUT_FILE} file; is this an OCI image layout directory?")
    index = read_index(layout_dir)
    manifests, matches = image_entries(index, None), image_entries(index, ref)
    if len(matches) != 1:
        refs = sorted(str(_ref_of(m)) for m in manifests)
        wanted = f"ref {ref!r}" if ref else "a single image"
        raise UserError(f"{where}: expected {wanted}, found {len(matches)} matching of refs {refs}; pass one of them.")
    store = BlobStore(layout_dir / "blobs")
    descriptor = Descriptor.from_json(matches[0], where=f"{where}: {INDEX_FILE}")
    if descriptor.media_type in INDEX_TYPES:
        descriptor = _pick_platform(_read_blob(store, descriptor, where), where)
    if descriptor.media_type not in MANIFEST_TYPES:
        raise UserError(
            f"{where}: {descriptor.digest} has media type {descriptor.media_type!r}, not an image manifest."
        )
    manifest = _read_blob(store, descriptor, where)
    config_desc = Descriptor.from_json(manifest["config"], where=f"{where}: manifest config")
    config = _read_blob(store, config_desc, where)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    layer_descs = [Descriptor.from_json(d, where=f"{where}: manifest layer") for d in manifest.get("layers", [])]
    if len(diff_ids) != len(layer_descs):
        raise UserError(f"{where}: manifest has {len(layer_descs)} layers but config lists {len(diff_ids)} diff_ids.")
    layers = []
    for desc, diff_id in zip(layer_descs, diff_ids):
        if desc.media_type not in LAYER_TYPES:
            raise UserError(
                f"{where}: layer {desc.digest} has unsupported media type {desc.media_type!r} (gzip or plain tar only)."
            )
        if desc.media_type == DOCKER_LAYER_GZIP:
            # NB: same bytes, OCI name: an OCI manifest must not list Docker media types.
            # https://github.com/opencontainers/image-spec/blob/v1.1.0/media-types.md#compatibility-matrix
            desc = Descriptor(OCI_LAYER_GZIP, desc.digest, desc.size, desc.annotations)
        path = store.path(desc.digest)
        if layer_blobs and (not path.is_file() or path.stat().st_size != desc.size):
            raise UserError(
                f"{where}: layer blob {desc.digest} is missing or its size differs from the manifest's (corrupt or"
                " replaced). Fix: rebuild or re-pull the image."
            )
        layers.append(Layer(desc, diff_id, path))
    return Image(config=config, layers=tuple(layers), annotations=dict(manifest.get("annotations") or {}))


def _pick_platform(index: dict[str, Any], where: str) -> Descriptor:
    for item in index.get("manifests", []):
        desc = Descriptor.from_json(item, where=f"{where}: nested index")
        if desc.platform == LINUX_AMD64:
            return desc
    raise UserError(f"{where}: the image index has no linux/amd64 manifest; SageMaker needs linux/amd64.")


def _read_blob(store: BlobStore, descriptor: Descriptor, where: str) -> dict[str, Any]:
    try:
        data = store.path(descriptor.digest).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{where}: blob {descriptor.digest} is missing.") from None
    if digest_of(data) != descriptor.digest:
        raise UserError(f"{where}: blob {descriptor.digest} does not match its digest; the layout is corrupt.")
    return json.loads(data)


def _has_index(layout_dir: Path) -> bool:
    return (layout_dir / INDEX_FILE).is_file()


def write_index(layout_dir: Path, manifests: list[dict[str, Any]]) -> None:
    """Write index.json (and oci-layout) with `manifests`, sorted, minus artifacts about absent images."""
    store = BlobStore(layout_dir / "blobs")
    images = {m["digest"] for m in manifests if not m.get("artifactType")}
    kept = [m for m in manifests if not m.get("artifactType") or subject_of(store, m) in images]
    kept.sort(key=lambda m: (_ref_of(m) or "", m.get("artifactType") or "", m["digest"]))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": kept}
    _write_atomically(layout_dir / LAYOUT_FILE, canonical_json(LAYOUT_VERSION))
    _write_atomically(layout_dir / INDEX_FILE, canonical_json(index))


def subject_of(store: BlobStore, entry: dict[str, Any]) -> str | None:
    """The image digest an artifact entry of index.json is about (None for images)."""
    if not entry.get("artifactType"):
        return None
    try:
        return json.loads(store.path(str(entry["digest"])).read_bytes()).get("subject", {}).get("digest")
    except (OSError, ValueError, AttributeError):
        return None


def read_index(layout_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((layout_dir / INDEX_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"OCI layout {layout_dir}: cannot read {INDEX_FILE} ({e}).") from e


_ref_of = ref_name


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)
