from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from mlbuild.publish.backend import choose_backend
from mlbuild.lineage.digests import tree_checksum
from mlbuild.publish.local import job_name, local_markdown
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.runtime.config import parse_config

FULL = parse_config(
    "sagemaker: {role: 'arn:aws:iam::123456789012:role/T', output_path: 's3://b/m/', region: us-east-1}", "p.yaml"
)
NO_ROLE = parse_config("sagemaker: {output_path: 's3://b/m/', region: us-east-1}", "p.yaml")
LOCAL = parse_config("sagemaker: {role: 'arn:aws:iam::123456789012:role/T', output_path: 's3://b/m/', backend: local}", "p.yaml")


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
    name = job_name("src/python/pipelines/churn:train", "sha256:aa", {"depth": "3"}, data)
    assert name.startswith("churn-train-") and len(name) == len("churn-train-") + 12
    assert name == job_name("src/python/pipelines/churn:train", "sha256:aa", {"depth": "3"}, data)
    assert name != job_name("src/python/pipelines/churn:train", "sha256:ab", {"depth": "3"}, data)
    assert name != job_name("src/python/pipelines/churn:train", "sha256:aa", {"depth": "4"}, data)
    (tmp_path / "train" / "rows.csv").write_text("2\n")
    assert name != job_name("src/python/pipelines/churn:train", "sha256:aa", {"depth": "3"}, {"train": tree_checksum(tmp_path / "train")})


def test_local_markdown_shows_the_metric_change_versus_the_previous_model() -> None:
    report = {
        "pipeline_address": "p:train", "status": "Completed", "image_uri": "oci:/s/p@sha256:aa", "job_name": "p-1",
        "reused": False, "run_dir": "/r", "model": {"uri": "/m/model.tar.gz", "sha256": "ff"},
        "metrics": {"validation:auc": 0.85}, "previous_metrics": {"validation:auc": 0.8}, "failure_reason": None,
    }
    markdown = local_markdown(report)
    assert "| `validation:auc` | 0.85 | 0.8 | +0.05 |" in markdown
    assert "`/m/model.tar.gz`" in markdown and "**Completed**" in markdown


def test_a_broken_aws_profile_is_a_clear_error_not_a_silent_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlbuild.runtime.errors import UserError

    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(UserError, match="AWS is configured but unusable.*no-such-profile"):
        choose_backend(FULL, None, {})


def test_an_unbuilt_or_misnamed_layout_is_a_user_error(tmp_path: Path) -> None:
    from mlbuild.publish.local import layout_digest
    from mlbuild.runtime.errors import UserError

    with pytest.raises(UserError, match="the image was not built. Fix: build it first"):
        layout_digest(tmp_path / "never-built.oci", "train")
    (tmp_path / "index.json").write_text('{"manifests": [{"digest": "sha256:aa", "annotations": {"org.opencontainers.image.ref.name": "train"}}]}')
    assert layout_digest(tmp_path, "train") == "sha256:aa"
    with pytest.raises(UserError, match="no image named 'other'.*Fix: pass the --ref"):
        layout_digest(tmp_path, "other")
