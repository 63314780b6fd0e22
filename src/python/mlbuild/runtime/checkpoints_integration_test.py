"""Kill a local job mid-training, run it again: it resumes from the newest checkpoint.

The pipeline (written below, run by the runtime's own `local` command in a subprocess) chains
a hash through `steps` iterations, saving a checkpoint after each. The first run is killed
with SIGKILL once it has saved a few; the re-run of the same job (same hyperparameters) finds
them in the job's checkpoint store, does only the remaining iterations, and writes exactly the
model bytes of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PIPELINE = '''
import hashlib, time
from mlbuild.runtime import checkpoints

def load(ctx):
    return None

def train(ctx, _):
    found = checkpoints.latest(ctx.checkpoints_dir)
    start, state = (found.step, found.path.read_bytes()) if found else (0, b"seed")
    ctx.log.info("starting at step %d", start)
    for step in range(start, ctx.hp["steps"]):
        state = hashlib.sha256(state + str(step).encode()).digest()
        checkpoints.save(ctx.checkpoints_dir, step + 1, state)
        time.sleep(ctx.hp["pause"])
    return {"state": state, "iterations": ctx.hp["steps"] - start, "resumed_from": start}

def evaluate(ctx, model, _):
    return {"iterations": model["iterations"], "resumed_from": model["resumed_from"]}

def save(ctx, model):
    (ctx.model_dir / "model.bin").write_bytes(model["state"])
'''
CONFIG = """\
hyperparameters:
  steps: 60
  pause: 0.05
channels: {}
sagemaker:
  checkpoint_s3_uri: s3://bucket/ckpt/
"""
ADDRESS = "src/python/ckptpipe:train"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    package = tmp_path / "src/ckptpipe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pipeline.py").write_text(PIPELINE)
    (package / "pipeline.yaml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    return tmp_path


def _start(project: Path, runs: Path) -> subprocess.Popen:
    mlbuild_root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        # NB: absolute: under Pants some sys.path entries are relative to the sandbox, not to `project`.
        "PYTHONPATH": os.pathsep.join([str(project / "src"), str(mlbuild_root), *(os.path.abspath(p) for p in sys.path if p)]),
        "MLBUILD_PIPELINE_MODULE": "ckptpipe.pipeline",
        "MLBUILD_PIPELINE_CONFIG": "pipeline.yaml",
        "MLBUILD_PIPELINE_ADDRESS": ADDRESS,
    }
    argv = [sys.executable, "-m", "mlbuild.runtime.cli", "local", "--data-dir", str(project / "data"), "--runs-dir", str(runs)]
    return subprocess.Popen(argv, env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finished_run(proc: subprocess.Popen, runs: Path) -> Path:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return (runs / "src.python.ckptpipe/train/latest").resolve()


def test_a_killed_job_resumes_from_its_newest_checkpoint(project: Path) -> None:
    runs = project / "runs"
    first = _start(project, runs)
    store = runs / "src.python.ckptpipe/train/checkpoints"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(store.glob("*/checkpoint-*"))) < 10:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    out, _ = first.communicate(timeout=30)
    saved = sorted(p.name for p in store.glob("*/checkpoint-*"))
    assert 10 <= len(saved) < 60, (saved, out[-3000:])  # killed mid-training

    resumed = _finished_run(_start(project, runs), runs)
    metrics = json.loads((resumed / "model/metrics.json").read_text())
    assert metrics["resumed_from"] >= 10 and metrics["iterations"] == 60 - metrics["resumed_from"] < 60

    fresh_runs = project / "fresh"
    fresh = _finished_run(_start(project, fresh_runs), fresh_runs)
    assert json.loads((fresh / "model/metrics.json").read_text())["iterations"] == 60
    assert (resumed / "model/model.bin").read_bytes() == (fresh / "model/model.bin").read_bytes()
    assert json.loads((resumed / "input/config/checkpointconfig.json").read_text())["S3Uri"] == "s3://bucket/ckpt/"
