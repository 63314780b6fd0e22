#!/usr/bin/env python3.11
"""Benchmark: deep-learning-size artifacts. churn (scikit-learn) and mlp (torch, ~3 GB of wheels) in one run.

    python3.11 bench/deep_learning.py [--runs 3] [--skip-cold] [--many 20,100] [--skip-push]
    python3.11 bench/deep_learning.py --edits-only --runs 4   (churn and mlp edited in turn: same load for both)

A benchmark, not a test: it prints a table and exits 0 unless a step fails outright. Every
figure comes from this run, on this checkout, pantsd warm; edits append a comment to the
pipeline module and are reverted at the end.

Rows, for each pipeline:
  cold package        `./pants --no-local-cache package P`: every Process runs again (the wheels
                      are already downloaded, in pex's cache)
  floor: venv + tar   the plainest way to the same compressed dependencies without mlbuild: a
                      fresh venv, `pip install --no-index --no-deps` of the very wheel files the
                      PEX holds, then `tar | gzip -1` (isal's igzip when importable) of the venv
  package, no change  `./pants package P`, median
  package, code edit  the same after a one-line edit of the pipeline module, median
  run, code edit      `./pants run P -- --force` after an edit, median
  floor: script       the pipeline's stages called by a plain script in a plain venv of the same
                      wheels (pip compiled their bytecode), page cache warm
  dist / store growth bytes added per code edit: regular files under dist/ (a link to a shared
                      blob is not a copy) and Pants' local store (~/.cache/pants/lmdb_store)
Then: files left in Pants' execution root (the launcher's folder for this checkout) after all
of it; the second torch pipeline's push (a copy of mlp, to a local docker-registry after mlp's,
mounting from it): bytes uploaded and mounted; with --many, N copies of iris in a temporary
clone: package all, then package all with nothing changed, and dist/'s bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

# NB: the churn inner-loop benchmark's timing helpers and edits (this folder is on sys.path).
from inner_loop import Edits, median_of, timed

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".mlbuild/bench/deep_learning"
STORE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pants" / "lmdb_store"
PIPELINES = {"churn": "python-default", "mlp": "torch"}

FLOOR_SCRIPT = r'''
import logging, sys, tempfile
from pathlib import Path
from types import SimpleNamespace
import importlib
sys.path.insert(0, sys.argv[1])
import yaml
p = importlib.import_module(sys.argv[2])
config = yaml.safe_load(Path(sys.argv[3]).read_text())
hp = {k: (v["default"] if isinstance(v, dict) else v) for k, v in config["hyperparameters"].items()}
out = Path(tempfile.mkdtemp())
ctx = SimpleNamespace(hp=hp, hyperparameters=hp, channels={c: Path(sys.argv[4]) / c for c in ("train", "validation")},
                      model_dir=out, checkpoints_dir=out, output_data_dir=out, log=logging.getLogger("floor"))
data = p.load(ctx)
features = p.featurize(ctx, data) if hasattr(p, "featurize") else data
model = p.train(ctx, features)
print(p.evaluate(ctx, model, features))
if hasattr(p, "save"):
    p.save(ctx, model)
'''


def sh(argv: List[str], *, env: Optional[Dict[str, str]] = None, check: bool = True, cwd: Path = REPO, shell: bool = False) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, shell=shell)
    if check and done.returncode != 0:
        raise SystemExit(f"bench: {argv} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def pants(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return sh(["./pants", *args], cwd=cwd)


def written_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) if folder.exists() else 0


def tree_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def exec_root() -> Path:
    cache = os.environ.get("MLBUILD_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlbuild")
    return Path(cache) / "exec-root" / hashlib.sha256(str(REPO).encode()).hexdigest()[:16]


class PeakRss:
    """Samples the resident memory of mlbuild's build Processes (`-m mlbuild.…`) every 0.2 s."""

    def __init__(self) -> None:
        self.one = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            sizes = []
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    if b"-m\0mlbuild." not in (proc / "cmdline").read_bytes():
                        continue
                    rss = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines() if line.startswith("VmRSS:"))
                except (OSError, StopIteration, ValueError):
                    continue
                sizes.append(rss * 1024)
            self.one, self.total = max(self.one, max(sizes, default=0)), max(self.total, sum(sizes))

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def dist_of(name: str) -> Path:
    return REPO / f"dist/src.python.pipelines.{name}"


def wheel_files(name: str) -> List[Path]:
    """The wheel files the PEX's `.deps/` came from, as pex downloaded them."""
    downloads = STORE.parent / "named_caches" / "pex_root" / "downloads"
    found = []
    for dep in sorted((dist_of(name) / "train.pex" / ".deps").iterdir()):
        matches = list(downloads.glob(f"*/{dep.name}"))
        if not matches:
            raise SystemExit(f"bench: {dep.name} is not in {downloads}")
        found.append(matches[0])
    return found


