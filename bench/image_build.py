#!/usr/bin/env python3.11
"""Benchmark: mlbuild.oci vs buildah building one COPY-only layer into an OCI layout.

    python3.11 bench/image_build.py [--size-mb 150] [--runs 3] [--seed 0] [--workdir DIR] [--keep]

A benchmark, not a test: it prints a table and exits 0 unless something fails outright.
Same run, same machine, same input for every row:

  - mlbuild cold:  `python -m mlbuild.oci build` of a scratch image with one layer (the input
                   tree under /opt/site-packages), empty `--cache`, `--compressor isal|zlib`.
  - mlbuild warm:  the same build again with the same `--cache` and unchanged input; the script
                   checks that the cached layer blob was not rewritten (no recompression).
  - buildah:       `buildah --storage-driver vfs` with a fresh --root/--runroot per run:
                   `from scratch` + `copy` + `commit` (build), then `push IMAGE oci:DIR:TAG`
                   (write), timed separately and in total; everything is removed afterwards.

The input is a seeded, deterministic tree resembling a Python site-packages: many small .py
files (compressible text, about 60% of the bytes) plus some larger binary-ish files (random,
incompressible bytes). Each row is the median of --runs runs; "ratio" is the row's median time
divided by buildah's median total (build + write) from the same run. MB = 10^6 bytes; MB/s is
input bytes / seconds.

Needs: python3.11 with `isal==1.9.1` (installed with pip if missing), and buildah
(`apt-get install -y buildah`; without it only the mlbuild rows are reported). Run as root
(buildah's vfs driver needs no daemon, but rootless use needs subuid/subgid setup).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHONPATH = REPO / "src" / "python"
DEST = "/opt/site-packages"
MB = 1_000_000
TEXT_FRACTION = 0.6
ISAL_PIN = "isal==1.9.1"


# ---------------------------------------------------------------------------------------------
# Input generation


_WORDS = (
    "self data value result config path name items index model tensor batch layer weight "
    "shape dtype device params options kwargs args logger cache buffer offset stream module "
    "handler request response client session token parser schema field record key default"
).split()
_TEMPLATES = (
    "def {a}_{b}(self, {c}, {d}=None):",
    '    """Return the {a} {b} for {c}."""',
    "    {a} = self._{b}.get({c}, {d})",
    "    if {a} is None:",
    "        raise ValueError(f\"{a} {{{b}!r}} is not a valid {c}\")",
    "    for {a} in {b}.{c}():",
    "        {a}[{b}] = {c}({d})",
    "    return {a}.{b}({c}, {d}={d})",
    "class {A}{B}({C}):",
    "from .{a} import {A}, {b}_{c}",
    "import {a}.{b}",
    "    # NB: {a} must be {b} before {c}; see {d}.",
    "{A}_{B} = {n}",
    "        {a} += {n}",
    "    @property",
    "",
)


def _line_pool(rng: random.Random, n: int = 4000) -> list[str]:
    pool = []
    for _ in range(n):
        a, b, c, d = (rng.choice(_WORDS) for _ in range(4))
        pool.append(
            rng.choice(_TEMPLATES).format(
                a=a, b=b, c=c, d=d, A=a.title(), B=b.title(), C=c.title(), n=rng.randint(0, 99999)
            )
            + "\n"
        )
    return pool


def generate_input(root: Path, size_mb: float, seed: int) -> tuple[int, int]:
    """Write the tree; returns (files, bytes). Same (size_mb, seed) -> same bytes."""
    rng = random.Random(seed)
    target = int(size_mb * MB)
    text_target = int(target * TEXT_FRACTION)
    pool = _line_pool(rng)
    packages = [f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}{i}" for i in range(40)]
    files = 0
    written = 0

    # Small .py files (log-normal sizes, median ~4 KB, clipped to 200 B .. 200 KB).
    text_written = 0
    while text_written < text_target:
        pkg = rng.choice(packages)
        sub = rng.choice(["", "core/", "utils/", "io/", "nn/", "tests/", "_vendor/x/"])
        d = root / pkg / sub
        d.mkdir(parents=True, exist_ok=True)
        size = min(max(int(rng.lognormvariate(8.3, 1.0)), 200), 200_000, text_target - text_written)
        body = "".join(rng.choices(pool, k=size // 30 + 1)).encode()[: max(size, 1)]
        (d / f"{rng.choice(_WORDS)}_{files}.py").write_bytes(body)
        files += 1
        text_written += len(body)
    written += text_written

    # Larger binary-ish files (.so / .bin), random bytes: incompressible.
    while written < target:
        pkg = rng.choice(packages)
        d = root / pkg / rng.choice(["", "lib/", "_C/", "data/"])
        d.mkdir(parents=True, exist_ok=True)
        size = min(rng.randint(200_000, 6_000_000), target - written)
        ext = rng.choice([".cpython-311-x86_64-linux-gnu.so", ".so", ".bin"])
        path = d / f"_{rng.choice(_WORDS)}_{files}{ext}"
        path.write_bytes(rng.randbytes(size))
        if ext.endswith(".so"):
            path.chmod(0o755)
        files += 1
        written += size
    for pkg in packages:
        (root / f"{pkg}-1.0.dist-info").mkdir(exist_ok=True)
        (root / f"{pkg}-1.0.dist-info" / "RECORD").write_text(f"{pkg}/__init__.py,,\n")
    return files, written


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Row:
    name: str
    times: list[float] = field(default_factory=list)
    blob_size: int | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    run(cmd, env)
    return time.perf_counter() - start


def ensure_isal() -> None:
    if importlib.util.find_spec("isal") is None:
        print(f"installing {ISAL_PIN} for {sys.executable} ...", flush=True)
        run([sys.executable, "-m", "pip", "install", "--quiet", ISAL_PIN])


def mlbuild_rows(work: Path, input_dir: Path, runs: int) -> list[Row]:
    spec = work / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "ref": "bench:1",
                "layers": [{"name": "site-packages", "dirs": [{"src": str(input_dir), "dest": DEST}]}],
                "config": {"workdir": "/opt"},
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(PYTHONPATH)}
    rows = []
    for compressor in ("isal", "zlib"):
        cold, warm = Row(f"mlbuild cold  --compressor {compressor}"), Row(f"mlbuild warm  --compressor {compressor}")
        for i in range(runs):
            cache = work / f"cache-{compressor}-{i}"
            base = [sys.executable, "-m", "mlbuild.oci", "build", "--spec", str(spec), "--compressor", compressor]
            cold.times.append(timed(base + ["--output", str(work / f"out-{compressor}-{i}-cold"), "--cache-dir", str(cache)], env))
            summary = json.loads((work / f"out-{compressor}-{i}-cold" / "image.json").read_text())
            (layer,) = summary["layers"]
            blob = cache / "sha256" / layer["digest"].split(":", 1)[1]
            before = blob.stat()
            warm.times.append(timed(base + ["--output", str(work / f"out-{compressor}-{i}-warm"), "--cache-dir", str(cache)], env))
            after = blob.stat()
            (warm_layer,) = json.loads((work / f"out-{compressor}-{i}-warm" / "image.json").read_text())["layers"]
            if warm_layer["digest"] != layer["digest"] or (before.st_ino, before.st_mtime_ns) != (after.st_ino, after.st_mtime_ns):
                raise SystemExit(f"warm build with {compressor} rewrote the cached layer blob: the layer cache missed")
            cold.blob_size = warm.blob_size = layer["size"]
            cold.note = warm.note = layer["annotations"].get("org.mlbuild.layer.compressor", "")
            for kind in ("cold", "warm"):
                shutil.rmtree(work / f"out-{compressor}-{i}-{kind}")
            shutil.rmtree(cache)
            print(f"  {compressor} run {i + 1}: cold {cold.times[-1]:.2f} s, warm {warm.times[-1]:.2f} s", flush=True)
        rows += [cold, warm]
    return rows


def buildah_rows(work: Path, input_dir: Path, runs: int) -> list[Row]:
    build, write, total = Row("buildah build (from+copy+commit)"), Row("buildah write (push oci:)"), Row("buildah total")
    for i in range(runs):
        root = Path(tempfile.mkdtemp(prefix=f"buildah-{i}-", dir=work))
        b = ["buildah", "--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]
        image, out = f"localhost/mlbuild-bench:{i}", root / "oci"
        container = None
        try:
            start = time.perf_counter()
            container = run(b + ["from", "--quiet", "scratch"]).strip()
            run(b + ["copy", "--quiet", container, str(input_dir), DEST])
            run(b + ["commit", "--quiet", container, image])
            t_build = time.perf_counter() - start
            t_write = timed(b + ["push", "--quiet", image, f"oci:{out}:bench"])
            build.times.append(t_build)
            write.times.append(t_write)
            total.times.append(t_build + t_write)
            index = json.loads((out / "index.json").read_text())
            manifest = json.loads((out / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":", 1)[1]).read_text())
            (layer,) = manifest["layers"]
            build.blob_size = write.blob_size = total.blob_size = layer["size"]
            build.note = write.note = total.note = layer["mediaType"].rsplit(".", 1)[-1]
            print(f"  buildah run {i + 1}: build {t_build:.2f} s, write {t_write:.2f} s", flush=True)
        finally:
            if container:
                subprocess.run(b + ["rm", container], capture_output=True)
            subprocess.run(b + ["rmi", "--all", "--force"], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
    return [build, write, total]


# ---------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=float, default=150, help="input size in MB (10^6 bytes); default 150")
    p.add_argument("--runs", type=int, default=3, help="runs per row; the median is reported; default 3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, help="scratch directory (default: a temp dir, removed afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args()

    ensure_isal()
    work = Path(tempfile.mkdtemp(prefix="mlbuild-bench-", dir=args.workdir))
    try:
        input_dir = work / "input"
        t = time.perf_counter()
        files, size = generate_input(input_dir, args.size_mb, args.seed)
        print(f"input: {files} files, {size / MB:.1f} MB ({TEXT_FRACTION:.0%} .py text, rest random binary), "
              f"seed {args.seed}, generated in {time.perf_counter() - t:.1f} s", flush=True)
        nproc = os.cpu_count()
        load_before = os.getloadavg()

        rows = mlbuild_rows(work, input_dir, args.runs)
        buildah = shutil.which("buildah")
        if buildah:
            rows += buildah_rows(work, input_dir, args.runs)
            buildah_version = run(["buildah", "--version"]).strip()
        else:
            buildah_version = "not installed"
        load_after = os.getloadavg()

        peer = rows[-1].median if buildah else None
        print()
        print(f"nproc: {nproc}   loadavg (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}"
              f"   after: {' '.join(f'{x:.2f}' for x in load_after)}")
        print(f"python: {sys.version.split()[0]}   {buildah_version}")
        print(f"input: {size / MB:.1f} MB, {files} files; runs: {args.runs} (median; min..max in brackets)")
        print()
        header = f"{'row':<34} {'median s':>9} {'(min..max)':>14} {'MB/s':>7} {'blob MB':>8} {'ratio':>6}  compressor / layer"
        print(header)
        print("-" * len(header))
        for r in rows:
            ratio = f"{r.median / peer:.2f}" if peer else "n/a"
            spread = f"({min(r.times):.2f}..{max(r.times):.2f})"
            blob = f"{r.blob_size / MB:.1f}" if r.blob_size is not None else "-"
            print(f"{r.name:<34} {r.median:>9.2f} {spread:>14} {size / MB / r.median:>7.1f} {blob:>8} {ratio:>6}  {r.note}")
        print()
        print("ratio = row median / buildah total median (same run). mlbuild's time is the whole CLI call:")
        print("interpreter start, tar + sha256, gzip, OCI layout, plus an oci-archive (image.tar) and image.json.")
        if not buildah:
            print("\nbuildah is not installed, so there are no peer rows. Install it with:\n"
                  "    apt-get update && apt-get install -y buildah")
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
