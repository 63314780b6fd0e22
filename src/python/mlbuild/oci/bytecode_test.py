"""Build-time bytecode: imported without compiling, names the image's files, reproducible."""

from __future__ import annotations

import io
import marshal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mlbuild.oci.bytecode import compile_source, pyc_path, require_cache_tag
from mlbuild.oci.errors import SpecError
from mlbuild.oci.layer import entries_from_directory, entries_from_zip, with_bytecode
from mlbuild.oci.layer_writer import write_tar

TAG = sys.implementation.cache_tag
SOURCE = b"import os\n\ndef where():\n    raise RuntimeError(__file__)\n\nVALUE = {'a': (1, 2.5, None), 'b': frozenset({'x', 'y'})}\n"


def _wheel(tmp_path: Path) -> Path:
    whl = tmp_path / "pkg.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg/__init__.py", SOURCE)
        z.writestr("pkg/py2_only.py", b"print 'never imported'\n")
        z.writestr("pkg/__pycache__/__init__.cpython-311.pyc", b"left behind by a run")
        z.writestr("pkg/data.txt", b"x")
    return whl


def test_every_compilable_module_gets_an_unchecked_hash_pyc_with_its_image_path(tmp_path: Path) -> None:
    entries = {e.path: e for e in entries_from_zip(_wheel(tmp_path), "/opt/deps/pkg.whl", TAG)}
    pyc = entries[f"opt/deps/pkg.whl/pkg/__pycache__/__init__.{TAG}.pyc"].read_bytes()
    assert pyc is not None and pyc != b"left behind by a run"
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # PEP 552: hash-based, unchecked
    # A SyntaxError: no bytecode, so the entry is left out when the layer is written.
    py2 = entries[f"opt/deps/pkg.whl/pkg/__pycache__/py2_only.{TAG}.pyc"]
    assert py2.read_bytes() is None
    written = io.BytesIO()
    write_tar(entries.values(), written)
    names = tarfile.open(fileobj=io.BytesIO(written.getvalue())).getnames()
    assert f"opt/deps/pkg.whl/pkg/__pycache__/__init__.{TAG}.pyc" in names and py2.path not in names
    assert "opt/deps/pkg.whl/pkg/__pycache__" in entries and entries["opt/deps/pkg.whl/pkg/__pycache__"].kind == "dir"
    assert not any(
        p.endswith(".pyc") for p in {e.path for e in entries_from_zip(_wheel(tmp_path), "/opt/deps/pkg.whl")}
    )


def test_python_imports_the_pyc_as_it_is_and_it_names_the_image_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for entry in entries_from_zip(_wheel(tmp_path), "/opt/deps/pkg.whl", TAG):
        target = root / entry.path
        if entry.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(entry.read_bytes() or b"")
    # The source is replaced after compiling: an unchecked pyc is used as it is, so what runs
    # is the pyc (and the traceback still names the path inside the image).
    (root / "opt/deps/pkg.whl/pkg/__init__.py").write_bytes(SOURCE.replace(b"__file__", b"'changed'"))
    script = "import pkg\ntry:\n    pkg.where()\nexcept RuntimeError as e:\n    import traceback; print(traceback.format_exc())"
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-B",
            "-c",
            f"import sys; sys.path.insert(0, {str(root / 'opt/deps/pkg.whl')!r})\n{script}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Python points co_filename at where it found the file (in the image: the same path).
    assert f'File "{root}/opt/deps/pkg.whl/pkg/__init__.py"' in out
    assert out.strip().endswith(
        f"RuntimeError: {root}/opt/deps/pkg.whl/pkg/__init__.py"
    )  # the pyc's code, not 'changed'
    pyc = (root / f"opt/deps/pkg.whl/pkg/__pycache__/__init__.{TAG}.pyc").read_bytes()
    assert marshal.loads(pyc[16:]).co_filename == "/opt/deps/pkg.whl/pkg/__init__.py"


