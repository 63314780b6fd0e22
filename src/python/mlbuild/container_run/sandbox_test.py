from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.container_run.sandbox import SandboxSpec, bwrap_argv, container_env
from mlbuild.oci.image import DEFAULT_PATH

BASE = SandboxSpec(
    rootfs=Path("/cache/rootfs/abc"), ml_dir=Path("/runs/p/t/.r.incomplete"), command=("/usr/local/bin/train",)
)


def _pairs(argv: list[str], flag: str, arity: int) -> list[tuple[str, ...]]:
    return [tuple(argv[i + 1 : i + 1 + arity]) for i, a in enumerate(argv) if a == flag]


@pytest.mark.parametrize(
    "spec, expect",
    [
        (
            BASE,
            {
                "--ro-bind": [("/cache/rootfs/abc", "/")],
                "--bind": [("/runs/p/t/.r.incomplete", "/opt/ml")],
                "--chdir": [("/",)],
                "--share-net": [],
                "--setenv": [],
            },
        ),
        (
            SandboxSpec(
                BASE.rootfs, BASE.ml_dir, BASE.command, channels={"validation": Path("/d/val"), "train": Path("/d/tr")}
            ),
            {
                # NB: sorted by channel name, after the rootfs, read-only.
                "--ro-bind": [
                    ("/cache/rootfs/abc", "/"),
                    ("/d/tr", "/opt/ml/input/data/train"),
                    ("/d/val", "/opt/ml/input/data/validation"),
                ],
            },
        ),
        (SandboxSpec(BASE.rootfs, BASE.ml_dir, BASE.command, network=True), {"--share-net": [()]}),
        (
            SandboxSpec(BASE.rootfs, BASE.ml_dir, BASE.command, env={"B": "2", "A": "x=y"}, workdir="/opt/program"),
            {
                "--setenv": [("A", "x=y"), ("B", "2")],
                "--chdir": [("/opt/program",)],
            },
        ),
        (SandboxSpec(BASE.rootfs, BASE.ml_dir, BASE.command, workdir=""), {"--chdir": [("/",)]}),
    ],
    ids=["minimal", "channels", "network", "env-and-workdir", "empty-workdir"],
)
def test_bwrap_argv(spec: SandboxSpec, expect: dict) -> None:
    argv = bwrap_argv(spec, bwrap="/usr/bin/bwrap")
    assert argv[0] == "/usr/bin/bwrap"
    for flag, values in expect.items():
        arity = 0 if flag == "--share-net" else 1 if flag == "--chdir" else 2
        assert _pairs(argv, flag, arity) == values, flag


def test_bwrap_argv_fixed_isolation_and_order() -> None:
    argv = bwrap_argv(
        SandboxSpec(BASE.rootfs, BASE.ml_dir, ("/usr/local/bin/train", "--x"), channels={"train": Path("/d")})
    )
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert _pairs(argv, "--proc", 1) == [("/proc",)] and _pairs(argv, "--dev", 1) == [("/dev",)]
    assert _pairs(argv, "--tmpfs", 1) == [("/tmp",)]
    assert _pairs(argv, "--uid", 1) == [("0",)] and _pairs(argv, "--hostname", 1) == [("algo-1",)]
    # The root comes first, /opt/ml before the channels mounted inside it, env after --clearenv.
    assert argv.index("/") < argv.index("/opt/ml") < argv.index("/opt/ml/input/data/train")
    assert argv.index("--clearenv") < (argv.index("--setenv") if "--setenv" in argv else len(argv))
    # The command comes last, after `--`, untouched.
    assert argv[-3:] == ["--", "/usr/local/bin/train", "--x"]


@pytest.mark.parametrize(
    "image_env, expect",
    [
        ({}, {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": "algo-1", "PEX_ROOT": "/tmp/.pex"}),
        (
            {"PATH": "/opt/bin", "PEX_ROOT": "/opt/pex", "HOME": "/home/u", "X": ""},
            {"PATH": "/opt/bin", "HOME": "/home/u", "HOSTNAME": "algo-1", "PEX_ROOT": "/opt/pex", "X": ""},
        ),
    ],
    ids=["defaults", "image-wins"],
)
def test_container_env(image_env: dict, expect: dict) -> None:
    assert container_env(image_env) == expect
