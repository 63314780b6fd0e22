"""Training: the one code path shared by `pants run`, the container's `train` and SageMaker.

`run_training(base_dir, pipeline)` reads the SageMaker-style tree under `base_dir`
(`/opt/ml` in a container, the run directory locally), runs the pipeline's stages and
writes the model and metrics. On any error it writes `output/failure` and re-raises.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict

from mlbuild.runtime import hyperparameters, metrics
from mlbuild.runtime.contract import HYPERPARAMETERS_FILE, TrainingEnvironment, write_failure
from mlbuild.runtime.errors import MLBuildError, PipelineError
from mlbuild.runtime.pipeline import Pipeline, StageContext, default_save

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
        where = _user_frame(e)
        raise PipelineError(f"pipeline {pipeline.address}: stage {name}() raised {type(e).__name__}: {e}{where}") from e
    log.info("stage %s: done in %.2fs", name, time.monotonic() - started)
    return result


def _user_frame(e: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/mlbuild/runtime/" not in f.filename]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def quiet_missing_tools() -> None:
    # NB: joblib (scikit-learn's parallelism) shells out to `cat`/`lscpu` to count physical
    # cores and warns when the image has no such tools (mlbuild's base has no shell). The
    # logical count is what it falls back to anyway; saying so up front keeps the log clean
    # and still scales with the instance type.
    os.environ.setdefault("LOKY_MAX_CPU_COUNT", str(os.cpu_count() or 1))


def run_training(base_dir: Path, pipeline: Pipeline) -> Dict[str, float]:
    """Train once; return the metrics. Writes `output/failure` and raises on error."""
    try:
        env = TrainingEnvironment.load(base_dir)
        hp = hyperparameters.decode(pipeline.config, env.hyperparameters, str(base_dir / HYPERPARAMETERS_FILE))
        log.info("pipeline %s, hyperparameters %s", pipeline.address, hp)
        _seed_everything(hp)
        for path in (env.model_dir, env.checkpoints_dir, env.output_data_dir):
            path.mkdir(parents=True, exist_ok=True)
        ctx = StageContext(hp, env.channels(), env.model_dir, env.checkpoints_dir, env.output_data_dir, log)
        raw = _call_stage(pipeline, "load", pipeline.stage("load"), ctx)
        featurize = pipeline.stage("featurize")
        features = _call_stage(pipeline, "featurize", featurize, ctx, raw) if featurize else raw
        model = _call_stage(pipeline, "train", pipeline.stage("train"), ctx, features)
        scores = _call_stage(pipeline, "evaluate", pipeline.stage("evaluate"), ctx, model, features)
        scores = metrics.validate(scores, f"pipeline {pipeline.address}")
        _call_stage(pipeline, "save", pipeline.stage("save") or default_save, ctx, model)
        metrics.emit(scores, env.metrics_file)
        return scores
    except MLBuildError as e:
        write_failure(base_dir, str(e))
        raise
    except Exception as e:  # NB: anything else is mlbuild's bug, reported as such.
        write_failure(base_dir, f"mlbuild internal error: {type(e).__name__}: {e}")
        raise


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
