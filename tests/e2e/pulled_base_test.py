"""A base image pulled from a registry by digest: push mlbuild's Debian base to a real
`docker-registry` on loopback, then build the churn image on the pulled copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from e2e.repo import copy_repo, pants
from mlbuild.registry.local_server import serve_registry
from mlbuild.registry.push import push_layout
from mlbuild.tools_required import require_tool

pytestmark = require_tool("docker-registry", "docker-registry")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running.host


def test_pipeline_image_on_a_base_pulled_by_digest(registry: str, tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    built = pants(repo, "package", "docker/debian-python3.11:base")
    assert built.exit_code == 0, built.stderr[-4000:]
    pushed = push_layout(
        repo / "dist/docker.debian-python3.11/base.oci", "base", f"{registry}/mlbuild/base", progress=None
    )

    (repo / "docker/pulled").mkdir()
    (repo / "docker/pulled/BUILD").write_text(
        f'ml_base_image(name="base", image="{registry}/mlbuild/base@{pushed.digest}")\n'
    )
    (repo / "src/python/pipelines/churn/BUILD").write_text(
        'python_sources()\n\nml_pipeline(name="train", base_image="//docker/pulled:base")\n'
    )
    result = pants(repo, "package", "src/python/pipelines/churn:train")
    assert result.exit_code == 0, result.stderr[-4000:]
    assert f"base image: {pushed.digest}" in result.stderr

    summary = json.loads((repo / "dist/src.python.pipelines.churn/train.image.json").read_text())
    base = json.loads((repo / "dist/docker.debian-python3.11/base.image.json").read_text())
    assert summary["layers"][0]["digest"] == base["layers"][0]["digest"]
    manifest = (
        repo / "dist/src.python.pipelines.churn/train.oci/blobs/sha256" / summary["manifest_digest"].split(":")[1]
    )
    assert json.loads(manifest.read_text())["annotations"]["org.opencontainers.image.base.digest"] == pushed.digest

    (repo / "docker/pulled/BUILD").write_text(f'ml_base_image(name="base", image="{registry}/mlbuild/base:latest")\n')
    unpinned = pants(repo, "package", "src/python/pipelines/churn:train")
    assert unpinned.exit_code != 0
    assert "is not pinned by digest" in unpinned.stderr
