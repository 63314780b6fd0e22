"""`python -m mlbuild.debian`: refresh a package lock, fetch it, build a rootfs from it.

    python -m mlbuild.debian lock   [--packages P ...] --out packages.lock.json
    python -m mlbuild.debian fetch  --lock packages.lock.json [--cache DIR]
    python -m mlbuild.debian rootfs --lock packages.lock.json --out DIR [--cache DIR] [--force]

Errors go to stderr as one `mlbuild: error:` line naming the file/field/fix; exit 2 for bad input
(lock file), 1 for everything else.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

from mlbuild import console
from mlbuild.debian import lock as lockfile
from mlbuild.debian.errors import DebianError
from mlbuild.debian.fetch import default_cache_dir, fetch_all
from mlbuild.debian.lock import AptSource
from mlbuild.debian.resolve import resolve_lock
from mlbuild.debian.rootfs import build_rootfs


def _mirror_overrides(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, url = v.partition("=")
        if not sep or "://" not in url:
            raise DebianError(f"--mirror {v!r}: expected KEY=URL, e.g. debian=http://deb.debian.org/debian")
        out[key] = url
    return out


def _source(value: str) -> AptSource:
    # MIRROR:SUITE[:COMPONENT,COMPONENT]
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"{value!r}: expected MIRROR:SUITE[:COMPONENTS], e.g. debian:bookworm:main")
    comps = tuple(parts[2].split(",")) if len(parts) == 3 else ("main",)
    return AptSource(parts[0], parts[1], comps)


def _cmd_lock(args: argparse.Namespace) -> int:
    previous = None
    if args.out.exists():
        try:
            previous = lockfile.load(args.out)
        except DebianError:
            previous = None
    packages = args.packages or (previous.inputs.packages if previous else lockfile.DEFAULT_PACKAGES)
    sources = args.source or (previous.inputs.sources if previous else None)
    mirrors = {**(previous.mirrors if previous else lockfile.DEFAULT_MIRRORS), **_mirror_overrides(args.mirror)}
    arch = args.arch or (previous.inputs.architecture if previous else "amd64")
    start = time.monotonic()
    new = resolve_lock(packages, sources=sources, mirrors=mirrors, architecture=arch)
    lockfile.write(new, args.out)
    changed = "created" if previous is None else "unchanged" if previous == new else "updated"
    print(
        f"{args.out}: {len(new.packages)} packages, {new.total_size / 1e6:.1f} MB to download "
        f"({changed}, {time.monotonic() - start:.1f}s)"
    )
    if previous is not None and previous != new:
        old = {p.name: p.version for p in previous.packages}
        for p in new.packages:
            if old.get(p.name) != p.version:
                print(f"  {p.name}: {old.get(p.name, '(new)')} -> {p.version}")
        for name in sorted(set(old) - {p.name for p in new.packages}):
            print(f"  {name}: removed")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    lock = lockfile.load(args.lock)
    start = time.monotonic()
    paths = fetch_all(lock, args.cache, mirrors=_mirror_overrides(args.mirror))
    print(f"{len(paths)} packages verified in {args.cache or default_cache_dir()} ({time.monotonic() - start:.1f}s)")
    return 0


def _cmd_rootfs(args: argparse.Namespace) -> int:
    lock = lockfile.load(args.lock)
    start = time.monotonic()
    result = build_rootfs(
        lock, args.out, cache_dir=args.cache, mirrors=_mirror_overrides(args.mirror), replace=args.force
    )
    s = result.summary
    print(
        f"{result.path}: {len(result.packages)} packages, {s.files} files, {s.bytes / 1e6:.1f} MB, "
        f"tree sha256 {s.digest} ({time.monotonic() - start:.1f}s)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlbuild.debian", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("lock", help="resolve packages with apt and (re)write the lock file")
    p.add_argument("--packages", nargs="+", help="top-level packages (default: the existing lock's inputs)")
    p.add_argument("--source", action="append", type=_source, help="MIRROR:SUITE[:COMPONENTS], repeatable")
    p.add_argument("--arch", help="Debian architecture (default: amd64)")
    p.add_argument("--mirror", action="append", default=[], metavar="KEY=URL", help="mirror base URL override")
    p.add_argument("--out", type=Path, required=True, help="lock file to write")
    p.set_defaults(func=_cmd_lock)

    p = sub.add_parser("fetch", help="download and verify every locked .deb into the cache")
    p.add_argument("--lock", type=Path, required=True)
    p.add_argument("--cache", type=Path, help="cache dir (default: $XDG_CACHE_HOME/mlbuild/debs)")
    p.add_argument("--mirror", action="append", default=[], metavar="KEY=URL")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("rootfs", help="build the root filesystem directory from the lock")
    p.add_argument("--lock", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--cache", type=Path, help="cache dir (default: $XDG_CACHE_HOME/mlbuild/debs)")
    p.add_argument("--mirror", action="append", default=[], metavar="KEY=URL")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_rootfs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DebianError as e:
        return console.fail(e, e.exit_code)
    except KeyboardInterrupt:
        console.say("interrupted")
        return 130
