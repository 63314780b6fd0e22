"""The `CreateTrainingJob` request, built from a pipeline config and the built artifacts.

`build_request` is pure: no AWS calls, no clock. It validates everything SageMaker would
reject (and what mlbuild needs, such as a digest-pinned image) *before* anything is
pushed or submitted, reporting every problem at once with the file, the key and the fix.
The result has no `TrainingJobName`: the name is derived from it (see `job_name.py`).

Multi-instance jobs: `ResourceConfig.InstanceCount` is `sagemaker.instance_count`; a channel's
`distribution` becomes its `S3DataSource.S3DataDistributionType` (`ShardedByS3Key` splits the
objects across the instances). Managed spot: `EnableManagedSpotTraining`,
`StoppingCondition.MaxWaitTimeInSeconds` (>= MaxRuntimeInSeconds) and a `CheckpointConfig`
(required by mlbuild with spot). GPUs: SageMaker gives the container every GPU of the instance
type, so `SM_NUM_GPUS`/`ctx.num_gpus` on AWS is `instance_types.gpus_per_instance(instance_type)`
(e.g. ml.g5.12xlarge: 4); an instance family mlbuild does not know is refused here.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from mlbuild.runtime import contract, hyperparameters, instance_types, metrics
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import ConfigError, HyperparameterError, UserError
from mlbuild.sagemaker import tags
from mlbuild.sagemaker.image_ref import check_digest, parse_image_uri

# NB: SageMaker's own limits, checked here so a bad request fails before the push.
MAX_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_KEY = 256
MAX_HYPERPARAMETER_VALUE = 2500
MAX_METRIC_DEFINITIONS = 40
MAX_METRIC_REGEX = 500
MAX_CHANNELS = 20
# NB: the plugin passes `<sha>-dirty` for a tree with uncommitted changes and `unknown` outside git.
_GIT_SHA = re.compile(r"^(?:[0-9a-f]{7,64}(?:-dirty)?|unknown)$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CHECKPOINT_LOCAL_PATH = str(contract.SAGEMAKER_BASE_DIR / contract.CHECKPOINTS_DIR)

Problem = Tuple[str, str, str]  # (key, problem, fix)


def build_request(
    config: PipelineConfig,
    *,
    image_uri: str,
    hyperparameter_values: Mapping[str, Any],
    pipeline_address: str,
    git_sha: str,
    pex_sha256: str,
    metric_names: Sequence[str] = (),
    image_digest: Optional[str] = None,
) -> Dict[str, Any]:
    """The CreateTrainingJob request minus `TrainingJobName`; raises UserError subclasses.

    Its metric definitions are the config's `metrics` plus any `metric_names`."""
    image = parse_image_uri(image_uri, "--image-uri")
    if image_digest is not None and check_digest(image_digest, "--image-digest") != image.digest:
        raise UserError(
            f"--image-digest {image_digest} does not match the digest in {image_uri!r}. "
            f"Fix: pass the URI and digest of the same pushed image."
        )
    _check_provenance(pipeline_address, git_sha, pex_sha256)
    encoded = _encode_hyperparameters(config, hyperparameter_values)
    # NB: the config's metrics always; `metric_names` only adds to them, so `pants publish` and
    # `mlbuild-sagemaker submit` send the same definitions for the same pipeline.
    definitions = _metric_definitions([*config.metrics, *metric_names])
    problems = list(_config_problems(config))
    if problems:
        raise ConfigError(_format_problems(config.source, problems))

    sm = config.sagemaker
    assert sm.role and sm.output_path  # NB: guaranteed by _config_problems; narrows types.
    stopping: Dict[str, int] = {"MaxRuntimeInSeconds": sm.max_runtime_seconds}
    request: Dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": image.uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": definitions,
        },
        "RoleArn": sm.role,
        "HyperParameters": encoded,
        "InputDataConfig": [_channel(c) for c in config.channels],
        "OutputDataConfig": {"S3OutputPath": sm.output_path},
        "ResourceConfig": {
            "InstanceType": sm.instance_type,
            "InstanceCount": sm.instance_count,
            "VolumeSizeInGB": sm.volume_size_gb,
        },
        "StoppingCondition": stopping,
        "Tags": tags.provenance_tags(pipeline_address, git_sha, pex_sha256, image.digest),
    }
    if not request["InputDataConfig"]:
        # NB: InputDataConfig is optional but, when present, needs 1-20 channels.
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html#sagemaker-CreateTrainingJob-request-InputDataConfig
        del request["InputDataConfig"]
    if sm.spot:
        # NB: managed spot needs MaxWaitTimeInSeconds >= MaxRuntimeInSeconds; the
        # smallest legal wait is the default.
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html
        request["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = sm.max_wait_seconds or sm.max_runtime_seconds
    if sm.checkpoint_s3_uri:
        request["CheckpointConfig"] = {"S3Uri": sm.checkpoint_s3_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    if sm.subnets:
        request["VpcConfig"] = {"SecurityGroupIds": list(sm.security_group_ids), "Subnets": list(sm.subnets)}
    return request


def _channel(channel: Any) -> Dict[str, Any]:
    entry: Dict[str, Any] = {
        "ChannelName": channel.name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": channel.s3,
                "S3DataDistributionType": channel.distribution,
            }
        },
        "InputMode": channel.input_mode,
    }
    if channel.content_type:
        entry["ContentType"] = channel.content_type
    return entry


