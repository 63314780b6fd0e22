"""Integration: a REAL image (Debian python3.11 base + a `train` script) run under bwrap.

Needs bubblewrap that can create namespaces (`apt-get install bubblewrap`) and the Debian
mirror or a warm .deb cache (${XDG_CACHE_HOME:-~/.cache}/mlbuild/debs); skips otherwise.
Timings live in bench/container_run.py.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from mlbuild.container_run.outcome import RunOutcome
from mlbuild.container_run.rootfs_cache import RootfsCache
from mlbuild.container_run.runner import RunPlan, run_image
from mlbuild.container_run.testing import real_train_image, write_pipeline
from mlbuild.oci.layout import read_layout
from mlbuild.runtime.config import load_config

ADDRESS = "src/python/pipelines/tiny:train"


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_train_image(tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def env(image_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("pipeline")
    config, data_dir = write_pipeline(root)
    return {
        "layout_dir": image_layout,
        "ref": None,
        "config": load_config(config),
        "address": ADDRESS,
        "data_dir": data_dir,
        "runs_dir": root / "runs",
        "cache_dir": root / "cache",
    }


def _run(env: dict, **overrides: str) -> tuple[RunOutcome, str, float]:
    out = io.StringIO()
    start = time.monotonic()
    outcome = run_image(RunPlan(**env, overrides=overrides), stream=out)
    return outcome, out.getvalue(), time.monotonic() - start


def test_train_runs_like_sagemaker(env: dict) -> None:
    outcome, out, _ = _run(env, scale="3")
    assert outcome.exit_code == 0, out
    assert outcome.failure_reason is None
    assert (outcome.model_dir / "model.txt").read_text() == "scale=3.0 rows={'train': 3, 'validation': 1}\n"
    assert outcome.metrics == {"rows_train": 3, "score": 9.0}
    assert "trained on" in out and "as 0 in /opt/program" in out and "unpacked" in out
    assert not outcome.run_dir.name.startswith(".") and not outcome.run_dir.name.endswith(".failed")
    assert os.readlink(outcome.run_dir.parent / "latest") == outcome.run_dir.name
    # The sandbox: read-only root and channels, writable /tmp and /opt/ml, only the image's env.
    sandbox = json.loads((outcome.model_dir / "sandbox.json").read_text())
    assert sandbox.pop("env") == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "HOSTNAME": "algo-1",
        "PEX_ROOT": "/tmp/.pex",
        "PWD": "/opt/program",
    }
    assert sandbox == {
        "/usr/x": False,
        "/opt/ml/input/data/train/x": False,
        "/tmp/x": True,
        "/opt/ml/output/data/x": True,
    }
    # Inputs are as SageMaker writes them; after the run, the channel folders (bind-mount
    # points during it) link to the data, as in a local run.
    run = outcome.run_dir
    assert json.loads((run / "input/config/hyperparameters.json").read_text()) == {"label": '"run"', "scale": "3.0"}
    assert (run / "input/data/train").is_symlink() and os.listdir(run / "input/data/train") == ["a.csv"]

    warm_outcome, warm_out, _ = _run(env)
    assert warm_outcome.exit_code == 0 and "reused" in warm_out


def test_failure_is_reported_and_run_marked_failed(env: dict) -> None:
    latest = env["runs_dir"] / "src.python.pipelines.tiny/train/latest"
    before = os.readlink(latest) if latest.is_symlink() else None
    outcome, out, _ = _run(env, label="fail")
    assert outcome.exit_code == 1
    assert outcome.failure_reason == "DataError: label=fail was requested\n"
    assert outcome.run_dir.name.endswith(".failed") and outcome.run_dir.is_dir()
    assert (outcome.run_dir / "output/failure").is_file()
    assert (os.readlink(latest) if latest.is_symlink() else None) == before
    assert not list(outcome.run_dir.parent.glob(".*.incomplete"))


def test_the_rootfs_cache_unpacks_once(env: dict, tmp_path: Path) -> None:
    # NB: the timings (cold unpack, warm reuse, bwrap's start overhead) are in bench/container_run.py.
    image = read_layout(env["layout_dir"])
    cache = RootfsCache(tmp_path / "cache")
    with cache.use(image) as cold:
        assert (cold.path / "usr/bin/python3.11").exists()
    with cache.use(image) as warm:
        assert warm.path == cold.path
    assert not cold.reused and warm.reused
