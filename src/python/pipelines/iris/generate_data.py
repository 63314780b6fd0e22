"""Write the iris sample data: data/train/iris.csv and data/validation/iris.csv.

Deterministic: uses scikit-learn's bundled copy of the iris data set (no download) and a fixed,
stratified split (every 5th flower of each species goes to validation), so re-running it writes
byte-identical files. 150 rows in total: 120 train, 30 validation.

    python3.11 src/python/pipelines/iris/generate_data.py
"""

from __future__ import annotations

import csv
from pathlib import Path

from sklearn.datasets import load_iris

HEADER = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
DATA_DIR = Path(__file__).resolve().parent / "data"


def main() -> None:
    iris = load_iris()
    rows: dict[str, list] = {"train": [], "validation": []}
    seen_per_class: dict[int, int] = {}
    for features, target in zip(iris.data.tolist(), iris.target.tolist()):
        n = seen_per_class.get(target, 0)
        seen_per_class[target] = n + 1
        channel = "validation" if n % 5 == 4 else "train"
        rows[channel].append([f"{v:.1f}" for v in features] + [iris.target_names[target]])
    for channel, channel_rows in rows.items():
        out = DATA_DIR / channel / "iris.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows(channel_rows)
        print(f"wrote {len(channel_rows)} rows to {out}")


if __name__ == "__main__":
    main()
