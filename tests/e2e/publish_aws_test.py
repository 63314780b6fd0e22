"""`./pants publish` to the AWS backend through Pants, then the job replayed from S3 and the
registry, against stand-ins: moto (a real HTTP server: ECR's API, SageMaker, S3) and a real
`docker-registry` with htpasswd auth standing in for the ECR registry host.

What it proves that the in-process tests (publish/aws_integration_test.py,
replay/aws_integration_test.py) cannot: Pants runs publish in an empty environment, so the
AWS variables and endpoint URLs reach it only if the plugin forwards them (and the stand-in
registry host only through `--mlbuild-ecr-registry`); the image pushed is the one
`pants package` built; `lineage fetch s3://…` finds the record publish put beside the model;
and `pants mlbuild replay JOB --aws` pulls that image by digest with the registry's
credentials, pulls the S3 channels against the pins, trains in the container runner and
compares with the job's model.

moto runs no job: the test puts the model artifact where SageMaker would, trained by
`pants run` on the same data the channels hold (the README promises that a local run and the
image train the same bytes; package_churn_test checks it on its own).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest

from e2e.repo import SANDBOX, Result, commit_copy, copy_repo, pants
from e2e.run_churn_test import completed_run
from mlbuild.publish.model_archive import write_model_archive
from mlbuild.publish.testing import Registry, ecr_basic_credentials, manifest_exists, registry_tags, serve_registry
from mlbuild.sagemaker.moto_server import moto_server
from mlbuild.sagemaker.tags import tags_to_dict
from mlbuild.tools_required import require_tool

CHURN = "src/python/pipelines/churn:train"
DIST = Path("dist/src.python.pipelines.churn")
REPORT = Path("dist/mlbuild/publish/src.python.pipelines.churn/train/report.json")
# From src/python/pipelines/churn/pipeline.yaml: the role's account, the channels, the output path.
ACCOUNT = "123456789012"
BUCKET = "mlbuild-example"
CHANNELS = {"train": "churn/data/train/", "validation": "churn/data/validation/"}
MODELS = f"s3://{BUCKET}/churn/models/"
REPOSITORY = "mlbuild/churn"
COMPRESSOR_ANNOTATION = "org.mlbuild.layer.compressor"

pytestmark = [
    require_tool("docker-registry", "docker-registry"),
    require_tool("htpasswd", "apache2-utils"),
    require_tool("bwrap", "bubblewrap"),  # the replay runs the image
]


@dataclass(frozen=True)
class StandIns:
    endpoint: str  # moto
    registry: Registry  # the ECR registry host's stand-in
    env: Dict[str, Optional[str]]  # what ./pants runs with: set, or removed when None

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIns]:
    home = tmp_path_factory.mktemp("aws-home")
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as mp:
        env: Dict[str, Optional[str]] = {
            "AWS_ENDPOINT_URL": endpoint,  # NB: boto3 honours it for every service
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "no-config"),  # NB: keep the developer's ~/.aws out
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        for name, value in env.items():
            if value is not None:
                mp.setenv(name, value)
        # NB: moto's ECR token is a pure function of the account, so the htpasswd written
        # now matches what publish fetches through GetAuthorizationToken later.
        user, password = ecr_basic_credentials(account=ACCOUNT)
        with serve_registry(tmp_path_factory.mktemp("ecr-stand-in"), user, password) as registry:
            # NB: a docker login to the stand-in, for the replay's pull (ECR hosts get a token instead)
            docker = tmp_path_factory.mktemp("docker-config")
            auth = base64.b64encode(f"{user}:{password}".encode()).decode()
            (docker / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
            env.update({"MLBUILD_ECR_REGISTRY": None, "DOCKER_CONFIG": str(docker)})
            stand_ins = StandIns(endpoint, registry, env)
            s3 = stand_ins.client("s3")
            s3.create_bucket(Bucket=BUCKET)
            sample = SANDBOX / "src/python/pipelines/churn/data"
            for channel, prefix in CHANNELS.items():
                for path in sorted((sample / channel).iterdir()):
                    s3.upload_file(str(path), BUCKET, prefix + path.name)
            yield stand_ins


@pytest.fixture(scope="module")
def published(aws: StandIns, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A committed copy of the repo, packaged, then published to the stand-ins through Pants."""
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    # NB: a user's checkout; publish tags the job with the commit (see the report: not a git
    # repository, or a dirty tree, makes the AWS publish fail today)
    sha = commit_copy(repo)
    packaged = pants(repo, "package", CHURN, env=aws.env)
    assert packaged.exit_code == 0, packaged.stderr[-4000:]
    since = aws.registry.log_size()
    result = publish(repo, aws)
    assert result.exit_code == 0, result.stderr[-4000:]
    return repo, json.loads((repo / REPORT).read_text()), aws.registry.uploaded_digests(since), sha


