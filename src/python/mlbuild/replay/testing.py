"""Test helpers: a finished local-backend job (image in a local store, data, model, job.json)
and a stand-in for the container runner that "trains" by writing files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from mlbuild.container_run.outcome import RunOutcome, read_outcome
from mlbuild.container_run.runner import RunPlan
from mlbuild.container_run.testing import write_image
from mlbuild.lineage.digests import model_checksum, tree_checksum
from mlbuild.names import PIPELINE_CONFIG_ENV, PIPELINE_MODULE_ENV
from mlbuild.oci.image import Image
from mlbuild.oci.layer import LayerEntry
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.runtime import contract

ADDRESS = "src/python/pipelines/tiny:train"
CONFIG = """\
hyperparameters:
  scale: {type: float, default: 2.0}
channels:
  train: {}
"""
MODEL = {"model.txt": "weights 1 2 3\n"}
METRICS = {"score": 0.5}
JOB = "tiny-train-000000000001"


def tiny_image(store: Path, blobs: Path, config: str = CONFIG, ref: str = "tiny:t1") -> Image:
    app = [LayerEntry.file("opt/mlbuild/app/pipelines/tiny/pipeline.yaml", config.encode())]
    env = {PIPELINE_MODULE_ENV: "pipelines.tiny.pipeline", PIPELINE_CONFIG_ENV: "pipeline.yaml"}
    return write_image(store, blobs, [[LayerEntry.file("etc/base.txt", b"base")], app], env=env, ref=ref)


def write_model(model_dir: Path, files: Mapping[str, str], metrics: Mapping[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (model_dir / name).write_text(text)
    (model_dir / "metrics.json").write_text(json.dumps(dict(metrics), sort_keys=True))


def local_job(
    root: Path, *, status: str = "Completed", failure: Optional[str] = None, name: str = JOB
) -> Dict[str, Any]:
    """A finished job under `root/local/jobs/<name>/` as the local backend leaves it; returns job.json."""
    local = root / "local"
    image = tiny_image(local / "registry", root / "blobs")
    digest = image.manifest_descriptor().digest
    data = root / "data" / "train"
    data.mkdir(parents=True, exist_ok=True)
    (data / "a.csv").write_text("1\n2\n")
    run_dir = local / "runs" / name
    (run_dir / contract.DATA_DIR).mkdir(parents=True, exist_ok=True)
    (run_dir / contract.DATA_DIR / "train").symlink_to(data.resolve(), target_is_directory=True)
    job_dir = local / "jobs" / name
    body: Dict[str, Any] = {
        "job_name": name,
        "status": status,
        "pipeline_address": ADDRESS,
        "image_uri": f"oci:{local / 'registry'}/tiny@{digest}",
        "image_digest": digest,
        "hyperparameters": {"scale": "2.0"},
        "data": {"train": tree_checksum(data)},
        "run_dir": str(run_dir),
        "start": "2026-11-30T00:00:00Z",
        "end": "2026-11-30T00:01:00Z",
        "metrics": dict(METRICS) if status == "Completed" else {},
        "failure_reason": failure,
        "exit_code": 0 if status == "Completed" else 2,
    }
    if status == "Completed":
        write_model(run_dir / "model", MODEL, METRICS)
        archive = job_dir / "output" / "model.tar.gz"
        sha256 = write_model_archive(run_dir / "model", archive)
        body["model"] = {"uri": str(archive), "sha256": sha256, "checksum": model_checksum(archive)}
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "job.json").write_text(json.dumps(body, indent=2))
    return body


class FakeRun:
    """Stands in for run_image: lays out a run directory and writes `model` (or a failure)."""

    def __init__(
        self, model: Mapping[str, str] = MODEL, metrics: Mapping[str, Any] = METRICS, failure: Optional[str] = None
    ):
        self.model, self.metrics, self.failure = dict(model), dict(metrics), failure
        self.calls: list = []

    def __call__(self, plan: RunPlan, stream: Any = None) -> RunOutcome:
        self.calls.append(plan)
        runs_dir, data_dir, overrides = plan.runs_dir, plan.data_dir, plan.overrides
        run_dir = Path(runs_dir) / f"run{len(list(Path(runs_dir).glob('run*'))) + 1 if Path(runs_dir).is_dir() else 1}"
        (run_dir / "input" / "config").mkdir(parents=True)
        (run_dir / contract.HYPERPARAMETERS_FILE).write_text(json.dumps(dict(overrides)))
        (run_dir / contract.DATA_DIR).mkdir(parents=True)
        for channel in Path(data_dir).iterdir():
            (run_dir / contract.DATA_DIR / channel.name).symlink_to(channel.resolve(), target_is_directory=True)
        if self.failure is not None:
            (run_dir / contract.FAILURE_FILE).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / contract.FAILURE_FILE).write_text(self.failure)
            return read_outcome(run_dir, 2)
        write_model(run_dir / contract.MODEL_DIR, self.model, self.metrics)
        return read_outcome(run_dir, 0)
