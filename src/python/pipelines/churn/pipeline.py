"""Churn: predict which subscribers will cancel, with gradient-boosted trees.

The stages follow mlbuild's pipeline interface (see mlbuild.runtime.pipeline):
load -> featurize -> train -> evaluate -> save. Channels: `train` and `validation`
(the held-out split the metrics are computed on). Serving: `predict` takes rows of the
data's columns without the label (`RECORD_COLUMNS`, as SageMaker's transform sends the CSV)
and answers each subscriber's probability of churning; the default `load_model` reads it.
"""

from __future__ import annotations

import csv
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from mlbuild.runtime.pipeline import RecordError

NUMERIC = ("tenure_months", "monthly_charges", "total_charges", "support_calls", "paperless_billing", "senior_citizen")
CATEGORICAL = ("contract", "internet_service", "payment_method")
LABEL = "churned"
# The columns of a record to predict: the data's columns in file order, the label left out.
RECORD_COLUMNS = (
    "customer_id",
    "tenure_months",
    "contract",
    "monthly_charges",
    "total_charges",
    "internet_service",
    "support_calls",
    "paperless_billing",
    "payment_method",
    "senior_citizen",
)


@dataclass(frozen=True)
class Features:
    names: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray


def _read_channel(directory: Path) -> list[dict[str, str]]:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv files in {directory}")
    rows: list[dict[str, str]] = []
    for path in files:
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def load(ctx):
    return {name: _read_channel(ctx.channels[name]) for name in ("train", "validation")}


def _features(rows, categories):
    columns = [[float(row[c]) for row in rows] for c in NUMERIC]
    for column, values in categories.items():
        for value in values:
            columns.append([1.0 if row[column] == value else 0.0 for row in rows])
    return np.array(columns, dtype=np.float64).T


def _encode(rows, categories):
    return _features(rows, categories), np.array([int(row[LABEL]) for row in rows])


def featurize(ctx, raw):
    # NB: categories come from the training split only, sorted, so the encoding is stable.
    categories = {c: sorted({row[c] for row in raw["train"]}) for c in CATEGORICAL}
    names = (*NUMERIC, *(f"{c}={v}" for c, values in categories.items() for v in values))
    x_train, y_train = _encode(raw["train"], categories)
    x_valid, y_valid = _encode(raw["validation"], categories)
    ctx.log.info("features: %d columns, %d train rows, %d validation rows", len(names), len(y_train), len(y_valid))
    return Features(names, x_train, y_train, x_valid, y_valid)


def train(ctx, features):
    hp = ctx.hyperparameters
    model = HistGradientBoostingClassifier(
        learning_rate=hp["learning_rate"],
        max_iter=hp["max_iter"],
        max_depth=hp["max_depth"],
        min_samples_leaf=hp["min_samples_leaf"],
        l2_regularization=hp["l2_regularization"],
        early_stopping=False,
        random_state=hp["seed"],
    )
    model.fit(features.x_train, features.y_train)
    model.feature_names_ = list(features.names)
    return model


def evaluate(ctx, model, features):
    proba = model.predict_proba(features.x_valid)[:, 1]
    return {
        "validation:auc": roc_auc_score(features.y_valid, proba),
        "validation:accuracy": accuracy_score(features.y_valid, proba >= 0.5),
        "validation:log_loss": log_loss(features.y_valid, proba),
        "train:rows": float(len(features.y_train)),
    }


def save(ctx, model):
    with open(ctx.model_dir / "model.pkl", "wb") as f:
        pickle.dump(model, f, protocol=5)
    (ctx.model_dir / "features.json").write_text(json.dumps(model.feature_names_, indent=2) + "\n")


def _record(values, number):
    if isinstance(values, dict):
        missing = [c for c in RECORD_COLUMNS if c not in values]
        if missing:
            raise RecordError(f"record {number} lacks {', '.join(missing)}.")
        return values
    if len(values) != len(RECORD_COLUMNS):
        raise RecordError(
            f"record {number} has {len(values)} columns; expected {len(RECORD_COLUMNS)}: {','.join(RECORD_COLUMNS)} "
            f"(the data's columns without {LABEL})."
        )
    return dict(zip(RECORD_COLUMNS, values))


def predict(ctx, model, records):
    rows = [_record(values, number) for number, values in enumerate(records, 1)]
    # NB: the categories the model was trained on, from its feature names ("contract=two-year");
    # a value it never saw encodes as all zeros.
    categories = {c: [] for c in CATEGORICAL}
    for name in model.feature_names_[len(NUMERIC) :]:
        column, _, value = name.partition("=")
        categories[column].append(value)
    try:
        x = _features(rows, categories)
    except ValueError as e:
        raise RecordError(f"{e}: the columns {', '.join(NUMERIC)} must be numbers.") from None
    return model.predict_proba(x)[:, 1]
