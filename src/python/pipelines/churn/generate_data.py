"""Generate the churn pipeline's sample data, deterministically.

    ./pants run src/python/pipelines/churn/generate_data.py -- [--seed 7] [--rows 5000]

Writes `data/train/churn.csv` (80%) and `data/validation/churn.csv` (20%) beside this
file. The rows imitate a telecom subscriber table: churn is more likely on month-to-month
contracts, short tenure, high charges, many support calls, fibre and electronic checks.
The same seed always writes the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

CONTRACTS = ("month-to-month", "one-year", "two-year")
INTERNET = ("dsl", "fiber", "none")
PAYMENT = ("bank-transfer", "credit-card", "electronic-check", "mailed-check")
COLUMNS = (
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
    "churned",
)


def generate(rows: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(rows):
        contract = CONTRACTS[rng.choice(3, p=[0.55, 0.25, 0.20])]
        tenure = int(rng.integers(1, 73) if contract != "month-to-month" else rng.integers(0, 49))
        internet = INTERNET[rng.choice(3, p=[0.35, 0.45, 0.20])]
        base = {"dsl": 55.0, "fiber": 85.0, "none": 22.0}[internet]
        monthly = round(float(np.clip(base + rng.normal(0, 12), 18.0, 120.0)), 2)
        total = round(monthly * tenure * float(rng.uniform(0.95, 1.05)), 2)
        support_calls = int(rng.poisson(1.2 + (0.8 if internet == "fiber" else 0.0)))
        paperless = int(rng.random() < 0.6)
        payment = PAYMENT[rng.choice(4, p=[0.22, 0.22, 0.34, 0.22])]
        senior = int(rng.random() < 0.16)
        logit = (
            -1.2
            + {"month-to-month": 1.5, "one-year": -0.3, "two-year": -1.4}[contract]
            - 0.035 * tenure
            + 0.02 * (monthly - 65.0)
            + 0.38 * support_calls
            + (0.45 if internet == "fiber" else 0.0)
            + (0.5 if payment == "electronic-check" else 0.0)
            + 0.3 * senior
            + 0.15 * paperless
            + rng.normal(0, 0.6)
        )
        churned = int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
        records.append(
            {
                "customer_id": f"C{seed:02d}{i:05d}",
                "tenure_months": tenure,
                "contract": contract,
                "monthly_charges": f"{monthly:.2f}",
                "total_charges": f"{total:.2f}",
                "internet_service": internet,
                "support_calls": support_calls,
                "paperless_billing": paperless,
                "payment_method": payment,
                "senior_citizen": senior,
                "churned": churned,
            }
        )
    return records


def write_csv(path: Path, records: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    records = generate(args.rows, args.seed)
    cut = int(len(records) * 0.8)
    write_csv(args.out / "train" / "churn.csv", records[:cut])
    write_csv(args.out / "validation" / "churn.csv", records[cut:])


if __name__ == "__main__":
    main()
