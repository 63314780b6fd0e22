"""The mlp pipeline on a slice of its committed sample data: deterministic, and serving probabilities."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest  # pants: no-infer-dep (Pants runs the tests with its own pytest; the torch resolve has none)
import torch

from mlbuild.runtime.pipeline import ModelFileError, ReadOnlyHyperparameters, RecordError, StageContext
from pipelines.mlp import pipeline

DATA = Path(pipeline.__file__).parent / "data"
HP = {"epochs": 40, "hidden": 16, "learning_rate": 0.02, "device": "cpu", "seed": 3}


def _slice(source: Path, target: Path, rows: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, newline="") as f:
        lines = list(csv.reader(f))[: rows + 1]
    with open(target, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(lines)


@pytest.fixture(scope="module")
def channels(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("data")
    _slice(DATA / "train/mlp.csv", root / "train/mlp.csv", 400)
    _slice(DATA / "validation/mlp.csv", root / "validation/mlp.csv", 200)
    return {"train": root / "train", "validation": root / "validation"}


def _context(tmp_path: Path, channels: dict, **hp) -> StageContext:
    model_dir = tmp_path / "model"
    model_dir.mkdir(parents=True)
    return StageContext(
        ReadOnlyHyperparameters({**HP, **hp}),
        channels,
        model_dir,
        tmp_path / "checkpoints",
        tmp_path / "out",
        logging.getLogger("test"),
    )


def _run(tmp_path: Path, channels: dict, **hp):
    ctx = _context(tmp_path, channels, **hp)
    features = pipeline.featurize(ctx, pipeline.load(ctx))
    model = pipeline.train(ctx, features)
    metrics = pipeline.evaluate(ctx, model, features)
    pipeline.save(ctx, model)
    return ctx, model, metrics


def test_the_same_seed_trains_the_same_bytes_and_metrics(tmp_path: Path, channels, caplog) -> None:
    caplog.set_level(logging.INFO)
    ctx_a, model_a, metrics_a = _run(tmp_path / "a", channels)
    assert "device: cpu" in caplog.text
    ctx_b, model_b, metrics_b = _run(tmp_path / "b", channels)
    assert metrics_a == metrics_b
    assert (ctx_a.model_dir / "model.pt").read_bytes() == (ctx_b.model_dir / "model.pt").read_bytes()
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    # It learned something, on 400 rows and 40 epochs.
    assert metrics_a["validation:auc"] > 0.7
    assert 0.0 < metrics_a["validation:log_loss"] < 0.7

    _, _, metrics_c = _run(tmp_path / "c", channels, seed=4)
    assert metrics_c != metrics_a


def test_predict_returns_one_probability_per_record(tmp_path: Path, channels) -> None:
    ctx, model, _ = _run(tmp_path, channels)
    served = pipeline.load_model(ctx, ctx.model_dir)
    records: list[Any] = [
        ["0.5", "1", "-0.5", "2", "0", "0", "50", "-1"],
        [0.0] * 8,
        {f"x{i}": i for i in range(8)},
        [1e6] * 8,
    ]
    p = np.asarray(pipeline.predict(ctx, served, records))
    assert p.shape == (4,)
    assert np.all((p >= 0.0) & (p <= 1.0))
    # The loaded model answers exactly what the trained one does.
    x = np.array([[float(v) for v in r] for r in records[:2]], dtype=np.float32)
    assert np.array_equal(p[:2], pipeline.probabilities(model, x))
    assert pipeline.predict(ctx, served, []) == []


def test_predict_refuses_records_it_cannot_take(tmp_path: Path, channels) -> None:
    ctx, model, _ = _run(tmp_path, channels, epochs=1)
    with pytest.raises(RecordError, match="record 2 has 3 columns; expected 8"):
        pipeline.predict(ctx, model, [[0] * 8, [1, 2, 3]])
    with pytest.raises(RecordError, match="must be a number"):
        pipeline.predict(ctx, model, [["a"] * 8])
    with pytest.raises(RecordError, match="lacks x7"):
        pipeline.predict(ctx, model, [{f"x{i}": 0 for i in range(7)}])
    with pytest.raises(ModelFileError, match="model.pt"):
        pipeline.load_model(ctx, tmp_path / "nowhere")


def test_auc_counts_ties_as_half() -> None:
    y = np.array([0, 0, 1, 1])
    assert pipeline.auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert pipeline.auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert pipeline.auc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
