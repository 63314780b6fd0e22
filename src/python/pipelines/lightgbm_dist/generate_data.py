"""Writes the lightgbm_dist sample data: a synthetic binary task, the train split in 8 part files.

    ./pants run src/python/pipelines/lightgbm_dist/generate_data.py -- --seed 7

Deterministic for a seed. The train channel is 8 files so that `ShardedByS3Key` has objects
to split (each of 2 hosts gets 4); validation is one file every host reads whole.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

FEATURES = 8
PARTS = 8
ROWS_PER_PART = 500
VALIDATION_ROWS = 2000
HEADER = ",".join([*(f"x{i}" for i in range(FEATURES)), "label"])


def make_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, FEATURES))
    logit = 1.5 * x[:, 0] - 2.0 * x[:, 1] * x[:, 2] + np.sin(2 * x[:, 3]) + 0.5 * x[:, 4] ** 2 - 0.5
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return np.column_stack([np.round(x, 4), label])


def write(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = ["%.4f"] * FEATURES + ["%d"]
    np.savetxt(path, rows, delimiter=",", header=HEADER, comments="", fmt=fmt)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for part in range(PARTS):
        write(args.out / "train" / f"part-{part:03d}.csv", make_rows(rng, ROWS_PER_PART))
    write(args.out / "validation" / "validation.csv", make_rows(rng, VALIDATION_ROWS))


if __name__ == "__main__":
    main()