def install_floor_venv(name: str, venv: Path) -> None:
    """A plain venv with exactly the wheel files the pipeline's PEX holds (pip compiles their bytecode)."""
    shutil.rmtree(venv, ignore_errors=True)
    sh(["python3.11", "-m", "venv", str(venv)])
    env = {**os.environ, "PIP_CONFIG_FILE": "/dev/null"}
    sh([str(venv / "bin/pip"), "install", "-q", "--no-index", "--no-deps", *map(str, wheel_files(name))], env=env)


def floor_cold(name: str) -> float:
    """A fresh venv with the same wheels, then tar | gzip -1 of it: seconds."""
    work = WORK / f"floor-cold-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        import isal

        gzip = f"{sys.executable} -m isal.igzip -1 -c"
    except ImportError:
        gzip = "gzip -1 -c"

    def install_and_pack() -> None:
        install_floor_venv(name, work / "venv")
        sh(f"tar -C {work / 'venv'} -cf - . | {gzip} > {work / 'layer.tar.gz'}", shell=True)

    seconds = timed(install_and_pack)
    print(f"bench: floor {name}: venv {tree_bytes(work / 'venv') / 1e9:.2f} GB -> {(work / 'layer.tar.gz').stat().st_size / 1e9:.2f} GB gz", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    return seconds


def floor_script(name: str) -> float:
    """The stages called by a plain script in a plain venv of the same wheels (bytecode compiled)."""
    venv = WORK / f"floor-{name}"
    if not (venv / "bin/python").exists():
        install_floor_venv(name, venv)
    pipeline = REPO / f"src/python/pipelines/{name}"
    argv = [str(venv / "bin/python"), "-c", FLOOR_SCRIPT, str(REPO / "src/python"), f"pipelines.{name}.pipeline", str(pipeline / "pipeline.yaml"), str(pipeline / "data")]
    sh(argv)  # warm-up: the same page cache as the pants run
    return median_of(3, lambda: sh(argv))


def pipeline_rows(name: str, runs: int, cold: bool) -> Dict[str, str]:
    target = f"src/python/pipelines/{name}:train"
    edits = Edits(REPO / f"src/python/pipelines/{name}/pipeline.py")
    rows: Dict[str, str] = {}
    try:
        pants("package", target)
        pants("run", target, "--", "--force")
        if cold:
            with PeakRss() as peak:
                rows["cold package (s)"] = f"{timed(lambda: pants('--no-local-cache', 'package', target)):.1f}"
            rows["peak RSS, one / all mlbuild Processes (MB)"] = f"{peak.one / 1e6:.0f} / {peak.total / 1e6:.0f}"
            pants("package", target)  # NB: pantsd restarts once the --no-local-cache option is gone
            rows["floor: venv + tar|gzip (s)"] = f"{floor_cold(name):.1f}"
        rows["package, no change (s)"] = f"{median_of(runs, lambda: pants('package', target)):.2f}"
        dist0, store0 = written_bytes(REPO / "dist"), tree_bytes(STORE)
        rows["package, code-only edit (s)"] = f"{median_of(runs, lambda: pants('package', target), before=edits.edit):.2f}"
        dist1, store1 = written_bytes(REPO / "dist"), tree_bytes(STORE)
        rows["dist/ growth per edit (MB)"] = f"{(dist1 - dist0) / runs / 1e6:.2f}"
        rows["store growth per edit (MB)"] = f"{(store1 - store0) / runs / 1e6:.2f}"
        app = next(l["size"] for l in json.loads((dist_of(name) / "train.image.json").read_text())["layers"] if l["annotations"]["org.mlbuild.layer.name"] == "app")
        rows["app layer (MB)"] = f"{app / 1e6:.3f}"
        rows["run, code edit (s)"] = f"{median_of(runs, lambda: pants('run', target, '--', '--force'), before=edits.edit):.2f}"
        edits.restore()
        rows["floor: plain script (s)"] = f"{floor_script(name):.2f}"
        summary = json.loads((dist_of(name) / "train.image.json").read_text())
        rows["image layers / bytes (GB)"] = f"{len(summary['layers'])} / {sum(l['size'] for l in summary['layers']) / 1e9:.2f}"
    finally:
        edits.restore()
    return rows


def second_push() -> str:
    """mlp, then a copy of it, pushed to a local docker-registry: what the copy uploads."""
    sys.path.insert(0, str(REPO / "src/python"))
    from mlbuild.registry.local_server import serve_registry
    from mlbuild.registry.push import push_layout

    copy = REPO / "src/python/pipelines/mlp_bench_copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(REPO / "src/python/pipelines/mlp", copy, ignore=shutil.ignore_patterns("__pycache__", "*_test.py"))
    try:
        pants("package", "src/python/pipelines/mlp:train", "src/python/pipelines/mlp_bench_copy:train")
        with tempfile.TemporaryDirectory() as scratch, serve_registry(Path(scratch) / "registry") as registry:
            first = push_layout(dist_of("mlp") / "train.oci", "train", f"{registry.host}/mlp", allow_insecure_http=True, progress=None)
            second = push_layout(dist_of("mlp_bench_copy") / "train.oci", "train", f"{registry.host}/mlp-copy",
                                 mount_from=["mlp"], allow_insecure_http=True, progress=None)
        return (f"first push uploaded {first.uploaded_bytes / 1e9:.2f} GB ({first.seconds:.1f} s); the copy's uploaded "
                f"{second.uploaded_bytes / 1e3:.1f} kB, mounted {second.mounted_bytes / 1e9:.2f} GB ({second.seconds:.1f} s)")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(dist_of("mlp_bench_copy"), ignore_errors=True)


def many_pipelines(counts: List[int]) -> List[str]:
    lines = []
    for n in counts:
        with tempfile.TemporaryDirectory() as scratch:
            clone = Path(scratch) / "repo"
            sh(["git", "clone", "-q", str(REPO), str(clone)])
            for i in range(n):
                shutil.copytree(clone / "src/python/pipelines/iris", clone / f"src/python/pipelines/iris{i:03d}")
            targets = [f"src/python/pipelines/iris{i:03d}:train" for i in range(n)]
            first = timed(lambda: pants("package", *targets, cwd=clone))
            again = median_of(3, lambda: pants("package", *targets, cwd=clone))
            lines.append(
                f"{n} iris pipelines: package all {first:.1f} s; again, nothing changed {again:.2f} s ({again / n * 1000:.0f} ms a"
                f" pipeline); dist/ {written_bytes(clone / 'dist') / 1e6:.1f} MB written + {tree_bytes(clone / 'dist/mlbuild/blobs') / 1e6:.0f} MB shared blobs"
                f" (without links: {tree_bytes(clone / 'dist') / 1e9:.1f} GB)"
            )
            # NB: Pants 2.17 has no kill-pantsd goal: stop the clone's pantsd by its pid file.
            for pid_file in (clone / ".pids").glob("*/pantsd/pid"):
                subprocess.run(["kill", pid_file.read_text().strip()], check=False)
    return lines


def interleaved_edits(runs: int) -> str:
    """Code-only edits of churn and mlp taken in turn (the same load for both), `package` each."""
    edits = {name: Edits(REPO / f"src/python/pipelines/{name}/pipeline.py") for name in PIPELINES}
    times: Dict[str, List[float]] = {name: [] for name in PIPELINES}
    try:
        for name in PIPELINES:
            pants("package", f"src/python/pipelines/{name}:train")
        for _ in range(runs):
            for name, edit in edits.items():
                edit.edit()
                times[name].append(timed(lambda: pants("package", f"src/python/pipelines/{name}:train")))
    finally:
        for edit in edits.values():
            edit.restore()
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    return ", ".join(f"{name} {' '.join(f'{t:.2f}' for t in ts)} (median {medians[name]:.2f} s)" for name, ts in times.items()) + (
        f"; mlp/churn {medians['mlp'] / medians['churn']:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-push", action="store_true")
    parser.add_argument("--many", default="", help="comma-separated pipeline counts, e.g. 20,100")
    parser.add_argument("--edits-only", action="store_true", help="only `package` after code-only edits, churn and mlp in turn")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.edits_only:
        print(f"package after a code-only edit, in turn, {args.runs} each: {interleaved_edits(args.runs)}")
        return 0
    columns = {name: pipeline_rows(name, args.runs, not args.skip_cold) for name in PIPELINES}
    print(f"\ndeep-learning size, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, medians of {args.runs}\n")
    print(f"{'row':<32} {'churn':>14} {'mlp (torch)':>14} {'mlp/churn':>10}")
    for row in columns["churn"]:
        a, b = columns["churn"][row], columns["mlp"].get(row, "")
        try:
            ratio = f"{float(b) / float(a):.2f}" if float(a) else ""
        except ValueError:
            ratio = ""
        print(f"{row:<32} {a:>14} {b:>14} {ratio:>10}")
    left = sorted(str(p.relative_to(exec_root())) for p in exec_root().rglob("*") if not p.is_dir()) if exec_root().exists() else []
    print(f"\nPants' execution root ({exec_root()}): {len(left)} file(s) left{': ' + ', '.join(left[:5]) if left else ''}")
    if not args.skip_push:
        print("second torch pipeline's push: " + second_push())
    for line in many_pipelines([int(n) for n in args.many.split(",") if n]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
