from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbuild.container_run.command import docker_argv, resolve_command, search_candidates
from mlbuild.container_run.errors import ImageCommandError

PY = "#!/usr/bin/python3.11\nprint('hi')\n"


@pytest.mark.parametrize(
    "runtime_config, expect",
    [
        ({}, ["train"]),
        ({"Cmd": ["python", "x.py"]}, ["train"]),  # `docker run IMAGE train` replaces Cmd
        ({"Entrypoint": ["/opt/program/run"], "Cmd": ["serve"]}, ["/opt/program/run", "train"]),
        ({"Entrypoint": ["python3", "-m", "app"]}, ["python3", "-m", "app", "train"]),
        ({"Entrypoint": []}, ["train"]),
        ({"Entrypoint": None}, ["train"]),
    ],
)
def test_docker_argv(runtime_config: dict, expect: list) -> None:
    assert docker_argv(runtime_config) == expect


@pytest.mark.parametrize(
    "program, path_env, workdir, expect",
    [
        (
            "train",
            None,
            "/",
            [
                "/usr/local/sbin/train",
                "/usr/local/bin/train",
                "/usr/sbin/train",
                "/usr/bin/train",
                "/sbin/train",
                "/bin/train",
            ],
        ),
        ("train", "/opt/bin/:relative::/usr/bin", "/", ["/opt/bin/train", "/usr/bin/train"]),
        ("/opt/program/train", "/usr/bin", "/", ["/opt/program/train"]),
        ("./train", "/usr/bin", "/opt/program", ["/opt/program/train"]),
    ],
)
def test_search_candidates(program: str, path_env: str | None, workdir: str, expect: list) -> None:
    assert search_candidates(program, path_env, workdir) == expect


def _file(root: Path, rel: str, text: str = PY, mode: int = 0o755) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    _file(root, "usr/bin/python3.11", "\x7fELF")
    os.symlink("usr/bin", root / "bin")  # merged /usr, as in Debian
    return root


def test_path_lookup_first_executable_wins(rootfs: Path) -> None:
    _file(rootfs, "usr/local/bin/train", mode=0o644)  # not executable: execvp goes on
    _file(rootfs, "usr/bin/train")
    assert resolve_command(rootfs, ["train"], "/usr/local/bin:/usr/bin") == ["/usr/bin/train"]


def test_path_lookup_through_merged_usr(rootfs: Path) -> None:
    _file(rootfs, "usr/bin/train")
    assert resolve_command(rootfs, ["train", "x"], "/bin") == ["/bin/train", "x"]


@pytest.mark.parametrize("target", ["/opt/program/train", "../../../opt/program/train"])
def test_symlinked_train(rootfs: Path, target: str) -> None:
    _file(rootfs, "opt/program/train")
    (rootfs / "usr/local/bin").mkdir(parents=True)
    os.symlink(target, rootfs / "usr/local/bin/train")
    assert resolve_command(rootfs, ["train"], "/usr/local/bin") == ["/usr/local/bin/train"]


def test_symlink_to_a_host_file_is_not_followed_out(rootfs: Path, tmp_path: Path) -> None:
    _file(tmp_path, "host/train")  # exists on the host, not in the image
    (rootfs / "usr/local/bin").mkdir(parents=True)
    os.symlink(str(tmp_path / "host/train"), rootfs / "usr/local/bin/train")
    with pytest.raises(ImageCommandError, match="no executable `train`"):
        resolve_command(rootfs, ["train"], "/usr/local/bin")


def test_entrypoint_is_checked_and_train_passed_as_argument(rootfs: Path) -> None:
    _file(rootfs, "opt/program/run")
    assert resolve_command(rootfs, ["/opt/program/run", "train"], "/usr/bin") == ["/opt/program/run", "train"]
    assert resolve_command(rootfs, ["python3.11", "-m", "app", "train"], None) == [
        "/usr/bin/python3.11",
        "-m",
        "app",
        "train",
    ]


def test_missing_train_says_where_it_looked_and_how_to_fix(rootfs: Path) -> None:
    _file(rootfs, "usr/local/bin/train", mode=0o644)
    with pytest.raises(ImageCommandError) as e:
        resolve_command(rootfs, ["train"], "/usr/local/bin:/usr/bin")
    message = str(e.value)
    assert "/usr/local/bin:/usr/bin" in message and "/usr/local/bin/train (mode 0644)" in message
    assert "Fix:" in message and "/usr/local/bin/train" in message


def test_missing_entrypoint(rootfs: Path) -> None:
    with pytest.raises(ImageCommandError, match="/opt/program/run"):
        resolve_command(rootfs, ["/opt/program/run", "train"], "/usr/bin")


def test_directory_named_train_is_not_a_program(rootfs: Path) -> None:
    (rootfs / "usr/local/bin/train").mkdir(parents=True)
    with pytest.raises(ImageCommandError):
        resolve_command(rootfs, ["train"], "/usr/local/bin")


@pytest.mark.parametrize("shebang", ["#!/bin/sh\n", "#!/usr/bin/env python3\n", "#!\n"])
def test_script_without_its_interpreter(rootfs: Path, shebang: str) -> None:
    _file(rootfs, "usr/local/bin/train", shebang + "exec x\n")
    with pytest.raises(ImageCommandError, match="interpreter|`#!"):
        resolve_command(rootfs, ["train"], "/usr/local/bin")


def test_script_with_interpreter_through_symlink(rootfs: Path) -> None:
    os.symlink("python3.11", rootfs / "usr/bin/python3")
    _file(rootfs, "usr/local/bin/train", "#!/bin/python3 -u\n")
    assert resolve_command(rootfs, ["train"], "/usr/local/bin") == ["/usr/local/bin/train"]


def test_a_missing_serve_is_named_as_serve(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "usr/local/bin").mkdir(parents=True)
    with pytest.raises(
        ImageCommandError, match=r"`docker run IMAGE serve` would run \['serve'\].*executable \(mode 0755\) `serve`"
    ):
        resolve_command(rootfs, ["serve"], "/usr/local/bin", verb="serve")
