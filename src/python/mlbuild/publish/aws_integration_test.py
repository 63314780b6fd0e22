"""`python -m mlbuild.publish --backend aws` end to end, in process, against stand-ins for AWS.

moto (a real HTTP server) answers ECR's API (CreateRepository, GetAuthorizationToken) and
SageMaker; a real CNCF registry (`docker-registry`) stands in for the ECR registry host via
MLBUILD_ECR_REGISTRY, with an htpasswd user/password equal to what moto's
GetAuthorizationToken hands out, so the ECR credential path is exercised for real. What was
uploaded is read twice: from mlbuild's own push line and from the registry's access log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import moto.server  # noqa: F401  (NB: locked; imported so Pants infers the dependency)
import pytest

from mlbuild.commands.cli import main as lineage_main
from mlbuild.oci.layout import read_layout
from mlbuild.publish.cli import main
from mlbuild.publish.testing import (
    Registry,
    ecr_basic_credentials,
    manifest_exists,
    registry_tags,
    serve_registry,
)
from mlbuild.registry import Credentials, content_tag, pull_to_layout
from mlbuild.registry.testing import make_layout
from mlbuild.sagemaker.moto_server import moto_server, reset_moto
from mlbuild.tools_required import cross_check_tool, require_tool

pytestmark = [
    require_tool("docker-registry", "docker-registry"),
    require_tool("htpasswd", "apache2-utils"),  # bcrypt entries
]

ACCOUNT = "123456789012"
ADDRESS = "src/python/pipelines/demo:train"
PEX_SHA256 = "ef" * 32
GIT_SHA = "0123456789abcdef0123456789abcdef01234567"
CONFIG = """\
hyperparameters:
  max_depth: {{type: int, default: 4, min: 1, max: 32}}
metrics: [validation:auc]
channels:
  train:
    s3: s3://bucket/data/train/
  validation:
    s3: s3://bucket/data/validation/
sagemaker:
  role: arn:aws:iam::{account}:role/T
  instance_type: ml.m5.large
  output_path: s3://bucket/models/
  region: us-east-1
  image_repository: {repository}
"""
_PUSH_LINE = re.compile(
    r"mlbuild: pushed (?P<uri>\S+): (?P<uploaded>\d+) blobs uploaded \((?P<uploaded_bytes>\d+) bytes\), "
    r"(?P<mounted>\d+) mounted \(\d+ bytes\), (?P<skipped>\d+) already present"
)


# --- fixtures: moto, then two registries whose htpasswd holds (or does not hold) moto's ECR token


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("aws-home")
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        for key, value in {
            "AWS_ENDPOINT_URL": endpoint,  # NB: boto3 honours it for every service (botocore >= 1.31)
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "no-config"),  # NB: keep the developer's ~/.aws out
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            mp.setenv(key, value)
        mp.delenv("MLBUILD_LINEAGE_DIR", raising=False)  # NB: no lineage records from tests
        yield endpoint


@pytest.fixture(scope="module")
def ecr_token(moto_endpoint: str) -> tuple[str, str]:
    # NB: moto's token is `base64("AWS:<account>-auth-token")`: a pure function of the
    # account, the same on every call, so an htpasswd written once keeps matching what
    # mlbuild fetches later. Checked here, so a moto that starts minting random passwords
    # fails loudly in the fixture instead of as a confusing 401 in the tests.
    first, second = ecr_basic_credentials(account=ACCOUNT), ecr_basic_credentials(account=ACCOUNT)
    assert first == second, f"moto's ECR password changed between calls: {first} vs {second}"
    assert first[0] == "AWS"
    return first


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, ecr_token: tuple[str, str]) -> Iterator[Registry]:
    with serve_registry(tmp_path_factory.mktemp("ecr-stand-in"), *ecr_token) as served:
        yield served


@pytest.fixture(scope="module")
def foreign_registry(tmp_path_factory: pytest.TempPathFactory, ecr_token: tuple[str, str]) -> Iterator[Registry]:
    """A registry that does not accept the ECR token: the user is the same, the password is not."""
    with serve_registry(tmp_path_factory.mktemp("foreign"), ecr_token[0], "not-the-ecr-token") as served:
        yield served


@pytest.fixture
def aws(moto_endpoint: str, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A fresh moto (no jobs, no repositories), with MLBUILD_ECR_REGISTRY at the stand-in."""
    reset_moto(moto_endpoint)
    monkeypatch.setenv("MLBUILD_ECR_REGISTRY", registry.host)
    upload_channel_data()
    return registry


