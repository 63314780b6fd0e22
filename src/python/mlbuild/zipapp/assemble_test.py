"""The assembled PEX runs like one pex builds, changes with the code, and is reproducible.

A real requirements-only zipapp PEX is built by the launcher's pex CLI (the one Pants uses)
from a small wheel made here, so no network is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlbuild.runtime.errors import PlatformError
from mlbuild.tools_required import skip_or_fail
from mlbuild.zipapp.__main__ import main
from mlbuild.zipapp.assemble import ZipappError, assemble, assemble_packed

PEX_VERSION = "2.1.137"  # the launcher's pin (./pants)
ENTRY_POINT = "demo.app:main"
APP = """import os, sys
import tinydep
def main():
    print(f"{tinydep.VALUE} {os.environ.get('DEMO_NAME')} {VERSION} {sys.argv[1:]}")
VERSION = "v1"
"""


def _pex_cli() -> Path:
    cache = os.environ.get("MLBUILD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlbuild"
    )
    path = Path(cache) / "pex-cli-2" / f"pex-v{PEX_VERSION}"
    if not path.is_file():
        skip_or_fail(f"{path} is missing: run ./pants once (the launcher builds the pex CLI)")
    return path


def _wheel(folder: Path) -> Path:
    """A pure-Python wheel, `tinydep` 1.0, written by hand."""
    files = {
        "tinydep/__init__.py": b"VALUE = 'dep-ok'\n",
        "tinydep-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = (
        "".join(
            f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
            for name, data in files.items()
        )
        + "tinydep-1.0.dist-info/RECORD,,\n"
    )
    files["tinydep-1.0.dist-info/RECORD"] = record.encode()
    path = folder / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def requirements_pex(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("reqs")
    _wheel(work)
    out = work / "requirements.pex"
    subprocess.run(
        [
            sys.executable,
            str(_pex_cli()),
            "--no-pypi",
            "-f",
            str(work),
            "tinydep",
            "-o",
            str(out),
            "--pex-root",
            str(work / "pex_root"),
            "--python",
            sys.executable,
        ],
        check=True,
        capture_output=True,
    )
    return out


def _sources(root: Path, version: str = "v1") -> Path:
    (root / "demo").mkdir(parents=True, exist_ok=True)
    (root / "demo" / "__init__.py").write_text("")
    (root / "demo" / "app.py").write_text(APP.replace('"v1"', f'"{version}"'))
    return root


def _run(pex: Path, pex_root: Path) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "PEX_ROOT": str(pex_root), "HOME": str(pex_root)}
    return subprocess.run(
        [sys.executable, str(pex), "a", "b"], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def test_runs_with_its_dependencies_entry_point_and_env(requirements_pex: Path, tmp_path: Path) -> None:
    out = tmp_path / "app.pex"
    assemble(requirements_pex, _sources(tmp_path / "src"), out, ENTRY_POINT, {"DEMO_NAME": "demo"})
    assert _run(out, tmp_path / "root") == "dep-ok demo v1 ['a', 'b']"
    assert zipfile.ZipFile(out).testzip() is None
    assert os.access(out, os.X_OK)


def test_dependency_entries_are_copied_byte_for_byte(requirements_pex: Path, tmp_path: Path) -> None:
    out = tmp_path / "app.pex"
    assemble(requirements_pex, _sources(tmp_path / "src"), out, ENTRY_POINT, {})
    with zipfile.ZipFile(requirements_pex) as before, zipfile.ZipFile(out) as after:
        deps = [i for i in before.infolist() if i.filename.startswith((".deps/", ".bootstrap/"))]
        assert deps
        for info in deps:
            copied = after.getinfo(info.filename)
            assert (copied.CRC, copied.compress_size, copied.compress_type) == (
                info.CRC,
                info.compress_size,
                info.compress_type,
            )
            assert after.read(info.filename) == before.read(info.filename)
        assert open(out, "rb").read(2) == b"#!"


def test_a_code_change_changes_the_pex_hash_and_what_runs(requirements_pex: Path, tmp_path: Path) -> None:
    # NB: pex unzips a zipapp into PEX_ROOT by its pex hash: a stale hash would run the old code.
    root = tmp_path / "root"
    first, second = tmp_path / "one.pex", tmp_path / "two.pex"
    h1 = assemble(requirements_pex, _sources(tmp_path / "s1", "v1"), first, ENTRY_POINT, {})
    h2 = assemble(requirements_pex, _sources(tmp_path / "s2", "v2"), second, ENTRY_POINT, {})
    assert h1 != h2
    assert _run(first, root).split()[2] == "v1"
    assert _run(second, root).split()[2] == "v2"
    info = json.loads(zipfile.ZipFile(second).read("PEX-INFO"))
    assert info["pex_hash"] == h2 and f"pex_hash='{h2}'".encode() in zipfile.ZipFile(second).read("__main__.py")
    assert h1.encode() not in zipfile.ZipFile(second).read("__main__.py")


def test_same_inputs_give_the_same_bytes(requirements_pex: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "app.pex", tmp_path / "b" / "app.pex"
    for out in (a, b):
        out.parent.mkdir()
        os.umask(0o077 if out is a else 0o022)
        assemble(requirements_pex, _sources(out.parent / "src"), out, ENTRY_POINT, {"Z": "1", "A": "2"})
    os.umask(0o022)
    assert a.read_bytes() == b.read_bytes()


def test_a_pex_that_already_holds_the_code_is_refused(requirements_pex: Path, tmp_path: Path) -> None:
    once = tmp_path / "once.pex"
    assemble(requirements_pex, _sources(tmp_path / "src"), once, ENTRY_POINT, {})
    with pytest.raises(ZipappError, match="demo/__init__.py; expected a requirements-only PEX"):
        assemble(once, _sources(tmp_path / "src"), tmp_path / "twice.pex", ENTRY_POINT, {})
    assert not list(tmp_path.glob("*twice*")) and not list(tmp_path.glob(".twice*"))


def test_bad_inputs_exit_with_a_message_and_leave_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "app.pex"
    assert (
        main(
            [
                "--requirements",
                str(tmp_path / "missing.pex"),
                "--sources",
                str(_sources(tmp_path / "src")),
                "--output",
                str(out),
                "--entry-point",
                ENTRY_POINT,
            ]
        )
        == 2
    )
    assert "missing.pex: no such file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "not-a-zip.pex").write_bytes(b"#!/usr/bin/env python3\nnot a zip")
    with pytest.raises(PlatformError, match="not-a-zip.pex"):
        assemble(tmp_path / "not-a-zip.pex", _sources(tmp_path / "src"), out, ENTRY_POINT, {})
    with pytest.raises(ZipappError, match="no sources"):
        assemble(tmp_path / "not-a-zip.pex", tmp_path / "empty", out, ENTRY_POINT, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "not-a-zip.pex", "src"]


@pytest.fixture(scope="module")
def packed_requirements(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("packed")
    _wheel(work)
    out = work / "requirements"
    subprocess.run(
        [
            sys.executable,
            str(_pex_cli()),
            "--no-pypi",
            "-f",
            str(work),
            "tinydep",
            "-o",
            str(out),
            "--layout",
            "packed",
            "--pex-root",
            str(work / "pex_root"),
            "--python",
            sys.executable,
        ],
        check=True,
        capture_output=True,
    )
    return out


def _packed(requirements: Path, sources: Path, out: Path, env: dict) -> str:
    """The code part by `assemble_packed`, then the rest placed beside it as the Pants rule does."""
    pex_hash = assemble_packed(requirements, sources, out, ENTRY_POINT, env)
    for path in requirements.rglob("*"):
        rel = path.relative_to(requirements)
        if path.is_file() and rel.as_posix() not in ("PEX-INFO", "__main__.py"):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, out / rel)  # NB: dist links them, as here
    return pex_hash


def test_packed_runs_with_shared_dependencies_and_writes_only_the_code(
    packed_requirements: Path, tmp_path: Path
) -> None:
    code_only = tmp_path / "code-only"
    assemble_packed(packed_requirements, _sources(tmp_path / "src"), code_only, ENTRY_POINT, {"DEMO_NAME": "demo"})
    written = sorted(p.relative_to(code_only).as_posix() for p in code_only.rglob("*") if p.is_file())
    assert written == ["PEX-INFO", "__main__.py", "demo/__init__.py", "demo/app.py"]
    out = tmp_path / "app.pex"
    _packed(packed_requirements, _sources(tmp_path / "src"), out, {"DEMO_NAME": "demo"})
    assert _run(out, tmp_path / "root") == "dep-ok demo v1 ['a', 'b']"


def test_packed_code_change_changes_the_hash_and_what_runs(packed_requirements: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    h1 = _packed(packed_requirements, _sources(tmp_path / "s1", "v1"), tmp_path / "one.pex", {})
    h2 = _packed(packed_requirements, _sources(tmp_path / "s2", "v2"), tmp_path / "two.pex", {})
    assert h1 != h2
    assert _run(tmp_path / "one.pex", root).split()[2] == "v1"
    assert _run(tmp_path / "two.pex", root).split()[2] == "v2"
    assert f"pex_hash='{h2}'".encode() in (tmp_path / "two.pex" / "__main__.py").read_bytes()


def test_packed_same_inputs_same_bytes_and_clashes_refused(packed_requirements: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "app.pex", tmp_path / "b" / "app.pex"
    for out in (a, b):
        # NB: sources at another path and another umask: neither may show in the bytes.
        os.umask(0o077 if out is a else 0o022)
        assemble_packed(packed_requirements, _sources(out.parent / "src"), out, ENTRY_POINT, {"Z": "1", "A": "2"})
    os.umask(0o022)
    files = lambda root: [
        (p.relative_to(root).as_posix(), p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    assert files(a) == files(b)
    (tmp_path / "bad" / ".deps").mkdir(parents=True)
    (tmp_path / "bad" / ".deps" / "x").write_text("")
    with pytest.raises(ZipappError, match="holds .deps"):
        assemble_packed(packed_requirements, tmp_path / "bad", tmp_path / "c", ENTRY_POINT, {})
    with pytest.raises(ZipappError, match="packed requirements-only PEX"):
        assemble_packed(tmp_path / "nowhere", _sources(tmp_path / "src"), tmp_path / "d", ENTRY_POINT, {})
