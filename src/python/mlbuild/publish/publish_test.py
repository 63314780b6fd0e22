from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Optional

import pytest

from mlbuild.lineage.digests import tree_checksum
from mlbuild.lineage.reuse import run_inputs
from mlbuild.publish import local
from mlbuild.publish.backend import Publication, choose_backend
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.runtime.config import parse_config
from mlbuild.sagemaker.job_name import job_name, pipeline_name_from_address

FULL = parse_config(
    "sagemaker: {role: 'arn:aws:iam::123456789012:role/T', output_path: 's3://bkt/m/', region: us-east-1}", "p.yaml"
)
NO_ROLE = parse_config("sagemaker: {output_path: 's3://bkt/m/', region: us-east-1}", "p.yaml")
LOCAL = parse_config(
    "sagemaker: {role: 'arn:aws:iam::123456789012:role/T', output_path: 's3://bkt/m/', backend: local}", "p.yaml"
)


@pytest.mark.parametrize(
    "config, requested, credentials, expected",
    [
        (FULL, None, True, "aws"),
        (FULL, None, False, "local"),  # a fresh laptop: no AWS credentials
        (NO_ROLE, None, True, "local"),  # nowhere to run it
        (LOCAL, None, True, "local"),  # the config says so
        (LOCAL, "aws", False, "aws"),  # the command line wins
        (FULL, "local", True, "local"),
    ],
)
def test_backend_choice(config, requested, credentials, expected) -> None:
    assert choose_backend(config, requested, {}, has_credentials=lambda: credentials) == expected


def test_model_archive_is_deterministic(tmp_path: Path) -> None:
    for name, mtime in (("a", 1), ("b", 2_000_000_000)):
        model = tmp_path / name
        (model / "sub").mkdir(parents=True)
        (model / "model.pkl").write_bytes(b"weights")
        (model / "sub" / "metrics.json").write_text("{}")
        for path in model.rglob("*"):
            os.utime(path, (mtime, mtime))
    first = write_model_archive(tmp_path / "a", tmp_path / "out-a" / "model.tar.gz")
    second = write_model_archive(tmp_path / "b", tmp_path / "out-b" / "model.tar.gz")
    assert first == second
    with tarfile.open(tmp_path / "out-a" / "model.tar.gz") as tar:
        assert tar.getnames() == ["model.pkl", "sub/metrics.json"]


def test_job_name_pins_image_hyperparameters_and_data(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "rows.csv").write_text("1\n")
    data = {"train": tree_checksum(tmp_path / "train")}
    image, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64

    def name(digest: str, hp: dict, channels: dict) -> str:  # NB: as LocalBackend.train names its job
        return job_name(
            pipeline_name_from_address("src/python/pipelines/churn:train"), run_inputs(digest, hp, channels)
        )

    first = name(image, {"depth": "3"}, data)
    assert first.startswith("churn-train-") and len(first) == len("churn-train-") + 12
    assert first == name(image, {"depth": "3"}, data) == name(image[7:], {"depth": 3}, data)  # NB: one normal form
    assert first != name(other, {"depth": "3"}, data)
    assert first != name(image, {"depth": "4"}, data)
    (tmp_path / "train" / "rows.csv").write_text("2\n")
    assert first != name(image, {"depth": "3"}, {"train": tree_checksum(tmp_path / "train")})


