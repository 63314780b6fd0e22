"""The CLI end to end against a moto server: exit codes, reports, pull-data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbuild.commands.cli import main
from mlbuild.sagemaker.aws import Clients
from mlbuild.sagemaker.conftest import ADDRESS, CONFIG_TEXT, GIT_SHA, IMAGE_URI, OTHER_DIGEST, PEX_SHA256


def submit_args(config: Path, *extra: str) -> list:
    return [
        "submit",
        "--config",
        str(config),
        "--image-uri",
        IMAGE_URI,
        "--pipeline-address",
        ADDRESS,
        "--git-sha",
        GIT_SHA,
        "--pex-sha256",
        PEX_SHA256,
        *extra,
    ]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(CONFIG_TEXT + "metrics: [validation:auc]\n")
    return path


def test_submit_is_idempotent_and_reports(aws: str, config: Path, tmp_path: Path, capsys) -> None:
    report_json, report_md = tmp_path / "report.json", tmp_path / "report.md"
    args = submit_args(config, "--report-json", str(report_json), "--report-md", str(report_md), "max_depth=6")
    assert main(args) == 0
    out = capsys.readouterr()
    data = json.loads(report_json.read_text())
    assert data["reused"] is False and data["image_uri"] == IMAGE_URI
    assert report_md.read_text() == out.out
    assert f"`{data['job_name']}`" in out.out and "Created training job" in out.err
    job = Clients.create().sagemaker.describe_training_job(TrainingJobName=data["job_name"])
    assert job["HyperParameters"]["max_depth"] == "6"

    assert main(args) == 0
    again = json.loads(report_json.read_text())
    assert again["job_name"] == data["job_name"] and again["reused"] is True
    assert "already exists" in capsys.readouterr().err
    assert len(Clients.create().sagemaker.list_training_jobs()["TrainingJobSummaries"]) == 1


def test_submit_and_wait(aws: str, config: Path, tmp_path: Path, capsys) -> None:
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps({"train:progress": 50.0}))
    report_json = tmp_path / "r.json"
    code = main(
        submit_args(
            config,
            "--wait",
            "--poll-seconds",
            "0",
            "--report-json",
            str(report_json),
            "--previous-metrics",
            str(previous),
        )
    )
    assert code == 0
    data = json.loads(report_json.read_text())
    assert data["status"] == "Completed"
    assert data["metrics"] == {"train:progress": 100.0}  # what moto reports
    assert data["versus_previous"] == [{"metric": "train:progress", "previous": 50.0, "current": 100.0, "change": 50.0}]
    out = capsys.readouterr()
    assert "Final status: Completed" in out.err and "| `train:progress` | 100 | 50 | +50 (+100.00%) |" in out.out

    waited = tmp_path / "waited.json"
    assert main(["wait", data["job_name"], "--poll-seconds", "0", "--no-logs", "--report-json", str(waited)]) == 0
    assert json.loads(waited.read_text())["pipeline_address"] == ADDRESS  # provenance from the job's tags
    assert main(["wait", "no-such-job"]) == 2


@pytest.mark.parametrize(
    "text,args,fragment",
    [
        (
            CONFIG_TEXT.replace("  role: arn:aws:iam::123456789012:role/MLBuildSageMakerTraining\n", ""),
            [],
            "`sagemaker.role`",
        ),
        (CONFIG_TEXT.replace("    s3: s3://demo-bucket/demo/data/train/\n", ""), [], "`channels.train.s3`"),
        (CONFIG_TEXT, ["--image-uri", "repo:latest"], "not pinned by digest"),
        (CONFIG_TEXT, ["max_dept=3"], "unknown hyperparameter 'max_dept'"),
        ("sagemaker: [", [], "malformed YAML"),
    ],
)
def test_user_errors_exit_2_and_submit_nothing(
    aws: str, tmp_path: Path, capsys, text: str, args: list, fragment: str
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    assert main(submit_args(path, *args)) == 2
    assert fragment in capsys.readouterr().err
    assert Clients.create().sagemaker.list_training_jobs()["TrainingJobSummaries"] == []


def test_missing_region(aws: str, tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(CONFIG_TEXT.replace("  region: us-east-1\n", ""))
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert main(submit_args(path)) == 2
    assert "no AWS region" in capsys.readouterr().err


def test_conflict_exits_4(aws: str, config: Path, tmp_path: Path, capsys) -> None:
    report_json = tmp_path / "r.json"
    assert main(submit_args(config, "--report-json", str(report_json))) == 0
    name = json.loads(report_json.read_text())["job_name"]
    sm = Clients.create().sagemaker
    job = sm.describe_training_job(TrainingJobName=name)
    # Replace the job under that name by a different one (moto lets a name be reused).
    spec = {**job["AlgorithmSpecification"], "TrainingImage": f"repo@{OTHER_DIGEST}"}
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification=spec,
        RoleArn=job["RoleArn"],
        OutputDataConfig=job["OutputDataConfig"],
        ResourceConfig=job["ResourceConfig"],
        StoppingCondition=job["StoppingCondition"],
        HyperParameters=job["HyperParameters"],
    )
    assert main(submit_args(config)) == 4
    assert "is a different job" in capsys.readouterr().err


def test_pull_data(aws: str, config: Path, tmp_path: Path, capsys) -> None:
    s3 = Clients.create().s3
    s3.create_bucket(Bucket="demo-bucket")
    s3.put_object(Bucket="demo-bucket", Key="demo/data/train/a.csv", Body=b"x\n")
    s3.put_object(Bucket="demo-bucket", Key="demo/data/validation/b.csv", Body=b"y\n")
    dest = tmp_path / "data"
    assert main(["pull-data", "--config", str(config), "--output", str(dest)]) == 0
    assert (dest / "train/a.csv").read_bytes() == b"x\n" and (dest / "validation/b.csv").exists()
    assert main(["pull-data", "--config", str(config), "--output", str(dest)]) == 0
    assert "0 downloaded" in capsys.readouterr().err.splitlines()[-2]


def test_transform_with_a_finished_jobs_model_is_idempotent(aws: str, config: Path, tmp_path: Path, capsys) -> None:
    report_json = tmp_path / "r.json"
    assert main(submit_args(config, "--report-json", str(report_json))) == 0
    name = json.loads(report_json.read_text())["job_name"]
    job = Clients.create().sagemaker.describe_training_job(TrainingJobName=name)
    capsys.readouterr()
    args = [
        "transform",
        name,
        "--input",
        "s3://demo-bucket/demo/data/validation/",
        "--output",
        "s3://demo-bucket/demo/predictions/",
    ]
    assert main([*args, "--wait"]) == 0
    first, progress = capsys.readouterr()
    assert "(created)" in first and "Status: Completed" in progress  # NB: progress on stderr (mlbuild.console)
    transform_job = first.split("transform job: ", 1)[1].split(" ", 1)[0]
    described = Clients.create().sagemaker.describe_transform_job(TransformJobName=transform_job)
    model = Clients.create().sagemaker.describe_model(ModelName=described["ModelName"])
    # The job's own image (by digest) and model artifact.
    assert model["PrimaryContainer"] == {
        "Image": job["AlgorithmSpecification"]["TrainingImage"],
        "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
    }
    assert main(args) == 0
    assert f"transform job: {transform_job} (existing" in capsys.readouterr().out  # recognised, not re-submitted
    assert main(["transform", "no-such-job-0123", "--input", "s3://b/i/", "--output", "s3://b/o/"]) == 2
    assert "no training job named 'no-such-job-0123'" in capsys.readouterr().err
