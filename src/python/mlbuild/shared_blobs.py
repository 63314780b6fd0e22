"""The shared blob folder: each large build output stored once, by its sha256, and linked.

A pipeline's outputs under `dist/` are mostly bytes that a code edit never changes: the base
and dependency layers of its image, the wheels of its packed PEX. Written out per package they
cost gigabytes per pipeline and seconds per edit (torch: ~3 GB each). So they are stored once
in one content-addressed folder (`dist/mlbuild/blobs/sha256/<hex>`, read-only files, the same
shape as an OCI layout's `blobs/`), and every output that holds one links to it; pipelines with
the same dependencies share every byte of them.

    python -m mlbuild.shared_blobs fill --store DIR --want WANT.json --from DIR
        places each wanted file that the store lacks (a path under --from) into it, all-or-nothing
        per file

WANT.json: {"<sha256 hex>": {"path": "<path under --from>", "size": <bytes>}, ...}.
(The plugin finds what is missing with one `find` of the store; see mlbuild_pants/shared_blobs.py.)
Exit codes: 0 ok, 2 user error, 3 platform error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from mlbuild import console
from mlbuild.names import EXIT_USER_ERROR

ALGORITHM = "sha256"
READ_ONLY = 0o444


def blob_path(store: Path, hex_digest: str) -> Path:
    return Path(store) / ALGORITHM / hex_digest


def missing(store: Path, want: Dict[str, dict]) -> List[str]:
    """The wanted digests that `store` lacks, or holds at a size other than the wanted one."""
    lacking = []
    for hex_digest, item in sorted(want.items()):
        try:
            present = os.stat(blob_path(store, hex_digest)).st_size == int(item["size"])
        except FileNotFoundError:
            present = False
        if not present:
            lacking.append(hex_digest)
    return lacking


def fill(store: Path, want: Dict[str, dict], source_root: Path) -> int:
    """Place every wanted file that `store` lacks; return how many were placed.

    NB: each file appears whole or not at all (a temp file beside it, then a rename), so a
    build killed half-way leaves no blob that its digest does not name.
    """
    folder = Path(store) / ALGORITHM
    folder.mkdir(parents=True, exist_ok=True)
    placed = 0
    for hex_digest in missing(store, want):
        source = Path(source_root) / want[hex_digest]["path"]
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        os.close(fd)
        try:
            _link_or_copy(source, Path(temp))
            os.chmod(temp, READ_ONLY)
            os.replace(temp, blob_path(store, hex_digest))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        placed += 1
    return placed


def _link_or_copy(source: Path, dest: Path) -> None:
    # NB: the source is the sandbox's private copy: a hard link (same filesystem) moves no bytes.
    dest.unlink()
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


class WantFileError(ValueError):
    """The wanted-blobs file is unreadable or malformed: the caller's input."""

    exit_code = EXIT_USER_ERROR


def _read_want(path: Path) -> Dict[str, dict]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise WantFileError(f"{path}: cannot read the wanted blobs ({e})") from e
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and {"path", "size"} <= v.keys() for v in data.values()
    ):
        raise WantFileError(f"{path}: expected {{hex: {{path, size}}}}")
    return data


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlbuild.shared_blobs", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("fill", help="place the wanted files the store lacks")
    c.add_argument("--store", required=True, type=Path)
    c.add_argument("--want", required=True, type=Path)
    c.add_argument("--from", dest="source_root", required=True, type=Path)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)

    def run() -> int:
        placed = fill(args.store, _read_want(args.want), args.source_root)
        console.say(f"stored {placed} shared blob(s) in {args.store}")
        return 0

    return console.run_command(run, "mlbuild.shared_blobs")


if __name__ == "__main__":
    raise SystemExit(main())
