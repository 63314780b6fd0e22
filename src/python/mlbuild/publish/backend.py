"""The publish backends behind one interface, and which one a publish uses.

A backend publishes one `Publication` (an image, its config, the overrides) in the same
steps whichever it is; `workflow.publish` drives them:

    push       put the image where the jobs run from          -> its URI and digest
    train      start (or reuse) the training job on it        -> a job handle
    wait       follow the job to its end (local jobs have ended already)
    report     the job as a `JobReport` (mlbuild.job_report: one type, one renderer)
    record     the job's lineage record (kept by the workflow) and `share` for where else it goes
    transform  batch-transform data with a finished job's model

`local` (local.py) is the offline default: a local OCI store and mlbuild's container runner.
`aws` (aws.py) is ECR + SageMaker. A new backend capability (a model registry, tuning) is one
more method here, implemented by both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

from mlbuild.job_report import JobReport
from mlbuild.names import aws_region, image_entries
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.errors import UserError

BACKENDS = ("local", "aws")


@dataclass(frozen=True)
class Publication:
    """What is published, the same for every backend."""

    layout_dir: Path  # the pipeline image's OCI layout
    ref: Optional[str]  # the image's name in the layout
    config: PipelineConfig
    address: str  # the ml_pipeline target's address
    overrides: Mapping[str, str]  # hyperparameter overrides, as given on the command line
    git_sha: str = ""
    pex_sha256: str = ""
    image_digest: Optional[str] = None  # the manifest digest the build reported; else read from the layout
    force: bool = False  # train again even if an identical job exists


@dataclass(frozen=True)
class PushedImage:
    """The image as the jobs will run it: its URI there and its manifest digest."""

    uri: str
    digest: str


@dataclass(frozen=True)
class Previous:
    """What the job is compared with: the previous run's metrics, or why there are none."""

    metrics: Optional[Mapping[str, float]]
    note: Optional[str] = None


@dataclass(frozen=True)
class Transformed:
    """A batch transform's outcome: where its outputs are, and one line saying what ran."""

    output: str
    summary: str


class Backend(Protocol):
    """Every job handle a backend returns has a `name` (the job's)."""

    name: str

    def push(self, publication: Publication) -> PushedImage: ...

    def train(self, publication: Publication, image: PushedImage) -> Any: ...

    def wait(self, job: Any) -> Any: ...

    def report(self, job: Any, previous: Previous) -> JobReport: ...

    def record(self, job: Any, report: JobReport) -> Any: ...

    def share(self, records: Sequence[Any], job: Any) -> None: ...

    def exit_code(self, job: Any) -> int: ...

    def transform(self, job: Any, input_path: str, output: str) -> Transformed: ...


def layout_digest(layout_dir: Path, ref: Optional[str]) -> str:
    """The manifest digest of image `ref` in an OCI layout; a user error if it isn't there."""
    index_file = Path(layout_dir) / "index.json"
    if not index_file.is_file():
        raise UserError(
            f"{layout_dir}: not an OCI image layout (no index.json); the image was not built. "
            "Fix: build it first (`./pants package <pipeline target>`) and pass its `.oci` folder as --layout."
        )
    for manifest in image_entries(json.loads(index_file.read_text()), ref):
        return manifest["digest"]
    raise UserError(
        f"{layout_dir}: no image named {ref!r} in index.json. "
        "Fix: pass the --ref the image was built with, or rebuild the image layout."
    )


def aws_credentials_available() -> bool:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return False
    try:
        return boto3.session.Session().get_credentials() is not None
    except BotoCoreError as e:
        # NB: e.g. AWS_PROFILE names a profile ~/.aws/config lacks: say so, don't guess "local".
        raise UserError(
            f"AWS is configured but unusable: {e}. Fix: correct or unset AWS_PROFILE/AWS_* variables, or pass --mlbuild-publish-backend=local."
        ) from e


def choose_backend(
    config: PipelineConfig,
    requested: Optional[str],
    environ: Mapping[str, str],
    has_credentials: Callable[[], bool] = aws_credentials_available,
) -> str:
    """The command line wins, then the config's `sagemaker.backend`; `auto` means aws only
    when AWS is configured (credentials and a region) and the config names a role and an
    output path, so a fresh clone publishes locally with nothing set up."""
    choice = requested or config.sagemaker.backend
    if choice != "auto":
        return choice
    region = aws_region(config.sagemaker.region, environ)
    ready = bool(region and config.sagemaker.role and config.sagemaker.output_path)
    return "aws" if ready and has_credentials() else "local"