def publish(repo: Path, aws: StandIns) -> Result:
    return pants(
        repo,
        "--mlbuild-publish-backend=aws",
        f"--mlbuild-ecr-registry={aws.registry.host}",
        "publish",
        CHURN,
        env=aws.env,
    )


def image_summary(repo: Path) -> dict:
    return json.loads((repo / DIST / "train.image.json").read_text())


def test_publish_through_pants_pushes_the_packaged_image_to_the_stand_in_and_submits_the_job(
    aws: StandIns, published
) -> None:
    repo, report, uploaded, sha = published
    digest = image_summary(repo)["manifest_digest"]
    # --mlbuild-ecr-registry and the endpoint reached the publish process: the image went to the
    # stand-in (not to <account>.dkr.ecr...), with the token moto's ECR API handed out.
    image_uri = f"{aws.registry.host}/{REPOSITORY}@{digest}"
    assert report["backend"] == "aws" and report["reused"] is False and report["image_uri"] == image_uri
    assert manifest_exists(aws.registry, REPOSITORY, digest)
    assert registry_tags(aws.registry, REPOSITORY)  # the content-hash tag
    assert uploaded, "the registry's access log shows no blob uploaded by the publish"
    (repository,) = aws.client("ecr").describe_repositories()["repositories"]
    assert repository["repositoryName"] == REPOSITORY and repository["imageTagMutability"] == "IMMUTABLE"
    described = aws.client("sagemaker").describe_training_job(TrainingJobName=report["job_name"])
    assert described["AlgorithmSpecification"]["TrainingImage"] == image_uri
    assert [c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]] == [
        f"s3://{BUCKET}/{prefix}" for prefix in CHANNELS.values()
    ]
    assert described["HyperParameters"]["max_depth"] == "4" and described["RoleArn"].startswith(
        f"arn:aws:iam::{ACCOUNT}:"
    )
    assert report["model"]["uri"] == f"{MODELS}{report['job_name']}/output/model.tar.gz"
    tags = tags_to_dict(aws.client("sagemaker").list_tags(ResourceArn=described["TrainingJobArn"])["Tags"])
    assert sha in tags.values() and digest in tags.values(), tags  # provenance tags: the commit and the image


def test_every_layer_of_the_real_build_names_the_compressor_that_wrote_it(published) -> None:
    repo, _, _, _ = published
    layers = image_summary(repo)["layers"]
    # NB: isal is in the lock and a dependency of mlbuild.oci: `auto` must have used it, not
    # silently fallen back to zlib (then the isal reproducibility case would be a second zlib run).
    assert layers and all(layer["annotations"][COMPRESSOR_ANNOTATION].startswith("isal-") for layer in layers), layers


def test_publishing_again_uploads_nothing_and_submits_nothing(aws: StandIns, published) -> None:
    repo, report, _, _ = published
    since = aws.registry.log_size()
    jobs_before = aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    again = publish(repo, aws)
    assert again.exit_code == 0, again.stderr[-4000:]
    second = json.loads((repo / REPORT).read_text())
    assert (second["job_name"], second["reused"]) == (report["job_name"], True)
    assert aws.registry.uploaded_digests(since) == []  # the registry's own account
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == jobs_before  # nothing submitted


