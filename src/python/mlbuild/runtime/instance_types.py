"""SageMaker training instance types: how many NVIDIA GPUs each has (what `SM_NUM_GPUS` will say).

On SageMaker `SM_NUM_GPUS` (and `ctx.num_gpus`) is what the instance has: the runtime counts
the GPU device nodes the container was given, and SageMaker gives a training container all of
the instance's GPUs. This table says it before the job runs, so a request for a GPU count the
pipeline cannot use, or for an instance family mlbuild does not know, fails before anything is
pushed. Neuron (Trainium/Inferentia) instances have accelerators that are not GPUs: 0 here.
https://aws.amazon.com/sagemaker/pricing/ (instance types), https://aws.amazon.com/ec2/instance-types/
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from mlbuild.runtime.errors import ConfigError

_SMALL = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")
# family -> size -> GPUs per instance
GPU_FAMILIES: Dict[str, Dict[str, int]] = {
    "p2": {"xlarge": 1, "8xlarge": 8, "16xlarge": 16},
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p3dn": {"24xlarge": 8},
    "p4d": {"24xlarge": 8},
    "p4de": {"24xlarge": 8},
    "p5": {"48xlarge": 8},
    "p5e": {"48xlarge": 8},
    "p5en": {"48xlarge": 8},
    "g4dn": {**{s: 1 for s in _SMALL}, "12xlarge": 4, "metal": 8},
    "g5": {**{s: 1 for s in _SMALL}, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6": {**{s: 1 for s in _SMALL}, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6e": {**{s: 1 for s in _SMALL}, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
}
CPU_FAMILIES = frozenset(
    "t2 t3 m4 m5 m5d m6i m6id m7i c4 c5 c5d c5n c6i c6id c6in c7i r5 r5d r6i r6id r7i trn1 trn1n trn2 inf2".split()
)


def family_of(instance_type: str) -> str:
    """`ml.g5.2xlarge` -> `g5`."""
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "ml" else ""


def instance_type_problem(instance_type: str) -> Optional[Tuple[str, str]]:
    """(problem, fix) when `instance_type`'s GPU count is unknown to mlbuild, else None."""
    family = family_of(instance_type)
    size = instance_type.split(".")[-1]
    if family in GPU_FAMILIES:
        sizes = GPU_FAMILIES[family]
        if size not in sizes:
            return (
                f"{instance_type!r} is no {family} size SageMaker trains on",
                f"use one of {', '.join(f'ml.{family}.{s}' for s in sizes)}",
            )
        return None
    if family in CPU_FAMILIES:
        return None
    return (
        f"unknown instance family {family or instance_type!r}, so the GPUs a host gets (SM_NUM_GPUS) are unknown",
        f"use a SageMaker training instance type: GPU families {', '.join(sorted(GPU_FAMILIES))}; "
        f"CPU families {', '.join(sorted(CPU_FAMILIES))}",
    )


def gpus_per_instance(instance_type: str, source: str = "pipeline.yaml") -> int:
    """The GPUs one `instance_type` instance has (0 for CPU and Neuron families); an unknown family
    or GPU size is a ConfigError naming the file, the key and the families mlbuild knows."""
    problem = instance_type_problem(instance_type)
    if problem:
        raise ConfigError(f"{source}: `sagemaker.instance_type`: {problem[0]}. Fix: {problem[1]}.")
    return GPU_FAMILIES.get(family_of(instance_type), {}).get(instance_type.split(".")[-1], 0)
