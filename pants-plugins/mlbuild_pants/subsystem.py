"""`[mlbuild]` options."""

from __future__ import annotations

from typing import Any

from pants.option.option_types import BoolOption, DictOption, IntOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap


class MLBuildSubsystem(Subsystem):
    options_scope = "mlbuild"
    help = "Options for mlbuild's ml_pipeline targets (see docs/ in the repo)."

    container = BoolOption(
        default=False,
        help=softwrap(
            """
            With `pants run` on an ml_pipeline: build the pipeline's OCI image and run it the way
            SageMaker does (`docker run IMAGE train`), without Docker: the image is unpacked and
            `train` runs under bubblewrap, with `/opt/ml` laid out from the sample data and config.
            Example: `pants run --mlbuild-container src/python/pipelines/churn:train`.
            """
        ),
    )

    serve = BoolOption(
        default=False,
        help=softwrap(
            """
            With `pants run` on an ml_pipeline: build its image and run its `serve` in the
            sandbox as SageMaker hosting does (`docker run IMAGE serve`), on 127.0.0.1, with the
            newest local run's model (or `--mlbuild-model`), until Ctrl-C. Arguments after `--`:
            `--transform INPUT --output DIR` runs a batch transform through it instead.
            Example: `pants run --mlbuild-serve src/python/pipelines/churn:train`.
            """
        ),
    )
    model = StrOption(
        default=None,
        help=softwrap(
            """
            With `--mlbuild-serve`: the model to serve: a run folder, a model folder, a job's
            `model.tar.gz`, or a hash the lineage store knows that leads to a local run.
            """
        ),
    )
    instance_count = IntOption(
        default=None,
        help=softwrap(
            """
            With `pants run --mlbuild-container`: run this many hosts together (`algo-1` ..
            `algo-N`, each its own sandbox, `/opt/ml` and `resourceconfig.json`, resolving each
            other on loopback), as SageMaker runs a job with `instance_count` N. Unset: the
            config's `sagemaker.instance_count`.
            """
        ),
    )
    publish_backend = StrOption(
        default=None,
        help=softwrap(
            """
            Where `pants publish` sends an ml_pipeline: `local` (the image goes to a local OCI store
            or registry and the job runs in mlbuild's container runner), `aws` (ECR + SageMaker), or
            `auto` (aws when AWS credentials, a region, a role and an output path are configured).
            Unset: the pipeline config's `sagemaker.backend`.
            """
        ),
    )
    wait = BoolOption(
        default=False,
        help="With `pants publish` to AWS: follow the training job to its end, streaming its log.",
    )
    force = BoolOption(
        default=False,
        help="With `pants publish`: train again even when an identical job (same image, hyperparameters, data) exists.",
    )
    local_registry = StrOption(
        default=None,
        help=softwrap(
            """
            With the local publish backend: push the image to this registry (`host:port/repository`,
            e.g. a `docker-registry` on 127.0.0.1) instead of the local OCI store under `.mlbuild/local/`.
            Plain HTTP only to a loopback host or one listed in `MLBUILD_INSECURE_REGISTRIES`
            (`host:port,...`), and never with credentials; any other host must serve TLS.
            """
        ),
    )
    registries = DictOption[Any](
        help=softwrap(
            """
            Registries `pants publish` pushes ml_pipeline images to, besides the training job's own
            (the local store or ECR): aliases mapped to `address` (`host[:port]`), `default`
            (pushed to when a target's `registries` field is unset) and `extra_image_tags`
            (tags every push to it gets, with the placeholders of the `image_tags` field).
            Example (pants.toml):

                [mlbuild.registries.ci]
                address = "registry.example.com:5000"
                default = true
                extra_image_tags = ["{git_short_sha}"]

            Credentials come from Docker's config.json (`auths`, `credHelpers`, `credsStore`).
            Plain HTTP only to a loopback host or one listed in `MLBUILD_INSECURE_REGISTRIES`.
            """
        ),
    )
    default_repository = StrOption(
        default="{pipeline}",
        help=softwrap(
            """
            The repository an ml_pipeline image is pushed to in `[mlbuild].registries`, unless the
            target's `repository` field says otherwise; placeholders as for `image_tags`.
            """
        ),
    )
    ecr_registry = StrOption(
        default=None,
        advanced=True,
        help=softwrap(
            """
            With the AWS publish backend: push to this registry host (`host[:port]`) instead of
            the ECR registry of the training role's account, still with ECR's credentials and
            repository creation; the job then trains `<host>/<repository>@sha256:...`. For a
            registry that mirrors ECR, or a test registry standing in for it.
            """
        ),
    )
    tool_target = StrOption(
        default="src/python/mlbuild:tool",
        advanced=True,
        help=softwrap(
            """
            The target the mlbuild tool PEX is built from: the modules `package`, `run` and
            `publish` start with `python -m`; dependency inference adds the rest of the library
            and its requirements. The Pants plugin itself lives in its own root
            (`pants-plugins/`), so edits to the library never restart pantsd.
            """
        ),
    )
