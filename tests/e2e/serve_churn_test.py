"""Train churn with `pants run`, then `pants run --mlbuild-serve`: the packaged image's own `serve`
in the sandbox, driven by a batch transform, predicts what the pipeline's `predict` gives in-process."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import List

from e2e.publish_lineage_test import NO_AWS
from e2e.repo import copy_repo, pants
from mlbuild.lineage import graph
from mlbuild.lineage.digests import file_sha256
from mlbuild.lineage.store import Store
from mlbuild.runtime.pipeline import load_pipeline
from mlbuild.serving.predictor import Predictor
from mlbuild.tools_required import require_tool

CHURN = "src/python/pipelines/churn:train"
RUNS = Path("dist/mlbuild/runs/src.python.pipelines.churn/train")

pytestmark = require_tool("bwrap", "bubblewrap")


def records_without_label(path: Path, label: str) -> List[List[str]]:
    with open(path, newline="") as f:
        return [[v for k, v in row.items() if k != label] for row in csv.DictReader(f)]


def test_the_image_serves_the_same_predictions_as_predict_in_process(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    trained = pants(repo, "run", CHURN, env=NO_AWS)
    assert trained.exit_code == 0, trained.stderr[-4000:]
    (run_dir,) = [p for p in (repo / RUNS).iterdir() if p.name[:1].isdigit() and (p / "model").is_dir()]

    records = records_without_label(repo / "src/python/pipelines/churn/data/validation/churn.csv", "churned")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "part-a.csv").write_text("".join(",".join(r) + "\n" for r in records[:7]))
    (inputs / "part-b.csv").write_text("".join(",".join(r) + "\n" for r in records[7:]))
    out = tmp_path / "out"
    served = pants(
        repo, "run", "--mlbuild-serve", CHURN, "--", "--transform", str(inputs), "--output", str(out), env=NO_AWS
    )
    assert served.exit_code == 0, served.stderr[-4000:]
    assert f"mlbuild: serving {CHURN} with the model in " in served.stderr

    got = [
        float(line) for name in ("part-a.csv.out", "part-b.csv.out") for line in (out / name).read_text().splitlines()
    ]
    pipeline = load_pipeline("pipelines.churn.pipeline", "pipeline.yaml", CHURN)
    expected = Predictor.load(pipeline, run_dir, run_dir / "model").predict(records)
    assert got == expected and len(got) == len(records)

    # Lineage: an output file's sha256 leads to the predict record, and from it to the run that made the model.
    store = Store(repo / ".mlbuild/lineage", [repo / "dist/mlbuild/lineage"])
    (predict,) = store.find(file_sha256(out / "part-b.csv.out"))
    assert predict.kind == "predict" and [o["name"] for o in predict.get("outputs")] == [
        "part-a.csv.out",
        "part-b.csv.out",
    ]
    (run,) = [r for r, _ in graph.upstream_of(store, predict)]
    assert run.kind == "run" and run.get("model.checksum") == predict.get("model.checksum")
    assert predict.get("image.manifest_digest", "").startswith("sha256:")

    # A model that does not exist: a clear error, non-zero.
    missing = pants(repo, "run", "--mlbuild-serve", "--mlbuild-model=" + "ab" * 32, CHURN, env=NO_AWS)
    assert missing.exit_code != 0 and "no lineage record mentions" in missing.stderr
