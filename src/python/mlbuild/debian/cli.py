"""`./pants mlbuild lock-debian`: maintainers refresh the base image's Debian package lock.

    ./pants mlbuild lock-debian [--packages P ...] [--source MIRROR:SUITE] [--mirror KEY=URL] --output packages.lock.json

The Pants rules fetch the locked packages and build the rootfs (`mlbuild.base_image`). Errors go
to stderr as one `mlbuild: error:` line naming the file/field/fix (the boundary,
`mlbuild.console.run_command`); exit 2 for bad input (lock file), 1 for everything else.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

from mlbuild import flags
from mlbuild.debian import lock as lockfile
from mlbuild.debian.errors import DebianError
from mlbuild.debian.lock import AptSource
from mlbuild.debian.resolve import resolve_lock
from mlbuild.names import EXIT_INTERRUPTED, EXIT_OK, EXIT_PLATFORM_ERROR, EXIT_UNEXPECTED, EXIT_USER_ERROR


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


def lock_command(args: argparse.Namespace) -> int:
    previous = None
    if args.output.exists():
        try:
            previous = lockfile.load(args.output)
        except DebianError:
            previous = None
    packages = args.packages or (previous.inputs.packages if previous else lockfile.DEFAULT_PACKAGES)
    sources = args.source or (previous.inputs.sources if previous else None)
    mirrors = {**(previous.mirrors if previous else lockfile.DEFAULT_MIRRORS), **_mirror_overrides(args.mirror)}
    arch = args.arch or (previous.inputs.architecture if previous else "amd64")
    start = time.monotonic()
    new = resolve_lock(packages, sources=sources, mirrors=mirrors, architecture=arch)
    lockfile.write(new, args.output)
    changed = "created" if previous is None else "unchanged" if previous == new else "updated"
    print(
        f"{args.output}: {len(new.packages)} packages, {new.total_size / 1e6:.1f} MB to download "
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


def add_commands(sub: Any) -> None:
    """The maintainers' `lock-debian` verb, on `sub` (the `./pants mlbuild` tree's subparsers)."""
    p = flags.verb(
        sub,
        "lock-debian",
        "maintainers: resolve the base image's Debian packages with apt and (re)write the lock file",
        [
            "lock-debian --output docker/debian-python3.11/packages.lock.json",
            "lock-debian --packages python3.11 ca-certificates --output packages.lock.json",
        ],
        (EXIT_OK, EXIT_UNEXPECTED, EXIT_USER_ERROR, EXIT_PLATFORM_ERROR, EXIT_INTERRUPTED),
    )
    p.add_argument("--packages", nargs="+", help="top-level packages (default: the existing lock's inputs)")
    p.add_argument("--source", action="append", type=_source, help="MIRROR:SUITE[:COMPONENTS], repeatable")
    p.add_argument("--arch", help="Debian architecture (default: amd64)")
    p.add_argument("--mirror", action="append", default=[], metavar="KEY=URL", help="mirror base URL override")
    p.add_argument(flags.OUTPUT, type=Path, required=True, help="the lock file to write (its inputs are the defaults)")
    p.set_defaults(run=lock_command)
