"""`serve` of a REAL image (the committed Debian base + mlbuild's serving code) in the bwrap sandbox.

The image's `serve` is a launcher like `train`'s, ending in mlbuild.serving.cli.main; its
pipeline is a tiny pure-Python one (the image has no numpy), so the image stays small. The
predictions over HTTP must equal the pipeline's `predict` called in-process on the host.
Skips where bwrap cannot run or the base's .debs cannot be fetched (container_run.testing).
"""

from __future__ import annotations

import importlib
import json
import pickle
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from mlbuild.container_run.bwrap_probe import check_bwrap
from mlbuild.container_run.serve import serve_image
from mlbuild.container_run.testing import base_layer_entries, real_train_image, write_image
from mlbuild.oci.layer import LayerEntry, entries_from_directory, with_bytecode
from mlbuild.oci.layout import read_layout
from mlbuild.oci.unpack import unpack_image
from mlbuild.runtime.pipeline import load_pipeline
from mlbuild.serving.predictor import Predictor
from mlbuild.serving.testing import REPO_SRC

PIPELINE_PY = """\
def load(ctx):
    return None

def train(ctx, features):
    return {"scale": ctx.hp["scale"]}

def evaluate(ctx, model, features):
    return {"scale": model["scale"]}

def predict(ctx, model, records):
    if records and records[0][0] == "kill":  # NB: a worker dying mid-request (the fault test)
        import os
        os.kill(os.getpid(), 9)
    return [round(model["scale"] * sum(float(v) for v in row), 6) for row in records]
"""
PIPELINE_YAML = "hyperparameters:\n  scale: 2.5\nchannels:\n  train: {}\n"
ENV = {
    "MLBUILD_PIPELINE_MODULE": "sbxpipe.pipeline",
    "MLBUILD_PIPELINE_CONFIG": "pipeline.yaml",
    "MLBUILD_PIPELINE_ADDRESS": "src/python/sbxpipe:train",
    "PYTHONDONTWRITEBYTECODE": "1",
}
SERVE = """\
#!/usr/bin/python3.11
import sys
sys.path[:0] = ["/opt/mlbuild/app", "/opt/mlbuild/deps"]
from mlbuild.serving.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _package(module: object) -> Path:
    return Path(module.__file__).parent  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("pipeline")
    (root / "sbxpipe").mkdir()
    (root / "sbxpipe" / "__init__.py").write_text("")
    (root / "sbxpipe" / "pipeline.py").write_text(PIPELINE_PY)
    (root / "sbxpipe" / "pipeline.yaml").write_text(PIPELINE_YAML)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m.split(".")[0] == "sbxpipe"]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, pipeline_dir: Path) -> Path:
    work = tmp_path_factory.mktemp("image")
    real_train_image(work)  # NB: the skips, and the committed Debian base's rootfs in work/base-rootfs
    app = [
        *entries_from_directory(REPO_SRC / "mlbuild", "/opt/mlbuild/app/mlbuild"),
        *entries_from_directory(pipeline_dir / "sbxpipe", "/opt/mlbuild/app/sbxpipe"),
        *entries_from_directory(_package(yaml), "/opt/mlbuild/deps/yaml"),
        LayerEntry.file("/usr/local/bin/serve", SERVE.encode(), 0o755),
    ]
    # NB: compiled as the image's app and dependency layers are (with_bytecode drops the host's pycs).
    app = with_bytecode(app, sys.implementation.cache_tag)
    write_image(
        work / "serve-layout",
        work / "blobs",
        [base_layer_entries(work / "base-rootfs"), app],
        env=ENV,
        workdir="/opt/program",
    )
    return work / "serve-layout"


def post(url: str, body: bytes, content_type: str) -> tuple:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_image_serves_in_the_sandbox_and_answers_like_predict_in_process(
    layout: Path, pipeline_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(pickle.dumps({"scale": 2.5}, protocol=5))
    records = [["1", "2", "3"], ["0.5", "-1", "10"]]
    pipeline = load_pipeline("sbxpipe.pipeline", "pipeline.yaml", ENV["MLBUILD_PIPELINE_ADDRESS"])
    expected = Predictor.load(pipeline, tmp_path, model_dir).predict(records)
    log = tmp_path / "serve.log"
    with serve_image(layout, None, model_dir, workers=2, cache_dir=tmp_path / "cache", log_path=log) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/ping", timeout=10) as ping:
            assert ping.status == 200
        status, body = post(url, b"1,2,3\n0.5,-1,10\n", "text/csv")
        assert (status, [float(x) for x in body.decode().splitlines()]) == (200, expected), log.read_text()
        status, body = post(url, json.dumps(records).encode(), "application/json")
        assert (status, json.loads(body)) == (200, {"predictions": expected})
        assert post(url, b"1,2\n3\n", "text/csv")[0] == 400
    assert "serving on http://127.0.0.1:" in log.read_text() and "(2 workers," in log.read_text()


# NB: what `train` and `serve` import before the pipeline's own code (the runtime and serving
# modules an image's app layer holds, the server's front and workers), with the launchers' path.
IMPORTS = """
import sys
sys.path[:0] = ["/opt/mlbuild/app", "/opt/mlbuild/deps"]
import mlbuild.runtime.cli, mlbuild.runtime.train, mlbuild.runtime.local_run
import mlbuild.serving.cli, mlbuild.serving.server, mlbuild.serving.local_server, mlbuild.serving.model_source
import mlbuild.serving.front, mlbuild.serving.workers
"""


def test_a_fresh_container_compiles_no_module_to_start_train_or_serve(layout: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    unpack_image(read_layout(layout, None), rootfs)
    sandbox = [
        check_bwrap(),
        "--ro-bind",
        str(rootfs),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--unshare-all",
        "--clearenv",
    ]
    done = subprocess.run(
        [*sandbox, "/usr/bin/python3.11", "-I", "-v", "-c", IMPORTS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, "\n".join(
        line for line in done.stderr.splitlines() if not line.startswith(("#", "import "))
    )
    loaded = [
        line[len("# code object from ") :].strip("'")
        for line in done.stderr.splitlines()
        if line.startswith("# code object from ")
    ]
    # Python says where each module's code came from: a .py means it compiled it, on every start.
    assert [path for path in loaded if not path.endswith(".pyc")] == []
    assert "could not create" not in done.stderr
    for module in (
        "/usr/lib/python3.11/json/__pycache__/decoder",
        "/opt/mlbuild/app/mlbuild/serving/__pycache__/server",
        "/opt/mlbuild/deps/yaml/__pycache__/__init__",
    ):
        assert f"{module}.{sys.implementation.cache_tag}.pyc" in loaded, module


def test_in_the_sandbox_slow_clients_do_not_stop_ping_and_a_killed_worker_fails_only_its_request(
    layout: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(pickle.dumps({"scale": 2.5}, protocol=5))
    log = tmp_path / "serve.log"
    with serve_image(layout, None, model_dir, workers=2, cache_dir=tmp_path / "cache", log_path=log) as url:
        host, port = url.rsplit("/", 1)[-1].split(":")
        slow = [
            socket.create_connection((host, int(port))) for _ in range(8)
        ]  # NB: 4 x workers, headers never finished
        for sock in slow:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
        took = []
        for _ in range(10):
            start = time.perf_counter()
            with urllib.request.urlopen(f"{url}/ping", timeout=10) as ping:
                assert ping.status == 200
            took.append(time.perf_counter() - start)
        assert max(took) < 2 and sorted(took)[5] < 0.1, took
        status, body = post(url, b"kill\n", "text/csv")
        assert status == 502 and b"killed by signal 9" in body, log.read_text()
        assert post(url, b"1,2,3\n", "text/csv") == (200, b"15.0\n")
        for sock in slow:
            sock.close()
