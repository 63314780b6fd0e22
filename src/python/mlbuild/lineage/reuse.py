"""Skip work already done: a finished run of the same artifact, hyperparameters and data.

One decision, `is_reusable`, for every reuse on this machine: `pants run` (over the lineage
store, `find_reusable_run`) and the local publish backend (over its job's `job.json`, found by
the name `sagemaker.job_name` derives from `run_inputs`). A run is reusable when it Completed and
its inputs equal the ones asked for: the artifact it ran (an image manifest digest, a PEX sha256,
or the `code.sha256` of a run from sources), its resolved hyperparameters and every data
channel's checksum. Inputs compare in one normal form (`run_inputs`): hyperparameters as the
record's strings, so `0.1` and `"0.1"` are the same value (see `record._hyperparameters`), and
sha256s as `sha256:<hex>` whichever spelling they came in.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from mlbuild.lineage.compare import RUN_KINDS
from mlbuild.lineage.digests import oci_digest, sha256_hex
from mlbuild.lineage.record import FIELDS, SUCCESS, Record
from mlbuild.lineage.store import Store

ARTIFACT_FIELDS = ("image.manifest_digest", "pex.sha256", "code.sha256")


def run_inputs(
    artifact: str, hyperparameters: Mapping[str, Any], data_checksums: Mapping[str, Optional[str]]
) -> Dict[str, Any]:
    """`{"artifact", "hyperparameters", "data"}` in the one form reuse compares (and a local job's
    name hashes). A channel without a checksum (None) stays None: it never matches a checksum."""
    return {
        "artifact": oci_digest(artifact, "artifact"),
        "hyperparameters": FIELDS["hyperparameters"](hyperparameters, "hyperparameters"),
        "data": {
            name: c if c is None else oci_digest(c, f"data checksum of {name}") for name, c in data_checksums.items()
        },
    }


def is_reusable(status: Optional[str], have: Optional[Mapping[str, Any]], want: Mapping[str, Any]) -> bool:
    """A finished run with exactly these inputs: it Completed and `have == want` (both
    `run_inputs`; `have` None: its inputs are unknown, so it is not reused)."""
    return status == SUCCESS and have is not None and dict(have) == dict(want)


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
    want = run_inputs(artifact, hyperparameters, data_checksums)
    hits = []
    for record, field in store.mentioning(sha256_hex(artifact, "artifact")):
        if (
            field in ARTIFACT_FIELDS
            and record.kind in RUN_KINDS
            and is_reusable(record.status, _inputs_of(record, field), want)
        ):
            hits.append(record)
    hits.sort(key=lambda r: (r.created, r.id))
    return hits[-1] if hits else None


def _inputs_of(record: Record, artifact_field: str) -> Dict[str, Any]:
    # NB: a run without checksums for its channels can't prove it saw the same data: None.
    data = {c.get("name"): c.get("checksum") for c in record.get("data") or []}
    return run_inputs(record.get(artifact_field), record.hyperparameters, data)
