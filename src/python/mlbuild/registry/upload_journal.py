"""Open blob-upload sessions, written down so the next push can cancel the ones a killed push left.

A push killed with -9 leaves its upload sessions open on the registry (distribution keeps them
until its upload purger runs: by default those older than 168 h, checked every 24 h; ECR
expires them after a day). Each session a push opens is recorded as one file
`<cache>/mlbuild/uploads/<repo hash>/<pid>-<random>` holding the session URL, removed when
the upload ends either way. The next push to the same repository cancels (DELETE, as the
distribution spec allows) the sessions of owners that are no longer running, then drops
their files. https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-an-upload
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Mapping

from mlbuild.names import UPLOAD_JOURNAL_ENV
from mlbuild.registry.errors import RegistryPlatformError, RegistryUserError
from mlbuild.stale_temps import pid_alive

JOURNAL_ENV = UPLOAD_JOURNAL_ENV


def journal_dir(env: Mapping[str, str]) -> Path:
    if env.get(JOURNAL_ENV):
        return Path(env[JOURNAL_ENV])
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "mlbuild" / "uploads"


class UploadJournal:
    def __init__(self, root: Path, repo_uri: str) -> None:
        self.dir = root / hashlib.sha256(repo_uri.encode()).hexdigest()[:16]

    def opened(self, url: str) -> Path | None:
        """Record an open session; returns its record (None if the journal cannot be written)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", dir=self.dir)
            with os.fdopen(fd, "w") as f:
                f.write(url)
            return Path(name)
        except OSError:
            return None  # NB: the journal is a courtesy to the registry; never fail a push over it

    def closed(self, record: Path | None) -> None:
        if record is not None:
            record.unlink(missing_ok=True)

    def stale(self) -> list[tuple[Path, str]]:
        """(record, session URL) of sessions whose pushing process is gone."""
        found = []
        for record in sorted(self.dir.glob("*-*")) if self.dir.is_dir() else []:
            pid = record.name.split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                try:
                    found.append((record, record.read_text().strip()))
                except OSError:
                    continue
        return found


def cancel_stale(client, journal: UploadJournal) -> int:
    """DELETE the upload sessions dead pushes left open; returns how many the registry cancelled."""
    cancelled = 0
    for record, url in journal.stale():
        try:
            resp = client.transport.request(
                "DELETE", url, where=client.where("cancel a stale upload"), ok=(200, 202, 204, 404), retry=False
            )
            cancelled += resp.status != 404
        except (RegistryPlatformError, RegistryUserError):
            pass  # NB: a session the registry already forgot (or a 405 from one that can't cancel) is no problem
        record.unlink(missing_ok=True)
    return cancelled
