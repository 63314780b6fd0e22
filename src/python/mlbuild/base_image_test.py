"""The offline Debian base: its standard library ships compiled, the same bytes every build."""

from __future__ import annotations

import gzip
import json
import marshal
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mlbuild.base_image import build_debian_base
from mlbuild.debian import lock as lockfile
from mlbuild.debian.testing import Entry, make_deb, make_mirror
from mlbuild.oci.errors import SpecError

TAG = sys.implementation.cache_tag
LIB = "usr/lib/python3.11"


@pytest.fixture()
def lock_path(tmp_path: Path) -> Path:
    python = make_deb(
        tmp_path / "python3.11.deb",
        "python3.11",
        "3.11.2-6",
        [
            Entry("./usr/bin/python3.11", content=b"\x7fELF python", mode=0o755),
            Entry(f"./{LIB}/json/__init__.py", content=b"from .decoder import JSONDecoder\nVALUE = {'a': (1, 2.5)}\n"),
            Entry(f"./{LIB}/json/decoder.py", content=b"class JSONDecoder:\n    pass\n"),
            Entry(f"./{LIB}/lib2to3/tests/data/py2.py", content=b"print 'never imported'\n"),
            Entry("./etc/python3.11/sitecustomize.py", content=b"# Debian's site hook\n"),
            Entry(f"./{LIB}/sitecustomize.py", "symlink", target="/etc/python3.11/sitecustomize.py"),
        ],
    )
    path = tmp_path / "packages.lock.json"
    lockfile.write(make_mirror(tmp_path / "mirror", [("python3.11", "3.11.2-6", python)]), path)
    return path


def layer_members(out: Path, summary: dict) -> dict[str, bytes]:
    (layer,) = summary["layers"]
    blob = out / summary["layout"] / "blobs/sha256" / layer["digest"].split(":")[1]
    with tarfile.open(fileobj=gzip.open(blob)) as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else b"" for m in tar}  # type: ignore[union-attr]


def test_the_standard_library_ships_unchecked_hash_pycs_named_for_the_image(lock_path: Path, tmp_path: Path) -> None:
    summary = build_debian_base(lock_path, tmp_path / "out", "base", tmp_path / "cache", TAG)
    members = layer_members(tmp_path / "out", summary)
    pycs = sorted(name for name in members if name.endswith(".pyc"))
    assert pycs == [
        f"etc/python3.11/__pycache__/sitecustomize.{TAG}.pyc",
        f"{LIB}/__pycache__/sitecustomize.{TAG}.pyc",  # Python imports it through the link
        f"{LIB}/json/__pycache__/__init__.{TAG}.pyc",
        f"{LIB}/json/__pycache__/decoder.{TAG}.pyc",
    ]  # and none for the Python 2 test data, which nothing imports
    pyc = members[f"{LIB}/json/__pycache__/__init__.{TAG}.pyc"]
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # PEP 552: hash-based, never checked against a mtime
    assert marshal.loads(pyc[16:]).co_filename == f"/{LIB}/json/__init__.py"
    # Without a tag (a base whose Python's name says no version) nothing is compiled.
    plain = build_debian_base(lock_path, tmp_path / "plain", "base", tmp_path / "cache")
    assert not [name for name in layer_members(tmp_path / "plain", plain) if "__pycache__" in name]


def test_two_builds_in_fresh_processes_give_the_same_image(lock_path: Path, tmp_path: Path) -> None:
    digests = set()
    for run, seed in (("a", "1"), ("b", "2")):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlbuild.base_image",
                "--lock",
                str(lock_path),
                "--output",
                str(tmp_path / run),
                "--name",
                "base",
                "--cache-dir",
                str(tmp_path / f"cache-{run}"),
                "--bytecode",
                TAG,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        digests.add(json.loads((tmp_path / run / "base.image.json").read_text())["manifest_digest"])
    assert len(digests) == 1


def test_a_builder_of_another_python_refuses_naming_the_lock_and_the_fix(lock_path: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        build_debian_base(lock_path, tmp_path / "out", "base", None, "cpython-39")
    message = str(e.value)
    assert message.startswith(f"{lock_path}: the base's Python (--bytecode): bytecode for 'cpython-39' requested")
    assert "Fix: build with the image's Python minor version, or point the ml_base_image's `python`" in message
    assert not (tmp_path / "out").exists()
