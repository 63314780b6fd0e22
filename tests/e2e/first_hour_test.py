"""A newcomer's first hour, as the README's "First hour" walks it: a new pipeline folder,
its generator run through Pants, `tailor`, the first errors, then a trained model."""

from __future__ import annotations

import json
import time
from pathlib import Path

from e2e.repo import copy_repo, pants

CANCER = "src/python/pipelines/cancer"

GENERATOR = '''\
"""Write the sample data: scikit-learn's bundled breast-cancer table, split 80/20."""
import csv
from pathlib import Path

from sklearn.datasets import load_breast_cancer

data = load_breast_cancer()
out = Path(__file__).parent / "data"
for channel in ("train", "validation"):
    (out / channel).mkdir(parents=True, exist_ok=True)
rows = [[*map(float, x), int(y)] for x, y in zip(data.data, data.target)]
for channel, part in (("train", [r for i, r in enumerate(rows) if i % 5]), ("validation", rows[::5])):
    with open(out / channel / "rows.csv", "w", newline="") as f:
        csv.writer(f).writerows(part)
'''

PIPELINE = """\
import csv

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score


def _read(folder):
    with open(folder / "rows.csv", newline="") as f:
        rows = np.array([[float(v) for v in r] for r in csv.reader(f)])
    return rows[:, :-1], rows[:, -1]


def load(ctx):
    return {name: _read(ctx.channels[name]) for name in ("train", "validation")}


def train(ctx, features):
    x, y = features["train"]
    return LogisticRegression(C=ctx.hp["C"], max_iter=5000).fit(x, y)


def evaluate(ctx, model, features):
    x, y = features["validation"]
    return {"validation:accuracy": float(accuracy_score(y, model.predict(x)))}
"""

CONFIG = """\
hyperparameters:
  C: {type: float, default: 1.0, min: 0.0001}
metrics: [validation:accuracy]
channels:
  train: {s3: s3://example/cancer/train/}
  validation: {s3: s3://example/cancer/validation/}
sagemaker:
  role: arn:aws:iam::123456789012:role/Training
  instance_type: ml.m5.large
  output_path: s3://example/cancer/models/
  region: us-east-1
"""


def test_a_new_pipeline_from_the_readme(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    assert (repo / "bench").is_dir()  # NB: what a fresh clone has, as a user's tailor sees it
    started = time.time()
    folder = repo / CANCER
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "generate_data.py").write_text(GENERATOR)
    (folder / "pipeline.py").write_text(PIPELINE)
    (folder / "pipeline.yaml").write_text(CONFIG)

    # tailor writes the BUILD file, ml_pipeline target included (the repo's `files` target
    # that globs src/** must not hide the new config).
    tailor = pants(repo, "tailor", "::")
    assert tailor.exit_code == 0, tailor.stderr[-3000:]
    build = (folder / "BUILD").read_text()
    assert "ml_pipeline(" in build and 'name="train"' in build, build
    # Nothing outside the new folder: a fresh clone's bench/ once got a BUILD file, and then
    # every command failed with NoSourceRootError.
    assert sorted(
        p.parent.relative_to(repo).as_posix() for p in repo.rglob("BUILD") if p.stat().st_mtime > started
    ) == [CANCER]
    # ...and every command still works after it, as the README's next step shows.
    iris = pants(repo, "run", "src/python/pipelines/iris:train")
    assert iris.exit_code == 0, iris.stderr[-3000:]
    assert "validation:accuracy" in iris.stdout + iris.stderr, (iris.stdout + iris.stderr)[-3000:]
    # The one command line for mlbuild's own verbs: the launcher's `mlbuild` goal.
    verbs = pants(repo, "mlbuild", "--help")
    assert verbs.exit_code == 0, verbs.stderr[-3000:]
    for verb in ("inspect", "runs", "diff", "plot", "verify", "replay", "submit", "transform", "pull-data", "push"):
        assert f"    {verb}" in verbs.stdout, verbs.stdout

    # The generator runs with the resolve's locked packages.
    generated = pants(repo, "run", f"{CANCER}/generate_data.py")
    assert generated.exit_code == 0, generated.stderr[-3000:]
    assert len((folder / "data/train/rows.csv").read_text().splitlines()) == 455

    # A YAML typo: reported by `package` before anything is built, naming the file to fix.
    (folder / "pipeline.yaml").write_text(CONFIG.replace("min: 0.0001}", "min: 0.0001"))
    typo = pants(repo, "package", f"{CANCER}:train")
    assert typo.exit_code != 0
    assert f"{CANCER}/pipeline.yaml: malformed YAML" in typo.stderr, typo.stderr[-3000:]
    assert "Building the PEX" not in typo.stderr
    (folder / "pipeline.yaml").write_text(CONFIG)

    # A bare override names this pipeline's own hyperparameter, exits 2, leaves no run folder.
    bad = pants(repo, "run", f"{CANCER}:train", "--", "C")
    assert bad.exit_code == 2, bad.stderr[-3000:]
    assert "C=1.0" in bad.stdout + bad.stderr
    runs = repo / "dist/mlbuild/runs/src.python.pipelines.cancer/train"
    assert not runs.exists() or not any(runs.iterdir())

    # A stage that raises inside a library names the user's own line, in the repo path.
    (folder / "pipeline.py").write_text(PIPELINE.replace('C=ctx.hp["C"]', 'C=-ctx.hp["C"]'))
    raised = pants(repo, "run", f"{CANCER}:train")
    assert raised.exit_code == 2
    assert f"at {CANCER}/pipeline.py:" in raised.stdout + raised.stderr, (raised.stdout + raised.stderr)[-3000:]
    (folder / "pipeline.py").write_text(PIPELINE)

    trained = pants(repo, "run", f"{CANCER}:train")
    assert trained.exit_code == 0, trained.stderr[-3000:]
    metrics = json.loads(((runs / "latest").resolve() / "model/metrics.json").read_text())
    assert metrics["validation:accuracy"] > 0.9
