from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.lineage.errors import AmbiguousError
from mlbuild.lineage.record import make_record
from mlbuild.lineage.store import Store
from mlbuild.replay.job import AWS, LOCAL, aws_job, resolve
from mlbuild.replay.testing import ADDRESS, JOB, local_job
from mlbuild.runtime.errors import PlatformError, UserError

DIGEST = "sha256:" + "ab" * 32


def publish(name: str, model_sha: str, digest: str = DIGEST, created: str = "2026-11-30T00:01:00Z", **fields):
    return make_record(
        "publish",
        ADDRESS,
        created,
        job={"name": name, "status": "Completed"},
        image={"manifest_digest": digest},
        model={"sha256": model_sha},
        **fields,
    )


@pytest.fixture
def stored_job(tmp_path: Path):
    body = local_job(tmp_path)
    store = Store(tmp_path / "lineage")
    record = store.put(publish(JOB, body["model"]["sha256"], body["image_digest"]))
    return tmp_path / "local" / "jobs", store, body, record


def test_by_local_job_name(stored_job) -> None:
    jobs, store, body, record = stored_job
    job = resolve(JOB, jobs, store)
    assert (job.backend, job.name, job.address, job.image_digest) == (LOCAL, JOB, ADDRESS, body["image_digest"])
    assert job.hyperparameters == {"scale": "2.0"} and job.succeeded and job.record_id == record
    assert job.data_dirs["train"].resolve() == (jobs.parent.parent / "data" / "train").resolve()


@pytest.mark.parametrize("how", ["model", "image", "record"])
def test_by_hash_prefix(stored_job, how) -> None:
    jobs, store, body, record = stored_job
    query = {"model": body["model"]["sha256"][:10], "image": body["image_digest"][:19], "record": record[:8]}[how]
    assert resolve(query, jobs, store).name == JOB


def test_a_hash_of_several_jobs_names_them(stored_job) -> None:
    jobs, store, body, _ = stored_job
    local_job(jobs.parent.parent, name="tiny-train-000000000002")
    store.put(publish("tiny-train-000000000002", "cd" * 32, body["image_digest"]))
    with pytest.raises(
        UserError, match=r"leads to 2 jobs:\n  tiny-train-000000000001\n  tiny-train-000000000002\nFix: replay one"
    ):
        resolve(body["image_digest"], jobs, store)


def test_an_ambiguous_prefix_lists_the_candidates(stored_job) -> None:
    jobs, store, _, _ = stored_job
    store.put(publish("j2", "ab1234" + "0" * 58))
    store.put(publish("j3", "ab1234" + "1" * 58))
    with pytest.raises(AmbiguousError, match="ambiguous"):
        resolve("ab1234", jobs, store)


def test_unknown_name_or_hash(stored_job) -> None:
    jobs, store, _, _ = stored_job
    with pytest.raises(
        UserError, match=r"'nope-123': no local job by that name .* and no lineage record mentions it\. Fix:"
    ):
        resolve("nope-123", jobs, store)


def test_an_arn_without_aws(stored_job) -> None:
    jobs, store, _, _ = stored_job
    with pytest.raises(UserError, match="is a SageMaker job ARN. Fix: pass --aws"):
        resolve("arn:aws:sagemaker:us-east-1:1234:training-job/x", jobs, store)


def test_a_hash_of_a_package_only(stored_job) -> None:
    jobs, store, _, _ = stored_job
    store.put(make_record("package", ADDRESS, "2026-11-30T00:00:00Z", pex={"sha256": "ef" * 32}))
    with pytest.raises(UserError, match="belong to no training job"):
        resolve("efefef", jobs, store)


def test_a_recorded_job_missing_locally_without_aws(stored_job) -> None:
    jobs, store, _, _ = stored_job
    store.put(publish("gone-job", "12" * 32))
    with pytest.raises(UserError, match="name job gone-job, which is not in .*--aws"):
        resolve("121212", jobs, store)


def test_a_broken_job_file_is_a_platform_error(stored_job) -> None:
    jobs, store, _, _ = stored_job
    (jobs / JOB / "job.json").write_text("{")
    with pytest.raises(PlatformError, match="job.json: not readable JSON"):
        resolve(JOB, jobs, store)


DESCRIBE = {
    "TrainingJobName": "churn-train-abc",
    "TrainingJobStatus": "Completed",
    "AlgorithmSpecification": {"TrainingImage": f"1234.dkr.ecr.us-east-1.amazonaws.com/churn@{DIGEST}"},
    "HyperParameters": {"max_depth": "4", "loss": "log_loss"},
    "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train/"}}}],
    "ModelArtifacts": {"S3ModelArtifacts": "s3://b/models/churn-train-abc/output/model.tar.gz"},
    "FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.84}],
}


def test_aws_job_from_describe_and_its_record(tmp_path: Path) -> None:
    store = Store(tmp_path / "lineage")
    store.put(
        publish(
            "churn-train-abc",
            "12" * 32,
            data=[{"name": "train", "uri": "s3://b/train/", "checksum": "sha256:" + "9" * 64, "pin": "s3-listing"}],
        )
    )
    asked: list[str] = []

    def describe(name: str) -> dict:
        asked.append(name)
        return DESCRIBE

    job = resolve(
        "arn:aws:sagemaker:us-east-1:1234:training-job/churn-train-abc", tmp_path / "jobs", store, describe=describe
    )
    assert asked == ["churn-train-abc"]
    assert (job.backend, job.address, job.image_digest, job.hyperparameters["loss"]) == (
        AWS,
        ADDRESS,
        DIGEST,
        "log_loss",
    )
    assert job.data == {"train": "sha256:" + "9" * 64} and job.data_sources == {"train": "s3://b/train/"}
    assert job.metrics == {"validation:auc": 0.84} and (job.model or "").endswith("model.tar.gz") and job.record_id


def test_aws_unknown_job_and_unpinned_image(tmp_path: Path) -> None:
    store = Store(tmp_path / "lineage")
    with pytest.raises(UserError, match="no SageMaker training job by that name"):
        resolve("nope", tmp_path / "jobs", store, describe=lambda name: None)
    unpinned = {
        **DESCRIBE,
        "AlgorithmSpecification": {"TrainingImage": "1234.dkr.ecr.us-east-1.amazonaws.com/churn:latest"},
    }
    with pytest.raises(UserError, match="not pinned by digest"):
        aws_job(unpinned)


def test_aws_job_keeps_the_shape_the_replay_reports_on() -> None:
    shaped = {
        **DESCRIBE,
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3, "VolumeSizeInGB": 30},
        "CheckpointConfig": {"S3Uri": "s3://b/checkpoints/", "LocalPath": "/opt/ml/checkpoints"},
        "Environment": {"OMP_NUM_THREADS": "4"},
    }
    job = aws_job(shaped)
    assert (job.instance_count, job.instance_type, job.checkpoint_uri) == (3, "ml.m5.xlarge", "s3://b/checkpoints/")
    assert job.environment == {"OMP_NUM_THREADS": "4"}
    plain = aws_job(DESCRIBE)
    assert (plain.instance_count, plain.checkpoint_uri, plain.environment) == (1, None, {})
