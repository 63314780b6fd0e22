"""`[mlbuild]` options."""

from __future__ import annotations

from pants.option.option_types import BoolOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap


class MLBuildSubsystem(Subsystem):
    options_scope = "mlbuild"
    help = "Options for mlbuild's ml_pipeline targets (see the repo's README)."

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
