from __future__ import annotations

import pytest

from mlbuild.runtime.config import load_config, parse_config
from mlbuild.runtime.errors import ConfigError

GOOD = """
hyperparameters:
  learning_rate: 0.1
  depth: {type: int, default: 3, min: 1, max: 8}
  loss: {type: str, default: log_loss, choices: [log_loss, hinge]}
  verbose: false
channels:
  train:
    s3: s3://bucket/train/
    content_type: text/csv
  validation: {}
sagemaker:
  role: arn:aws:iam::123456789012:role/Training
  instance_type: ml.c5.xlarge
  instance_count: 2
  output_path: s3://bucket/models/
  subnets: [subnet-1]
  security_group_ids: [sg-1]
"""


def test_parses_typed_hyperparameters_channels_and_job() -> None:
    config = parse_config(GOOD, "p.yaml")
    assert config.defaults == {"learning_rate": 0.1, "depth": 3, "loss": "log_loss", "verbose": False}
    assert [h.type for h in config.hyperparameters] == ["float", "int", "str", "bool"]
    assert config.hyperparameter("depth").max == 8
    train, validation = config.channels
    assert (train.name, train.local, train.s3, train.content_type) == (
        "train",
        "train",
        "s3://bucket/train/",
        "text/csv",
    )
    assert (validation.local, validation.s3, validation.input_mode) == ("validation", None, "File")
    assert config.sagemaker.instance_count == 2 and config.sagemaker.subnets == ("subnet-1",)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hyperparameters: [1, 2", "p.yaml: malformed YAML at line 1"),
        ("hyperparamters: {}", "p.yaml: `hyperparamters`: unknown key. Fix: did you mean `hyperparameters`?"),
        ("- 1", "p.yaml: expected a mapping, got list"),
        (
            "hyperparameters: {depth: {type: int, default: 2.5}}",
            "`hyperparameters.depth.default`: expected int, got float 2.5",
        ),
        (
            "hyperparameters: {depth: {type: integer, default: 2}}",
            "`hyperparameters.depth.type`: expected one of int, float, bool, str",
        ),
        ("hyperparameters: {depth: {type: int}}", "`hyperparameters.depth.default`: missing"),
        ("hyperparameters: {depth: {type: int, default: 9, max: 8}}", "'depth' is 9, above its max 8.0"),
        ("hyperparameters: {depth: [1]}", "`hyperparameters.depth`: expected a default value"),
        ("hyperparameters: {2bad: 1}", "`hyperparameters.2bad`: not a valid hyperparameter name"),
        ("channels: {train: {s3: http://x}}", "`channels.train.s3`: expected an s3:// URI"),
        (
            "channels: {train: {local: ../elsewhere}}",
            "`channels.train.local`: '../elsewhere' leaves the sample data folder",
        ),
        (
            "channels: {train: {input_mode: Stream}}",
            "`channels.train.input_mode`: expected one of File, Pipe, FastFile",
        ),
        (
            "channels: {train: {contenttype: x}}",
            "`channels.train.contenttype`: unknown key. Fix: did you mean `content_type`?",
        ),
        ("sagemaker: {role: admin}", "`sagemaker.role`: expected an IAM role ARN"),
        ("sagemaker: {instance_type: m5.large}", "`sagemaker.instance_type`: expected an ml.* instance type"),
        ("sagemaker: {instance_count: 0}", "`sagemaker.instance_count`: must be between 1 and 1000, got 0"),
        ("sagemaker: {instance_count: '2'}", "`sagemaker.instance_count`: expected int, got str '2'"),
        ("sagemaker: {subnets: [a]}", "VPC config needs both `subnets` and `security_group_ids`"),
        (
            "sagemaker: {spot: true, max_wait_seconds: 10}",
            "`sagemaker.max_wait_seconds`: must be at least max_runtime_seconds",
        ),
        # managed spot needs checkpoints, and the wait covers the runtime
        ("sagemaker: {spot: true}", "`sagemaker.checkpoint_s3_uri`: missing, but `spot: true`"),
        (
            "sagemaker: {spot: true, max_runtime_seconds: 7200, max_wait_seconds: 3600, checkpoint_s3_uri: 's3://bucket/c/'}",
            "`sagemaker.max_wait_seconds`: must be at least max_runtime_seconds (3600 < 7200)",
        ),
        # malformed S3 URIs and bucket names, caught before SageMaker sees them
        ("sagemaker: {output_path: 's3://'}", "`sagemaker.output_path`: 's3://' names no bucket"),
        (
            "sagemaker: {output_path: 's3://My_Bucket/m/'}",
            "'My_Bucket' in 's3://My_Bucket/m/' is not a valid S3 bucket name",
        ),
        ("sagemaker: {checkpoint_s3_uri: 's3://a..b/c'}", "`sagemaker.checkpoint_s3_uri`: 'a..b' in"),
        ("channels: {train: {s3: 's3://192.168.1.1/x'}}", "`channels.train.s3`: '192.168.1.1' in"),
        (
            "sagemaker: {volume_size_gb: 99999999999999999999}",
            "`sagemaker.volume_size_gb`: must be between 1 and 16384",
        ),
        ("sagemaker: {max_runtime_seconds: 2419201}", "`sagemaker.max_runtime_seconds`: must be between 1 and 2419200"),
        ("sagemaker: {max_wait_seconds: 0}", "`sagemaker.max_wait_seconds`: must be between 1 and 2419200"),
        (
            "hyperparameters: {lr: {type: float, default: .nan, min: 0, max: 1}}",
            "`hyperparameters.lr.default`: expected a finite number, got nan",
        ),
        ("hyperparameters: {lr: .inf}", "`hyperparameters.lr`: expected a finite number, got inf"),
        (
            "hyperparameters: {lr: {type: float, default: 1, max: .nan}}",
            "`hyperparameters.lr.max`: expected a finite number",
        ),
        (
            "hyperparameters: {d: {type: int, default: 3, min: 5, max: 1}}",
            "`hyperparameters.d.min`: 5.0 is above max 1.0",
        ),
        ("hyperparameters:\n  depth: 3\n  depth: 5\n", "key 'depth' appears twice in one mapping (lines 2 and 3)"),
        ("sagemaker: {role: x}\nsagemaker: {}\n", "key 'sagemaker' appears twice"),
        # a bad region is a config error, not botocore's InvalidRegionError traceback
        ("sagemaker: {region: 'not a region!'}", "`sagemaker.region`: 'not a region!' is not an AWS region code"),
    ],
)
def test_bad_config_names_file_key_and_fix(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "p.yaml")
    assert expected in str(e.value)
    assert str(e.value).startswith("p.yaml")


def test_empty_file_is_a_pipeline_without_hyperparameters_or_channels() -> None:
    config = parse_config("", "p.yaml")
    assert config.hyperparameters == () and config.channels == ()
    assert config.sagemaker.instance_type == "ml.m5.large"


@pytest.mark.parametrize(
    "make, expected",
    [
        (
            lambda p: p.write_bytes(b"hyperparameters: {lr: 0.1}\n# caf\xe9\n"),
            "not UTF-8 text (byte 32 is 0xe9). Fix: save the config file as UTF-8.",
        ),
        (lambda p: p.mkdir(), "is a directory, not a config file"),
        (lambda p: None, "config file not found"),
    ],
)
def test_an_unreadable_config_file_is_a_config_error(tmp_path, make, expected) -> None:
    """Issue 11 item 9: a non-UTF-8 file and a directory were tracebacks."""
    path = tmp_path / "pipeline.yaml"
    make(path)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(str(path)) and expected in str(e.value)
