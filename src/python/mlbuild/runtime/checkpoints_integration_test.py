"""Kill a local job mid-training, run it again: it resumes from the newest checkpoint.

The pipeline (written below, run by the runtime's own `local` command in a subprocess) chains
a hash through `steps` iterations, saving a checkpoint after each. The first run is told (by
an environment variable, so the job's hyperparameters stay the same) to stop after checkpoint
10 and say so; the test kills it with SIGKILL on that line, so checkpoint 10 is the newest one.
The re-run of the same job finds them in the job's checkpoint store, resumes from step 10
exactly, does only the remaining iterations, and writes exactly the model bytes of an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

PIPELINE = """
import hashlib, os, threading
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
        if str(step + 1) == os.environ.get("HOLD_AFTER_CHECKPOINT"):
            print(f"holding after checkpoint {step + 1}", flush=True)
            threading.Event().wait()  # until the test kills this process
    return {"state": state, "iterations": ctx.hp["steps"] - start, "resumed_from": start}

def evaluate(ctx, model, _):
    return {"iterations": model["iterations"], "resumed_from": model["resumed_from"]}

def save(ctx, model):
    (ctx.model_dir / "model.bin").write_bytes(model["state"])
"""
CONFIG = """\
hyperparameters:
  steps: 60
channels: {}
sagemaker:
  checkpoint_s3_uri: s3://bucket/ckpt/
"""
ADDRESS = "src/python/ckptpipe:train"
HOLD = 10


@pytest.fixture
def project(tmp_path: Path) -> Path:
    package = tmp_path / "src/ckptpipe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pipeline.py").write_text(PIPELINE)
    (package / "pipeline.yaml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    return tmp_path


def _start(project: Path, runs: Path, **extra_env: str) -> subprocess.Popen:
    mlbuild_root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        # NB: absolute: under Pants some sys.path entries are relative to the sandbox, not to `project`.
        "PYTHONPATH": os.pathsep.join(
            [str(project / "src"), str(mlbuild_root), *(os.path.abspath(p) for p in sys.path if p)]
        ),
        "MLBUILD_PIPELINE_MODULE": "ckptpipe.pipeline",
        "MLBUILD_PIPELINE_CONFIG": "pipeline.yaml",
        "MLBUILD_PIPELINE_ADDRESS": ADDRESS,
        **extra_env,
    }
    argv = [
        sys.executable,
        "-m",
        "mlbuild.runtime.cli",
        "local",
        "--data-dir",
        str(project / "data"),
        "--runs-dir",
        str(runs),
    ]
    return subprocess.Popen(argv, env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 120) -> List[str]:
    """The process's output up to the first line containing `marker` (fails if it exits or times out first)."""
    lines: "queue.Queue[str]" = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    seen: List[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line with {marker!r} within {timeout} s; output so far:\n{''.join(seen)[-3000:]}")
        if not line:
            pytest.fail(f"exited before a line with {marker!r}:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if marker in line:
            return seen


def _finished_run(proc: subprocess.Popen, runs: Path) -> Path:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return (runs / "src.python.ckptpipe/train/latest").resolve()


def test_a_killed_job_resumes_from_its_newest_checkpoint(project: Path) -> None:
    runs = project / "runs"
    first = _start(project, runs, HOLD_AFTER_CHECKPOINT=str(HOLD))
    out = _wait_for_line(first, f"holding after checkpoint {HOLD}")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    store = runs / "src.python.ckptpipe/train/checkpoints"
    saved = sorted(p.name for p in store.glob("*/checkpoint-*"))
    assert saved == [f"checkpoint-{step:09d}.bin" for step in range(1, HOLD + 1)], (saved, "".join(out)[-3000:])

    resumed = _finished_run(_start(project, runs), runs)
    metrics = json.loads((resumed / "model/metrics.json").read_text())
    assert (metrics["resumed_from"], metrics["iterations"]) == (HOLD, 60 - HOLD)  # from the newest: 10

    fresh_runs = project / "fresh"
    fresh = _finished_run(_start(project, fresh_runs), fresh_runs)
    assert json.loads((fresh / "model/metrics.json").read_text())["iterations"] == 60
    assert (resumed / "model/model.bin").read_bytes() == (fresh / "model/model.bin").read_bytes()
    assert json.loads((resumed / "input/config/checkpointconfig.json").read_text())["S3Uri"] == "s3://bucket/ckpt/"