def _config_problems(config: PipelineConfig) -> Iterable[Problem]:
    sm = config.sagemaker
    if not sm.role:
        yield (
            "sagemaker.role",
            "missing; SageMaker runs the job as this IAM role",
            "add `role: arn:aws:iam::<account>:role/<name>` under `sagemaker:`",
        )
    if not sm.output_path:
        yield (
            "sagemaker.output_path",
            "missing; SageMaker writes model.tar.gz under it",
            "add `output_path: s3://<bucket>/<prefix>/` under `sagemaker:`",
        )
    problem = instance_types.instance_type_problem(sm.instance_type)
    if problem:
        yield ("sagemaker.instance_type", *problem)
    if sm.spot and not sm.checkpoint_s3_uri:
        # NB: parse_config refuses this too; a config built in code must not slip past.
        yield (
            "sagemaker.checkpoint_s3_uri",
            "missing, but `spot: true`",
            "add `checkpoint_s3_uri: s3://<bucket>/<prefix>/`",
        )
    if sm.spot and sm.max_wait_seconds is not None and sm.max_wait_seconds < sm.max_runtime_seconds:
        yield (
            "sagemaker.max_wait_seconds",
            f"must be at least max_runtime_seconds ({sm.max_wait_seconds} < {sm.max_runtime_seconds})",
            "raise it or lower max_runtime_seconds",
        )
    if len(config.channels) > MAX_CHANNELS:
        yield (
            "channels",
            f"{len(config.channels)} channels; SageMaker takes at most {MAX_CHANNELS}",
            "merge some channels",
        )
    for channel in config.channels:
        if not channel.s3:
            yield (
                f"channels.{channel.name}.s3",
                "missing; a SageMaker job reads every channel from S3",
                f"add `s3: s3://<bucket>/<prefix>/` under `channels.{channel.name}:` (or remove the channel)",
            )


def _format_problems(source: str, problems: List[Problem]) -> str:
    if len(problems) == 1:
        key, problem, fix = problems[0]
        return f"{source}: `{key}`: {problem}. Fix: {fix}."
    lines = [f"{source}: {len(problems)} problems block the SageMaker submission:"]
    lines += [f"  - `{key}`: {problem}. Fix: {fix}." for key, problem, fix in problems]
    return "\n".join(lines)


def _encode_hyperparameters(config: PipelineConfig, values: Mapping[str, Any]) -> Dict[str, str]:
    declared = {h.name for h in config.hyperparameters}
    unknown = sorted(set(values) - declared)
    if unknown:
        raise HyperparameterError(
            f"{config.source}: hyperparameters {unknown} are not declared. "
            f"Fix: declare them under `hyperparameters:` or resolve values with hyperparameters.resolve."
        )
    encoded = hyperparameters.encode(values)
    if len(encoded) > MAX_HYPERPARAMETERS:
        raise HyperparameterError(
            f"{config.source}: {len(encoded)} hyperparameters; SageMaker allows {MAX_HYPERPARAMETERS}."
        )
    for name, text in encoded.items():
        if len(name) > MAX_HYPERPARAMETER_KEY or len(text) > MAX_HYPERPARAMETER_VALUE:
            raise HyperparameterError(
                f"{config.source}: `hyperparameters.{name}` encodes to {len(text)} characters; SageMaker allows "
                f"{MAX_HYPERPARAMETER_KEY} for a name and {MAX_HYPERPARAMETER_VALUE} for a value. "
                f"Fix: pass large values as a data channel instead."
            )
    return encoded


def _metric_definitions(names: Sequence[str]) -> List[Dict[str, str]]:
    if len(set(names)) > MAX_METRIC_DEFINITIONS:
        raise UserError(f"--metric: {len(set(names))} metrics; SageMaker scrapes at most {MAX_METRIC_DEFINITIONS}.")
    definitions = metrics.metric_definitions(sorted(set(names)))
    for d in definitions:
        if not d["Name"] or len(d["Regex"]) > MAX_METRIC_REGEX:
            raise UserError(f"--metric: {d['Name']!r} is empty or too long for a SageMaker metric definition.")
    return definitions


def _check_provenance(pipeline_address: str, git_sha: str, pex_sha256: str) -> None:
    if not pipeline_address:
        raise UserError("--pipeline-address: empty. Fix: pass the ml_pipeline target's address.")
    if not _GIT_SHA.match(git_sha):
        raise UserError(
            f"--git-sha: {git_sha!r} is not a commit id (hex, optionally -dirty) or 'unknown'. Fix: pass the source revision."
        )
    if not _SHA256_HEX.match(pex_sha256):
        raise UserError(f"--pex-sha256: {pex_sha256!r} is not 64 lowercase hex characters. Fix: pass the PEX's sha256.")


def image_digest_of(request: Mapping[str, Any]) -> str:
    """The digest a request (or a DescribeTrainingJob answer) runs; '' if not pinned."""
    uri = str(request.get("AlgorithmSpecification", {}).get("TrainingImage", ""))
    return uri.rsplit("@", 1)[1] if "@" in uri else ""
