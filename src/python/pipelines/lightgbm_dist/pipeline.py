"""LightGBM trained data-parallel across hosts: each host reads its share of the train files.

With one host it is plain LightGBM. With `instance_count: 2` (SageMaker, or the local
multi-host runner) every host loads only its `ShardedByS3Key` share of `train`, and LightGBM's
own socket collective (`tree_learner=data`) sums the hosts' histograms, so they grow the same
trees as one machine holding all the rows would (up to how the feature bins are chosen). No
collective of mlbuild's own: the hosts find each other through `ctx.hosts` (SageMaker's
resourceconfig.json) and the host names resolve, on SageMaker and locally.

Checkpoints: every `checkpoint_every` rounds each host saves the model so far to
`ctx.checkpoints_dir` (synced to `checkpoint_s3_uri` on SageMaker, kept per job locally). A
restarted job (a spot interruption, a kill) resumes from the newest round that *every* host
saved, so the hosts' collective starts in step; LightGBM continues from that model
(`init_model`) and grows exactly the trees an uninterrupted run would (the saved model text
differs only in its `[num_iterations: N]` line, the rounds of the last call).

Ports: LightGBM listens on every address of its host, and local hosts share one port space,
so host i listens on `base_port + i` (harmless on SageMaker, where each host is its own machine).
"""

from __future__ import annotations

import csv
import socket
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from mlbuild.runtime import checkpoints

LABEL = "label"


@dataclass(frozen=True)
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    train_files: tuple[str, ...]


def _read(directory: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    files = sorted(directory.rglob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv files in {directory}")
    rows: list[list[float]] = []
    header: list[str] = []
    for path in files:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows.extend([float(v) for v in row] for row in reader)
    table = np.array(rows, dtype=np.float64)
    label = header.index(LABEL)
    return np.delete(table, label, axis=1), table[:, label].astype(int), tuple(p.name for p in files)


def load(ctx):
    x_train, y_train, files = _read(ctx.channels["train"])
    x_valid, y_valid, _ = _read(ctx.channels["validation"])
    ctx.log.info("%s: %d train rows from %s", ctx.current_host, len(y_train), ", ".join(files))
    return Data(x_train, y_train, x_valid, y_valid, files)


def network_params(ctx) -> dict:
    """LightGBM's socket collective over the job's hosts (nothing with one host)."""
    if len(ctx.hosts) == 1:
        return {}
    port = ctx.hp["base_port"]
    machines = ",".join(f"{socket.gethostbyname(host)}:{port + i}" for i, host in enumerate(ctx.hosts))
    return {
        "tree_learner": "data",
        "num_machines": len(ctx.hosts),
        "machines": machines,
        "local_listen_port": port + ctx.hosts.index(ctx.current_host),
        "pre_partition": True,  # NB: each host already holds only its share
        "time_out": ctx.hp["network_timeout_minutes"],
    }


def train(ctx, data: Data):
    params = {
        "objective": "binary",
        "learning_rate": ctx.hp["learning_rate"],
        "num_leaves": ctx.hp["num_leaves"],
        "min_data_in_leaf": ctx.hp["min_data_in_leaf"],
        "num_threads": ctx.hp["num_threads"],
        "seed": ctx.hp["seed"],
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
        **network_params(ctx),
    }
    dataset = lgb.Dataset(data.x_train, data.y_train, params={"max_bin": ctx.hp["max_bin"]})
    start, init_model = resume_point(ctx)
    total = ctx.hp["num_boost_round"]
    if start >= total:
        ctx.log.info("resuming at round %d of %d: nothing left to train", start, total)
        return init_model
    ctx.log.info("training rounds %d to %d%s", start + 1, total, f" (resumed from round {start})" if start else "")
    return lgb.train(
        params, dataset, num_boost_round=total - start, init_model=init_model, callbacks=[_checkpoint_callback(ctx)]
    )


def resume_point(ctx) -> tuple[int, "lgb.Booster | None"]:
    """The newest round every host has a checkpoint of, and this host's model at that round."""
    saved = [{c.step: c for c in checkpoints.all_checkpoints(ctx.checkpoints_dir, host=host)} for host in ctx.hosts]
    common = set(saved[0]).intersection(*saved[1:])
    if not common:
        return 0, None
    step = max(common)
    mine = saved[ctx.hosts.index(ctx.current_host)][step]
    return step, lgb.Booster(model_str=mine.path.read_text())


def _checkpoint_callback(ctx):
    every = ctx.hp["checkpoint_every"]

    def save_checkpoint(env) -> None:
        done = env.iteration + 1  # NB: counts the init_model's rounds too
        if done % every == 0:
            text = env.model.model_to_string()
            checkpoints.save(ctx.checkpoints_dir, done, text.encode(), ".txt", host=ctx.current_host)
            checkpoints.prune(ctx.checkpoints_dir, keep=2, host=ctx.current_host)

    save_checkpoint.order = 100  # NB: after LightGBM's own callbacks
    return save_checkpoint


def evaluate(ctx, model, data: Data):
    p = model.predict(data.x_valid)
    return {
        "validation:auc": roc_auc_score(data.y_valid, p),
        "validation:log_loss": log_loss(data.y_valid, p),
        "validation:accuracy": accuracy_score(data.y_valid, p > 0.5),
        "train:rows_this_host": float(len(data.y_train)),
    }


def save(ctx, model):
    # NB: every host holds the same trees; SageMaker merges the hosts' /opt/ml/model, so the
    # leader alone writes the model.
    if ctx.is_leader:
        model.save_model(str(ctx.model_dir / "model.txt"))
