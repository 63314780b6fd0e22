"""Where a training job's pieces live: console pages, logs and the model artifact."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

from mlbuild.sagemaker.aws import TRAINING_JOB_LOG_GROUP


def console_job_url(region: str, job_name: str) -> str:
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_name}"


def _console_escape(text: str) -> str:
    # NB: the CloudWatch console keeps its route in the URL fragment and escapes it twice,
    # writing `%` as `$`: "/" -> "%2F" -> "%252F" -> "$252F", and "?" / "=" of the
    # fragment's own query as "$3F" / "$3D". There is no documented format; this is what
    # the console produces for its own links.
    return quote(quote(text, safe=""), safe="").replace("%", "$")


def log_url(region: str, job_name: str, stream: Optional[str] = None) -> str:
    """The job's log stream, or (stream unknown) the log group filtered by the job's prefix."""
    base = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/"
    group = _console_escape(TRAINING_JOB_LOG_GROUP)
    if stream:
        return f"{base}{group}/log-events/{_console_escape(stream)}"
    return f"{base}{group}$3FlogStreamNameFilter$3D{_console_escape(job_name + '/')}"


def model_artifact_uri(output_path: str, job_name: str) -> str:
    # NB: SageMaker writes <S3OutputPath>/<job name>/output/model.tar.gz, with or without a
    # trailing slash on the output path.
    return f"{output_path.rstrip('/')}/{job_name}/output/model.tar.gz"


def split_s3_uri(uri: str) -> tuple:
    """`s3://bucket/key/prefix` -> ("bucket", "key/prefix")."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key
