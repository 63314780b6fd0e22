"""Credentials never travel over plain HTTP to a non-loopback host.

NB: '127.1' is a spelling of 127.0.0.1 that the resolver accepts but the registry layer counts as
remote (only localhost, 127.0.0.0/8 in dotted quads and ::1 are loopback), so these tests can play a
non-loopback registry on a loopback socket and see exactly what would have been sent to it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from mlbuild.registry import Credentials, RegistryUserError, push_layout, resolve_digest
from mlbuild.registry.cli import main
from mlbuild.registry.plain_http import INSECURE_REGISTRIES_ENV, choose_scheme, is_cleartext
from mlbuild.registry.reference import parse_reference
from mlbuild.registry.session import connect
from mlbuild.registry.testing import make_layout, recording_server

CREDS = Credentials("alice", "s3cret")


def _wants_basic(method: str, path: str, headers: dict) -> tuple[int, dict, bytes]:
    return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'


def test_scheme_rules() -> None:
    remote = parse_reference("10.1.2.3:5000/team/app")
    assert choose_scheme(parse_reference("127.0.0.1:5000/a"), False, frozenset()) == "http"
    assert choose_scheme(parse_reference("localhost:5000/a"), False, frozenset()) == "http"
    assert choose_scheme(remote, False, frozenset()) == "https"
    assert choose_scheme(remote, False, frozenset({"10.1.2.3:5000"})) == "http"
    with pytest.raises(RegistryUserError, match=INSECURE_REGISTRIES_ENV):
        choose_scheme(remote, True, frozenset())
    assert is_cleartext("http://10.1.2.3/v2/") and not is_cleartext("https://10.1.2.3/v2/")
    assert not is_cleartext("http://[::1]:5000/v2/") and not is_cleartext("http://127.0.0.1/v2/")


def test_allow_insecure_alone_is_refused_before_any_request(tmp_path: Path) -> None:
    """What publish/local.py does for any --mlbuild-local-registry host: refused, nothing sent."""
    layout = make_layout(tmp_path)
    with recording_server(_wants_basic) as (port, seen):
        with pytest.raises(
            RegistryUserError, match=f"plain HTTP to a non-loopback host is refused.*{INSECURE_REGISTRIES_ENV}"
        ):
            push_layout(
                layout,
                None,
                f"127.1:{port}/team/app",
                allow_insecure_http=True,
                credentials=CREDS,
                env={},
                progress=None,
            )
    assert seen.requests == []


def test_listed_insecure_registry_never_gets_credentials(tmp_path: Path) -> None:
    layout = make_layout(tmp_path)
    with recording_server(_wants_basic) as (port, seen):
        env = {INSECURE_REGISTRIES_ENV: f"other:1, 127.1:{port}"}
        with pytest.raises(RegistryUserError, match="never sends credentials in clear"):
            push_layout(layout, None, f"127.1:{port}/team/app", credentials=CREDS, env=env, progress=None)
    assert seen.requests and seen.authorizations() == []


def test_cli_flag_never_sends_docker_config_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = base64.b64encode(b"alice:s3cret").decode()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv(INSECURE_REGISTRIES_ENV, raising=False)
    with recording_server(_wants_basic) as (port, seen):
        (tmp_path / "config.json").write_text(json.dumps({"auths": {f"127.1:{port}": {"auth": auth}}}))
        assert main(["resolve", f"127.1:{port}/team/app:v1", "--allow-insecure-http"]) == 2
    err = capsys.readouterr().err
    assert "never sends credentials in clear" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert seen.requests and seen.authorizations() == []


def test_bearer_realm_over_plain_http_gets_no_credentials() -> None:
    """A loopback registry naming a plain-HTTP token service off the machine: Basic creds are not sent there."""
    with recording_server(lambda *_: (200, {}, b'{"token":"t"}')) as (token_port, token_seen):
        realm = f'Bearer realm="http://127.1:{token_port}/token",service="s"'
        with recording_server(lambda *_: (401, {"WWW-Authenticate": realm}, b"")) as (port, _):
            with pytest.raises(RegistryUserError, match="never sends credentials in clear"):
                resolve_digest(f"127.0.0.1:{port}/team/app:v1", credentials=CREDS, env={})
    assert token_seen.requests == []


def test_redirect_to_plain_http_host_drops_credentials() -> None:
    """A loopback registry redirecting a GET to a plain-HTTP host off the machine: no Authorization follows."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
    with recording_server(
        lambda *_: (200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, manifest)
    ) as (far, far_seen):

        def registry(method: str, path: str, headers: dict) -> tuple[int, dict, bytes]:
            if "Authorization" not in headers:
                return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
            return 307, {"Location": f"http://127.1:{far}{path}"}, b""

        with recording_server(registry) as (port, seen):
            resolve_digest(f"127.0.0.1:{port}/team/app:v1", credentials=CREDS, env={})
    assert seen.authorizations() and far_seen.requests and far_seen.authorizations() == []


def test_strip_auth_on_redirect_of_a_blob_get() -> None:
    """ECR (and distribution's s3 driver) send blob GETs to pre-signed storage URLs on another host:
    the registry's credentials must not follow, even to a loopback host on another port."""
    blob = b"layer bytes"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with recording_server(lambda *_: (200, {}, blob)) as (storage, storage_seen):

        def registry(method: str, path: str, headers: dict) -> tuple[int, dict, bytes]:
            if "Authorization" not in headers:
                return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
            return 307, {"Location": f"http://127.0.0.1:{storage}/bucket/{digest[7:]}?X-Amz-Signature=abc"}, b""

        with recording_server(registry) as (port, seen):
            client = connect(parse_reference(f"127.0.0.1:{port}/team/app"), push=False, credentials=CREDS, env={})
            assert client.read_small_blob(digest, 1024) == blob
    assert seen.authorizations() == [CREDS.basic_header()]
    assert [p for _, p, _ in storage_seen.requests] == [f"/bucket/{digest[7:]}?X-Amz-Signature=abc"]
    assert storage_seen.authorizations() == []
