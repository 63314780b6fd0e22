"""The `serve` program's arguments and defaults, and what it imports (only what the image ships)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlbuild.serving import cli
from mlbuild.serving.server import ServerOptions, default_bind, default_timeout, default_workers


def test_sagemakers_port_and_worker_variables_are_honoured() -> None:
    assert default_bind({}) == "0.0.0.0:8080"
    assert default_bind({"SAGEMAKER_BIND_TO_PORT": "9090"}) == "0.0.0.0:9090"
    assert default_workers({"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}) == 3
    assert default_workers({}) >= 1
    assert cli.default_max_payload_mb({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"}) == 20
    assert cli.default_max_payload_mb({}) == 6


def test_server_options_bound_the_queue_the_buffer_and_the_body() -> None:
    options = ServerOptions("127.0.0.1:0", 4, max_payload_mb=20)
    limits = options.limits()
    assert (options.timeout_seconds, options.queue_size()) == (50, 64)
    assert (limits.max_body_bytes, limits.buffer_bytes) == (20 * 1024 * 1024, 6 * 20 * 1024 * 1024)
    assert ServerOptions("127.0.0.1:0", 1, queue=3).queue_size() == 3
    assert ServerOptions("127.0.0.1:0", 1).limits().buffer_bytes == 64 * 1024 * 1024
    assert default_timeout({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "20"}) == 20 and default_timeout({}) == 50


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bind", "8080"], "expected HOST:PORT"),
        (["--workers", "0"], "expected 1 or more"),
        (["--timeout", "x"], "not a whole number"),
    ],
)
def test_bad_arguments_exit_2_with_the_fix(argv: list, message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(argv)
    assert raised.value.code == 2 and message in capsys.readouterr().err


def test_serve_outside_a_pipeline_image_says_how_to_build_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("MLBUILD_PIPELINE_MODULE", raising=False)
    assert cli.main(["serve", "--bind", "127.0.0.1:0"]) == 3
    assert "MLBUILD_PIPELINE_MODULE is not set" in capsys.readouterr().err


def test_transform_of_a_missing_model_folder_is_the_users_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        cli.main(["transform", str(tmp_path), "--output", str(tmp_path / "o"), "--model-dir", str(tmp_path / "nope")])
        == 2
    )
    assert "no such model folder or model.tar.gz" in capsys.readouterr().err


def test_serve_imports_nothing_the_image_does_not_ship() -> None:
    code = "import sys, json; import mlbuild.serving.cli; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    )
    forbidden = [
        m
        for m in loaded
        if m.split(".")[0] in ("boto3", "botocore")
        or m.startswith(("mlbuild.lineage", "mlbuild.publish", "mlbuild.sagemaker"))
    ]
    assert forbidden == []
    assert {"mlbuild.serving.front", "mlbuild.serving.workers"} <= set(loaded) and "gunicorn" not in loaded


@pytest.mark.parametrize("omp, expected", [(None, {1}), ("2", {2})])
def test_each_worker_runs_one_openmp_thread_unless_omp_num_threads_is_set(omp: str, expected: set) -> None:
    code = (
        "import json, os; import sklearn.ensemble; from threadpoolctl import threadpool_info;"
        "from mlbuild.serving.server import limit_native_threads; limit_native_threads(os.environ);"
        "print(json.dumps(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'openmp'})))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(
        {"PYTHONPATH": os.pathsep.join(sys.path), "LOKY_MAX_CPU_COUNT": "4"},
        **({"OMP_NUM_THREADS": omp} if omp else {}),
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert set(json.loads(out)) == expected
