"""Generate the mlp pipeline's sample data, deterministically (numpy only).

    ./pants run src/python/pipelines/mlp/generate_data.py -- [--seed 11] [--rows 2500]

Writes `data/train/mlp.csv` (the first 80%: 2,000 rows) and `data/validation/mlp.csv` (the
rest: 500 rows) beside this file: 8 numeric features `x0`..`x7` and a binary `label`. The
label's log-odds mix linear terms with an interaction, a square and a sine, so a small
hidden layer beats a linear model. The same seed always writes the same bytes.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

FEATURES = tuple(f"x{i}" for i in range(8))
LABEL = "label"
COLUMNS = (*FEATURES, LABEL)


def generate(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` feature rows (float64, 8 columns) and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    # NB: features on different scales and offsets, as raw columns are; the pipeline standardises.
    scale = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 10.0, 1.0])
    offset = np.array([0.0, 1.0, -0.5, 2.0, 0.0, 0.0, 50.0, -1.0])
    z = rng.standard_normal((rows, len(FEATURES)))
    x = z * scale + offset
    logit = (
        0.3
        + 1.2 * z[:, 0]
        - 0.9 * z[:, 1]
        + 1.5 * z[:, 2] * z[:, 3]
        - 0.8 * (z[:, 4] ** 2 - 1.0)
        + 1.1 * np.sin(2.0 * z[:, 5])
        + 0.4 * z[:, 6]
        # x7 is noise: the label does not depend on it.
        + rng.normal(0.0, 0.5, rows)
    )
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return x, y


def write_csv(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for features, label in zip(x.tolist(), y.tolist()):
            writer.writerow([f"{v:.5f}" for v in features] + [label])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rows", type=int, default=2500)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    x, y = generate(args.rows, args.seed)
    cut = int(len(y) * 0.8)
    write_csv(args.out / "train" / "mlp.csv", x[:cut], y[:cut])
    write_csv(args.out / "validation" / "mlp.csv", x[cut:], y[cut:])
    print(f"wrote {cut} train and {len(y) - cut} validation rows under {args.out} (seed {args.seed})")


if __name__ == "__main__":
    main()