def test_the_same_source_compiles_to_the_same_bytes_in_different_processes(tmp_path: Path) -> None:
    # NB: marshal output can depend on what else the process holds; each run warms up differently.
    program = (
        "import sys, importlib; [importlib.import_module(m) for m in sys.argv[2:]];"
        "from mlbuild.oci.bytecode import compile_source;"
        f"sys.stdout.buffer.write(compile_source('opt/x.py', {SOURCE!r}))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program, "x", *warm],
            capture_output=True,
            check=True,
            env={"PYTHONPATH": ":".join(sys.path)},
        ).stdout
        for warm in ([], ["json", "email.message"], ["decimal", "asyncio"])
    }
    assert len(outputs) == 1 and outputs == {compile_source("opt/x.py", SOURCE)}


def test_a_builder_of_another_python_refuses_rather_than_writing_dead_pycs() -> None:
    with pytest.raises(SpecError, match="builder runs"):
        require_cache_tag("cpython-39", "layers[1].zips[0].bytecode")
    assert pyc_path("a/b/mod.py", "cpython-311") == "a/b/__pycache__/mod.cpython-311.pyc"


def test_a_tree_gets_a_pyc_for_every_module_and_every_module_symlink(tmp_path: Path) -> None:
    # A Debian standard library as unpacked: no bytecode, and `.py` symlinks (relative and absolute).
    root = tmp_path / "rootfs"
    (root / "usr/lib/python3.11/json").mkdir(parents=True)
    (root / "etc/python3.11").mkdir(parents=True)
    (root / "usr/lib/python3.11/json/__init__.py").write_bytes(SOURCE)
    (root / "usr/lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py").write_bytes(b"build_time_vars = {}\n")
    (root / "usr/lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py").symlink_to(
        "_sysconfigdata__x86_64-linux-gnu.py"
    )
    (root / "etc/python3.11/sitecustomize.py").write_bytes(b"X = 1\n")
    (root / "usr/lib/python3.11/sitecustomize.py").symlink_to("/etc/python3.11/sitecustomize.py")
    (root / "usr/lib/python3.11/dangling.py").symlink_to("/nowhere.py")
    (root / "usr/lib/python3.11/__pycache__").mkdir()
    (root / f"usr/lib/python3.11/__pycache__/stale.{TAG}.pyc").write_bytes(b"left behind by a run")
    entries = {e.path: e for e in with_bytecode(entries_from_directory(root, "/"), TAG)}
    lib = "usr/lib/python3.11"
    pycs = sorted(p for p in entries if p.endswith(".pyc"))
    assert pycs == sorted(
        f"{folder}/__pycache__/{name}.{TAG}.pyc"
        for folder, name in [
            ("etc/python3.11", "sitecustomize"),
            (f"{lib}/json", "__init__"),
            (lib, "_sysconfigdata__x86_64-linux-gnu"),
            (lib, "_sysconfigdata__linux_x86_64-linux-gnu"),
            (lib, "sitecustomize"),
        ]
    )
    assert entries[f"{lib}/json/__pycache__"].kind == "dir"
    # The link's pyc is its target's code under the link's name: where Python looks and what it reports.
    linked = entries[f"{lib}/__pycache__/sitecustomize.{TAG}.pyc"].read_bytes()
    assert linked is not None and marshal.loads(linked[16:]).co_filename == f"/{lib}/sitecustomize.py"
    assert linked[8:16] == entries[f"etc/python3.11/__pycache__/sitecustomize.{TAG}.pyc"].read_bytes()[8:16]  # type: ignore[index]
    written = io.BytesIO()
    write_tar(entries.values(), written)
    tar = tarfile.open(fileobj=io.BytesIO(written.getvalue()))
    pyc = tar.extractfile(f"{lib}/json/__pycache__/__init__.{TAG}.pyc").read()  # type: ignore[union-attr]
    assert pyc == compile_source(f"{lib}/json/__init__.py", SOURCE) and int.from_bytes(pyc[4:8], "little") == 0b01
