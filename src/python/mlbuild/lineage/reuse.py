"""Skip work already done: a finished run of the same artifact, hyperparameters and data.

A run is reusable when the artifact it ran (an image manifest digest, a PEX sha256, or the
`code.sha256` of a run from sources),
its resolved hyperparameters and every data channel's checksum all equal the ones asked
for, and it Completed. Hyperparameters compare in the record's string form, so `0.1` and
`"0.1"` are the same value (see `record._hyperparameters`).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from mlbuild.lineage.compare import RUN_KINDS
from mlbuild.lineage.digests import oci_digest, sha256_hex
from mlbuild.lineage.record import FIELDS, Record
from mlbuild.lineage.store import Store

ARTIFACT_FIELDS = ("image.manifest_digest", "pex.sha256", "code.sha256")


def find_reusable_run(
    store: Store,
    artifact: str,
    hyperparameters: Mapping[str, Any],
    data_checksums: Mapping[str, str],
) -> Optional[Record]:
    """The latest Completed run/publish of exactly this (artifact, hyperparameters, data), or None.

    `artifact` is an image manifest digest or a PEX sha256 (`sha256:` prefix optional);
    `data_checksums` maps channel name to its checksum (`digests.tree_checksum`).
    """
    key = sha256_hex(artifact, "artifact")
    want_hp = FIELDS["hyperparameters"](hyperparameters, "hyperparameters")
    want_data = {name: oci_digest(c, f"data checksum of {name}") for name, c in data_checksums.items()}
    hits = []
    for record, field in store.mentioning(key):
        if (
            field in ARTIFACT_FIELDS
            and record.kind in RUN_KINDS
            and record.succeeded
            and record.hyperparameters == want_hp
            and record.data_checksums == want_data
            # NB: a run without checksums for its channels can't prove it saw the same data.
            and len(record.get("data") or []) == len(want_data)
        ):
            hits.append(record)
    hits.sort(key=lambda r: (r.created, r.id))
    return hits[-1] if hits else None
