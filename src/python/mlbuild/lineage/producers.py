"""What run/publish producers call to leave a lineage record (never fails the run).

The store is `$MLBUILD_LINEAGE_DIR` (set by the Pants rules to `.mlbuild/lineage`, taking
in `dist/mlbuild/lineage`, where `pants package` writes); without it nothing is recorded,
so library callers and tests stay side-effect free.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Mapping, Optional

from mlbuild.lineage.collect import run_record
from mlbuild.lineage.digests import tree_checksum
from mlbuild.lineage.reuse import find_reusable_run
from mlbuild.lineage.source import current_source
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import ROOT_ENV_VAR, Store, default_inbox
# NB: `pants run` runs the sources on a cached requirements venv, not a PEX; the sources and
# requirements digests pin what ran.
from mlbuild.names import (
    IMAGE_DIGEST_ENV as IMAGE_DIGEST_ENV_VAR,
    PEX_SHA256_ENV as PEX_SHA256_ENV_VAR,
    REQUIREMENTS_SHA256_ENV as REQUIREMENTS_SHA256_ENV_VAR,
    SOURCES_SHA256_ENV as SOURCES_SHA256_ENV_VAR,
)



def code_pin(environ: Mapping[str, str]) -> Optional[dict]:
    """`{"sha256", "sources_sha256", "requirements_sha256"}` of a run from sources, else None."""
    sources, requirements = environ.get(SOURCES_SHA256_ENV_VAR), environ.get(REQUIREMENTS_SHA256_ENV_VAR)
    if not sources or not requirements:
        return None
    pair = hashlib.sha256(f"sources:{sources}\nrequirements:{requirements}\n".encode()).hexdigest()
    return {"sha256": pair, "sources_sha256": sources, "requirements_sha256": requirements}


def _artifact(environ: Mapping[str, str]) -> Optional[str]:
    code = code_pin(environ)
    return environ.get(PEX_SHA256_ENV_VAR) or (code["sha256"] if code else None)


def configured_store() -> Optional[Store]:
    root = os.environ.get(ROOT_ENV_VAR)
    return Store(Path(root), [default_inbox()]) if root else None


def save(record: Record) -> Optional[str]:
    store = configured_store()
    if store is None:
        return None
    try:
        return store.put(record)
    except Exception as e:  # noqa: BLE001 - lineage must never turn a finished run into a failure
        print(f"mlbuild: warning: could not write the lineage record: {e}", file=sys.stderr)
        return None


def reusable_run_dir(hyperparameters: Mapping[str, str], channel_dirs: Mapping[str, Path]) -> Optional[Path]:
    """The directory of a finished run of this PEX with these hyperparameters and data, if any.

    Safe because every input is pinned: the PEX (code + locked dependencies + config) by its
    sha256, or for a run from sources the sources and requirements digests, the data by its
    tree checksum. A run whose directory is gone does not count.
    """
    store, pex = configured_store(), _artifact(os.environ)
    if store is None or not pex:
        return None
    data = {name: tree_checksum(path) for name, path in channel_dirs.items()}
    record = find_reusable_run(store, pex, hyperparameters, data)
    run_dir = record.get("extra.run_dir") if record is not None else None
    return Path(run_dir) if run_dir and (Path(run_dir) / "model").is_dir() else None


def record_run(run_dir: Path, address: str) -> Optional[str]:
    """Record a finished (or failed) run directory; returns the record id."""
    if configured_store() is None:
        return None
    record = run_record(
        run_dir,
        address,
        pex_sha256=os.environ.get(PEX_SHA256_ENV_VAR) or None,
        image_digest=os.environ.get(IMAGE_DIGEST_ENV_VAR) or None,
        code=code_pin(os.environ),
        source=current_source(os.environ),
    )
    return save(record)
