from __future__ import annotations

import re

import pytest

from mlbuild.runtime import hyperparameters, metrics
from mlbuild.runtime.errors import ConfigError, HyperparameterError, UserError
from mlbuild.sagemaker import tags
from mlbuild.sagemaker.conftest import (
    CONFIG_SOURCE,
    CONFIG_TEXT,
    DIGEST,
    IMAGE_URI,
    OTHER_DIGEST,
    make_config,
    request_inputs,
)
from mlbuild.sagemaker.job_request import CHECKPOINT_LOCAL_PATH, build_request, image_digest_of


def build(**overrides):
    config = overrides.pop("config", None) or make_config()
    return build_request(config, **request_inputs(config=config, **overrides))


def test_full_request() -> None:
    request = build()
    assert "TrainingJobName" not in request
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE_URI,
        "TrainingInputMode": "File",
        "MetricDefinitions": metrics.metric_definitions(["validation:auc", "validation:log_loss"]),
    }
    assert request["RoleArn"] == "arn:aws:iam::123456789012:role/MLBuildSageMakerTraining"
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://demo-bucket/demo/models/"}
    assert request["InputDataConfig"] == [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://demo-bucket/demo/data/train/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
            "ContentType": "text/csv",
        },
        {
            "ChannelName": "validation",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://demo-bucket/demo/data/validation/",
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
            "InputMode": "FastFile",
        },
    ]
    assert request["HyperParameters"] == {
        "early_stopping": "false",
        "learning_rate": "0.05",
        "loss": '"log_loss"',
        "max_depth": "4",
    }
    assert tags.tags_to_dict(request["Tags"]) == {
        tags.PIPELINE_ADDRESS: "src/python/pipelines/demo:train",
        tags.GIT_SHA: "0123456789abcdef0123456789abcdef01234567",
        tags.PEX_SHA256: "ef" * 32,
        tags.IMAGE_DIGEST: DIGEST,
    }
    for key in ("EnableManagedSpotTraining", "CheckpointConfig", "VpcConfig"):
        assert key not in request


def test_spot_checkpoint_and_vpc() -> None:
    text = CONFIG_TEXT.replace(
        "  region: us-east-1\n",
        "  region: us-east-1\n  spot: true\n  checkpoint_s3_uri: s3://demo-bucket/ckpt/\n"
        "  subnets: [subnet-1, subnet-2]\n  security_group_ids: [sg-1]\n",
    )
    request = build(config=make_config(text))
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 7200}
    assert request["CheckpointConfig"] == {"S3Uri": "s3://demo-bucket/ckpt/", "LocalPath": CHECKPOINT_LOCAL_PATH}
    assert CHECKPOINT_LOCAL_PATH == "/opt/ml/checkpoints"
    assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]}

    longer = make_config(text.replace("  spot: true\n", "  spot: true\n  max_wait_seconds: 9000\n"))
    assert build(config=longer)["StoppingCondition"]["MaxWaitTimeInSeconds"] == 9000


def test_tag_and_digest_forms() -> None:
    # A tag next to the digest is dropped; the digest alone names the image.
    tagged = IMAGE_URI.replace("@", ":v3@")
    assert build(image_uri=tagged)["AlgorithmSpecification"]["TrainingImage"] == IMAGE_URI
    assert build(image_digest=DIGEST)["AlgorithmSpecification"]["TrainingImage"] == IMAGE_URI
    # A registry with a port is not a tag.
    local = f"localhost:5000/demo@{DIGEST}"
    assert build(image_uri=local)["AlgorithmSpecification"]["TrainingImage"] == local
    assert image_digest_of(build()) == DIGEST


def _without(line: str) -> str:
    assert line in CONFIG_TEXT
    return CONFIG_TEXT.replace(line, "")


CONFIG_ERRORS = [
    (
        "no role",
        _without("  role: arn:aws:iam::123456789012:role/MLBuildSageMakerTraining\n"),
        ["`sagemaker.role`", "add `role: arn:aws:iam::"],
    ),
    (
        "no output path",
        _without("  output_path: s3://demo-bucket/demo/models/\n"),
        ["`sagemaker.output_path`", "add `output_path: s3://"],
    ),
    (
        "no channel s3",
        _without("    s3: s3://demo-bucket/demo/data/train/\n"),
        ["`channels.train.s3`", "under `channels.train:`"],
    ),
    (
        "all at once",
        CONFIG_TEXT.replace("  role: arn:aws:iam::123456789012:role/MLBuildSageMakerTraining\n", "").replace(
            "  output_path: s3://demo-bucket/demo/models/\n", ""
        ),
        ["2 problems", "`sagemaker.role`", "`sagemaker.output_path`"],
    ),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS])
def test_config_errors(text: str, expected: list) -> None:
    with pytest.raises(ConfigError) as e:
        build(config=make_config(text))
    message = str(e.value)
    assert message.startswith(CONFIG_SOURCE)
    assert "Fix:" in message
    for fragment in expected:
        assert fragment in message


INPUT_ERRORS = [
    (
        "tag-only image",
        dict(image_uri="123.dkr.ecr.us-east-1.amazonaws.com/demo:latest"),
        UserError,
        "not pinned by digest",
    ),
    ("bad digest", dict(image_uri="repo@sha256:xyz"), UserError, "not a sha256 digest"),
    ("no repository", dict(image_uri=f"@{DIGEST}"), UserError, "not pinned by digest"),
    ("digest mismatch", dict(image_digest=OTHER_DIGEST), UserError, "does not match"),
    ("bad image digest", dict(image_digest="sha256:short"), UserError, "--image-digest"),
    ("empty address", dict(pipeline_address=""), UserError, "--pipeline-address"),
    ("bad git sha", dict(git_sha="main"), UserError, "--git-sha"),
    ("bad pex sha", dict(pex_sha256="abc"), UserError, "--pex-sha256"),
    ("unknown hyperparameter", dict(hyperparameter_values={"max_dept": 3}), HyperparameterError, "max_dept"),
    ("huge hyperparameter", dict(hyperparameter_values={"loss": "x" * 3000}), HyperparameterError, "2500"),
    ("too many metrics", dict(metric_names=[f"m{i}" for i in range(41)]), UserError, "at most 40"),
]


