"""Helpers for this package's tests: a trained real pipeline, a tiny in-memory one, an in-thread server."""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mlbuild.runtime.config import parse_config
from mlbuild.runtime.local_run import finish_run, prepare_run
from mlbuild.runtime.pipeline import Pipeline, load_pipeline
from mlbuild.runtime.train import run_training

REPO_SRC = Path(__file__).resolve().parents[2]  # src/python
PIPELINES = {"churn": "pipelines.churn.pipeline", "iris": "pipelines.iris.pipeline"}
ADDRESSES = {"churn": "src/python/pipelines/churn:train", "iris": "src/python/pipelines/iris:train"}


def pipeline_environ(name: str) -> dict:
    """The environment the PEX and the image set for pipeline `name` (churn or iris)."""
    return {
        "MLBUILD_PIPELINE_MODULE": PIPELINES[name],
        "MLBUILD_PIPELINE_CONFIG": "pipeline.yaml",
        "MLBUILD_PIPELINE_ADDRESS": ADDRESSES[name],
    }


def train_real(name: str, runs_dir: Path) -> tuple[Pipeline, Path]:
    """Train pipeline `name` on its committed sample data; (pipeline, run dir with model/)."""
    pipeline = load_pipeline(PIPELINES[name], "pipeline.yaml", ADDRESSES[name])
    data_dir = REPO_SRC / "pipelines" / name / "data"
    staging = prepare_run(pipeline.config, pipeline.address, data_dir, runs_dir, {})
    run_training(staging, pipeline)
    return pipeline, finish_run(staging, succeeded=True)


class SumModel:
    """A scikit-learn-shaped model (n_features_in_, predict) with no dependency."""

    n_features_in_ = 3

    def predict(self, x: Any) -> Any:
        return x.sum(axis=1)


def fake_pipeline(**stages: Callable[..., Any]) -> Pipeline:
    """A pipeline module made in memory, with the given serving stages."""
    module = types.ModuleType("fakepipes.pipeline")
    for name, fn in stages.items():
        setattr(module, name, fn)
    config = parse_config("hyperparameters:\n  threshold: 0.5\nchannels:\n  train: {}\n", "fakepipes/pipeline.yaml")
    return Pipeline("src/python/fakepipes:train", module, config)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def thread_server(app: Callable[..., Any]) -> Iterator[str]:
    """The WSGI app on a stdlib server in a thread on 127.0.0.1 (a free port); stopped after."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


FAULT_PIPELINE_PY = '''\
import os, time

def load(ctx):
    return None

def train(ctx, features):
    return {}

def evaluate(ctx, model, features):
    return {}

def load_model(ctx, model_dir):
    """Raises when the model folder holds a file named `corrupt`."""
    if (model_dir / "corrupt").exists():
        raise ValueError(f"cannot unpickle {model_dir / 'corrupt'}: truncated")
    return {"scale": 2}

def predict(ctx, model, records):
    """Sums each row, doubled; a first column of hang, exit, kill or sleep,SECONDS misbehaves."""
    out = []
    for row in records:
        if row[0] == "hang":
            time.sleep(3600)
        elif row[0] == "exit":
            os._exit(3)
        elif row[0] == "kill":
            os.kill(os.getpid(), 9)
        elif row[0] == "sleep":
            time.sleep(float(row[1]))
            out.append(0.0)
            continue
        out.append(model["scale"] * sum(float(v) for v in row))
    return out
'''


def fault_pipeline(root: Path) -> dict:
    """Write `faultpipe` (a pipeline whose predict can hang, exit, be killed or sleep, and whose
    load_model raises for a model folder holding `corrupt`) under
    `root`; the environment (with PYTHONPATH) a `serve` child needs to load it."""
    import os

    package = root / "faultpipe"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "pipeline.py").write_text(FAULT_PIPELINE_PY)
    (package / "pipeline.yaml").write_text("hyperparameters: {}\nchannels:\n  train: {}\n")
    (root / "model").mkdir(exist_ok=True)
    return {
        **os.environ,
        "MLBUILD_PIPELINE_MODULE": "faultpipe.pipeline",
        "MLBUILD_PIPELINE_CONFIG": "pipeline.yaml",
        "MLBUILD_PIPELINE_ADDRESS": "src/python/faultpipe:train",
        "PYTHONPATH": str(root),
    }
