"""Training: the one code path shared by `pants run`, the container's `train` and SageMaker.

`run_training(base_dir, pipeline)` reads the SageMaker-style tree under `base_dir`
(`/opt/ml` in a container, the run directory locally), runs the pipeline's stages and
writes the model and metrics, keeping the run's log in `output/train.log`. On any error it
writes `output/failure` (and the traceback to the log) and re-raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, TextIO

from mlbuild.runtime import hyperparameters, metrics, resources, toolkit_env
from mlbuild.runtime.contract import HYPERPARAMETERS_FILE, LOG_FILE, TrainingEnvironment, write_failure
from mlbuild.runtime.errors import MLBuildError, PipelineError
from mlbuild.runtime.pipeline import Pipeline, ReadOnlyHyperparameters, StageContext, default_save, user_frame

log = logging.getLogger("mlbuild")


def _seed_everything(hp: Dict[str, Any]) -> None:
    seed = hp.get("seed")
    if isinstance(seed, int):
        random.seed(seed)
        try:
            import numpy

            numpy.random.seed(seed % 2**32)
        except ImportError:
            pass


def _call_stage(pipeline: Pipeline, name: str, fn: Callable[..., Any], *args: Any) -> Any:
    started = time.monotonic()
    log.info("stage %s: started", name)
    try:
        result = fn(*args)
    except MLBuildError:
        raise
    except Exception as e:
        where = _user_frame(pipeline, e)
        raise PipelineError(f"pipeline {pipeline.address}: stage {name}() raised {type(e).__name__}: {e}{where}") from e
    log.info("stage %s: done in %.2fs", name, time.monotonic() - started)
    return result


def _user_frame(pipeline: Pipeline, e: BaseException) -> str:
    """` (at <repo path>:<line> in <function>)`: the user's own line, even when a library raised.

    The innermost frame in the pipeline's package is the line the user wrote (the call into
    scikit-learn, say); where the exception came from deeper down is added after it.
    """
    names = pipeline.names
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/mlbuild/runtime/" not in f.filename]
    mine = user_frame(e, names)
    if mine is None:
        return f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    where = f" (at {names.name(mine.filename)}:{mine.lineno} in {mine.name}"
    innermost = frames[-1] if frames else mine
    if (innermost.filename, innermost.lineno) != (mine.filename, mine.lineno):
        where += f"; raised in {names.name(innermost.filename)}:{innermost.lineno} in {innermost.name}"
    return where + ")"


def quiet_missing_tools() -> None:
    # NB: joblib (scikit-learn's parallelism) shells out to `cat`/`lscpu` to count physical
    # cores and warns when the image has no such tools (mlbuild's base has no shell). The
    # logical count is what it falls back to anyway; saying so up front keeps the log clean
    # and still scales with the instance type.
    os.environ.setdefault("LOKY_MAX_CPU_COUNT", str(os.cpu_count() or 1))


class _Tee:
    """A console stream that also writes to the run's log file (print() and warnings land in both)."""

    def __init__(self, console: Any, file: TextIO) -> None:
        self._console, self._file = console, file

    def write(self, text: str) -> int:
        written = self._console.write(text)
        try:
            self._file.write(text)
        except (OSError, ValueError):  # NB: a full disk must not fail the training
            pass
        return written

    def flush(self) -> None:
        self._console.flush()
        try:
            self._file.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, buffer: the console's
        return getattr(self._console, name)


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[Optional[TextIO]]:
    """Keep the run's log in `path` as well as on the console: mlbuild's and the pipeline's
    log records, and whatever the stages print (stdout and stderr)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file: TextIO = open(path, "a", encoding="utf-8", errors="replace")
    except OSError as e:
        log.warning("cannot write the run log %s: %s", path, e)
        yield None
        return
    handler = logging.StreamHandler(file)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    level = log.level
    if log.getEffectiveLevel() > logging.INFO:  # NB: the log file always has the stages' progress
        log.setLevel(logging.INFO)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(stdout, file), _Tee(stderr, file)
    try:
        yield file
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        log.setLevel(level)
        root.removeHandler(handler)
        file.close()


def _log_failure(file: Optional[TextIO], e: BaseException) -> None:
    """The error and its full traceback go to the log file only (the console gets the message)."""
    if file is None:
        return
    try:
        file.write(f"mlbuild: training failed: {e}\n")
        file.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
        file.flush()
    except (OSError, ValueError):
        pass


def run_training(base_dir: Path, pipeline: Pipeline) -> Dict[str, float]:
    """Train once; return the metrics. Writes `output/failure` and raises on error.

    The run's log is kept in `output/train.log` (alongside the console).
    """
    with run_log(Path(base_dir) / LOG_FILE) as log_file:
        try:
            return _train(base_dir, pipeline)
        except MLBuildError as e:
            _log_failure(log_file, e)
            write_failure(base_dir, str(e))
            raise
        except Exception as e:  # NB: anything else is mlbuild's bug, reported as such.
            _log_failure(log_file, e)
            write_failure(base_dir, f"mlbuild internal error: {type(e).__name__}: {e}")
            raise


def _train(base_dir: Path, pipeline: Pipeline) -> Dict[str, float]:
    env = TrainingEnvironment.load(base_dir)
    hp = hyperparameters.decode(pipeline.config, env.hyperparameters, str(base_dir / HYPERPARAMETERS_FILE))
    log.info("pipeline %s, hyperparameters %s", pipeline.address, hp)
    _seed_everything(hp)
    for path in (env.model_dir, env.checkpoints_dir, env.output_data_dir):
        path.mkdir(parents=True, exist_ok=True)
    cpus, gpus = resources.num_cpus(), resources.num_gpus()
    toolkit_env.export(toolkit_env.toolkit_environment(env, hp, cpus, gpus), os.environ)
    if len(env.hosts) > 1:
        log.info(
            "host %s of %s (%s), %d CPUs, %d GPUs",
            env.current_host,
            ",".join(env.hosts),
            "leader" if env.is_leader else "worker",
            cpus,
            gpus,
        )
    ctx = StageContext(
        ReadOnlyHyperparameters(hp),
        env.channels(),
        env.model_dir,
        env.checkpoints_dir,
        env.output_data_dir,
        log,
        hosts=tuple(env.hosts),
        current_host=env.current_host,
        num_cpus=cpus,
        num_gpus=gpus,
        network_interface=env.network_interface,
    )
    # NB: load_pipeline checked that the module defines the required stages.
    raw = _call_stage(pipeline, "load", pipeline.module.load, ctx)
    featurize = pipeline.stage("featurize")
    features = _call_stage(pipeline, "featurize", featurize, ctx, raw) if featurize else raw
    model = _call_stage(pipeline, "train", pipeline.module.train, ctx, features)
    scores = _call_stage(pipeline, "evaluate", pipeline.module.evaluate, ctx, model, features)
    scores = metrics.validate(scores, f"pipeline {pipeline.address}")
    _call_stage(pipeline, "save", pipeline.stage("save") or default_save, ctx, model)
    metrics.emit(scores, env.metrics_file)
    return scores


LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format=LOG_FORMAT)
