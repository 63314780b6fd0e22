from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mlbuild.oci.layout import read_layout
from mlbuild.oci.referrer import IN_TOTO_MEDIA_TYPE, attach, make_referrer
from mlbuild.registry import push_layout
from mlbuild.registry.docker_config import Credentials
from mlbuild.registry.errors import AuthError, DigestMismatchError, NotFoundError, RegistryUserError
from mlbuild.registry.referrers import fetch_referrers, referrers_tag
from mlbuild.registry.retry import RetryPolicy
from mlbuild.registry.testing import FakeState, Fault, fake_registry, make_layout


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return make_layout(tmp_path)


def _policy(slept: list[float] | None = None) -> RetryPolicy:
    return RetryPolicy(sleep=(slept if slept is not None else []).append, random=lambda: 0.0)


def _push(layout: Path, dest: str, **kwargs):
    kwargs.setdefault("retry", _policy())
    return push_layout(layout, None, dest, progress=None, env={"DOCKER_CONFIG": "/nonexistent"}, **kwargs)


def _count(state: FakeState, method: str, fragment: str = "") -> int:
    return sum(1 for m, p, _ in state.log if m == method and fragment in p)


@pytest.mark.parametrize("absolute", [False, True])
def test_push_then_noop_repush(layout: Path, absolute: bool) -> None:
    with fake_registry(FakeState(absolute_location=absolute)) as (host, state):
        first = _push(layout, f"{host}/team/app:v1")
        assert (first.uploaded, first.skipped, first.mounted) == (3, 0, 0)
        assert first.image_uri == f"{host}/team/app@{first.digest}"
        assert first.tags == (f"sha256-{first.digest[7:23]}", "v1")
        assert (("team/app", "v1") in state.manifests) and (("team/app", first.tags[0]) in state.manifests)
        state.log.clear()
        second = _push(layout, f"{host}/team/app:v1")
        assert (second.uploaded, second.skipped, second.digest) == (0, 3, first.digest)
        assert _count(state, "POST") == _count(state, "PUT") == _count(state, "PATCH") == 0


def test_chunked_upload(layout: Path) -> None:
    with fake_registry() as (host, state):
        result = _push(layout, f"{host}/app", upload_mode="chunked", chunk_size=5 * 1024 * 1024)
        assert result.uploaded == 3 and _count(state, "PATCH") == 3
    with pytest.raises(RegistryUserError, match="at least"):
        _push(layout, f"{host}/app", upload_mode="chunked", chunk_size=1000)


@pytest.mark.parametrize("mount_works", [True, False])
def test_cross_repo_mount_and_202_fallback(layout: Path, mount_works: bool) -> None:
    with fake_registry(FakeState(mount_works=mount_works)) as (host, state):
        _push(layout, f"{host}/base")
        result = _push(layout, f"{host}/other", mount_from=["base"])
        if mount_works:
            assert (result.mounted, result.uploaded) == (3, 0)
        else:  # 202: the registry opened an upload session instead; we upload into it
            assert (result.mounted, result.uploaded) == (0, 3)
            assert _count(state, "POST", "mount=") == 3 and _count(state, "POST", "/other/blobs/uploads/?") == 3


def test_retries_503_honouring_retry_after(layout: Path) -> None:
    slept: list[float] = []
    state = FakeState(
        faults=[
            Fault("PUT", "/blobs/uploads/", 503, times=2, headers={"Retry-After": "3"}),
            Fault("HEAD", "/manifests/", 429, 1),
        ]
    )
    with fake_registry(state) as (host, state):
        result = _push(layout, f"{host}/app", retry=_policy(slept), parallelism=1)
    assert result.uploaded == 3
    assert slept.count(3.0) == 2 and len(slept) == 3


def test_no_retry_on_401(layout: Path) -> None:
    with fake_registry(FakeState(basic_auth=("u", "p"))) as (host, state):
        slept: list[float] = []
        with pytest.raises(AuthError, match=r"wants credentials and none were found.*config.json"):
            _push(layout, f"{host}/app", retry=_policy(slept))
        assert slept == [] and len(state.log) <= 3  # one 401 per parallel HEAD, nothing retried
        with pytest.raises(AuthError, match="rejected the credentials"):
            _push(layout, f"{host}/app", credentials=Credentials("u", "wrong"))
        assert _push(layout, f"{host}/app", credentials=Credentials("u", "p")).uploaded == 3


