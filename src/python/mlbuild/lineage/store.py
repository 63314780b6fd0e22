"""The local lineage store: `<root>/records/<record id>.json`, content-addressed.

    <root>/records/<sha256 of the file's bytes>.json

The root is `$MLBUILD_LINEAGE_DIR`, else `<cwd>/.mlbuild/lineage`: under Pants the cwd is
the build root, and `.mlbuild/` is neither `dist/` (which people delete) nor seen by Pants
(`pants_ignore`). `pants package` can only write under `dist/`, so its records land in the
inbox `dist/mlbuild/lineage` ($MLBUILD_LINEAGE_INBOX) and are copied into the store the next
time anything loads it. Writes are atomic (temp file + rename) and idempotent: the same
record is the same file, so copying between stores is always safe.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from mlbuild import console
from mlbuild.atomic_write import write_durably
from mlbuild.lineage.digests import is_hex
from mlbuild.lineage.errors import AmbiguousError, RecordError, StoreError
from mlbuild.lineage.index import Index, Match
from mlbuild.lineage.record import Record
from mlbuild.names import DIST_LINEAGE_SUBDIR, LINEAGE_DIR_ENV, LINEAGE_INBOX_ENV, LINEAGE_STORE_DIR
from mlbuild.stale_temps import STALE_SECONDS

ROOT_ENV_VAR = LINEAGE_DIR_ENV
INBOX_ENV_VAR = LINEAGE_INBOX_ENV
DEFAULT_ROOT = Path(LINEAGE_STORE_DIR)
PACKAGE_INBOX = Path("dist") / DIST_LINEAGE_SUBDIR
RECORDS_DIR = "records"


def default_root(environ: Optional[Mapping[str, str]] = None, cwd: Optional[Path] = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(ROOT_ENV_VAR):
        return Path(environ[ROOT_ENV_VAR])
    return (cwd or Path.cwd()) / DEFAULT_ROOT


def default_inbox(environ: Optional[Mapping[str, str]] = None, cwd: Optional[Path] = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ[INBOX_ENV_VAR]) if environ.get(INBOX_ENV_VAR) else (cwd or Path.cwd()) / PACKAGE_INBOX


def _remove_if_stale(path: Path) -> None:
    """A temp file of a writer killed mid-put (kill -9): harmless, but removed once a day old."""
    try:
        if time.time() - path.lstat().st_mtime > STALE_SECONDS:
            path.unlink()
    except OSError:
        pass  # NB: a concurrent sweep removed it, or it is not ours to remove; never fail a load


class Store:
    def __init__(self, root: Optional[Path] = None, inboxes: Sequence[Path] = (), strict: bool = False) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.inboxes = tuple(Path(p) for p in inboxes)  # stores whose records are copied in on load
        # NB: by default one corrupt file is skipped with a warning naming it, so it can't take
        # every lineage command down; `strict` makes it the StoreError (exit 3) it is.
        self.strict = strict
        self.skipped: List[Path] = []
        self._records: Optional[Dict[str, Record]] = None
        self._index: Optional[Index] = None

    @classmethod
    def configured(
        cls, environ: Optional[Mapping[str, str]] = None, cwd: Optional[Path] = None, strict: bool = False
    ) -> "Store":
        """The default store, taking in what `pants package` left in the inbox."""
        return cls(default_root(environ, cwd), [default_inbox(environ, cwd)], strict)

    def _bad(self, path: Path, problem: str, fix: str) -> None:
        """A record file that can't be used: a StoreError when strict, else skipped and named."""
        if self.strict:
            raise StoreError(f"{path}: {problem}. Fix: {fix}")
        self.skipped.append(path)
        console.warn(f"{path}: {problem}; skipped (--strict fails instead). Fix: {fix}")

    def _read(self, path: Path, stem: str) -> Optional[Record]:
        """The record in `path` if its bytes hash to `stem` and have a record's shape."""
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != stem:
            self._bad(
                path,
                f"contents hash to {hashlib.sha256(data).hexdigest()}, not its name; the file was edited or corrupted",
                "delete it (records are immutable; re-record instead)",
            )
            return None
        try:
            return Record.from_stored(data)
        except RecordError as e:
            self._bad(path, f"not a lineage record ({e})", "delete it")
            return None

    def _take_in(self) -> None:
        for inbox in self.inboxes:
            source = inbox / RECORDS_DIR
            if not source.is_dir() or source.resolve() == self.records_dir.resolve():
                continue
            for name in sorted(os.listdir(source)):
                stem, _, ext = name.partition(".")
                if ext != "json" or self.path_of(stem).exists():
                    continue
                try:
                    data = (source / name).read_bytes()
                except FileNotFoundError:
                    continue  # NB: removed since the listing (a rebuild, `rm -rf dist`)
                if hashlib.sha256(data).hexdigest() != stem:
                    # NB: maybe still being written; the store itself is not at risk, so skip it.
                    console.warn(f"{source / name}: contents don't hash to its name; not taken in.")
                    continue
                try:
                    record = Record.from_stored(data)
                except RecordError as e:
                    console.warn(f"{source / name}: not a lineage record ({e}); not taken in.")
                    continue
                self.put(record)

    @property
    def records_dir(self) -> Path:
        return self.root / RECORDS_DIR

    def path_of(self, record_id: str) -> Path:
        return self.records_dir / f"{record_id}.json"

    def _load(self) -> Tuple[Dict[str, Record], Index]:
        if self._records is None or self._index is None:
            self._take_in()
            records: Dict[str, Record] = {}
            names = sorted(os.listdir(self.records_dir)) if self.records_dir.is_dir() else []
            for name in names:
                stem, dot, ext = name.partition(".")
                if ext != "json" or not stem:  # NB: `.<id>.<random>.tmp` files of an interrupted write.
                    if not stem and name.endswith(".tmp"):
                        _remove_if_stale(self.records_dir / name)
                    continue
                path = self.records_dir / name
                try:
                    record = self._read(path, stem)
                except OSError as e:
                    self._bad(
                        path,
                        f"unreadable lineage record ({e.strerror or e})",
                        "delete the file, or fix its permissions",
                    )
                    continue
                if record is not None:
                    records[record.id] = record
            self._records, self._index = records, Index(records.values())
        return self._records, self._index

    def put(self, record: Record) -> str:
        """Write `record` if it's new; return its id either way."""
        path = self.path_of(record.id)
        if not path.exists():
            try:
                self.records_dir.mkdir(parents=True, exist_ok=True)
                # NB: two writers of the same record race harmlessly: same name, same bytes.
                write_durably(path, record.canonical, prefix=f".{record.id}.", suffix=".tmp")
            except OSError as e:
                raise StoreError(f"{self.records_dir}: cannot write lineage record {record.id} ({e}).") from e
        if self._records is not None and self._index is not None and record.id not in self._records:
            self._records[record.id] = record
            self._index.add(record)
        return record.id

    def records(self) -> List[Record]:
        """Every record, oldest first (ties broken by id, so the order is stable)."""
        return sorted(self._load()[0].values(), key=lambda r: (r.created, r.id))

    def get(self, record_id: str) -> Record:
        """A record by full id, or by anything `resolve` accepts that names exactly one record."""
        records = self._load()[0]
        if len(record_id) == 64 and is_hex(record_id) and record_id in records:
            return records[record_id]
        match = self.resolve(record_id)
        if match.key in records:
            return records[match.key]
        ids = match.record_ids
        if len(ids) == 1:
            return records[ids[0]]
        raise AmbiguousError(record_id, [f"{rid} ({records[rid].kind} {records[rid].pipeline})" for rid in ids])

    def resolve(self, query: str) -> Match:
        return self._load()[1].resolve(query)

    def mentioning(self, key: str) -> List[Tuple[Record, str]]:
        records, index = self._load()
        return [(records[rid], field) for rid, field in index.mentioning(key)]

    def find(self, query: str) -> List[Record]:
        """Every record that mentions what `query` names."""
        records = self._load()[0]
        return [records[rid] for rid in self.resolve(query).record_ids]
