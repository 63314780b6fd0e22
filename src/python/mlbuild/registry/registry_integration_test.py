"""Against a real CNCF distribution 2.8 (Debian's `docker-registry`) on loopback; skopeo cross-checks."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from mlbuild.oci.layout import read_layout
from mlbuild.oci.referrer import IN_TOTO_MEDIA_TYPE, attach, make_referrer
from mlbuild.registry import pull_to_layout, push_layout
from mlbuild.registry.errors import AuthError
from mlbuild.registry.local_server import serve_registry, write_htpasswd
from mlbuild.registry.referrers import fetch_referrers, referrers_tag
from mlbuild.registry.testing import make_layout
from mlbuild.tools_required import cross_check_tool, require_tool, tool_path

pytestmark = require_tool("docker-registry", "docker-registry")
USER, PASSWORD = "ci", "hunter2"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running.host


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("auth-registry")
    tool_path("htpasswd", "apache2-utils")  # bcrypt entries
    with serve_registry(root, write_htpasswd(root / "htpasswd", USER, PASSWORD)) as running:
        yield running.host


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "docker")}


def test_push_repush_mount_pull(registry: str, tmp_path: Path, env: dict[str, str]) -> None:
    layout = make_layout(tmp_path / "img")
    first = push_layout(layout, None, f"{registry}/team/app", tags=["v1"], progress=None, env=env)
    assert (first.uploaded, first.skipped) == (3, 0)
    again = push_layout(layout, None, f"{registry}/team/app", tags=["v1"], progress=None, env=env)
    assert (again.uploaded, again.mounted, again.skipped, again.digest) == (0, 0, 3, first.digest)
    mounted = push_layout(layout, None, f"{registry}/team/other", mount_from=["team/app"], progress=None, env=env)
    assert (mounted.mounted, mounted.uploaded, mounted.digest) == (3, 0, first.digest)
    chunked = push_layout(
        layout, None, f"{registry}/team/chunked", upload_mode="chunked", chunk_size=5 << 20, progress=None, env=env
    )
    assert chunked.uploaded == 3
    pulled = pull_to_layout(
        f"{registry}/team/other@{first.digest}", tmp_path / "pulled", tmp_path / "cache", progress=None, env=env
    )
    assert pulled.digest == first.digest
    assert read_layout(tmp_path / "pulled").manifest_descriptor().digest == first.digest


@require_tool("skopeo", "skopeo")
def test_skopeo_accepts_the_push(registry: str, tmp_path: Path, env: dict[str, str]) -> None:
    result = push_layout(
        make_layout(tmp_path, text="skopeo"), None, f"{registry}/check", tags=["t"], progress=None, env=env
    )
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{result.image_uri}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    assert info["Digest"] == result.digest and sorted(info["RepoTags"]) == sorted(result.tags)


def test_htpasswd_auth(auth_registry: str, tmp_path: Path, env: dict[str, str]) -> None:
    layout = make_layout(tmp_path)
    with pytest.raises(AuthError, match="wants credentials and none were found"):
        push_layout(layout, None, f"{auth_registry}/app", progress=None, env=env)
    config = {"auths": {auth_registry: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}
    Path(env["DOCKER_CONFIG"]).mkdir()
    (Path(env["DOCKER_CONFIG"]) / "config.json").write_text(json.dumps(config))
    assert push_layout(layout, None, f"{auth_registry}/app", progress=None, env=env).uploaded == 3


def test_a_large_layer_is_pushed_once(registry: str, tmp_path: Path, env: dict[str, str]) -> None:
    # NB: push timings (cold and warm, against skopeo) are bench/push.py's job, not a test's.
    layout = make_layout(tmp_path, big_bytes=8 * 1024 * 1024)
    first = push_layout(layout, None, f"{registry}/big", progress=None, env=env)
    second = push_layout(layout, None, f"{registry}/big", progress=None, env=env)
    assert first.uploaded == 4 and second.uploaded == 0 and second.skipped == 4
    assert first.uploaded_bytes >= 8 * 1024 * 1024 and second.uploaded_bytes == 0


def test_referrer_travels_with_the_image_and_is_found_by_the_image_digest(
    registry: str, tmp_path: Path, env: dict[str, str]
) -> None:
    layout = make_layout(tmp_path, text="attested")
    image = read_layout(layout).manifest_descriptor()
    statement = b'{"_type": "https://in-toto.io/Statement/v1"}\n'
    attached = attach(layout, make_referrer(image, IN_TOTO_MEDIA_TYPE, statement))
    first = push_layout(layout, None, f"{registry}/att/app", progress=None, env=env)
    assert first.digest == image.digest and first.referrers == (attached.digest,)
    # distribution 2.8 has no referrers API: the spec's fallback, a `sha256-<hex>` index tag.
    assert first.referrers_api is False
    assert (first.uploaded, first.skipped) == (5, 0)  # config + 2 layers + empty config + statement
    digest, (found,) = fetch_referrers(f"{registry}/att/app@{image.digest}", IN_TOTO_MEDIA_TYPE, env=env)
    assert digest == image.digest and found.payload == statement
    assert found.descriptor.digest == attached.digest and found.subject_digest == image.digest
    by_tag, _ = fetch_referrers(f"{registry}/att/app:{first.tags[0]}", IN_TOTO_MEDIA_TYPE, env=env)
    assert by_tag == image.digest
    skopeo = cross_check_tool("skopeo", "skopeo")
    if skopeo is not None:  # another client reads the same referrers index
        index = json.loads(
            subprocess.run(
                [
                    skopeo,
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    f"docker://{registry}/att/app:{referrers_tag(image.digest)}",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        assert [m["digest"] for m in index["manifests"]] == [attached.digest]
    again = push_layout(layout, None, f"{registry}/att/app", progress=None, env=env)
    assert (again.uploaded, again.skipped) == (0, 5)
    # An image without provenance has none to find.
    plain = make_layout(tmp_path / "plain", text="plain")
    pushed = push_layout(plain, None, f"{registry}/att/app", progress=None, env=env)
    assert pushed.referrers == ()
    assert fetch_referrers(pushed.image_uri, IN_TOTO_MEDIA_TYPE, env=env)[1] == []
