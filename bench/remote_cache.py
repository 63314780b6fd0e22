#!/usr/bin/env python3.11
"""Benchmark: `./pants package` of churn cold, served by a shared remote cache, and locally warm.

    python3.11 bench/remote_cache.py [--runs 3] [--baseline] [--other-path]

A benchmark, not a test: run from the repo root, it prints a table (medians over --runs) and
exits 0 unless a build fails. Each run starts a fresh BuildGrid on loopback (as
tests/e2e/remote_cache_test.py does, installed once from PyPI under the mlbuild cache) and two
fresh copies of this checkout, each with empty local caches of its own (Pants' store, named
caches, execution root).

Rows:
  cold          clone A from nothing, writing every result to the remote cache.
  remote-warm   clone B (another path, empty local caches) against the filled remote cache:
                what a second machine, or CI on a fresh runner, pays.
  local-warm    clone B again, its local caches now warm (dist/ removed first).
  other PATH    (--other-path) clone D like B, but with an extra folder first on PATH: a
                machine laid out differently. Pants' PEX builds key on PATH and the
                interpreter paths, so they rebuild; mlbuild's own steps should still hit.
  no cache      (--baseline) clone C from nothing with no remote cache: what the writes cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src" / "python")]

from e2e import buildgrid_server
from e2e.remote_cache_flow import Build, clean_dist, clone, empty_cache_args, package, remote_cache_args

ROWS = ("cold", "remote-warm", "local-warm", "other PATH", "no cache")


def checked(row: str, build: Build) -> Build:
    if build.result.exit_code != 0:
        sys.exit(f"bench: the {row} build failed (exit {build.result.exit_code}):\n{build.result.stderr[-3000:]}")
    print(f"  {row}: {build.seconds:.1f} s", flush=True)
    return build


def one_run(work: Path, baseline: bool, other_path: bool) -> Dict[str, Build]:
    server = buildgrid_server.start(work / "buildgrid")
    try:
        # NB: A writes as CI would; B reads as a laptop would (the config's default).
        writer, reader = remote_cache_args(server.address, write=True), remote_cache_args(server.address, write=False)
        a, b = clone(work / "a" / "checkout"), clone(work / "b" / "checkout")
        builds = {"cold": checked("cold", package(a, *writer, *empty_cache_args(work / "a" / "scratch")))}
        scratch_b = empty_cache_args(work / "b" / "scratch")
        builds["remote-warm"] = checked("remote-warm", package(b, *reader, *scratch_b))
        clean_dist(b)
        builds["local-warm"] = checked("local-warm", package(b, *reader, *scratch_b))
        if other_path:
            (work / "d" / "bin").mkdir(parents=True)
            path = f"{work / 'd' / 'bin'}{os.pathsep}{os.environ['PATH']}"
            d = clone(work / "d" / "checkout")
            builds["other PATH"] = checked(
                "other PATH", package(d, *reader, *empty_cache_args(work / "d" / "scratch"), env={"PATH": path})
            )
    finally:
        server.stop()
    if baseline:
        c = clone(work / "c" / "checkout")
        builds["no cache"] = checked("no cache", package(c, *empty_cache_args(work / "c" / "scratch")))
    digests = {(x.pex_sha256, x.image_digest) for x in builds.values()}
    if len(digests) != 1:
        sys.exit(f"bench: the builds disagree on the PEX sha256 / image digest: {digests}")
    return builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--baseline", action="store_true", help="also a cold build without any remote cache")
    parser.add_argument("--other-path", action="store_true", help="also a remote-warm build with another PATH")
    args = parser.parse_args()
    buildgrid_server.ensure_installed()
    runs: List[Dict[str, Build]] = []
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs}", flush=True)
        with tempfile.TemporaryDirectory(prefix="mlbuild-bench-remote-cache-") as work:
            runs.append(one_run(Path(work), args.baseline, args.other_path))
    cold = statistics.median(r["cold"].seconds for r in runs)
    print(f"\nchurn `pants package`, {args.runs} run(s), medians; PEX {runs[0]['cold'].pex_sha256[:12]}, "
          f"image {runs[0]['cold'].image_digest[:19]}")
    print(f"{'':<12} {'seconds':>8} {'x cold':>7} {'processes run':>14} {'remote hits':>12} {'remote writes':>14}")
    for row in ROWS:
        if row not in runs[0]:
            continue
        builds = [r[row] for r in runs]
        seconds = statistics.median(b.seconds for b in builds)
        ran = statistics.median(len(b.ran) for b in builds)
        hits = statistics.median(b.counters.get("remote_cache_requests_cached", 0) for b in builds)
        writes = statistics.median(b.counters.get("remote_cache_write_successes", 0) for b in builds)
        print(f"{row:<12} {seconds:>8.1f} {seconds / cold:>7.2f} {ran:>14g} {hits:>12g} {writes:>14g}")
    for row in ROWS:
        if row in runs[0] and runs[0][row].ran:
            print(f"{row} ran: {'; '.join(runs[0][row].ran)}")


if __name__ == "__main__":
    main()
