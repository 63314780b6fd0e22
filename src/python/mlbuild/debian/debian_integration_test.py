"""Integration: real apt resolution, real mirror downloads, real rootfs, run under bwrap.

Needs apt-get, the Debian mirror and bubblewrap that can create namespaces: without one of
them a test skips, saying which; under CI (MLBUILD_REQUIRE_TOOLS=1, see
mlbuild/tools_required.py) it fails instead, so the base image's checks cannot drop out of a
green run. A committed lock missing from the sandbox is a BUILD bug and always fails.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest

from mlbuild.debian import lock as lockfile
from mlbuild.debian.errors import ChecksumMismatch, FetchError
from mlbuild.debian.resolve import resolve_lock
from mlbuild.debian.rootfs import build_rootfs
from mlbuild.tools_required import require_tool, skip_or_fail, tool_path

REPO = Path(__file__).resolve().parents[4]
COMMITTED_LOCK = REPO / "docker/debian-python3.11/packages.lock.json"


def _mirror_reachable() -> bool:
    try:
        url = lockfile.DEFAULT_MIRRORS["debian"] + "/dists/bookworm/Release"
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10):
            return True
    except OSError:
        return False


pytestmark = require_tool("apt-get", "apt")


@pytest.fixture(scope="module", autouse=True)
def mirror() -> None:
    if not _mirror_reachable():
        skip_or_fail(f"the Debian mirror {lockfile.DEFAULT_MIRRORS['debian']} is not reachable")


@pytest.fixture(scope="module")
def fresh_lock():
    return resolve_lock(lockfile.DEFAULT_PACKAGES)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("debs")


@pytest.fixture(scope="module")
def rootfs(fresh_lock, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("debian") / "rootfs"
    return build_rootfs(fresh_lock, out, cache_dir=cache).path


def _bwrap(root: Path, code: str) -> str:
    cmd = [
        tool_path("bwrap", "bubblewrap"),
        "--ro-bind",
        str(root),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--unshare-all",
        "/usr/bin/python3",
        "-c",
        code,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and "Creating new namespace failed" in proc.stderr:
        skip_or_fail(f"bwrap cannot create namespaces here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_fresh_resolution_contains_the_runtime(fresh_lock) -> None:
    names = {p.name for p in fresh_lock.packages}
    assert {"python3.11", "libgomp1", "libstdc++6", "ca-certificates", "libssl3", "zlib1g", "libffi8"} <= names
    assert lockfile.dumps(lockfile.loads(lockfile.dumps(fresh_lock))) == lockfile.dumps(fresh_lock)


def _committed_lock() -> lockfile.PackageLock:
    if not COMMITTED_LOCK.exists():
        pytest.fail(
            f"{COMMITTED_LOCK} is not in this test's sandbox: add it to the test's BUILD dependencies", pytrace=False
        )
    return lockfile.load(COMMITTED_LOCK)


def test_committed_lock_matches_its_inputs(fresh_lock) -> None:
    committed = _committed_lock()
    assert committed.inputs == fresh_lock.inputs
    # Versions move with security updates; the package set rarely does. A difference here
    # means: refresh the lock (./pants mlbuild lock-debian --output ...).
    assert {p.name for p in committed.packages} == {p.name for p in fresh_lock.packages}


def test_committed_lock_builds(tmp_path: Path, cache: Path) -> None:
    lock = _committed_lock()
    try:
        result = build_rootfs(lock, tmp_path / "rootfs", cache_dir=cache)
    except ChecksumMismatch:
        raise
    except FetchError as e:
        skip_or_fail(f"the committed lock is stale (the mirror dropped a version); refresh it: {e}")
    assert (result.path / "usr/bin/python3.11").exists()


def test_python_runs_in_rootfs(rootfs: Path) -> None:
    out = _bwrap(
        rootfs,
        "import ssl, sqlite3, ctypes, lzma, bz2, json, zlib, urllib.request, zoneinfo;"
        "ctx = ssl.create_default_context();"
        "ctx.load_verify_locations('/etc/ssl/certs/ca-certificates.crt');"
        "assert len(ssl.create_default_context().get_ca_certs()) > 100;"
        "ctypes.CDLL('libgomp.so.1'); ctypes.CDLL('libstdc++.so.6');"
        "print(ssl.OPENSSL_VERSION)",
    )
    assert out.startswith("OpenSSL 3.")


def test_rootfs_layout(rootfs: Path) -> None:
    assert (rootfs / "etc/os-release").exists()
    assert (rootfs / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 100_000
    assert not (rootfs / "opt/ml").exists()
    assert not (rootfs / "usr/share/man").exists()
    assert not (rootfs / "bin/sh").exists()  # distroless: no shell
