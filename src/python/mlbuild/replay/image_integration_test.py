"""The job's image pulled by digest from a real registry (CNCF distribution) into the cache, once."""

from __future__ import annotations

import io
from pathlib import Path

from mlbuild.registry.local_server import serve_registry
from mlbuild.registry.push import push_layout
from mlbuild.replay.image import config_from_image, job_image
from mlbuild.replay.testing import CONFIG, tiny_image
from mlbuild.tools_required import require_tool

pytestmark = require_tool("docker-registry", "docker-registry")


def test_pulled_once_then_reused_without_the_registry(tmp_path: Path) -> None:
    image = tiny_image(tmp_path / "layout", tmp_path / "blobs")
    digest = image.manifest_descriptor().digest
    with serve_registry(tmp_path / "registry") as registry:
        uri = push_layout(tmp_path / "layout", "tiny:t1", f"{registry.host}/tiny", allow_insecure_http=True).image_uri
        assert uri.endswith(f"@{digest}")
        first = job_image(uri, digest, tmp_path / "cache", progress=io.StringIO())
        assert first.pulled and first.fetched_bytes > 0
        assert first.image.manifest_descriptor().digest == digest
    # NB: the registry is gone now; the second replay finds the layout in the cache
    second = job_image(uri, digest, tmp_path / "cache", progress=io.StringIO())
    assert not second.pulled and second.layout_dir == first.layout_dir
    assert config_from_image(second.image).decode() == CONFIG
    assert not [p for p in (tmp_path / "cache" / "replay" / "images").iterdir() if p.name.startswith(".")]
