"""Iris species classifier: a small random forest on the four flower measurements."""

from __future__ import annotations

import csv

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABEL = "species"


def _read_channel(folder):
    with (folder / "iris.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in FEATURES] for r in rows])
    y = np.array([r[LABEL] for r in rows])
    return x, y


def load(ctx):
    return {name: _read_channel(ctx.channels[name]) for name in ("train", "validation")}


def train(ctx, features):
    hp = ctx.hyperparameters
    x, y = features["train"]
    model = RandomForestClassifier(
        n_estimators=hp["n_estimators"],
        max_depth=hp["max_depth"],
        random_state=hp["seed"],
    )
    model.fit(x, y)
    ctx.log.info("trained %d trees on %d rows", hp["n_estimators"], len(y))
    return model


def evaluate(ctx, model, features):
    x, y = features["validation"]
    predicted = model.predict(x)
    return {
        "validation:accuracy": float(accuracy_score(y, predicted)),
        "validation:macro_f1": float(f1_score(y, predicted, average="macro")),
    }
