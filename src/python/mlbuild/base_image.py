"""The offline base image: a committed Debian package lock -> rootfs -> a one-layer OCI image.

    python -m mlbuild.base_image --lock packages.lock.json --output DIR --name base [--cache-dir DIR]
                                 [--bytecode cpython-311]

Run by Pants as one Process (the rootfs never leaves it: Pants digests would not keep its
symlinks and modes). The image is identical for an identical lock, and every package is
verified against the lock's sha256 before it is unpacked (see mlbuild.debian).

With `--bytecode` (the cache tag of the base's Python), every `.py` of the rootfs, the whole
standard library among them, ships the pyc Debian's post-install script would have made, in
the same layer: unchecked-hash and reproducible (mlbuild.oci.bytecode). One layer, because
the pycs change exactly when the packages do: a separate layer would only add a blob.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from mlbuild import console, flags
from mlbuild.debian import build_rootfs, load_lock
from mlbuild.names import DEBIAN_LAYER, DEBIAN_LOCK_LABEL, LAYER_NAME_ANNOTATION, OCI_TITLE_LABEL
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.build import write_outputs
from mlbuild.oci.bytecode import require_cache_tag
from mlbuild.oci.determinism import choose_compressor
from mlbuild.oci.image import Image, add_layer, set_annotations, set_config
from mlbuild.oci.layer import LayerEntry, entries_from_directory, with_bytecode
from mlbuild.oci.layer_writer import write_layer

LOCK_ANNOTATION = DEBIAN_LOCK_LABEL
# NB: the tag comes from the ml_base_image's `python` field (its name says the minor version).
BYTECODE_FIX = "or point the ml_base_image's `python` at the interpreter its packages install"
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
}


def build_debian_base(
    lock_path: Path, out_dir: Path, name: str, cache_dir: Optional[Path], bytecode: Optional[str] = None
) -> dict:
    if bytecode:
        require_cache_tag(bytecode, f"{lock_path}: the base's Python (--bytecode)", BYTECODE_FIX)
    lock = load_lock(lock_path)
    lock_sha256 = hashlib.sha256(Path(lock_path).read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory(prefix="mlbuild-base-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        build_rootfs(lock, rootfs, cache_dir=cache_dir / "debs" if cache_dir else None)
        store = BlobStore(cache_dir / "oci" if cache_dir else Path(scratch) / "blobs")
        layer = write_layer(
            rootfs_entries(rootfs, bytecode), store, choose_compressor(), {LAYER_NAME_ANNOTATION: DEBIAN_LAYER}
        )
        image = add_layer(Image(), layer, created_by=f"mlbuild debian base from {Path(lock_path).name}")
        image = set_config(image, env=ENV, labels={LOCK_ANNOTATION: lock_sha256})
        image = set_annotations(image, {LOCK_ANNOTATION: lock_sha256, OCI_TITLE_LABEL: name})
        return write_outputs(image, out_dir, name, name).summary_data


def rootfs_entries(rootfs: Path, bytecode: Optional[str]) -> list[LayerEntry]:
    """The base layer's entries: the whole rootfs at the image root, with its pycs for `bytecode`."""
    entries = entries_from_directory(rootfs, "/")
    return with_bytecode(entries, bytecode) if bytecode else entries


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlbuild.base_image", description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument(flags.OUTPUT, type=Path, required=True, help="the folder to write the image into")
    parser.add_argument("--name", required=True)
    parser.add_argument(flags.CACHE_DIR, type=Path, help="keeps downloaded .debs and compressed layers between builds")
    parser.add_argument("--bytecode", help="the base Python's cache tag (e.g. cpython-311): ship its stdlib compiled")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)

    def run() -> int:
        summary = build_debian_base(args.lock, args.output, args.name, args.cache_dir, args.bytecode)
        print(f"{args.name} {summary['manifest_digest']}")
        return 0

    return console.run_command(run, "mlbuild.base_image")


if __name__ == "__main__":
    sys.exit(main())
