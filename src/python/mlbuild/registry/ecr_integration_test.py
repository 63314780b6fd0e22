"""ECR's AWS side (CreateRepository, GetAuthorizationToken) against moto's server on loopback.

NB: moto does not serve the registry API itself, so blob/manifest pushes to ECR are not
tested here; the registry protocol is covered by registry_integration_test.py.
"""

from __future__ import annotations

from typing import Iterator

import moto.server  # noqa: F401  # NB: a plain import: a resolve without moto fails here, it does not skip
import pytest

from mlbuild.registry import ecr
from mlbuild.registry.errors import AuthError
from mlbuild.registry.reference import parse_reference
from mlbuild.registry.session import connect
from mlbuild.sagemaker.moto_server import moto_server as serve_moto

REF = parse_reference("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/trainer")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    # NB: the server binds port 0 itself and reports it; probing a port first would race.
    with serve_moto() as url:
        yield url


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,  # NB: boto3 honours this itself (botocore >= 1.31)
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_create_repository_once_with_settings(aws: None) -> None:
    settings = ecr.EcrRepositorySettings(immutable_tags=True, scan_on_push=True)
    assert ecr.ensure_repository(REF, settings) is True
    assert ecr.ensure_repository(REF, settings) is False
    repo = ecr.client_for(REF).describe_repositories(repositoryNames=[REF.repository])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}


def test_authorization_token_becomes_basic_auth(aws: None) -> None:
    creds = ecr.authorization(REF)
    assert creds.username == "AWS" and creds.password
    client = connect(REF, push=True, env={})
    assert client.transport.auth.header() == creds.basic_header()  # sent up front: ECR always wants Basic
    assert client.transport.base == f"https://{REF.registry}"


def test_missing_aws_credentials_is_a_user_error(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AuthError, match="no AWS credentials"):
        ecr.authorization(REF)
