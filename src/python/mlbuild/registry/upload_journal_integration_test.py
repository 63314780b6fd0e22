"""kill -9 mid-push leaves an upload session open on the registry; the next push cancels it."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

from mlbuild.registry import push_layout
from mlbuild.registry.local_server import serve_registry
from mlbuild.registry.reference import parse_reference
from mlbuild.registry.session import connect
from mlbuild.registry.testing import make_layout
from mlbuild.registry.upload_journal import JOURNAL_ENV, UploadJournal, journal_dir
from mlbuild.tools_required import require_tool

pytestmark = require_tool("docker-registry", "docker-registry")


def _session_status(url: str) -> int:
    """GET on an upload session: 204 while it is open, 404 once cancelled or unknown."""
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_push_killed_with_9_has_its_upload_session_cancelled_by_the_next_push(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "no-docker"), JOURNAL_ENV: str(tmp_path / "journal")}
    layout = make_layout(tmp_path / "img")
    with serve_registry(tmp_path / "registry") as registry:
        ref = parse_reference(f"{registry.host}/team/killed")
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the push that gets killed: a session opened and written down, then stuck
            try:
                client = connect(ref, push=True, env=env)
                location = client.session_url(client.start_upload(), "upload")
                UploadJournal(journal_dir(env), ref.repo_uri).opened(location)
                os.write(ready_w, location.encode() + b"\n")
                time.sleep(60)
            finally:
                os._exit(1)
        os.close(ready_w)
        with os.fdopen(ready_r) as ready:
            location = ready.readline().strip()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert _session_status(location) == 204
        assert len(list((tmp_path / "journal").rglob("*-*"))) == 1

        push_layout(layout, None, str(ref), progress=None, env=env)

        assert _session_status(location) == 404
        assert [p for p in (tmp_path / "journal").rglob("*") if p.is_file()] == []  # and the push left none of its own
