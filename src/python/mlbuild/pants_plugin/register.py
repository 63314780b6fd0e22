"""mlbuild's Pants backend: the `ml_pipeline` target and its run/package/tailor rules."""

from mlbuild.pants_plugin import dependency_inference, package, run, tailor
from mlbuild.pants_plugin.target_types import MLPipelineTarget


def target_types():
    return [MLPipelineTarget]


def rules():
    return [*dependency_inference.rules(), *package.rules(), *run.rules(), *tailor.rules()]