def test_no_retry_on_404(layout: Path) -> None:
    slept: list[float] = []
    state = FakeState(faults=[Fault("POST", "/blobs/uploads/", 404, times=9)])
    with fake_registry(state) as (host, state):
        with pytest.raises(NotFoundError, match=r"/app: HTTP 404 \(NAME_UNKNOWN.*create it first"):
            _push(layout, f"{host}/app", retry=_policy(slept), parallelism=1)
    assert (
        slept == [] and _count(state, "POST") <= 2 and _count(state, "PUT") == 0
    )  # <=2: a worker may start the next blob


def test_manifest_digest_mismatch_detected(layout: Path) -> None:
    with fake_registry(FakeState(lie_manifest_digest=True)) as (host, _):
        with pytest.raises(DigestMismatchError, match="registry stored digest sha256:0000"):
            _push(layout, f"{host}/app")


def test_corrupt_layout_blob_is_a_user_error(layout: Path) -> None:
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer = next(p for p in blobs if p.read_bytes()[:2] == b"\x1f\x8b")
    data = bytearray(layer.read_bytes())
    data[-1] ^= 0xFF
    layer.write_bytes(bytes(data))
    with fake_registry() as (host, _):
        with pytest.raises(RegistryUserError, match="does not hash to"):
            _push(layout, f"{host}/app", parallelism=1)


def test_progress_lines(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, big_bytes=9 * 1024 * 1024)
    out = io.StringIO()
    with fake_registry() as (host, _):
        push_layout(layout, None, f"{host}/app", progress=out, env={})
    assert "MB/s done" in out.getvalue()


@pytest.mark.parametrize("api", [True, False])
def test_referrers_go_with_the_image_with_or_without_the_referrers_api(tmp_path: Path, api: bool) -> None:
    layout = make_layout(tmp_path)
    image = read_layout(layout).manifest_descriptor()
    attached = attach(layout, make_referrer(image, IN_TOTO_MEDIA_TYPE, b'{"statement": 1}'))
    with fake_registry(FakeState(referrers_api=api)) as (host, state):
        result = push_layout(layout, None, f"{host}/app", progress=None, env={})
        assert result.referrers == (attached.digest,) and result.referrers_api is api
        # With the API the registry indexes it; without, the `sha256-<hex>` referrers index does.
        assert (("app", referrers_tag(image.digest)) in state.manifests) is not api
        digest, (found,) = fetch_referrers(f"{host}/app@{image.digest}", IN_TOTO_MEDIA_TYPE, env={})
        assert digest == image.digest and found.payload == b'{"statement": 1}'
        referrer_gets = [path for method, path, _ in state.log if "/referrers/" in path]
        assert referrer_gets == [f"/v2/app/referrers/{image.digest}?artifactType=application%2Fvnd.in-toto%2Bjson"]


def test_without_the_api_the_referrers_index_grows_and_stays_put_on_repush(tmp_path: Path) -> None:
    layout = make_layout(tmp_path)
    image = read_layout(layout).manifest_descriptor()
    first = attach(layout, make_referrer(image, IN_TOTO_MEDIA_TYPE, b'{"built by": "v1"}'))
    with fake_registry() as (host, state):
        push_layout(layout, None, f"{host}/app", progress=None, env={})
        push_layout(layout, None, f"{host}/app", progress=None, env={})  # no duplicate entry
        second = attach(layout, make_referrer(image, IN_TOTO_MEDIA_TYPE, b'{"built by": "v2"}'))
        push_layout(layout, None, f"{host}/app", progress=None, env={})
        index = json.loads(state.manifests[("app", referrers_tag(image.digest))][0])
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
        assert sorted(m["digest"] for m in index["manifests"]) == sorted([first.digest, second.digest])
        assert all(m["artifactType"] == IN_TOTO_MEDIA_TYPE for m in index["manifests"])
        _, found = fetch_referrers(f"{host}/app@{image.digest}", IN_TOTO_MEDIA_TYPE, env={})
        assert sorted(r.payload for r in found) == [b'{"built by": "v1"}', b'{"built by": "v2"}']


def test_a_foreign_tag_where_the_referrers_index_goes_only_warns(tmp_path: Path, capsys) -> None:
    layout = make_layout(tmp_path)
    image = read_layout(layout).manifest_descriptor()
    attach(layout, make_referrer(image, IN_TOTO_MEDIA_TYPE, b"{}"))
    with fake_registry() as (host, state):
        state.manifests[("app", referrers_tag(image.digest))] = (
            b'{"mediaType": "application/vnd.oci.image.manifest.v1+json"}',
            "application/vnd.oci.image.manifest.v1+json",
        )
        result = push_layout(layout, None, f"{host}/app", progress=None, env={})
        assert result.digest == image.digest and len(result.referrers) == 1
    assert "not a referrers index" in capsys.readouterr().err