@pytest.mark.parametrize("overrides,error,fragment", [c[1:] for c in INPUT_ERRORS], ids=[c[0] for c in INPUT_ERRORS])
def test_input_errors(overrides: dict, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as e:
        build(**overrides)
    assert fragment in str(e.value)


def test_hyperparameters_round_trip_through_decode() -> None:
    config = make_config()
    values = {"learning_rate": 0.125, "max_depth": 7, "loss": "squared_error", "early_stopping": True}
    request = build(config=config, hyperparameter_values=values)
    assert request["HyperParameters"] == hyperparameters.encode(values)
    assert hyperparameters.decode(config, request["HyperParameters"], "test") == values
    # Values left out fall back to the config defaults on the container side, too.
    partial = build(config=config, hyperparameter_values={"max_depth": 9})
    assert hyperparameters.decode(config, partial["HyperParameters"], "test") == {**config.defaults, "max_depth": 9}


@pytest.mark.parametrize("value", [0.8123, 1e-07, -3.5, 42.0, float("nan"), float("inf")])
def test_metric_regexes_match_runtime_output(value: float) -> None:
    definitions = build(metric_names=["validation:auc", "train:rows"])["AlgorithmSpecification"]["MetricDefinitions"]
    assert [d["Name"] for d in definitions] == ["train:rows", "validation:auc"]
    line = f"INFO some prefix {metrics.format_line('validation:auc', value)} trailing"
    matches = [(d["Name"], re.search(d["Regex"], line)) for d in definitions]
    found = {name: m.group(1) for name, m in matches if m}
    assert list(found) == ["validation:auc"]
    assert float(found["validation:auc"]) == pytest.approx(value, nan_ok=True)


SPOT_MULTI = CONFIG_TEXT.replace(
    "  region: us-east-1\n",
    "  region: us-east-1\n  spot: true\n  max_wait_seconds: 10800\n  checkpoint_s3_uri: s3://demo-bucket/ckpt/\n",
)


def test_multi_instance_spot_request_with_checkpoints_and_shards() -> None:
    """Issue 12: the request SageMaker needs for a 2-instance spot job that resumes from checkpoints."""
    request = build(config=make_config(SPOT_MULTI))
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 10800}
    assert request["CheckpointConfig"] == {"S3Uri": "s3://demo-bucket/ckpt/", "LocalPath": "/opt/ml/checkpoints"}
    sources = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in request["InputDataConfig"]
    }
    assert sources == {"train": "FullyReplicated", "validation": "ShardedByS3Key"}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"instance_type": "ml.x9.large"}, "`sagemaker.instance_type`: unknown instance family 'x9'"),
        ({"instance_type": "ml.p3.large"}, "`sagemaker.instance_type`: 'ml.p3.large' is no p3 size"),
        ({"spot": True, "checkpoint_s3_uri": None}, "`sagemaker.checkpoint_s3_uri`: missing, but `spot: true`"),
        (
            {"spot": True, "checkpoint_s3_uri": "s3://b0b/c/", "max_wait_seconds": 60},
            "`sagemaker.max_wait_seconds`: must be at least max_runtime_seconds (60 < 7200)",
        ),
    ],
)
def test_bad_multi_host_and_spot_settings_are_refused(change: dict, expected: str) -> None:
    """Configs built in code skip parse_config's checks; build_request checks again, naming key and fix."""
    from dataclasses import replace

    config = make_config()
    config = replace(config, sagemaker=replace(config.sagemaker, **change))
    with pytest.raises(ConfigError) as e:
        build(config=config)
    assert expected in str(e.value) and "Fix:" in str(e.value)


@pytest.mark.parametrize("git_sha", ["0123abc", "0123abc-dirty", "f" * 40 + "-dirty", "unknown"])
def test_the_revisions_the_plugin_passes_are_accepted(git_sha: str) -> None:
    assert git_sha_ok(git_sha)


@pytest.mark.parametrize("git_sha", ["main", "0123abc-clean", "-dirty", "UNKNOWN", "0123"])
def test_other_revisions_are_refused(git_sha: str) -> None:
    assert not git_sha_ok(git_sha)


def git_sha_ok(git_sha: str) -> bool:
    from mlbuild.sagemaker import job_request

    return bool(job_request._GIT_SHA.match(git_sha))


def test_the_configs_metrics_are_always_scraped_and_metric_names_only_add() -> None:
    """`pants publish` passes no metric names and `mlbuild-sagemaker submit` its --metric: the same
    pipeline gets the same definitions either way."""
    from mlbuild.sagemaker.conftest import CONFIG_TEXT

    config = make_config(CONFIG_TEXT + "metrics: [validation:auc]\n")

    def names(**overrides) -> list:
        request = build(config=config, **overrides)
        return [d["Name"] for d in request["AlgorithmSpecification"]["MetricDefinitions"]]

    assert names(metric_names=[]) == ["validation:auc"]
    assert names(metric_names=["validation:auc"]) == ["validation:auc"]
    assert names(metric_names=["train:rows"]) == ["train:rows", "validation:auc"]
