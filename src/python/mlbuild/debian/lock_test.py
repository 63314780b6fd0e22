from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlbuild.debian import lock as lockfile
from mlbuild.debian.errors import LockFileError
from mlbuild.debian.lock import AptSource, LockedPackage, LockInputs, PackageLock

SHA_A = "a" * 64
SHA_B = "b" * 64


def _pkg(name: str, sha: str = SHA_A, **kw) -> LockedPackage:
    fields: dict[str, Any] = dict(
        name=name,
        version="1:2.0+deb12u1",
        architecture="amd64",
        mirror="debian",
        filename=f"pool/main/{name[0]}/{name}/{name}_2.0+deb12u1_amd64.deb",
        size=1234,
        sha256=sha,
    )
    fields.update(kw)
    return LockedPackage(**fields)


def _lock(packages) -> PackageLock:
    return PackageLock(
        inputs=LockInputs(("python3.11", "ca-certificates"), "amd64", lockfile.default_sources()),
        mirrors={"debian-security": "http://deb.debian.org/debian-security", "debian": "http://deb.debian.org/debian"},
        packages=tuple(packages),
    )


def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    lock = _lock([_pkg("python3.11"), _pkg("ca-certificates", SHA_B, architecture="all", mirror="debian-security")])
    path = tmp_path / "packages.lock.json"
    lockfile.write(lock, path)
    text = path.read_text()
    assert lockfile.load(path) == lock
    assert lockfile.dumps(lockfile.loads(text)) == text
    assert text.endswith("}\n")
    assert [p.name for p in lockfile.load(path).packages] == ["ca-certificates", "python3.11"]
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_ordering_is_stable_whatever_the_input_order() -> None:
    names = ["zlib1g", "libc6", "python3.11", "ca-certificates", "libgomp1"]
    a = lockfile.dumps(_lock([_pkg(n) for n in names]))
    b = lockfile.dumps(_lock([_pkg(n) for n in reversed(names)]))
    assert a == b
    obj = json.loads(a)
    assert [p["name"] for p in obj["packages"]] == sorted(names)
    assert list(obj["mirrors"]) == ["debian", "debian-security"]
    assert obj["inputs"]["packages"] == ["ca-certificates", "python3.11"]
    assert list(obj["packages"][0]) == ["name", "version", "architecture", "mirror", "filename", "size", "sha256"]


def test_url_joins_mirror_and_quotes_filename() -> None:
    p = _pkg("libc6")
    assert p.url({"debian": "http://example.org/debian/"}) == (
        "http://example.org/debian/pool/main/l/libc6/libc6_2.0%2Bdeb12u1_amd64.deb"
    )
    with pytest.raises(LockFileError, match="mirror 'debian' is not in the lock"):
        p.url({})


def test_with_mirrors_overrides_one_base() -> None:
    lock = _lock([_pkg("libc6")]).with_mirrors({"debian": "http://mirror.local/debian"})
    assert lock.mirrors["debian"] == "http://mirror.local/debian"
    assert lock.mirrors["debian-security"] == "http://deb.debian.org/debian-security"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda o: o["packages"][0].update(sha256="xyz"), r"packages\[0\].sha256: malformed value 'xyz'"),
        (lambda o: o["packages"][0].pop("size"), r"packages\[0\].size: missing"),
        (lambda o: o["packages"][0].update(size="12"), r"packages\[0\].size: expected int"),
        (lambda o: o["packages"][0].update(mirror="nope"), r"\(ca-certificates\).mirror: 'nope' is not a key"),
        (lambda o: o["packages"][0].update(filename="/etc/passwd"), r"filename: expected a relative pool"),
        (lambda o: o.update(lock_version=99), r"lock_version: unsupported version 99"),
        (lambda o: o["inputs"]["packages"].append("missing-pkg"), r"requested packages \['missing-pkg'\]"),
        (lambda o: o["packages"].append(dict(o["packages"][0])), r"listed twice"),
    ],
)
def test_invalid_lock_names_file_and_field(tmp_path: Path, mutate, message) -> None:
    obj = lockfile.to_json_obj(_lock([_pkg("python3.11"), _pkg("ca-certificates")]))
    mutate(obj)
    path = tmp_path / "bad.lock.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(LockFileError, match=message) as err:
        lockfile.load(path)
    assert str(path) in str(err.value)
    assert "./pants mlbuild lock-debian --output" in str(err.value)


def test_missing_and_non_json_lock(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match="lock file not found"):
        lockfile.load(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(LockFileError, match="not valid JSON"):
        lockfile.load(tmp_path / "x.json")


def test_committed_lock_is_canonical() -> None:
    repo = Path(__file__).resolve().parents[4]
    path = repo / "docker/debian-python3.11/packages.lock.json"
    # NB: a dependency in this package's BUILD puts the lock in the sandbox; missing means
    # that dependency is gone, which must fail rather than skip.
    assert path.is_file(), f"{path} not in the sandbox (lock_test.py depends on docker/debian-python3.11:lock)"
    text = path.read_text()
    lock = lockfile.loads(text, str(path))
    assert lockfile.dumps(lock) == text
    names = {p.name for p in lock.packages}
    assert {"python3.11", "libgomp1", "libstdc++6", "ca-certificates", "libssl3", "zlib1g", "libffi8"} <= names
    assert AptSource("debian-security", "bookworm-security") in lock.inputs.sources