def upload_channel_data(channels=("train", "validation")) -> None:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bucket")
    for channel in channels:
        s3.put_object(Bucket="bucket", Key=f"data/{channel}/rows.csv", Body=b"a,b\n1,2\n")


# --- helpers


def sagemaker():
    import boto3

    return boto3.client("sagemaker", region_name="us-east-1")


def ecr_repositories() -> list:
    import boto3

    return sorted(
        r["repositoryName"]
        for r in boto3.client("ecr", region_name="us-east-1").describe_repositories()["repositories"]
    )


def training_jobs() -> list:
    return sagemaker().list_training_jobs()["TrainingJobSummaries"]


def write_config(path: Path, repository: str, edit: Callable[[str], str] = lambda text: text) -> Path:
    path.write_text(edit(CONFIG.format(account=ACCOUNT, repository=repository)))
    return path


def layout_blobs(layout: Path) -> Dict[str, int]:
    """digest -> size of every blob the image's manifest names (config and layers)."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_text())
    return {d["digest"]: d["size"] for d in [manifest["config"], *manifest["layers"]]}


@dataclass
class Published:
    code: int
    out: str
    err: str
    report: Optional[dict]
    markdown: Optional[str]
    push: Optional[Dict[str, object]]  # mlbuild's `pushed ...` line, parsed
    registry_uploads: list  # blob digests the registry's access log shows uploaded (201) during the run


def publish(
    tmp_path: Path, layout: Path, config: Path, capsys: pytest.CaptureFixture[str], registry: Registry, name: str
) -> Published:
    report_dir = tmp_path / f"report-{name}"
    since = registry.log_size()
    code = main([
        "--backend", "aws", "--layout", str(layout), "--ref-name", "img:1", "--config", str(config),
        "--address", ADDRESS, "--data-dir", str(tmp_path / "unused-sample-data"),
        "--pex-sha256", PEX_SHA256, "--git-sha", GIT_SHA, "--report-dir", str(report_dir),
    ])  # fmt: skip
    out, err = capsys.readouterr()
    m = _PUSH_LINE.search(err)
    push = {k: (v if k == "uri" else int(v)) for k, v in m.groupdict().items()} if m else None
    report_json, report_md = report_dir / "report.json", report_dir / "report.md"
    return Published(
        code, out, err,
        json.loads(report_json.read_text()) if report_json.exists() else None,
        report_md.read_text() if report_md.exists() else None,
        push, registry.uploaded_digests(since),
    )  # fmt: skip


# --- the tests


def test_first_publish_pushes_the_image_and_submits_one_job(aws: Registry, tmp_path: Path, capsys) -> None:
    layout = make_layout(tmp_path / "v1")
    blobs = layout_blobs(layout)
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    repo = "mlbuild/first"

    run = publish(tmp_path, layout, write_config(tmp_path / "pipeline.yaml", repo), capsys, aws, "first")
    assert run.code == 0, run.err

    image_uri = f"{aws.host}/{repo}@{digest}"
    assert run.push == {
        "uri": image_uri,
        "uploaded": len(blobs),
        "uploaded_bytes": sum(blobs.values()),
        "mounted": 0,
        "skipped": 0,
    }
    assert sorted(run.registry_uploads) == sorted(blobs)  # the registry's own account of it
    assert registry_tags(aws, repo) == [content_tag(digest)]

    # ECR's side went through the ECR API: the repository exists, with immutable tags.
    import boto3

    (ecr_repo,) = boto3.client("ecr", region_name="us-east-1").describe_repositories(repositoryNames=[repo])[
        "repositories"
    ]
    assert ecr_repo["imageTagMutability"] == "IMMUTABLE"

    # Exactly one job, running the pushed image by digest.
    (job,) = training_jobs()
    report = run.report
    assert report is not None and report["reused"] is False and job["TrainingJobName"] == report["job_name"]
    described = sagemaker().describe_training_job(TrainingJobName=report["job_name"])
    assert described["AlgorithmSpecification"]["TrainingImage"] == image_uri == report["image_uri"]
    assert [c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]] == [
        "s3://bucket/data/train/", "s3://bucket/data/validation/",
    ]  # fmt: skip
    assert described["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/T"

    # The report: console and CloudWatch links, the model artifact, in the JSON and the Markdown.
    name = report["job_name"]
    assert (
        report["console_url"]
        == f"https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/{name}"
    )
    assert report["logs"].startswith(
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:"
    )
    assert name in report["logs"]
    assert report["model"]["uri"] == f"s3://bucket/models/{name}/output/model.tar.gz"
    # The lineage record sits next to the model, so a fresh clone can find it.
    import boto3

    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(
        Bucket="bucket", Prefix=f"models/{name}/mlbuild-lineage/"
    )
    (record_object,) = listed["Contents"]
    record_body = json.loads(
        boto3.client("s3", region_name="us-east-1").get_object(Bucket="bucket", Key=record_object["Key"])["Body"].read()
    )
    assert record_body["kind"] == "publish" and record_body["job"]["name"] == name
    # It pins the S3 data (by listing: key, ETag, size) and the resolved hyperparameters.
    assert [(c["name"], c["uri"]) for c in record_body["data"]] == [
        ("train", "s3://bucket/data/train/"),
        ("validation", "s3://bucket/data/validation/"),
    ]
    assert all(c["checksum"].startswith("sha256:") and c["pin"] == "s3-listing" for c in record_body["data"])
    assert record_body["hyperparameters"]
    # ...and a fresh clone (an empty store) finds it by the job name alone.
    code = lineage_main(["inspect", "--lineage-dir", str(tmp_path / "fresh"), name, "--json", "--region", "us-east-1"])
    found = json.loads(capsys.readouterr().out)
    published_id = record_object["Key"].rsplit("/", 1)[1][: -len(".json")]
    assert code == 0 and published_id in found["records"]
    # moto's job has ended by now, which the publish (no --wait) could not see: the lookup adds
    # a record of how it ended, derived from SageMaker alone (so the same on every machine).
    (ended,) = [r for rid, r in found["records"].items() if rid != published_id]
    assert record_body["job"].get("status") != "Completed"
    assert ended["job"]["status"] == "Completed" and ended["job"]["start"] and ended["job"]["end"]
    assert ended["parents"] == [published_id] and ended["pex"]["sha256"] == PEX_SHA256 and ended["metrics"]
    assert ended["pipeline"] == ADDRESS and ended["image"]["manifest_digest"] == digest
    # ...or by the job's ARN (the region comes from the ARN).
    code = lineage_main(["fetch", "--lineage-dir", str(tmp_path / "fresh-arn"), report["job_arn"]])
    assert code == 0 and sorted(capsys.readouterr().out.split()[::3]) == sorted(found["records"])
    # ...or by the full PEX sha256 or image digest: SageMaker Search on the job's mlbuild tags.
    for query in (PEX_SHA256, digest):
        code = lineage_main(
            [
                "inspect",
                "--lineage-dir",
                str(tmp_path / f"fresh-{query[-4:]}"),
                query,
                "--json",
                "--region",
                "us-east-1",
            ]
        )
        by_hash = json.loads(capsys.readouterr().out)
        assert code == 0 and list(by_hash["records"]) == list(found["records"]), query
    assert run.markdown is not None
    for link in (report["console_url"], report["logs"], report["model"]["uri"], image_uri):
        assert link in run.markdown
    assert run.out == run.markdown  # printed as written

    # The image reads back: with mlbuild's own pull, and with skopeo when it is installed.
    pulled = pull_to_layout(
        image_uri,
        tmp_path / "pulled",
        tmp_path / "cache",
        credentials=Credentials(aws.username, aws.password),
        progress=None,
        env={},
    )
    assert pulled.digest == digest
    assert read_layout(tmp_path / "pulled").manifest_descriptor().digest == digest
    skopeo = cross_check_tool("skopeo", "skopeo")
    if skopeo is not None:
        inspected = subprocess.run(
            [skopeo, "inspect", "--tls-verify=false", "--creds", aws.creds, f"docker://{image_uri}"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        assert json.loads(inspected.stdout)["Digest"] == digest


def test_republishing_the_same_artifact_uploads_nothing_and_submits_nothing(
    aws: Registry, tmp_path: Path, capsys
) -> None:
    layout = make_layout(tmp_path / "v1")
    config = write_config(tmp_path / "pipeline.yaml", "mlbuild/again")
    first = publish(tmp_path, layout, config, capsys, aws, "first")
    assert first.code == 0, first.err

    second = publish(tmp_path, layout, config, capsys, aws, "second")
    assert second.code == 0, second.err
    assert second.push is not None
    assert (second.push["uploaded"], second.push["uploaded_bytes"], second.push["skipped"]) == (
        0,
        0,
        len(layout_blobs(layout)),
    )
    assert second.registry_uploads == []
    assert first.report is not None and second.report is not None
    assert second.report["job_name"] == first.report["job_name"] and second.report["reused"] is True
    assert "already exists with the same image and hyperparameters" in second.err
    assert len(training_jobs()) == 1  # NB: moto would accept a duplicate; this is mlbuild's describe-first check


def test_a_code_only_change_uploads_only_the_new_layer(aws: Registry, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "pipeline.yaml", "mlbuild/change")
    v1, v2 = make_layout(tmp_path / "v1", text="def train(): return 1\n"), make_layout(
        tmp_path / "v2", text="def train(): return 2\n"
    )
    old, new = layout_blobs(v1), layout_blobs(v2)
    fresh = {d: size for d, size in new.items() if d not in old}
    # What changes: the top (code) layer, and the image config, which lists every layer's diff_id.
    new_manifest = json.loads(
        (v2 / "blobs/sha256" / json.loads((v2 / "index.json").read_text())["manifests"][0]["digest"][7:]).read_text()
    )
    assert sorted(fresh) == sorted([new_manifest["layers"][-1]["digest"], new_manifest["config"]["digest"]])
    assert new_manifest["layers"][0]["digest"] in old  # the base layer is shared

    assert publish(tmp_path, v1, config, capsys, aws, "v1").code == 0
    run = publish(tmp_path, v2, config, capsys, aws, "v2")
    assert run.code == 0, run.err
    assert run.push is not None
    assert (run.push["uploaded"], run.push["uploaded_bytes"]) == (len(fresh), sum(fresh.values()))
    assert run.push["skipped"] == len(new) - len(fresh)
    assert sorted(run.registry_uploads) == sorted(fresh)
    assert (
        run.report is not None and run.report["reused"] is False and len(training_jobs()) == 2
    )  # a new image is a new job


def _drop(line: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert line in text
        return text.replace(line, "")

    return edit


BAD_INPUTS = [
    # (id, config edit, layout (None: a folder that was never built), use the foreign registry, what the error names)
    (
        "wrong-registry-credentials",
        None,
        True,
        True,
        ["rejected the credentials for user 'AWS'", "MLBUILD_ECR_REGISTRY", "Fix:"],
    ),
    ("missing-role", _drop("  role: arn:aws:iam::123456789012:role/T\n"), True, False, ["`sagemaker.role`", "Fix:"]),
    (
        "instance-type-not-ml",
        lambda t: t.replace("ml.m5.large", "m5.large"),
        True,
        False,
        ["`sagemaker.instance_type`", "'m5.large'", "Fix:"],
    ),
    ("channel-without-s3", _drop("    s3: s3://bucket/data/train/\n"), True, False, ["`channels.train.s3`", "Fix:"]),
    ("layout-not-built", None, False, False, ["not an OCI image layout", "was not built", "./pants package", "Fix:"]),
    (
        "s3-data-missing",
        lambda t: t.replace("s3://bucket/data/validation/", "s3://bucket/data/nothing-here/"),
        True,
        False,
        ["`channels.validation.s3`", "no objects under s3://bucket/data/nothing-here/", "Fix:"],
    ),
]


@pytest.mark.parametrize("edit, built, foreign, fragments", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_are_clear_errors_and_publish_nothing(
    aws: Registry, foreign_registry: Registry, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch,
    edit: Optional[Callable[[str], str]], built: bool, foreign: bool, fragments: list,
) -> None:  # fmt: skip
    target = foreign_registry if foreign else aws
    monkeypatch.setenv("MLBUILD_ECR_REGISTRY", target.host)
    repo = "mlbuild/bad"
    layout = make_layout(tmp_path / "img") if built else tmp_path / "dist" / "never-built.oci"
    config = write_config(tmp_path / "pipeline.yaml", repo, edit or (lambda text: text))

    run = publish(tmp_path, layout, config, capsys, target, "bad")
    assert run.code == 2, run.err  # a user error
    for fragment in fragments:
        assert fragment in run.err, f"{fragment!r} not in:\n{run.err}"
    # Nothing half-published: no blob, manifest or tag in either registry, no job, no report.
    assert run.push is None and run.registry_uploads == []
    for registry in (aws, foreign_registry):
        assert registry_tags(registry, repo) == []
        if built:
            digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
            assert not manifest_exists(registry, repo, digest)
    assert training_jobs() == []
    assert run.report is None and run.markdown is None
    # Only a push that got as far as the registry has created the (empty) ECR repository.
    assert ecr_repositories() == ([repo] if foreign else [])


def test_the_typed_api_refuses_a_digest_that_is_not_the_layouts(aws: Registry, tmp_path: Path) -> None:
    from mlbuild.publish.aws import AwsBackend
    from mlbuild.publish.backend import Publication
    from mlbuild.runtime.config import load_config

    layout = make_layout(tmp_path / "typed")
    config = load_config(write_config(tmp_path / "pipeline.yaml", "mlbuild/typed"))
    # A digest that is not the layout's (the layout changed after the build): nothing is submitted.
    publication = Publication(
        layout, "img:1", config, ADDRESS, {}, GIT_SHA, PEX_SHA256, image_digest="sha256:" + "0" * 64
    )
    with pytest.raises(Exception, match="the build reported"):
        AwsBackend(os.environ).push(publication)
    assert training_jobs() == []


def _local_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mlbuild.container_run.testing import write_pipeline
    from mlbuild.publish import local
    from mlbuild.publish.testing import fake_run_image

    _, data_dir = write_pipeline(tmp_path / "sample")
    for channel in ("train", "validation"):  # NB: the AWS config's channels, as sample data
        (data_dir / channel).mkdir(parents=True, exist_ok=True)
        (data_dir / channel / "rows.csv").write_text("a,b\n1,2\n")
    monkeypatch.setattr(local, "run_image", fake_run_image(tmp_path / "trainings.txt"))
    return local.LocalBackend(data_dir, tmp_path / "local", log=lambda line: None)


def _aws_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mlbuild.publish.aws import AwsBackend
    from mlbuild.sagemaker.wait import FollowOptions

    return AwsBackend(os.environ, follow=FollowOptions(poll_seconds=0, logs=False), log=lambda line: None)


@pytest.mark.parametrize("make_backend", [_local_backend, _aws_backend], ids=["local", "aws"])
def test_both_backends_publish_through_the_same_calls(
    aws: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_backend
) -> None:
    """The `Backend` protocol, driven by the one workflow: the same publication, the same report
    type, previous metrics from the lineage store, the record kept there."""
    from mlbuild.job_report import REPORT_KEYS, JobReport, render_markdown
    from mlbuild.lineage.record import make_record
    from mlbuild.lineage.store import Store
    from mlbuild.publish import workflow
    from mlbuild.publish.backend import Publication
    from mlbuild.runtime.config import load_config

    layout = make_layout(tmp_path / "img")
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    config = load_config(write_config(tmp_path / "pipeline.yaml", "mlbuild/table"))
    publication = Publication(
        layout, "img:1", config, ADDRESS, {"max_depth": "6"}, GIT_SHA, PEX_SHA256, image_digest=digest
    )
    store = Store(tmp_path / "store")
    store.put(make_record("run", ADDRESS, "2020-01-01T00:00:00Z", job={"name": "earlier", "status": "Completed"},
                          metrics={"validation:auc": 0.5}))  # fmt: skip
    backend = make_backend(tmp_path, monkeypatch)
    written: list = []
    published = workflow.publish(backend, publication, store, write_report=written.append, save_record=store.put)

    report = published.report
    assert written == [report] and isinstance(report, JobReport) and report.backend == backend.name
    assert sorted(report.to_dict()) == list(REPORT_KEYS)
    assert report.status == "Completed" and report.image_digest == digest and report.reused is False
    assert report.pipeline_address == ADDRESS and report.git_sha == GIT_SHA and report.pex_sha256 == PEX_SHA256
    assert report.model and report.model["uri"] and report.metrics
    assert report.previous_metrics == {"validation:auc": 0.5} and "| previous |" in render_markdown(report)
    assert backend.exit_code(published.job) == 0
    (record,) = [r for r in store.records() if r.kind == "publish"]
    assert record.get("job.name") == report.job_name and record.get("image.manifest_digest") == digest

    # Published again: the same job, reused, and still compared with the run before it, not itself.
    again = workflow.publish(backend, publication, store, write_report=written.append, save_record=store.put).report
    assert again.job_name == report.job_name and again.reused is True
    assert again.previous_metrics == {"validation:auc": 0.5}

    # No lineage store: the report says so.
    alone = workflow.publish(backend, publication, None, write_report=written.append, save_record=lambda r: None).report
    assert alone.previous_metrics is None and "no lineage store" in render_markdown(alone)


def test_a_multi_instance_spot_job_is_submitted_with_checkpoints_and_sharded_data(
    aws: Registry, tmp_path: Path, capsys
) -> None:
    """What `pants publish` submits for a config like lightgbm_dist's (issue 12): 2 spot instances."""

    def multi_instance_spot(text: str) -> str:
        text = text.replace(
            "    s3: s3://bucket/data/train/\n", "    s3: s3://bucket/data/train/\n    distribution: ShardedByS3Key\n"
        )
        return text + (
            "  instance_count: 2\n  spot: true\n  max_runtime_seconds: 3600\n  max_wait_seconds: 7200\n"
            "  checkpoint_s3_uri: s3://bucket/checkpoints/\n"
        )

    config = write_config(tmp_path / "pipeline.yaml", "mlbuild/spot", multi_instance_spot)
    run = publish(tmp_path, make_layout(tmp_path / "img"), config, capsys, aws, "spot")
    assert run.code == 0, run.err
    assert run.report is not None
    described = sagemaker().describe_training_job(TrainingJobName=run.report["job_name"])
    assert described["ResourceConfig"]["InstanceCount"] == 2
    assert described["EnableManagedSpotTraining"] is True
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert described["CheckpointConfig"]["S3Uri"] == "s3://bucket/checkpoints/"
    distributions = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in described["InputDataConfig"]
    }
    assert distributions == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
