#!/usr/bin/env python3.11
"""Benchmark: the edit → result loop of the churn pipeline, against a plain script and buildah.

    python3.11 bench/inner_loop.py [--runs 3] [--skip-buildah]

A benchmark, not a test: it prints a table (medians over --runs) and exits 0 unless a step
fails outright. Every row is measured in the same run, on this checkout, with pantsd warm
(one warm-up call first). An "edit" appends a comment line to the pipeline module (or, for
the config row, breaks pipeline.yaml); every edit is reverted at the end.

Rows:
  floor          the stages (load → featurize → train → evaluate → save) called by a short
                 script in a venv with the lock's pinned numpy/scikit-learn/PyYAML: what a
                 data scientist would type without mlbuild (the venv is made once under
                 .mlbuild/bench/, from PyPI).
  pex direct     `python3.11 train.pex local …` (the packaged zipapp, its PEX_ROOT warm).
  run            `./pants run churn:train -- --force`, nothing changed / after an edit.
  package        `./pants package churn:train`, nothing changed / after a code-only edit.
  config typo    `./pants package` with a YAML typo: seconds until it exits with the error.
  image train    `/usr/local/bin/train` in the unpacked image under bubblewrap, with a fresh
                 /tmp and /opt/ml per run (as a new SageMaker container starts).
  buildah        `buildah bud --layers` (vfs) of the same image (the dependency layout as
                 FROM, COPY of the code) after the same code-only edit, cache warm, plus the
                 `buildah push` to an OCI layout: what a Docker user's rebuild costs.
It also counts pantsd restarts across the edits (pantsd's log).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
CHURN = "src/python/pipelines/churn:train"
PIPELINE = REPO / "src/python/pipelines/churn/pipeline.py"
CONFIG = REPO / "src/python/pipelines/churn/pipeline.yaml"
DIST = REPO / "dist/src.python.pipelines.churn"
DATA = REPO / "src/python/pipelines/churn/data"
WORK = REPO / ".mlbuild/bench/inner_loop"
PANTSD_LOG = REPO / ".pants.d/pants.log"  # pantsd logs each start as "pantsd <version> running with PID"

FLOOR_SCRIPT = r'''
import logging, sys, tempfile
from pathlib import Path
from types import SimpleNamespace
sys.path.insert(0, sys.argv[1])
import yaml
from pipelines.churn import pipeline as p
config = yaml.safe_load(Path(sys.argv[2]).read_text())
hp = {k: (v["default"] if isinstance(v, dict) else v) for k, v in config["hyperparameters"].items()}
out = Path(tempfile.mkdtemp())
ctx = SimpleNamespace(hp=hp, hyperparameters=hp, channels={c: Path(sys.argv[3]) / c for c in ("train", "validation")},
                      model_dir=out, checkpoints_dir=out, output_data_dir=out, log=logging.getLogger("floor"))
raw = p.load(ctx)
features = p.featurize(ctx, raw)
model = p.train(ctx, features)
print(p.evaluate(ctx, model, features))
p.save(ctx, model)
'''


def sh(argv: List[str], *, env: Optional[Dict[str, str]] = None, check: bool = True, cwd: Path = REPO) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(runs: int, fn: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    times = []
    for _ in range(runs):
        before()
        times.append(timed(fn))
    print(f"bench: {' '.join(f'{t:.2f}' for t in times)} s", file=sys.stderr, flush=True)
    return statistics.median(times)


class Edits:
    """Appends a distinct comment per edit; restores the original bytes at the end."""

    def __init__(self, path: Path) -> None:
        self.path, self.original, self.n = path, path.read_bytes(), 0

    def edit(self) -> None:
        self.n += 1
        self.path.write_bytes(self.original + f"\n# bench edit {self.n} {time.time_ns()}\n".encode())

    def restore(self) -> None:
        self.path.write_bytes(self.original)


def lock_pins() -> List[str]:
    lock = (REPO / "3rdparty/python/default.lock").read_text()
    # NB: Pants' lockfile header is `//` comment lines (with its own JSON metadata) before the lock.
    body = json.loads("\n".join(line for line in lock.splitlines() if not line.startswith("//")))
    wanted = {"numpy", "scikit-learn", "pyyaml", "isal"}
    pins = []
    for resolve in body["locked_resolves"]:
        for req in resolve["locked_requirements"]:
            if req["project_name"].lower() in wanted:
                pins.append(f"{req['project_name']}=={req['version']}")
    return sorted(set(pins))


def floor_venv() -> Path:
    venv = WORK / "venv"
    python, done = venv / "bin/python", venv / ".installed"
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)
        sh(["python3.11", "-m", "venv", str(venv)])
        sh([str(python), "-m", "pip", "install", "-q", *lock_pins()], env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"})
        done.write_text(" ".join(lock_pins()))
    return python


def pants(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(["./pants", "--pantsd", *args], check=check)


def pantsd_starts() -> int:
    return len(re.findall(r"pantsd \S+ running with PID", PANTSD_LOG.read_text(errors="replace"))) if PANTSD_LOG.exists() else 0


def opt_ml_template(run_dir: Path, dest: Path) -> Path:
    """A fresh /opt/ml like SageMaker lays out: the config and data of a finished local run."""
    shutil.copytree(run_dir / "input" / "config", dest / "input" / "config")
    for channel in ("train", "validation"):
        shutil.copytree(DATA / channel, dest / "input" / "data" / channel)
    for sub in ("model", "output/data", "checkpoints"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    return dest


def image_env(layout: Path) -> List[str]:
    """`--setenv NAME VALUE` for each of the image config's Env, as a container runtime applies them."""
    index = json.loads((layout / "index.json").read_text())
    (manifest,) = [m for m in index["manifests"] if "artifactType" not in m]
    blob = lambda digest: json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_text())
    config = blob(blob(manifest["digest"])["config"]["digest"])
    argv: List[str] = []
    for item in config["config"].get("Env", []):
        name, _, value = item.partition("=")
        argv += ["--setenv", name, value]
    return argv


