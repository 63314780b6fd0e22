"""Which records mention which hash, job name or image reference: built in memory.

NB: rebuilt from the record files on every load rather than kept in SQLite: a derived
index can never disagree with the records, and reading a few thousand small files takes
well under a second. Every key is a bare lowercase hex hash, `job:<name or arn>` or
`ref:<image reference>`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from mlbuild.lineage.digests import bare_hex, is_hex
from mlbuild.lineage.errors import AmbiguousError, NotFoundError
from mlbuild.lineage.record import Record

MIN_PREFIX = 6
# What error messages suggest to see which records exist (the README's spelling).
RUNS_COMMAND = "./pants mlbuild runs"
JOB = "job:"
REF = "ref:"
# Hash-valued fields (dotted path into the record) and whether the value is a list.
HASH_FIELDS: Tuple[Tuple[str, bool], ...] = (
    ("source.revision", False),
    ("lockfile.sha256", False),
    ("config.sha256", False),
    ("pex.sha256", False),
    ("code.sha256", False),
    ("image.manifest_digest", False),
    ("image.config_digest", False),
    ("image.layers", True),
    ("image.diff_ids", True),
    ("image.base_digest", False),
    ("model.sha256", False),
    ("model.checksum", False),
    ("provenance.digest", False),
    ("provenance.statement_sha256", False),
    ("parents", True),
)

Mention = Tuple[str, str]  # (record id, field)


def mentions(record: Record) -> List[Tuple[str, str]]:
    """(key, field) for everything in `record` a user might look it up by."""
    found = [(record.id, "id")]
    for field, many in HASH_FIELDS:
        value = record.get(field)
        for v in (value or []) if many else ([value] if value else []):
            h = bare_hex(v)
            if is_hex(h) and len(h) >= MIN_PREFIX:  # NB: a source revision may be "unknown".
                found.append((h, field))
    for field in ("data", "outputs"):
        for entry in record.get(field, []):
            if "checksum" in entry:
                found.append((bare_hex(entry["checksum"]), f"{field}.checksum"))
    for field in ("job.name", "job.arn"):
        if record.get(field):
            found.append((JOB + record.get(field), field))
    if record.get("image.ref"):
        found.append((REF + record.get("image.ref"), "image.ref"))
    return found


@dataclass(frozen=True)
class Match:
    query: str
    key: str
    mentions: Tuple[Mention, ...]

    @property
    def record_ids(self) -> List[str]:
        return sorted({rid for rid, _ in self.mentions})

    @property
    def display(self) -> str:
        return self.key.split(":", 1)[1] if self.key.startswith((JOB, REF)) else self.key


class Index:
    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._keys: Dict[str, List[Mention]] = {}
        self._kinds: Dict[str, str] = {}
        self._sorted_hex: Optional[List[str]] = None
        for record in records:
            self.add(record)

    def add(self, record: Record) -> None:
        if record.id in self._kinds:
            return
        self._kinds[record.id] = f"{record.kind} {record.id[:12]} {record.pipeline}"
        # NB: a record mentions one key in one field once or (layers) a few times; dedupe
        # within the record only, since a shared key (a base layer) has thousands of entries.
        for key, field in dict.fromkeys(mentions(record)):
            self._keys.setdefault(key, []).append((record.id, field))
        self._sorted_hex = None

    def mentioning(self, key: str) -> List[Mention]:
        return list(self._keys.get(key, []))

    def _hex_keys(self) -> List[str]:
        if self._sorted_hex is None:
            self._sorted_hex = sorted(k for k in self._keys if not k.startswith((JOB, REF)))
        return self._sorted_hex

    def _match(self, query: str, key: str) -> Match:
        return Match(query, key, tuple(self._keys[key]))

    def describe(self, key: str) -> str:
        """`<key> (pex.sha256 of package 1a2b3c4d5e6f src/p:train, ...)` for error messages."""
        uses = ", ".join(f"{field} of {self._kinds[rid]}" for rid, field in self._keys.get(key, []))
        return f"{key} ({uses})"

    def resolve(self, query: str) -> Match:
        """A full hash (`sha256:` or not), a unique prefix of >= 6 hex, a job name/ARN or an image ref."""
        q = query.strip()
        if JOB + q in self._keys:
            return self._match(query, JOB + q)
        # NB: `repo@sha256:D` resolves to D itself when any record mentions D, so the package
        # that built the image is found too, not only records that spell the same repository.
        h = bare_hex(q.rsplit("@", 1)[1] if "@" in q else q)
        if is_hex(h) and h in self._keys:
            return self._match(query, h)
        if REF + q in self._keys:
            return self._match(query, REF + q)
        if is_hex(h) and len(h) >= MIN_PREFIX:
            keys = self._hex_keys()
            start = bisect.bisect_left(keys, h)
            candidates = []
            for key in keys[start:]:
                if not key.startswith(h):
                    break
                candidates.append(key)
            if len(candidates) == 1:
                return self._match(query, candidates[0])
            if candidates:
                raise AmbiguousError(query, [self.describe(c) for c in candidates])
        hint = f" (a prefix needs at least {MIN_PREFIX} hex characters)" if is_hex(h) and len(h) < MIN_PREFIX else ""
        raise NotFoundError(
            f"no lineage record mentions {query!r}{hint}; the store holds {len(self._kinds)} record(s). "
            f"Fix: check the hash; list what exists with `{RUNS_COMMAND}`."
        )
