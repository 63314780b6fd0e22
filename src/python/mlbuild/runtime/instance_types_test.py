from __future__ import annotations

import pytest

from mlbuild.runtime import instance_types
from mlbuild.runtime.errors import ConfigError


@pytest.mark.parametrize(
    "instance_type, gpus",
    [
        ("ml.m5.large", 0),
        ("ml.p3.2xlarge", 1),
        ("ml.p3.16xlarge", 8),
        ("ml.g5.12xlarge", 4),
        ("ml.g4dn.xlarge", 1),
        ("ml.p4d.24xlarge", 8),
        ("ml.trn1.32xlarge", 0),
    ],
)
def test_known_types(instance_type: str, gpus: int) -> None:
    assert instance_types.gpus_per_instance(instance_type) == gpus


def test_unknown_family_is_an_error_with_the_fix() -> None:
    with pytest.raises(
        ConfigError, match=r"p.yaml: `sagemaker.instance_type`: unknown instance family 'x9'.*Fix: .*GPU families .*g5"
    ):
        instance_types.gpus_per_instance("ml.x9.large", "p.yaml")


def test_unknown_gpu_size_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"'ml.p3.large' is no p3 size.*ml.p3.2xlarge"):
        instance_types.gpus_per_instance("ml.p3.large")
