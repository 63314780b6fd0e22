"""MLP: a small PyTorch network (8 -> hidden -> 1) for a binary label, in the `torch` resolve.

Stages: load -> featurize -> train -> evaluate -> save (mlbuild.runtime.pipeline); serving:
load_model and predict (one probability of label 1 per record). Channels: `train` and
`validation`, CSV files with the columns `x0`..`x7` and `label`.

Trains full-batch with Adam on the GPU when `torch.cuda.is_available()` (and `device` is
`auto` or `cuda`), else on the CPU, in about a second. Deterministic: `torch.manual_seed(seed)`
and one CPU thread, so the same seed on the same machine gives the same weights and metrics
(on CUDA also deterministic algorithms and a fixed cuBLAS workspace). The model is saved as
a `state_dict` (`model.pt`, written with `torch.save`; the input standardisation travels in it
as buffers) plus `model.json` (the feature names and hidden size `load_model` rebuilds it from).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from mlbuild.runtime.pipeline import ModelFileError, RecordError

FEATURES = tuple(f"x{i}" for i in range(8))
LABEL = "label"
MODEL_FILE = "model.pt"
SPEC_FILE = "model.json"
# NB: one intra-op thread: a full batch of 2,000 x 8 gains nothing from more, and the sums
# then run in one fixed order (the same bits run to run).
CPU_THREADS = 1


@dataclass(frozen=True)
class Features:
    x_train: np.ndarray  # float32, (rows, 8)
    y_train: np.ndarray  # float32, 0/1
    x_valid: np.ndarray
    y_valid: np.ndarray


class MLP(nn.Module):
    """Standardise, one ReLU hidden layer, one logit. `mean` and `scale` are buffers: saved with
    the weights, so serving standardises exactly as training did."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.scale).squeeze(-1)


def _read_channel(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(Path(directory).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv files in {directory}")
    x, y = [], []
    for path in files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                x.append([float(row[c]) for c in FEATURES])
                y.append(float(row[LABEL]))
    return np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)


def load(ctx):
    return {name: _read_channel(ctx.channels[name]) for name in ("train", "validation")}


def featurize(ctx, raw):
    (x_train, y_train), (x_valid, y_valid) = raw["train"], raw["validation"]
    ctx.log.info(
        "features: %d columns, %d train rows, %d validation rows", x_train.shape[1], len(y_train), len(y_valid)
    )
    return Features(x_train, y_train, x_valid, y_valid)


def _device(ctx) -> torch.device:
    wanted = ctx.hyperparameters.get("device", "auto")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device=cuda, but torch.cuda.is_available() is False. Fix: train with device=auto or device=cpu."
        )
    if wanted != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _deterministic(device: torch.device) -> None:
    torch.set_num_threads(CPU_THREADS)
    if device.type == "cuda":
        # NB: cuBLAS is deterministic only with a fixed workspace, read when its handle is made
        # (before the first CUDA matmul). Deterministic algorithms only on CUDA: on the CPU
        # every op here (linear, ReLU, BCE, Adam) already is, with one thread, and
        # use_deterministic_algorithms costs ~1.5 s there (it imports torch._inductor).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def train(ctx, features):
    hp = ctx.hyperparameters
    device = _device(ctx)
    _deterministic(device)
    if device.type == "cuda":
        ctx.log.info("device: cuda (%s)", torch.cuda.get_device_name(device))
    else:
        ctx.log.info("device: cpu (%d thread)", torch.get_num_threads())
    # NB: seeds the CPU and every CUDA generator; the initial weights are drawn on the CPU, so
    # they are the same whichever device trains.
    torch.manual_seed(hp["seed"])
    model = MLP(features.x_train.shape[1], hp["hidden"])
    x_np = features.x_train
    model.mean.copy_(torch.from_numpy(x_np.mean(axis=0)))
    model.scale.copy_(torch.from_numpy(np.maximum(x_np.std(axis=0), 1e-6)))
    model.to(device)
    x = torch.from_numpy(features.x_train).to(device)
    y = torch.from_numpy(features.y_train).to(device)
    # NB: the first torch.optim optimizer imports torch._dynamo (1.5-6 s, more than the 300
    # epochs take on the CPU); the log's "epoch 1" line comes after it.
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["learning_rate"])
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for epoch in range(1, hp["epochs"] + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if epoch == 1 and device.type == "cuda":
            torch.cuda.synchronize(device)
            ctx.log.info(
                "cuda: first step done on %s (loss %.4f, %.1f MiB allocated)",
                torch.cuda.get_device_name(device),
                loss.item(),
                torch.cuda.memory_allocated(device) / 2**20,
            )
        if epoch == 1 or epoch % 100 == 0 or epoch == hp["epochs"]:
            ctx.log.info("epoch %d/%d: train loss %.4f", epoch, hp["epochs"], loss.item())
    model.eval()
    # NB: the CPU copy is what is evaluated, saved and served, on any machine.
    return model.to("cpu")


def probabilities(model: MLP, x: np.ndarray) -> np.ndarray:
    """P(label = 1) for each row of `x` (float64)."""
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return torch.sigmoid(logits.double()).numpy()


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U over ranks; tied scores share their mean rank)."""
    y = np.asarray(y) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes in the validation labels")
    _, inverse, counts = np.unique(np.asarray(p), return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based
    ranks = mean_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def evaluate(ctx, model, features):
    p = probabilities(model, features.x_valid)
    y = features.y_valid
    return {
        "validation:auc": auc(y, p),
        "validation:accuracy": float(np.mean((p >= 0.5) == (y > 0.5))),
        "validation:log_loss": log_loss(y, p),
        "train:log_loss": log_loss(features.y_train, probabilities(model, features.x_train)),
        "train:rows": float(len(features.y_train)),
    }


def save(ctx, model):
    torch.save(model.state_dict(), ctx.model_dir / MODEL_FILE)
    spec = {"features": list(FEATURES), "hidden": model.net[0].out_features}
    (ctx.model_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")


def load_model(ctx, model_dir):
    model_dir = Path(model_dir)
    missing = [name for name in (MODEL_FILE, SPEC_FILE) if not (model_dir / name).is_file()]
    if missing:
        raise ModelFileError(
            f"{model_dir}: no {' or '.join(missing)}: not a model this pipeline's save() wrote. "
            f"Fix: serve the model folder of a finished mlp training run (its model/ or an unpacked model.tar.gz)."
        )
    spec = json.loads((model_dir / SPEC_FILE).read_text())
    model = MLP(len(spec["features"]), int(spec["hidden"]))
    model.load_state_dict(torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True))
    model.eval()
    return model


def _row(values: Any, number: int) -> list:
    if isinstance(values, Mapping):
        missing = [c for c in FEATURES if c not in values]
        if missing:
            raise RecordError(f"record {number} lacks {', '.join(missing)} (the columns: {', '.join(FEATURES)}).")
        values = [values[c] for c in FEATURES]
    elif isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise RecordError(
            f"record {number} is a {type(values).__name__}; send a row of {len(FEATURES)} numbers or an object."
        )
    elif len(values) != len(FEATURES):
        raise RecordError(
            f"record {number} has {len(values)} columns; expected {len(FEATURES)}: {','.join(FEATURES)} "
            f"(the data's columns without {LABEL})."
        )
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise RecordError(f"record {number}: every column must be a number, got {list(values)!r}.") from None


def predict(ctx, model, records):
    rows = [_row(values, number) for number, values in enumerate(records, 1)]
    if not rows:
        return []
    return probabilities(model, np.asarray(rows, dtype=np.float32))
