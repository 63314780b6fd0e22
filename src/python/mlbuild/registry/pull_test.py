"""pull_to_layout units. NB: the index/schema 2 case keeps the in-process fake: it serves an index
naming a manifest that does not exist (the arm64 one), which a real registry refuses to store.
Round trips, cache trust and corrupt blobs run against a real registry: pull_integration_test.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlbuild.oci.descriptor import DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX
from mlbuild.oci.layout import read_layout
from mlbuild.registry import pull_to_layout, push_layout, resolve_digest
from mlbuild.registry.errors import ReferenceError
from mlbuild.registry.retry import RetryPolicy
from mlbuild.registry.testing import fake_registry, make_layout

ENV = {"DOCKER_CONFIG": "/nonexistent"}
FAST = RetryPolicy(sleep=lambda s: None)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _pull(ref: str, tmp: Path, name: str = "layout"):
    return pull_to_layout(ref, tmp / name, tmp / "cache", progress=None, env=ENV, retry=FAST)


def test_refuses_a_tag_without_digest(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError, match=r"pin it as '127.0.0.1:1/base@sha256:<digest>'"):
        _pull("127.0.0.1:1/base:latest", tmp_path)


def test_index_and_docker_schema2(tmp_path: Path) -> None:
    layout = make_layout(tmp_path / "src")
    with fake_registry() as (host, state):
        pushed = push_layout(layout, None, f"{host}/base", progress=None, env=ENV)
        oci = json.loads(state.manifests[("base", pushed.digest)][0])
        docker = {**oci, "mediaType": DOCKER_MANIFEST}
        docker["config"] = {**oci["config"], "mediaType": "application/vnd.docker.container.image.v1+json"}
        docker["layers"] = [{**layer, "mediaType": DOCKER_LAYER_GZIP} for layer in oci["layers"]]
        docker_bytes = json.dumps(docker).encode()
        state.manifests[("base", _sha(docker_bytes))] = (docker_bytes, DOCKER_MANIFEST)
        arm = {
            "mediaType": DOCKER_MANIFEST,
            "digest": "sha256:" + "1" * 64,
            "size": 1,
            "platform": {"os": "linux", "architecture": "arm64"},
        }
        amd = {
            "mediaType": DOCKER_MANIFEST,
            "digest": _sha(docker_bytes),
            "size": len(docker_bytes),
            "platform": {"os": "linux", "architecture": "amd64"},
        }
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm, amd]}).encode()
        state.manifests[("base", _sha(index))] = (index, OCI_INDEX)
        result = _pull(f"{host}/base@{_sha(index)}", tmp_path)
        assert resolve_digest(f"{host}/base:sha256-{pushed.digest[7:23]}", env=ENV) == pushed.digest
    assert result.digest == _sha(docker_bytes)
    image = read_layout(tmp_path / "layout")
    assert [layer.digest for layer in image.layers] == [layer["digest"] for layer in oci["layers"]]