def lineage(repo: Path, env: Dict[str, Optional[str]], *args: str) -> subprocess.CompletedProcess:
    """`mlbuild VERB` from the copied sources, with the stand-ins' AWS environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLBUILD_LINEAGE", "AWS_"))}
    environ.update({k: v for k, v in env.items() if v is not None})
    environ["PYTHONPATH"] = str(repo / "src/python")
    return subprocess.run(
        [sys.executable, "-m", "mlbuild.commands.cli", *args], cwd=repo, env=environ, capture_output=True, text=True
    )


def test_lineage_fetch_of_the_s3_output_prefix_finds_the_job_in_a_fresh_store(
    aws: StandIns, published, tmp_path: Path
) -> None:
    repo, report, _, _ = published
    fresh = tmp_path / "fresh-store"
    fetched = lineage(repo, aws.env, "fetch", "--lineage-dir", str(fresh), MODELS)
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    # NB: `<id>  <kind> <pipeline>` a line: the job's publish record among what publish put beside the model
    kinds = [line.split()[1] for line in fetched.stdout.splitlines() if line.strip()]
    assert "publish" in kinds and f"mlbuild: {len(kinds)} record(s) from {MODELS}" in fetched.stderr, (
        fetched.stdout,
        fetched.stderr,
    )
    found = lineage(repo, aws.env, "inspect", "--lineage-dir", str(fresh), report["job_name"], "--json")
    assert found.returncode == 0, found.stderr[-3000:]
    assert report["job_name"] in found.stdout and image_summary(repo)["manifest_digest"] in found.stdout
    missing = lineage(repo, aws.env, "fetch", "--lineage-dir", str(tmp_path / "other"), "s3://no-such-bucket/models/")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr[-3000:]
    assert "Fix: check the URI" in missing.stderr and not (tmp_path / "other").exists()


def replay(repo: Path, aws: StandIns, cache: Path, job: str) -> tuple:
    result = pants(repo, "mlbuild", "replay", job, "--aws", "--json", "--cache-dir", str(cache), env=aws.env)
    assert "{" in result.stdout, result.stderr[-4000:]
    return result.exit_code, json.loads(result.stdout[result.stdout.index("{") :]), result.stderr


def test_the_job_replays_from_s3_and_the_registry_and_is_identical(aws: StandIns, published, tmp_path: Path) -> None:
    repo, report, _, _ = published
    # What SageMaker would have left: the model trained on the channels' data, as model.tar.gz.
    run = completed_run(repo, pants(repo, "run", CHURN, "--", "--force", env=aws.env))
    archive = tmp_path / "model.tar.gz"
    write_model_archive(run / "model", archive)
    bucket, key = report["model"]["uri"][len("s3://") :].split("/", 1)
    aws.client("s3").upload_file(str(archive), bucket, key)

    cache = tmp_path / "cache"
    code, verdict, err = replay(repo, aws, cache, report["job_name"])
    assert (code, verdict["outcome"]) == (0, "identical"), (
        verdict.get("metrics"),
        verdict.get("model_files"),
        verdict["notes"],
        err[-3000:],
    )
    assert (
        verdict["job"] == report["job_name"] and verdict["image_pulled"] is True and verdict["image_fetched_bytes"] > 0
    )
    assert any("byte-identical" in note for note in verdict["notes"]), verdict["notes"]
    # moto reports only its own `train:progress`, none of the pipeline's metrics: the verdict says
    # so, and that it compared the model files only
    assert "job metrics the pipeline does not define were not compared: train:progress" in verdict["notes"], verdict[
        "notes"
    ]
    assert any("no final metrics" in note for note in verdict["notes"]), verdict["notes"]
    pulled = sorted(p.name for p in (cache / "replay" / "data").glob("*/*") if p.is_dir())
    assert pulled == sorted(CHANNELS), pulled

    # A second replay pulls no image and downloads no data (both found in the cache).
    code, again, err = replay(repo, aws, cache, report["job_name"])
    assert (code, again["outcome"], again["image_pulled"]) == (0, "identical", False), err[-4000:]
    assert sorted(p.name for p in (cache / "replay" / "data").glob("*/*") if p.is_dir()) == pulled
    print(f"replay seconds: first {verdict['seconds']}, second {again['seconds']}")

    # The replay is recorded under the job's record in the repo's store.
    inspect = lineage(repo, aws.env, "inspect", report["job_name"], "--json")
    assert inspect.returncode == 0 and again["record_id"] in inspect.stdout, inspect.stderr[-3000:]


def test_a_changed_channel_is_named_and_nothing_is_run(aws: StandIns, published, tmp_path: Path) -> None:
    repo, report, _, _ = published
    s3 = aws.client("s3")
    # NB: order-proof: the pins are the publish record's, whatever ran before
    runs = repo / ".mlbuild/local/replays" / report["job_name"] / "runs"
    before = sorted(runs.iterdir()) if runs.is_dir() else []
    key = CHANNELS["validation"] + "late-arrival.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"customer_id\n1\n")
    try:
        result = pants(
            repo, "mlbuild", "replay", report["job_name"], "--aws", "--cache-dir", str(tmp_path / "cache"), env=aws.env
        )
    finally:
        s3.delete_object(Bucket=BUCKET, Key=key)
    assert result.exit_code == 2, (result.exit_code, result.stderr[-3000:])
    assert "channel 'validation'" in result.stderr and "changed since the job" in result.stderr, result.stderr[-3000:]
    assert not list(
        (tmp_path / "cache").glob("replay/data/*/validation")
    ), "a changed channel was pulled into the cache"
    assert (sorted(runs.iterdir()) if runs.is_dir() else []) == before, "the replay ran although the data changed"


# NB: last in the module: it publishes another image from an edited tree.
def test_a_dirty_tree_publishes_a_new_job_tagged_dirty(aws: StandIns, published) -> None:
    repo, report, _, sha = published
    pipeline = repo / "src/python/pipelines/churn/pipeline.py"
    text = pipeline.read_text()
    pipeline.write_text(text + "\n# an uncommitted edit\n")
    try:
        result = publish(repo, aws)
    finally:
        pipeline.write_text(text)
    assert result.exit_code == 0, result.stderr[-3000:]
    dirty = json.loads((repo / REPORT).read_text())
    assert dirty["git_sha"] == f"{sha}-dirty" and dirty["job_name"] != report["job_name"]
