"""pull_to_layout against a real `docker-registry` on loopback: round trip, blob cache trust, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from mlbuild.oci.layout import read_layout
from mlbuild.registry import pull_to_layout, push_layout
from mlbuild.registry.cli import main
from mlbuild.registry.errors import DigestMismatchError
from mlbuild.registry.local_server import LocalRegistry, serve_registry
from mlbuild.registry.retry import RetryPolicy
from mlbuild.registry.testing import make_layout
from mlbuild.tools_required import require_tool

pytestmark = require_tool("docker-registry", "docker-registry")
ENV = {"DOCKER_CONFIG": "/nonexistent"}
FAST = RetryPolicy(sleep=lambda s: None)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with serve_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def pushed(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    layout = make_layout(tmp_path_factory.mktemp("src"))
    return push_layout(layout, None, f"{registry.host}/base:1", progress=None, env=ENV).digest


def _pull(ref: str, tmp: Path, name: str = "layout", cache: str = "cache"):
    return pull_to_layout(ref, tmp / name, tmp / cache, progress=None, env=ENV, retry=FAST)


def _layer_digests(layout: Path) -> list[str]:
    return [layer.digest for layer in read_layout(layout).layers]


def test_round_trip_keeps_the_manifest_digest(registry: LocalRegistry, pushed: str, tmp_path: Path) -> None:
    first = _pull(f"{registry.host}/base:1@{pushed}", tmp_path, "a")
    again = _pull(f"{registry.host}/base@{pushed}", tmp_path, "b")
    assert first.digest == pushed and (first.fetched, first.cached) == (3, 0)
    assert (again.fetched, again.cached) == (0, 3)  # from the blob cache
    assert read_layout(tmp_path / "a").manifest_descriptor().digest == pushed
    assert read_layout(tmp_path / "a", "1").manifest_bytes() == read_layout(tmp_path / "b", "base").manifest_bytes()


def test_a_same_size_corrupt_cached_blob_is_evicted_and_fetched_again(
    registry: LocalRegistry, pushed: str, tmp_path: Path
) -> None:
    """Issue 11 item 5: the cache was trusted by size; now every cached blob is re-hashed before use."""
    _pull(f"{registry.host}/base@{pushed}", tmp_path, "a")
    layer = _layer_digests(tmp_path / "a")[1]
    cached = tmp_path / "cache" / "sha256" / layer[7:]
    size = cached.stat().st_size
    cached.unlink()  # NB: the layout holds a hard link to the good bytes; replace, don't write through
    cached.write_bytes(b"\0" * size)
    again = _pull(f"{registry.host}/base@{pushed}", tmp_path, "b")
    assert (again.fetched, again.cached) == (1, 2)
    for blob in (cached, tmp_path / "b" / "blobs" / "sha256" / layer[7:]):
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == layer


def test_a_corrupt_blob_in_the_layout_is_replaced(registry: LocalRegistry, pushed: str, tmp_path: Path) -> None:
    _pull(f"{registry.host}/base@{pushed}", tmp_path, "a")
    layer = _layer_digests(tmp_path / "a")[0]
    in_layout = tmp_path / "a" / "blobs" / "sha256" / layer[7:]
    size = in_layout.stat().st_size
    in_layout.unlink()
    in_layout.write_bytes(b"\0" * size)
    _pull(f"{registry.host}/base@{pushed}", tmp_path, "a")
    assert "sha256:" + hashlib.sha256(in_layout.read_bytes()).hexdigest() == layer


def test_a_corrupt_blob_in_the_registry_is_refused_and_not_cached(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = make_layout(tmp_path / "src", text="to be corrupted")
    digest = push_layout(layout, None, f"{registry.host}/corrupt", progress=None, env=ENV).digest
    layer = _layer_digests(layout)[1]
    data = registry.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / layer[7:9] / layer[7:] / "data"
    data.write_bytes(b"x" * data.stat().st_size)
    with pytest.raises(DigestMismatchError, match=f"GET blob {layer}"):
        _pull(f"{registry.host}/corrupt@{digest}", tmp_path)
    assert not (tmp_path / "cache" / "sha256" / layer[7:]).exists() and not (tmp_path / "layout").exists()


@pytest.mark.parametrize("flag", ["--layout", "--cache-dir"])
def test_layout_or_cache_that_is_a_file_is_a_user_error(
    flag: str, registry: LocalRegistry, pushed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a directory")
    paths = {"--layout": str(tmp_path / "layout"), "--cache-dir": str(tmp_path / "cache"), flag: str(tmp_path / "file")}
    assert main(["pull", f"{registry.host}/base@{pushed}", *[x for k, v in paths.items() for x in (k, v)]]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {tmp_path / 'file'}: is a file" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
