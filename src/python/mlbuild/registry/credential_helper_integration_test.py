"""A push to a real htpasswd-protected docker-registry with credentials from a helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.registry import push_layout
from mlbuild.registry.credential_helper_test import env_with, fake_helper
from mlbuild.registry.errors import AuthError, RegistryUserError
from mlbuild.registry.local_server import serve_registry, write_htpasswd
from mlbuild.registry.testing import make_layout
from mlbuild.tools_required import require_tool, tool_path

pytestmark = require_tool("docker-registry", "docker-registry")
USER, PASSWORD = "ci", "helper-given"


def test_push_with_credentials_from_a_helper(tmp_path: Path) -> None:
    tool_path("htpasswd", "apache2-utils")
    root = tmp_path / "registry"
    root.mkdir()
    with serve_registry(root, write_htpasswd(root / "htpasswd", USER, PASSWORD)) as registry:
        layout = make_layout(tmp_path / "img")
        answer = "print(json.dumps({'ServerURL': server, 'Username': %r, 'Secret': %r}))\n"
        fake_helper(tmp_path / "bin", "good", answer % (USER, PASSWORD))
        fake_helper(tmp_path / "bin", "stale", answer % (USER, "expired"))
        fake_helper(tmp_path / "bin", "broken", "sys.exit(2)\n")
        env = env_with(tmp_path, {"credHelpers": {registry.host: "good"}})
        assert push_layout(layout, None, f"{registry.host}/app", progress=None, env=env).uploaded == 3
        stale = env_with(tmp_path, {"credsStore": "stale"})
        with pytest.raises(AuthError, match="rejected the credentials"):
            push_layout(layout, None, f"{registry.host}/other", progress=None, env=stale)
        broken = env_with(tmp_path, {"credsStore": "broken"})
        with pytest.raises(RegistryUserError, match="exited with status 2"):
            push_layout(layout, None, f"{registry.host}/third", progress=None, env=broken)
        # the refused pushes left nothing: only the first repository exists in the registry's store
        repos = root / "data" / "docker" / "registry" / "v2" / "repositories"
        assert sorted(p.name for p in repos.iterdir()) == ["app"]
