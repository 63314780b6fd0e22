from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.registry.cli import main
from mlbuild.registry.local_server import serve_registry
from mlbuild.registry.testing import make_layout
from mlbuild.tools_required import require_tool


@require_tool("docker-registry", "docker-registry")
def test_push_pull_resolve(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a real registry (distribution 2.8 on loopback), not a fake."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    layout = make_layout(tmp_path)
    with serve_registry(tmp_path / "registry") as running:
        host = running.host
        assert main(["push", "--layout", str(layout), "--to", f"{host}/team/app", "--tag", "v1"]) == 0
        uri = capsys.readouterr().out.strip()
        assert uri.startswith(f"{host}/team/app@sha256:")
        assert main(["resolve", f"{host}/team/app:v1"]) == 0
        assert capsys.readouterr().out.strip() == uri.split("@")[1]
        assert (
            main(["pull", uri, "--layout", str(tmp_path / "pulled"), "--cache-dir", str(tmp_path / "cache"), "--json"])
            == 0
        )
        assert uri.split("@")[1] in capsys.readouterr().out


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "127.0.0.1:1/x:latest", "--layout", str(tmp_path), "--cache-dir", str(tmp_path)]) == 2
    assert "pin it" in capsys.readouterr().err
    assert main(["push", "--layout", str(tmp_path / "missing"), "--to", "127.0.0.1:1/x"]) == 2
    assert "no oci-layout file" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_parallelism_below_one_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["push", "--layout", str(tmp_path), "--to", "127.0.0.1:1/x", "--parallelism", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--parallelism" in err and "whole number >= 1" in err
