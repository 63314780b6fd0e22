from __future__ import annotations

import zipfile
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import pytest

from mlbuild.oci.errors import UserError
from mlbuild.oci.layer import entries_from_zip, is_bytecode


def make_zip(path: Path, members: dict[str, bytes], modes: Mapping[str, int] = MappingProxyType({})) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = modes.get(name, 0o644) << 16
            z.writestr(info, data)
    return path


def test_a_zip_unpacks_under_its_prefix_with_every_folder_and_no_bytecode(tmp_path: Path) -> None:
    whl = make_zip(
        tmp_path / "pkg.whl",
        {
            "../": b"",
            "pkg/__init__.py": b"",
            "pkg/tool.sh": b"#!/bin/sh\n",
            "pkg/__pycache__/__init__.cpython-311.pyc": b"stale bytecode from a run",
            "pkg/sub/mod.py": b"",
            "pkg/sub/stale.pyc": b"x",
            "pkg-1.0.dist-info/RECORD": b"",
        },
        modes={"pkg/tool.sh": 0o755},
    )
    entries = {e.path: e for e in entries_from_zip(whl, "/opt/mlbuild/deps/pkg.whl")}
    assert sorted(entries) == [
        "opt/mlbuild/deps/pkg.whl/pkg",
        "opt/mlbuild/deps/pkg.whl/pkg-1.0.dist-info",
        "opt/mlbuild/deps/pkg.whl/pkg-1.0.dist-info/RECORD",
        "opt/mlbuild/deps/pkg.whl/pkg/__init__.py",
        "opt/mlbuild/deps/pkg.whl/pkg/sub",
        "opt/mlbuild/deps/pkg.whl/pkg/sub/mod.py",
        "opt/mlbuild/deps/pkg.whl/pkg/tool.sh",
    ]
    assert entries["opt/mlbuild/deps/pkg.whl/pkg/tool.sh"].mode == 0o755
    assert entries["opt/mlbuild/deps/pkg.whl/pkg/__init__.py"].mode == 0o644
    assert entries["opt/mlbuild/deps/pkg.whl/pkg/sub"].kind == "dir"


def test_a_member_that_escapes_is_refused(tmp_path: Path) -> None:
    whl = make_zip(tmp_path / "evil.whl", {"../../etc/passwd": b"root"})
    with pytest.raises(UserError, match="escapes its folder"):
        entries_from_zip(whl, "/opt/x")


@pytest.mark.parametrize(
    "path, expected",
    [("a/__pycache__/b.cpython-311.pyc", True), ("a/b.pyc", True), ("a/b.py", False), ("pycache/x.py", False)],
)
def test_is_bytecode(path: str, expected: bool) -> None:
    assert is_bytecode(path) is expected
