"""What run/publish producers call to leave a lineage record (never fails the run).

The store is `$MLBUILD_LINEAGE_DIR` (set by the Pants rules to `.mlbuild/lineage`, taking
in `dist/mlbuild/lineage`, where `pants package` writes); without it nothing is recorded,
so library callers and tests stay side-effect free.

What ran is pinned by `RunPins`, which the host-side caller passes in (from its command
line): the PEX sha256 and image digest of a packaged run, or the sources and requirements
digests of a run from sources. The runtime never reads them; it only trains.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, TextIO

from mlbuild import console
from mlbuild.lineage.collect import run_record
from mlbuild.lineage.digests import tree_checksum
from mlbuild.lineage.record import Record
from mlbuild.lineage.reuse import find_reusable_run
from mlbuild.lineage.source import current_source
from mlbuild.lineage.store import ROOT_ENV_VAR, Store, default_inbox
from mlbuild.runtime.contract import METRICS_FILE, MODEL_DIR


@dataclass(frozen=True)
class RunPins:
    """What a run ran: a packaged PEX (and image), or sources on a locked requirements venv.

    NB: `pants run` runs the sources on a cached requirements venv, not a PEX; the sources
    digest (code and config) and the requirements digest pin what ran instead.
    """

    pex_sha256: Optional[str] = None
    image_digest: Optional[str] = None
    sources_sha256: Optional[str] = None
    requirements_sha256: Optional[str] = None

    @property
    def code(self) -> Optional[dict]:
        """`{"sha256", "sources_sha256", "requirements_sha256"}` of a run from sources, else None."""
        if not self.sources_sha256 or not self.requirements_sha256:
            return None
        body = f"sources:{self.sources_sha256}\nrequirements:{self.requirements_sha256}\n"
        pair = hashlib.sha256(body.encode()).hexdigest()
        return {"sha256": pair, "sources_sha256": self.sources_sha256, "requirements_sha256": self.requirements_sha256}

    @property
    def artifact(self) -> Optional[str]:
        """The one hash a reuse check keys on: the image's (a container run), else the PEX's, else
        the sources/requirements pair's."""
        code = self.code
        return self.image_digest or self.pex_sha256 or (code["sha256"] if code else None)

    @property
    def describes(self) -> str:
        """What the artifact is, in words, for "an identical run already finished (same ...)"."""
        if self.image_digest:
            return "image"
        return "PEX" if self.pex_sha256 else "sources and locked requirements"


def configured_store() -> Optional[Store]:
    root = os.environ.get(ROOT_ENV_VAR)
    return Store(Path(root), [default_inbox()]) if root else None


def save(record: Record) -> Optional[str]:
    store = configured_store()
    if store is None:
        # NB: said, never silent: a record dropped without a word breaks "any hash leads back".
        console.warn(
            f"{ROOT_ENV_VAR} is not set, so this {record.kind} record is not kept. "
            f"Fix: run through ./pants (which sets it), or set {ROOT_ENV_VAR}=.mlbuild/lineage."
        )
        return None
    try:
        return store.put(record)
    except Exception as e:  # NB: lineage must never turn a finished run into a failure
        console.warn(f"could not write the lineage record: {e}")
        return None


def reusable_run_dir(
    hyperparameters: Mapping[str, str], channel_dirs: Mapping[str, Path], pins: RunPins
) -> Optional[Path]:
    """The directory of a finished run of this code with these hyperparameters and data, if any.

    Safe because every input is pinned: the PEX (code + locked dependencies + config) by its
    sha256, or for a run from sources the sources and requirements digests, the data by its
    tree checksum. A run whose directory is gone does not count.
    """
    store, artifact = configured_store(), pins.artifact
    if store is None or not artifact:
        return None
    data = {name: tree_checksum(path) for name, path in channel_dirs.items()}
    record = find_reusable_run(store, artifact, hyperparameters, data)
    run_dir = record.get("extra.run_dir") if record is not None else None
    return Path(run_dir) if run_dir and (Path(run_dir) / "model").is_dir() else None


def print_reused(previous: Path, pins: RunPins, out: Optional[TextIO] = None) -> None:
    """What `pants run` says when it reuses a finished run instead of training again."""
    out = out or sys.stdout
    print(
        f"mlbuild: an identical run already finished (same {pins.describes}, hyperparameters and data): {previous}",
        file=out,
    )
    print(f"  model:   {previous / MODEL_DIR}/", file=out)
    print("  " + (previous / METRICS_FILE).read_text().strip().replace("\n", "\n  "), file=out)
    print("  (pass -- --force to train again)", file=out)


def record_run(run_dir: Path, address: str, pins: RunPins = RunPins()) -> Optional[str]:
    """Record a finished (or failed) run directory; returns the record id."""
    if configured_store() is None:
        return None
    record = run_record(
        run_dir,
        address,
        pex_sha256=pins.pex_sha256,
        image_digest=pins.image_digest,
        code=pins.code,
        source=current_source(os.environ),
    )
    return save(record)
