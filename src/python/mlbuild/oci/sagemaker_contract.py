"""Build-time checks of SageMaker's bring-your-own-container contracts.

SageMaker runs a training image as `docker run IMAGE train` on linux/amd64 hosts and mounts
its own `/opt/ml` tree into the container; a hosting (inference or batch transform) image
as `docker run IMAGE serve`:
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-dockerfile.html
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
Each rule has a name, so an error says which rule broke and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlbuild.oci.errors import ContractError
from mlbuild.oci.image import DEFAULT_PATH, Image
from mlbuild.oci.merged_fs import MergedFS, display

OPT_ML = "/opt/ml"
TRAIN_PROGRAM = "train"
SERVE_PROGRAM = "serve"
PLATFORM = ("linux", "amd64")


@dataclass(frozen=True)
class Violation:
    rule: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.problem} Fix: {self.fix}"


def check(image: Image, fs: MergedFS | None = None, programs: tuple[str, ...] = (TRAIN_PROGRAM,)) -> list[Violation]:
    """Every violated rule; empty when the image satisfies the contract for each of `programs`."""
    fs = fs if fs is not None else MergedFS.of_image(image)
    # NB: with an Entrypoint, every program name is its argument: one check of the Entrypoint.
    checked = programs[:1] if image.runtime_config.get("Entrypoint") else programs
    return [*_platform(image), *_opt_ml_empty(fs), *(v for p in checked for v in _program_reachable(image, fs, p))]


def require(image: Image, fs: MergedFS | None = None, programs: tuple[str, ...] = (TRAIN_PROGRAM,)) -> None:
    violations = check(image, fs, programs)
    if violations:
        lines = "\n".join(f"  - {v}" for v in violations)
        kind = " and ".join({TRAIN_PROGRAM: "training", SERVE_PROGRAM: "hosting"}.get(p, p) for p in programs)
        raise ContractError(f"the image breaks SageMaker's {kind}-container contract:\n{lines}")


def _platform(image: Image) -> list[Violation]:
    found = (image.platform.os, image.platform.architecture)
    if found == PLATFORM:
        return []
    return [
        Violation(
            "platform",
            f"the image is {found[0]}/{found[1]}; SageMaker training hosts run linux/amd64 only.",
            "build from a linux/amd64 base image (pick the amd64 manifest of a multi-platform base).",
        )
    ]


def _opt_ml_empty(fs: MergedFS) -> list[Violation]:
    rel, node = fs.resolve(OPT_ML)
    if node is None:
        return []
    baked = fs.below(rel) if node.kind == "dir" else [rel]
    if not baked:
        return []
    shown = ", ".join(display(p) for p in baked[:5]) + (f" and {len(baked) - 5} more" if len(baked) > 5 else "")
    return [
        Violation(
            "opt-ml-empty",
            f"the image bakes content under {OPT_ML} ({shown}); SageMaker mounts its own {OPT_ML} over it.",
            f"put code under another directory (e.g. /opt/program) and read inputs from {OPT_ML} at run time.",
        )
    ]


def _program_reachable(image: Image, fs: MergedFS, wanted: str) -> list[Violation]:
    entrypoint = list(image.runtime_config.get("Entrypoint") or [])
    path_dirs = [d for d in image.env().get("PATH", DEFAULT_PATH).split(":") if d.startswith("/")]
    if entrypoint:
        # NB: with an Entrypoint, `docker run IMAGE train` passes `train` as its argument.
        program, rule = entrypoint[0], "entrypoint-executable"
    else:
        program, rule = wanted, f"{wanted}-on-path"
    candidates = [program] if program.startswith("/") else [f"{d.rstrip('/')}/{program}" for d in path_dirs]
    for candidate in candidates:
        _, node = fs.resolve(candidate)
        if node is not None and node.kind == "file" and node.mode & 0o111:
            return []
    where = candidates[0] if program.startswith("/") else f"the PATH dirs {path_dirs}"
    return [
        Violation(
            rule,
            f"no executable file `{program}` found at {where} in the image's final filesystem.",
            f"add a layer with an executable (mode 0755) `{wanted}`, e.g. /usr/local/bin/{wanted}, "
            "or put its directory on config.env.PATH" + (" (or fix config.entrypoint)." if entrypoint else "."),
        )
    ]
