"""`python -m mlbuild.oci`: a thin command line over the library, run by Pants as a Process.

    build  --spec spec.json --output DIR [--name NAME] [--cache-dir DIR] [--compressor auto|isal|zlib] [--check-sagemaker]
           [--write-fs-index] [--base-fs-index FILE]
    archive --layout DIR --output FILE.oci.tar
    unpack --layout DIR [--ref-name REF] --rootfs DIR [LIMITS]
    check  --layout DIR [--ref-name REF] [LIMITS]  (the layers as unpack sees them, and SageMaker's contract)
    LIMITS: --max-bytes N --max-entries N --max-file-bytes N --keep-special-modes (layer_rules.py)

Exit codes, decided at the one boundary (`mlbuild.console.run_command`): 0 ok, 1 a bug, 2 user
error, 3 platform error.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from mlbuild import console, flags
from mlbuild.oci import sagemaker_contract
from mlbuild.oci.archive import write_oci_archive
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.build import build_image, default_workers, thin_base_layers, write_outputs
from mlbuild.oci.determinism import COMPRESSOR_CHOICES, choose_compressor
from mlbuild.oci.layer_rules import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_FILE_BYTES, UnpackLimits
from mlbuild.oci.layout import read_layout
from mlbuild.oci.merged_fs import MergedFS
from mlbuild.oci.spec import load_spec
from mlbuild.oci.unpack import unpack_image

FS_INDEX_SUFFIX = ".fs.json"


def _build(args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    compressor = choose_compressor(args.compressor)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mlbuild-blobs-", dir=out) as scratch:
        # NB: without --cache, blobs go to a scratch dir on the same filesystem as --out,
        # so the layout can hard-link them instead of copying.
        store = BlobStore(Path(args.cache_dir) if args.cache_dir else Path(scratch))
        image = build_image(spec, store, compressor, workers=args.workers)
        if args.check_sagemaker or args.write_fs_index:
            base = json.loads(args.base_fs_index.read_text()) if args.base_fs_index else None
            fs = MergedFS.of_image(image, base=base)
            if args.check_sagemaker:
                sagemaker_contract.require(image, fs, (sagemaker_contract.TRAIN_PROGRAM, *args.check_program))
            if args.write_fs_index:
                (out / f"{args.name or 'image'}{FS_INDEX_SUFFIX}").write_text(json.dumps(fs.index(image)))
        outputs = write_outputs(
            image, out, spec.ref, args.name, archive=not args.no_archive, omit_layers=thin_base_layers(spec, image)
        )
    print(f"{spec.ref} {outputs.summary_data['manifest_digest']} ({compressor.id})")


def _archive(args: argparse.Namespace) -> None:
    read_layout(Path(args.layout))  # NB: a whole, valid layout first: every layer blob present
    write_oci_archive(Path(args.layout), Path(args.output))


def _limits(args: argparse.Namespace) -> UnpackLimits:
    limits = UnpackLimits.from_env().with_options(
        max_bytes=args.max_bytes, max_entries=args.max_entries, max_file_bytes=args.max_file_bytes
    )
    return replace(limits, keep_special_modes=True) if args.keep_special_modes else limits


def _unpack(args: argparse.Namespace) -> None:
    result = unpack_image(read_layout(Path(args.layout), args.ref_name), Path(args.rootfs), _limits(args))
    for skipped in result.skipped:
        console.say(f"skipped {skipped}")


def _check(args: argparse.Namespace) -> None:
    image = read_layout(Path(args.layout), args.ref_name)
    sagemaker_contract.require(image, MergedFS.of_image(image, _limits(args)))
    print("ok: every layer unpacks safely and the image meets SageMaker's training-container contract")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlbuild.oci", description="Build, check and unpack OCI images.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build an image from a spec.json")
    b.add_argument("--spec", required=True, type=Path)
    b.add_argument(flags.OUTPUT, required=True, type=Path, help="writes layout/, image.tar and image.json here")
    b.add_argument("--name", help="write <name>.oci/, <name>.oci.tar and <name>.image.json instead")
    b.add_argument(flags.CACHE_DIR, type=Path, help="a blob directory kept between builds (layer cache)")
    b.add_argument("--compressor", choices=COMPRESSOR_CHOICES, default="auto")
    b.add_argument(
        "--workers", type=_positive, default=default_workers(), help="layers built at once (default: one per CPU)"
    )
    b.add_argument("--check-sagemaker", action="store_true", help="fail unless the SageMaker contract holds")
    b.add_argument(
        "--check-program",
        action="append",
        default=[],
        metavar="NAME",
        help="with --check-sagemaker: also require this program on PATH besides `train` (e.g. serve; repeatable)",
    )
    b.add_argument(
        "--no-archive", action="store_true", help="write the layout and summary only (an intermediate image)"
    )
    b.add_argument(
        "--write-fs-index",
        action="store_true",
        help=f"also write <name>{FS_INDEX_SUFFIX}: the merged filesystem, so checks of images built on this one replay only their own layers",
    )
    b.add_argument(
        "--base-fs-index", type=Path, help=f"the base image's {FS_INDEX_SUFFIX} (used when its layers are the base's)"
    )
    b.set_defaults(run=_build)
    a = sub.add_parser(
        "archive", help="pack a whole OCI layout into one oci-archive (what `skopeo copy oci-archive:` reads)"
    )
    a.add_argument("--layout", required=True, type=Path)
    a.add_argument(flags.OUTPUT, required=True, type=Path, help="the .oci.tar to write")
    a.set_defaults(run=_archive)
    u = sub.add_parser("unpack", help="safely unpack an image from an OCI layout into a rootfs")
    u.add_argument("--layout", required=True, type=Path)
    u.add_argument(flags.REF_NAME, help="the image's ref name in the layout (default: its only image)")
    u.add_argument("--rootfs", required=True, type=Path, help="a missing or empty directory")
    u.set_defaults(run=_unpack)
    c = sub.add_parser("check", help="check an image in an OCI layout: what unpack refuses, and the SageMaker contract")
    c.add_argument("--layout", required=True, type=Path)
    c.add_argument(flags.REF_NAME, help="the image's ref name in the layout (default: its only image)")
    c.set_defaults(run=_check)
    for cmd in (u, c):
        cmd.add_argument(
            "--max-bytes", type=_positive, help=f"decompressed bytes, all layers (default {DEFAULT_MAX_BYTES})"
        )
        cmd.add_argument(
            "--max-entries", type=_positive, help=f"tar entries, all layers (default {DEFAULT_MAX_ENTRIES})"
        )
        cmd.add_argument("--max-file-bytes", type=_positive, help=f"one file's size (default {DEFAULT_MAX_FILE_BYTES})")
        cmd.add_argument(
            "--keep-special-modes", action="store_true", help="keep setuid/setgid/sticky and world-write bits"
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return console.run_command(lambda: args.run(args) or 0, "mlbuild.oci")
