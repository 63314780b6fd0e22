"""mlbuild's Pants backend: the `ml_pipeline` and `ml_base_image` targets and their rules."""

from mlbuild_pants import (
    base_image,
    dependency_inference,
    image,
    package,
    publish,
    run,
    shared_blobs,
    tailor,
    tool,
)
from mlbuild_pants.target_types import MLBaseImageTarget, MLPipelineTarget


def target_types():
    return [MLPipelineTarget, MLBaseImageTarget]


def rules():
    return [
        *base_image.rules(),
        *dependency_inference.rules(),
        *image.rules(),
        *package.rules(),
        *publish.rules(),
        *run.rules(),
        *shared_blobs.rules(),
        *tailor.rules(),
        *tool.rules(),
    ]
