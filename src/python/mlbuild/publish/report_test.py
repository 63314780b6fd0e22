from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlbuild.publish import report as publish_report
from mlbuild.publish.local import LocalJob, local_report
from mlbuild.runtime.errors import PlatformError
from mlbuild.sagemaker.report import Report

DIGEST = "sha256:" + "d" * 64


def aws() -> Report:
    return Report(
        job_name="churn-train-abc",
        job_arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train-abc",
        region="us-east-1",
        image_uri=f"123456789012.dkr.ecr.us-east-1.amazonaws.com/churn@{DIGEST}",
        output_path="s3://bucket/models/",
        status="Completed",
        pipeline_address="src/python/pipelines/churn:train",
        git_sha="a" * 40,
        pex_sha256="b" * 64,
        created=False,
        final_metrics={"auc": 0.8},
        artifact_sha256="c" * 64,
        previous_metrics={"auc": 0.7},
    )


def local(tmp_path: Path) -> LocalJob:
    record: dict[str, Any] = {
        "job_name": "churn-train-123", "status": "Completed", "image_uri": f"oci:{tmp_path}/churn@{DIGEST}",
        "image_digest": DIGEST, "pipeline_address": "src/python/pipelines/churn:train", "run_dir": str(tmp_path / "run"),
        "metrics": {"auc": 0.8}, "failure_reason": None, "exit_code": 0,
        "model": {"uri": str(tmp_path / "model.tar.gz"), "sha256": "c" * 64, "checksum": "sha256:" + "e" * 64},
    }
    return LocalJob("churn-train-123", "Completed", record["image_uri"], True, record, tmp_path)


def test_both_backends_write_the_same_keys(tmp_path: Path) -> None:
    from_aws = publish_report.aws_report(aws())
    from_local = local_report(local(tmp_path), {"auc": 0.7}, git_sha="a" * 40, pex_sha256="b" * 64)
    assert sorted(from_aws) == sorted(from_local) == sorted(publish_report.REPORT_KEYS)
    assert (from_aws["backend"], from_local["backend"]) == ("aws", "local")


def test_each_backend_keeps_what_it_wrote_before_and_fills_the_others_names(tmp_path: Path) -> None:
    report = aws()
    from_aws = publish_report.aws_report(report)
    assert {k: from_aws[k] for k in report.to_dict()} == report.to_dict()  # NB: unchanged for existing readers
    assert from_aws["reused"] is True and from_aws["metrics"] == {"auc": 0.8} and from_aws["run_dir"] is None
    assert from_aws["model"] == {"uri": "s3://bucket/models/churn-train-abc/output/model.tar.gz", "sha256": "c" * 64}
    assert from_aws["logs"] == report.log_url

    from_local = local_report(local(tmp_path), {"auc": 0.7})
    assert from_local["created"] is False and from_local["final_metrics"] == {"auc": 0.8} and from_local["image_digest"] == DIGEST
    assert from_local["model_artifact"] == str(tmp_path / "model.tar.gz") and from_local["artifact_sha256"] == "c" * 64
    assert from_local["versus_previous"] == [{"metric": "auc", "previous": 0.7, "current": 0.8, "change": pytest.approx(0.1)}]
    assert from_local["job_arn"] is None and from_local["console_url"] is None


def test_a_field_outside_the_schema_is_refused() -> None:
    with pytest.raises(PlatformError, match="REPORT_KEYS"):
        publish_report._schema({"backend": "aws", "surprise": 1})


def test_a_multi_host_local_job_reports_its_hosts_and_their_shards(tmp_path: Path) -> None:
    from mlbuild.publish.local import local_markdown

    job = local(tmp_path)
    hosts = [
        {"host": "algo-1", "leader": True, "channels": {"train": {"distribution": "ShardedByS3Key", "keys": ["a", "c"]}, "validation": {"keys": ["v"]}}},
        {"host": "algo-2", "leader": False, "channels": {"train": {"distribution": "ShardedByS3Key", "keys": ["b", "d"]}, "validation": {"keys": ["v"]}}},
    ]
    job.record["hosts"] = {"instance_count": 2, "hosts": hosts}
    report = local_report(job)
    assert report["instance_count"] == 2 and [h["host"] for h in report["hosts"]] == ["algo-1", "algo-2"]
    assert "| Hosts | algo-1 (leader): train 2 files, validation 1 files; algo-2: train 2 files, validation 1 files |" in local_markdown(report)
    one_host = local_report(local(tmp_path))
    assert one_host["instance_count"] == 1 and one_host["hosts"] is None and "| Hosts |" not in local_markdown(one_host)
