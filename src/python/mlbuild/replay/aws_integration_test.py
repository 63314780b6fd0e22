"""The AWS side against moto: DescribeTrainingJob, the model artifact, S3 channels in the cache."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterator

import pytest

from mlbuild.lineage.record import make_record
from mlbuild.lineage.store import Store
from mlbuild.oci.layout import write_layout
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.replay import aws
from mlbuild.replay import verdict as v
from mlbuild.replay.job import AWS, ReplayJob, resolve
from mlbuild.replay.replay import replay
from mlbuild.replay.testing import ADDRESS, CONFIG, METRICS, MODEL, FakeRun, tiny_image, write_model
from mlbuild.runtime.errors import UserError
from mlbuild.sagemaker.moto_server import moto_server, reset_moto
from mlbuild.sagemaker.s3_data import listing_checksum

BUCKET = "replay-bucket"
TRAIN = f"s3://{BUCKET}/tiny/train/"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def clients(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> aws.Clients:
    reset_moto(endpoint)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(name, value)
    c = aws.clients("us-east-1", os.environ)
    c.s3.create_bucket(Bucket=BUCKET)
    c.s3.put_object(Bucket=BUCKET, Key="tiny/train/a.csv", Body=b"1\n2\n")
    c.s3.put_object(Bucket=BUCKET, Key="tiny/train/b.csv", Body=b"3\n")
    return c


def job(c: aws.Clients, **data: str) -> ReplayJob:
    return ReplayJob(
        name="tiny-aws",
        backend=AWS,
        address=ADDRESS,
        status="Completed",
        image_uri="x@sha256:" + "0" * 64,
        image_digest="sha256:" + "0" * 64,
        hyperparameters={},
        data=dict(data),
        data_sources={"train": TRAIN},
    )


def test_a_channel_is_pulled_once_into_the_cache_keyed_by_its_listing(
    clients: aws.Clients, tmp_path: Path, monkeypatch
) -> None:
    pin = listing_checksum(clients.s3, TRAIN)
    fetch = aws.data_fetcher(clients, tmp_path / "cache")
    first = fetch(job(clients, train=pin), None)["train"]
    assert sorted(p.name for p in first.iterdir()) == ["a.csv", "b.csv"] and pin.split(":")[1] in str(first)
    monkeypatch.setattr(aws, "pull_channel", lambda *a, **k: pytest.fail("downloaded again"))
    assert fetch(job(clients, train=pin), None)["train"] == first


def test_a_changed_listing_names_the_changed_keys(clients: aws.Clients, tmp_path: Path) -> None:
    pin = listing_checksum(clients.s3, TRAIN)
    fetch = aws.data_fetcher(clients, tmp_path / "cache")
    fetch(job(clients, train=pin), None)
    clients.s3.put_object(Bucket=BUCKET, Key="tiny/train/b.csv", Body=b"changed\n")
    clients.s3.put_object(Bucket=BUCKET, Key="tiny/train/c.csv", Body=b"new\n")
    with pytest.raises(
        UserError, match=r"channel 'train' .* changed since the job: changed keys: b\.csv, c\.csv\. Fix:"
    ):
        fetch(job(clients, train=pin), None)
    with pytest.raises(UserError, match="no earlier pull of that listing here"):
        aws.data_fetcher(clients, tmp_path / "other-cache")(job(clients, train=pin), None)


def test_a_sagemaker_job_replays_from_s3_and_is_identical(clients: aws.Clients, tmp_path: Path) -> None:
    image = tiny_image(tmp_path / "registry", tmp_path / "blobs", config=CONFIG + "metrics: [score]\n")
    digest = image.manifest_descriptor().digest
    write_model(tmp_path / "model", MODEL, METRICS)
    write_model_archive(tmp_path / "model", tmp_path / "model.tar.gz")
    clients.s3.upload_file(str(tmp_path / "model.tar.gz"), BUCKET, "models/tiny-aws/output/model.tar.gz")
    describe = {
        "TrainingJobName": "tiny-aws",
        "TrainingJobStatus": "Completed",
        "AlgorithmSpecification": {"TrainingImage": f"127.0.0.1:9/tiny@{digest}"},
        "HyperParameters": {"scale": "2.0"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": TRAIN}}}],
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/models/tiny-aws/output/model.tar.gz"},
        # NB: what moto reports for every job, besides the pipeline's own metric
        "FinalMetricDataList": [
            {"MetricName": k, "Value": val} for k, val in {**METRICS, "train:progress": 100.0}.items()
        ],
    }
    store = Store(tmp_path / "lineage")
    pin = listing_checksum(clients.s3, TRAIN)
    parent = store.put(
        make_record(
            "publish",
            ADDRESS,
            "2026-11-30T00:00:00Z",
            job={"name": "tiny-aws", "status": "Completed"},
            data=[{"name": "train", "uri": TRAIN, "checksum": pin, "pin": "s3-listing"}],
        )
    )
    found = resolve("tiny-aws", tmp_path / "jobs", store, describe=lambda name: describe)
    assert found.data == {"train": pin} and found.record_id == parent
    # NB: the image as if pulled before: the registry (port 9) is never asked
    write_layout(image, tmp_path / "cache" / "replay" / "images" / digest.split(":")[1], "replay")
    result = replay(
        found,
        local_root=tmp_path / "local",
        cache_dir=tmp_path / "cache",
        store=store,
        run=FakeRun(),
        stream=io.StringIO(),
        fetch_model=aws.model_fetcher(clients),
        fetch_data=aws.data_fetcher(clients, tmp_path / "cache"),
    )
    assert result.verdict.outcome == v.IDENTICAL, result.verdict.text()
    assert "job metrics the pipeline does not define were not compared: train:progress" in result.verdict.notes
    assert not any("no final metrics" in n for n in result.verdict.notes)  # score was compared
    assert result.record_id is not None
    assert store.get(result.record_id).get("parents") == [parent]
