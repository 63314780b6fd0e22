#!/usr/bin/env python3.11
"""Benchmark: running an image under bubblewrap, as `pants publish` to the local backend does.

    PYTHONPATH=src/python python3.11 bench/container_run.py [--runs 10] [--workdir DIR] [--keep]

A benchmark, not a test: it prints the numbers and exits 0 unless something fails outright.
It moved here from container_run_integration_test.py, which now only checks behaviour. It
builds the real Debian python3.11 base from docker/debian-python3.11/packages.lock.json (the
.debs come from the Debian mirror or ${XDG_CACHE_HOME:-~/.cache}/mlbuild/debs), adds the tiny
SageMaker-style `train` program of the tests, and reports:

  - run cold / run warm: run_image() of that image, the first time (rootfs unpacked) and again
    (rootfs reused from the cache);
  - unpack cold / reuse warm: the rootfs cache alone;
  - python -S start on the host and under bwrap (median of --runs each), and bwrap's overhead.

Needs bubblewrap that can create namespaces (`apt-get install bubblewrap`).
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from mlbuild.container_run.bwrap_probe import check_bwrap
from mlbuild.container_run.rootfs_cache import RootfsCache
from mlbuild.container_run.runner import RunPlan, run_image
from mlbuild.runtime.config import load_config
from mlbuild.container_run.testing import TRAIN_SCRIPT, rootfs_entries, write_image, write_pipeline
from mlbuild.debian import build_rootfs, load_lock
from mlbuild.oci.layer import LayerEntry
from mlbuild.oci.layout import read_layout

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "docker/debian-python3.11/packages.lock.json"


def timed_median(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(argv, check=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    bwrap = check_bwrap()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mlbuild-bench-container-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.monotonic()
        rootfs = build_rootfs(load_lock(LOCK), work / "base-rootfs").path
        train = [LayerEntry.file("/usr/local/bin/train", TRAIN_SCRIPT.encode(), 0o755)]
        layout = work / "layout"
        write_image(layout, work / "blobs", [rootfs_entries(rootfs), train], workdir="/opt/program")
        print(f"base rootfs + image: {time.monotonic() - start:.2f}s")

        config, data_dir = write_pipeline(work / "pipeline")
        env = {"layout_dir": layout, "ref": None, "config": load_config(config), "address": "src/python/pipelines/tiny:train",
               "data_dir": data_dir, "runs_dir": work / "runs", "cache_dir": work / "run-cache"}  # fmt: skip
        for name in ("cold", "warm"):
            start = time.monotonic()
            outcome = run_image(RunPlan(**env, overrides={"scale": "3"}), stream=io.StringIO())
            assert outcome.exit_code == 0, outcome.failure_reason
            print(f"run {name}: {time.monotonic() - start:.2f}s")

        image = read_layout(layout)
        cache = RootfsCache(work / "cache")
        with cache.use(image) as cold:
            pass
        with cache.use(image) as warm:
            pass
        assert not cold.reused and warm.reused
        python = ["/usr/bin/python3.11", "-S", "-c", ""]
        sandboxed = [bwrap, "--ro-bind", str(cold.path), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                     "--unshare-all", "--die-with-parent", "--clearenv", "--", *python]  # fmt: skip
        host = timed_median([str(cold.path) + python[0], *python[1:]], args.runs)
        boxed = timed_median(sandboxed, args.runs)
        print(f"unpack cold: {cold.seconds:.2f}s, reuse warm: {warm.seconds * 1000:.1f}ms")
        print(f"python -S start (median of {args.runs}): {host * 1000:.1f}ms on the host, "
              f"{boxed * 1000:.1f}ms under bwrap (overhead {(boxed - host) * 1000:.1f}ms)")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