def image_rows(runs: int, floor_python: Path) -> Dict[str, float]:
    if shutil.which("bwrap") is None:
        return {}
    rootfs = WORK / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src/python")}
    sh([str(floor_python), "-m", "mlbuild.oci", "unpack", "--layout", str(DIST / "train.oci"), "--ref-name", "train", "--rootfs", str(rootfs)], env=env)
    (rootfs / "opt/ml").mkdir(parents=True, exist_ok=True)  # the mount point SageMaker binds
    latest = (REPO / "dist/mlbuild/runs/src.python.pipelines.churn/train/latest").resolve()

    def run_in_container() -> None:
        with tempfile.TemporaryDirectory() as scratch:
            opt_ml = opt_ml_template(latest, Path(scratch) / "ml")
            sh(["bwrap", "--ro-bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--ro-bind", "/sys", "/sys", "--bind", str(opt_ml), "/opt/ml", "--unshare-all", "--clearenv",
                "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/root",
                *image_env(DIST / "train.oci"), "/usr/local/bin/train"])

    return {"image train (fresh container)": median_of(runs, run_in_container)}


def buildah_row(runs: int, edits: Edits) -> Dict[str, float]:
    if shutil.which("buildah") is None:
        return {}
    # NB: not under .mlbuild/: buildah names a pulled `oci:` layout after its path, and a
    # path component starting with a dot is not a valid image reference.
    root = Path(tempfile.gettempdir()) / "mlbuild_bench_buildah"
    shutil.rmtree(root, ignore_errors=True)
    ctx = root / "context"
    (ctx / "app").mkdir(parents=True)
    storage = ["--storage-driver", "vfs", "--root", str(root / "storage"), "--runroot", str(root / "run")]
    # NB: FROM the packaged image itself (base + installed dependencies), then COPY the code:
    # the cached-layer rebuild a Docker user gets for a code-only change.
    shutil.copytree(DIST / "train.oci", root / "from.oci")
    pulled = sh(["buildah", *storage, "pull", "--quiet", f"oci:{root / 'from.oci'}:train"]).stdout.strip().splitlines()[-1]
    sh(["buildah", *storage, "tag", pulled, "localhost/churn-base:latest"])
    (ctx / "Containerfile").write_text("FROM localhost/churn-base:latest\nCOPY app /opt/mlbuild/app\nCMD [\"train\"]\n")

    def sync_app() -> None:
        shutil.rmtree(ctx / "app")
        shutil.copytree(REPO / "src/python", ctx / "app", ignore=shutil.ignore_patterns("__pycache__", "*_test.py"))

    def rebuild() -> None:
        sh(["buildah", *storage, "bud", "--layers", "-t", "churn", "-f", str(ctx / "Containerfile"), str(ctx)], cwd=ctx)
        sh(["buildah", *storage, "push", "churn", f"oci:{root / 'out'}:train"])

    sync_app()
    rebuild()  # warm its layer cache
    return {"buildah rebuild after edit (cache warm)": median_of(runs, rebuild, before=lambda: (edits.edit(), sync_app()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-buildah", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    rows: Dict[str, float] = {}
    edits, config = Edits(PIPELINE), Edits(CONFIG)
    try:
        python = floor_venv()
        rows["floor: plain script in a venv"] = median_of(
            args.runs, lambda: sh([str(python), "-c", FLOOR_SCRIPT, str(REPO / "src/python"), str(CONFIG), str(DATA)])
        )
        pants("package", CHURN)  # warm-up: pantsd up, everything built
        pants("run", CHURN, "--", "--force")
        pex_env = {**os.environ, "PEX_ROOT": str(WORK / "pex_root")}
        runs_dir = WORK / "runs"
        pex_run = ["python3.11", str(DIST / "train.pex"), "local", "--data-dir", str(DATA), "--runs-dir", str(runs_dir)]
        sh(pex_run, env=pex_env)
        rows["pex direct (zipapp, PEX_ROOT warm)"] = median_of(args.runs, lambda: sh(pex_run, env=pex_env))
        starts = pantsd_starts()
        rows["pants run, no change"] = median_of(args.runs, lambda: pants("run", CHURN, "--", "--force"))
        rows["pants run, after a one-line edit"] = median_of(args.runs, lambda: pants("run", CHURN, "--", "--force"), before=edits.edit)
        rows["pants package, no change"] = median_of(args.runs, lambda: pants("package", CHURN))
        rows["pants package, after a code-only edit"] = median_of(args.runs, lambda: pants("package", CHURN), before=edits.edit)
        restarts = pantsd_starts() - starts

        def broken_config() -> None:
            config.path.write_bytes(config.original.replace(b"max_iter: {type: int, default: 200, min: 1}", b"max_iter: {type: int, default: 200, min: 1"))

        def typo_reported() -> None:
            done = pants("package", CHURN, check=False)
            assert done.returncode != 0 and "malformed YAML" in done.stderr, done.stderr[-2000:]

        rows["pipeline.yaml typo reported (package)"] = median_of(args.runs, typo_reported, before=broken_config)
        config.restore()
        edits.restore()
        pants("package", CHURN)
        rows.update(image_rows(args.runs, python))
        if not args.skip_buildah:
            rows.update(buildah_row(args.runs, edits))
    finally:
        edits.restore()
        config.restore()

    floor = rows["floor: plain script in a venv"]
    print(f"\ninner loop, churn, medians of {args.runs} (pantsd warm); pantsd restarts across {2 * args.runs} edits: {restarts}\n")
    print(f"{'row':<44} {'seconds':>8} {'× floor':>8}")
    for name, seconds in rows.items():
        print(f"{name:<44} {seconds:8.2f} {seconds / floor:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
