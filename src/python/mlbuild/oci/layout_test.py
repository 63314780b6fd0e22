from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from mlbuild.oci.archive import write_oci_archive
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.descriptor import DOCKER_LAYER_GZIP, OCI_INDEX, OCI_LAYER_GZIP, REF_NAME_ANNOTATION
from mlbuild.oci.determinism import choose_compressor
from mlbuild.oci.digest import digest_of
from mlbuild.oci.errors import UserError
from mlbuild.oci.image import Image, add_layer, set_config
from mlbuild.oci.layer import LayerEntry
from mlbuild.oci.layer_writer import write_layer
from mlbuild.oci.layout import read_layout, write_layout
from mlbuild.oci.unpack import unpack_image
from mlbuild.tools_required import require_tool

REF = "trainer:1"


def _image(tmp_path: Path) -> Image:
    store = BlobStore(tmp_path / "cache")
    entries = [
        LayerEntry.file("/opt/program/train", b"#!/usr/bin/python3\nprint('hi')\n", 0o755),
        LayerEntry.directory("/opt/program/data"),
        LayerEntry.file("/opt/program/data/x.txt", b"x"),
        LayerEntry.symlink("/usr/local/bin/train", "/opt/program/train"),
    ]
    image = add_layer(Image(), write_layer(entries, store, choose_compressor()))
    image = add_layer(image, write_layer([LayerEntry.file("/etc/motd", b"hello")], store, choose_compressor()))
    return set_config(image, entrypoint=None, env={"PYTHONUNBUFFERED": "1"}, workdir="/opt/program")


def test_layout_round_trip_and_other_refs_are_kept(tmp_path: Path) -> None:
    image = _image(tmp_path)
    layout = tmp_path / "layout"
    write_layout(Image(), layout, "empty")
    write_layout(image, layout, REF)
    index = json.loads((layout / "index.json").read_text())
    assert [m["annotations"][REF_NAME_ANNOTATION] for m in index["manifests"]] == ["empty", REF]
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    back = read_layout(layout, REF)
    assert back.config_bytes() == image.config_bytes()
    assert back.manifest_bytes() == image.manifest_bytes()
    assert [layer.diff_id for layer in back.layers] == [layer.diff_id for layer in image.layers]
    with pytest.raises(UserError, match="found 0 matching"):
        read_layout(layout, "nope")
    with pytest.raises(UserError, match="found 2 matching"):
        read_layout(layout)


def test_reads_a_nested_index_and_docker_layer_types(tmp_path: Path) -> None:
    image = _image(tmp_path)
    layout = tmp_path / "layout"
    write_layout(image, layout, REF)
    # Rewrite as a Docker-typed manifest behind a multi-platform index, as `skopeo copy --all` leaves it.
    manifest = image.manifest()
    for layer in manifest["layers"]:
        layer["mediaType"] = DOCKER_LAYER_GZIP
    store = BlobStore(layout / "blobs")
    m_digest = store.put_bytes(json.dumps(manifest).encode())
    m_size = len(json.dumps(manifest).encode())
    arm = {
        "mediaType": manifest["mediaType"],
        "digest": digest_of(b"{}"),
        "size": 2,
        "platform": {"os": "linux", "architecture": "arm64"},
    }
    amd = {
        "mediaType": manifest["mediaType"],
        "digest": m_digest,
        "size": m_size,
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    nested = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm, amd]}).encode()
    n_digest = store.put_bytes(nested)
    top = {
        "mediaType": OCI_INDEX,
        "digest": n_digest,
        "size": len(nested),
        "annotations": {REF_NAME_ANNOTATION: "multi"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    back = read_layout(layout, "multi")
    assert [layer.descriptor.media_type for layer in back.layers] == [OCI_LAYER_GZIP, OCI_LAYER_GZIP]
    assert back.config_bytes() == image.config_bytes()


def test_oci_archive_is_deterministic_and_holds_the_layout(tmp_path: Path) -> None:
    image = _image(tmp_path)
    write_layout(image, tmp_path / "l1", REF)
    write_layout(image, tmp_path / "l2", REF)
    write_oci_archive(tmp_path / "l1", tmp_path / "a1.tar")
    write_oci_archive(tmp_path / "l2", tmp_path / "a2.tar")
    assert (tmp_path / "a1.tar").read_bytes() == (tmp_path / "a2.tar").read_bytes()
    with tarfile.open(tmp_path / "a1.tar") as tar:
        names = tar.getnames()
        assert {m.mtime for m in tar.getmembers()} == {315532800}
    assert names[:2] == ["blobs", "blobs/sha256"] and "index.json" in names and "oci-layout" in names


@require_tool("skopeo", "skopeo")
def test_skopeo_accepts_the_layout_and_the_archive(tmp_path: Path) -> None:
    image = _image(tmp_path)
    write_layout(image, tmp_path / "layout", REF)
    write_oci_archive(tmp_path / "layout", tmp_path / "image.tar")
    for transport in (f"oci:{tmp_path / 'layout'}:{REF}", f"oci-archive:{tmp_path / 'image.tar'}:{REF}"):
        out = subprocess.run(["skopeo", "inspect", transport], check=True, capture_output=True, text=True).stdout
        info = json.loads(out)
        assert info["Digest"] == image.manifest_descriptor().digest
        assert info["Architecture"] == "amd64" and info["Os"] == "linux"
        assert info["Layers"] == [layer.digest for layer in image.layers]
    # A full copy re-reads and verifies every blob.
    subprocess.run(
        ["skopeo", "copy", f"oci:{tmp_path / 'layout'}:{REF}", f"oci:{tmp_path / 'copy'}:x"],
        check=True,
        capture_output=True,
    )


@require_tool("umoci", "umoci")
def test_umoci_unpacks_the_same_tree_as_ours(tmp_path: Path) -> None:
    image = _image(tmp_path)
    write_layout(image, tmp_path / "layout", REF)
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'layout'}:{REF}", str(tmp_path / "bundle")],
        check=True,
        capture_output=True,
    )
    unpack_image(read_layout(tmp_path / "layout", REF), tmp_path / "ours")

    def tree(root: Path) -> list[tuple[str, str]]:
        return sorted(
            (p.relative_to(root).as_posix(), "link" if p.is_symlink() else "dir" if p.is_dir() else p.read_text())
            for p in root.rglob("*")
        )

    assert tree(tmp_path / "bundle" / "rootfs") == tree(tmp_path / "ours")
