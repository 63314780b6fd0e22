"""A pipeline's model, loaded once, and its `predict` stage called per request.

`Predictor.load` runs the pipeline's `load_model(ctx, model_dir)` (default: unpickle
`model.pkl`); `predict(records)` runs `predict(ctx, model, records)` (default: the model's
own `predict` on the records as floats) and checks it returned one prediction per record.

The serving `ctx` has the model folder, no channels, and the hyperparameters the model was
trained with when the base folder has them (a local run's `input/config/hyperparameters.json`),
else the config's defaults (a SageMaker endpoint has no training config): a `predict` that
needs a trained choice should read it from the model it saved.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List

from mlbuild.runtime import contract, hyperparameters
from mlbuild.runtime.errors import MLBuildError, PipelineError
from mlbuild.runtime.pipeline import (
    Pipeline,
    ReadOnlyHyperparameters,
    RecordError,
    StageContext,
    default_load_model,
    default_predict,
    user_frame,
)
from mlbuild.serving.content_types import plain

log = logging.getLogger("mlbuild.serving")


class PredictFailed(Exception):
    """`predict` raised (not a RecordError) or returned something unusable: a 500."""


def where(pipeline: Pipeline, e: BaseException) -> str:
    """` (at <repo path>:<line> in <function>)` of the pipeline's own innermost line, if any."""
    frame = user_frame(e, pipeline.names)
    return f" (at {pipeline.names.name(frame.filename)}:{frame.lineno} in {frame.name})" if frame else ""


def serving_context(pipeline: Pipeline, base_dir: Path, model_dir: Path) -> StageContext:
    encoded = base_dir / contract.HYPERPARAMETERS_FILE
    if encoded.is_file():
        values = hyperparameters.decode(
            pipeline.config, contract.TrainingEnvironment.load(base_dir).hyperparameters, str(encoded)
        )
    else:
        values = hyperparameters.resolve(pipeline.config, {}, str(encoded))
    return StageContext(
        ReadOnlyHyperparameters(values),
        {},
        model_dir,
        base_dir / contract.CHECKPOINTS_DIR,
        base_dir / contract.OUTPUT_DATA_DIR,
        logging.getLogger("mlbuild"),
    )


@dataclass(frozen=True)
class Predictor:
    pipeline: Pipeline
    ctx: StageContext
    model: Any

    @classmethod
    def load(cls, pipeline: Pipeline, base_dir: Path, model_dir: Path) -> "Predictor":
        """Load the model; a failure is the user's (exit 2) with the pipeline's line named."""
        ctx = serving_context(pipeline, Path(base_dir), Path(model_dir))
        load_model = pipeline.stage("load_model") or default_load_model
        try:
            model = load_model(ctx, Path(model_dir))
        except MLBuildError:
            raise
        except Exception as e:
            raise PipelineError(
                f"pipeline {pipeline.address}: stage load_model() raised {type(e).__name__}: {e}{where(pipeline, e)}. "
                f"Fix: serve the model folder its save() wrote, or correct load_model()."
            ) from e
        log.info(
            "model loaded from %s by %s",
            model_dir,
            "the pipeline's load_model" if pipeline.stage("load_model") else "the default load_model",
        )
        return cls(pipeline, ctx, model)

    def predict(self, records: List[Any]) -> List[Any]:
        """Plain predictions, one per record; RecordError for records the model refuses."""
        stage = self.pipeline.stage("predict") or default_predict
        try:
            result = stage(self.ctx, self.model, records)
        except RecordError:
            raise
        except Exception as e:
            log.error(
                "predict() failed on %d records:\n%s",
                len(records),
                "".join(traceback.format_exception(type(e), e, e.__traceback__)),
            )
            raise PredictFailed(
                f"stage predict() raised {type(e).__name__}{where(self.pipeline, e)}; see the server log"
            ) from e
        try:
            predictions = plain(result)
        except TypeError:
            raise PredictFailed(
                f"stage predict() returned a {type(result).__name__}, not a list or array of predictions"
            ) from None
        if len(predictions) != len(records):
            raise PredictFailed(f"stage predict() returned {len(predictions)} predictions for {len(records)} records")
        return predictions