def test_a_job_is_reused_only_when_its_recorded_inputs_are_the_ones_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name finds the job; `lineage.reuse.is_reusable` (what `pants run` decides with) says
    whether it is a finished job with exactly these inputs."""
    from mlbuild.container_run.testing import write_image, write_pipeline
    from mlbuild.oci.layer import LayerEntry
    from mlbuild.publish.testing import fake_run_image
    from mlbuild.runtime.config import load_config

    config, data_dir = write_pipeline(tmp_path / "pipeline")
    layout = tmp_path / "layout"
    write_image(layout, tmp_path / "blobs", [[LayerEntry.file("/usr/local/bin/train", b"#!/bin/true\n", 0o755)]])
    monkeypatch.setattr(local, "run_image", fake_run_image(tmp_path / "trainings.txt"))

    backend = local.LocalBackend(data_dir, tmp_path / "local", log=lambda line: None)

    def publish(force: bool = False) -> local.LocalJob:
        publication = Publication(layout, None, load_config(config), "src/p:train", {}, force=force)
        return backend.train(publication, backend.push(publication))

    first = publish()
    assert not first.reused and first.status == "Completed"
    again = publish()
    assert again.reused and again.name == first.name and len((tmp_path / "trainings.txt").read_text().splitlines()) == 1
    job_file = first.job_dir / local.JOB_FILE
    tampered: dict
    for tampered in (
        {"hyperparameters": {"scale": '"9"'}},
        {"data": {}},
        {"image_digest": "sha256:" + "0" * 64},
        {"status": "Failed"},
    ):
        job_file.write_text(json.dumps({**json.loads(job_file.read_text()), **tampered}))
        retrained = publish()
        assert not retrained.reused and retrained.name == first.name, tampered
    assert len((tmp_path / "trainings.txt").read_text().splitlines()) == 5
    forced = publish(force=True)
    assert forced.name.startswith(first.name + "-r") and len(forced.name) == len(first.name) + 16 and not forced.reused


def test_a_broken_aws_profile_is_a_clear_error_not_a_silent_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlbuild.runtime.errors import UserError

    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(UserError, match="AWS is configured but unusable.*no-such-profile"):
        choose_backend(FULL, None, {})


def test_an_unbuilt_or_misnamed_layout_is_a_user_error(tmp_path: Path) -> None:
    from mlbuild.publish.backend import layout_digest
    from mlbuild.runtime.errors import UserError

    with pytest.raises(UserError, match="the image was not built. Fix: build it first"):
        layout_digest(tmp_path / "never-built.oci", "train")
    (tmp_path / "index.json").write_text(
        '{"manifests": [{"digest": "sha256:aa", "annotations": {"org.opencontainers.image.ref.name": "train"}}]}'
    )
    assert layout_digest(tmp_path, "train") == "sha256:aa"
    with pytest.raises(UserError, match="no image named 'other'.*Fix: pass the --ref"):
        layout_digest(tmp_path, "other")


def _publish_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome_exit: int, status: str, extra: Optional[dict] = None
) -> tuple:
    """`python -m mlbuild.publish` (local backend) with the push and the job itself stubbed out."""
    import dataclasses
    import json

    from mlbuild.publish import cli, local
    from mlbuild.publish.backend import PushedImage

    config = tmp_path / "src" / "python" / "pipelines" / "cancer" / "pipeline.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("hyperparameters:\n  C: 1.0\n")
    run_dir = tmp_path / ".mlbuild" / "local" / "runs" / "r1"
    (run_dir / "output").mkdir(parents=True, exist_ok=True)
    (run_dir / "output" / "train.log").write_text("2026 mlbuild INFO stage load: started\n")
    record = {
        "job_name": "cancer-train-1",
        "status": status,
        "image_uri": "oci:/s/cancer@sha256:" + "a" * 64,
        "image_digest": "sha256:" + "a" * 64,
        "pipeline_address": "src/python/pipelines/cancer:train",
        "hyperparameters": {"C": "1.0"},
        "data": {},
        "run_dir": str(run_dir),
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:01:00Z",
        "metrics": {},
        "failure_reason": None if status == "Completed" else "pipeline raised",
        "exit_code": outcome_exit,
        "log": str(run_dir / "output" / "train.log"),
        **(extra or {}),
    }
    job = local.LocalJob("cancer-train-1", status, record["image_uri"], False, record, tmp_path / "job")
    monkeypatch.setattr(
        local.LocalBackend, "push", lambda self, publication: PushedImage(record["image_uri"], record["image_digest"])
    )
    monkeypatch.setattr(
        local.LocalBackend, "train", lambda self, publication, image: dataclasses.replace(job, publication=publication)
    )
    reports = tmp_path / "reports"
    code = cli.main(
        [
            "--layout",
            str(tmp_path / "x.oci"),
            "--config",
            str(config),
            "--address",
            record["pipeline_address"],
            "--data-dir",
            str(tmp_path),
            "--pex-sha256",
            "b" * 64,
            "--git-sha",
            "c" * 40 + "-dirty",
            "--report-dir",
            str(reports),
            "--backend",
            "local",
            "--local-root",
            str(tmp_path / ".mlbuild" / "local"),
        ]
    )
    return code, json.loads((reports / "report.json").read_text()), (reports / "report.md").read_text()


@pytest.mark.parametrize(
    "train_exit, expected",
    [(2, 2), (3, 3), (-9, 5), (1, 5)],  # the pipeline raised: 2, as README says and `pants run` exits
)
def test_a_failed_local_job_exits_like_pants_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, train_exit: int, expected: int
) -> None:
    code, report, _ = _publish_with(monkeypatch, tmp_path, train_exit, "Failed")
    assert code == expected and report["status"] == "Failed"


def test_the_report_links_the_runs_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, report, markdown = _publish_with(monkeypatch, tmp_path, 0, "Completed")
    log = tmp_path / ".mlbuild" / "local" / "runs" / "r1" / "output" / "train.log"
    assert code == 0 and report["logs"] == str(log)
    assert f"| Logs | [`{log}`]({log.resolve().as_uri()}) |" in markdown
    assert "Run directory (logs" not in markdown


def test_the_publish_record_carries_the_revision_and_the_model_files_checksum(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlbuild.lineage.collect import run_record
    from mlbuild.lineage.compare import diff
    from mlbuild.lineage.store import ROOT_ENV_VAR, Store

    run_dir = tmp_path / "runs" / "20260101T000000Z-abcd1234"
    (run_dir / "input" / "config").mkdir(parents=True)
    (run_dir / "model").mkdir()
    (run_dir / "model" / "model.pkl").write_bytes(b"weights")
    (run_dir / "model" / "metrics.json").write_text('{"auc": 0.9}')
    archive = tmp_path / "jobs" / "cancer-train-1" / "output" / "model.tar.gz"
    sha = write_model_archive(run_dir / "model", archive)
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "store"))
    # NB: an older job.json without the checksum: computed from the archive.
    _publish_with(monkeypatch, tmp_path, 0, "Completed", {"model": {"uri": str(archive), "sha256": sha}})
    (published,) = Store(tmp_path / "store").records()
    assert published.get("source.revision") == "c" * 40 and published.get("source.dirty") is True
    assert published.hyperparameters == {"C": "1.0"}
    fields = {
        f["field"]: f for f in diff(run_record(run_dir, "src/python/pipelines/cancer:train"), published)["fields"]
    }
    assert fields["model.checksum"]["changed"] is False and "model.sha256" not in fields


def test_model_checksum_is_the_same_for_the_folder_and_its_archive(tmp_path: Path) -> None:
    from mlbuild.lineage.digests import model_checksum

    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "model.pkl").write_bytes(b"weights")
    (tmp_path / "model" / "sub" / "vocab.txt").write_text("a\n")
    write_model_archive(tmp_path / "model", tmp_path / "model.tar.gz")
    assert model_checksum(tmp_path / "model") == model_checksum(tmp_path / "model.tar.gz")
