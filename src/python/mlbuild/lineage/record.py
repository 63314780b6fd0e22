"""A lineage record: one canonical JSON document, named by the sha256 of its own bytes.

    {"schema": 1, "kind": "package" | "run" | "publish", "pipeline": ADDRESS,
     "created": "2024-05-01T10:00:00Z",
     "source": {"revision": GIT_SHA, "dirty": BOOL},
     "lockfile": {"path": P, "sha256": HEX}, "config": {"path": P, "sha256": HEX},
     "hyperparameters": {NAME: JSON-ENCODED STRING},
     "pex": {"path": P, "sha256": HEX},
     "image": {"ref": R, "manifest_digest": D, "config_digest": D, "layers": [D],
               "diff_ids": [D], "base_digest": D, "base_name": N},
     "job": {"name": N, "arn": A, "region": R, "start": T, "end": T, "status": S},
     "data": [{"name": CHANNEL, "uri": U, "checksum": "sha256:HEX", "pin": "s3-listing" (else bytes)}],
     "model": {"uri": U, "sha256": HEX, "checksum": "sha256:HEX"}, "metrics": {NAME: NUMBER},
     "provenance": {"digest": REFERRER MANIFEST D, "statement_sha256": HEX, "subject": IMAGE D},
     "parents": [RECORD ID], "extra": {...}}

Only kind, pipeline and created are required. Bodies are normalised on the way in (digest
spellings, UTC times, sorted lists), so the same facts always give the same id.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional

from mlbuild.lineage.digests import oci_digest, sha256_hex
from mlbuild.lineage.errors import RecordError

SCHEMA = 1
# NB: `predict`: a batch transform of input files by a model, with the outputs it wrote.
KINDS = ("package", "run", "publish", "predict")
# NB: one status vocabulary, SageMaker's, so a local run and a cloud job compare directly;
# a local run that finished is "Completed".
STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
SUCCESS = "Completed"


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes that are hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def utc_timestamp(value: Any, what: str) -> str:
    """ISO 8601 in, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` out; naive times are taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            # NB: Python 3.9's fromisoformat rejects a trailing "Z".
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            raise RecordError(f"{what}: {value!r} is not an ISO 8601 time, e.g. 2024-05-01T10:00:00Z.") from None
    else:
        raise RecordError(f"{what}: expected an ISO 8601 time string, got {type(value).__name__}.")
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat() + "Z"


def now() -> str:
    return utc_timestamp(datetime.now(timezone.utc), "now")


def _object(value: Any, what: str, keys: Mapping[str, Callable[[Any, str], Any]]) -> Dict[str, Any]:
    if not isinstance(value, Mapping):
        raise RecordError(f"{what}: expected an object, got {type(value).__name__}.")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise RecordError(f"{what}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(keys))}.")
    return {k: keys[k](v, f"{what}.{k}") for k, v in value.items() if v is not None}


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{what}: expected a non-empty string, got {value!r}.")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise RecordError(f"{what}: expected true or false, got {value!r}.")
    return value


def _status(value: Any, what: str) -> str:
    if value not in STATUSES:
        raise RecordError(f"{what}: {value!r} is not one of {', '.join(STATUSES)}.")
    return value


def _digests(value: Any, what: str) -> List[str]:
    if not isinstance(value, list):
        raise RecordError(f"{what}: expected a list of sha256 digests.")
    return [oci_digest(v, f"{what}[{i}]") for i, v in enumerate(value)]  # NB: order is meaningful (layers)


def _ids(value: Any, what: str) -> List[str]:
    if not isinstance(value, list):
        raise RecordError(f"{what}: expected a list of record ids.")
    return sorted({sha256_hex(v, what) for v in value})


def _hyperparameters(value: Any, what: str) -> Dict[str, str]:
    # NB: stored in the one string form SageMaker and hyperparameters.json use (each value
    # JSON-encoded), so typed values and their encoded strings give the same record.
    if not isinstance(value, Mapping):
        raise RecordError(f"{what}: expected an object of name to value.")
    return {str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in value.items()}


def _number(value: Any, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{what}: expected a number, got {value!r}.")
    # NB: canonical JSON has no NaN/Infinity; a diverged metric is kept as its name.
    return value if math.isfinite(value) else repr(float(value))


def _metrics(value: Any, what: str) -> Dict[str, Any]:
    if not isinstance(value, Mapping):
        raise RecordError(f"{what}: expected an object of metric name to number.")
    return {str(k): _number(v, f"{what}.{k}") for k, v in value.items()}


def _data(value: Any, what: str) -> List[Dict[str, Any]]:
    if not isinstance(value, list):
        raise RecordError(f"{what}: expected a list of channels.")
    channels = [_object(c, f"{what}[{i}]", CHANNEL) for i, c in enumerate(value)]
    names = [c.get("name") for c in channels]
    if None in names or len(set(names)) != len(names):
        raise RecordError(f"{what}: every channel needs a unique `name`.")
    return sorted(channels, key=lambda c: c["name"])


def _free(value: Any, what: str) -> Any:
    canonical_json(value)  # NB: fails early on values JSON can't carry.
    return value


# NB: `pin` says what `checksum` hashes: absent = the files' bytes (a local tree checksum),
# "s3-listing" = an S3 prefix's listing (key, ETag, size); the two never compare equal.
CHANNEL = {"name": _text, "uri": _text, "checksum": lambda v, w: oci_digest(v, w), "pin": _text}
FIELDS: Dict[str, Callable[[Any, str], Any]] = {
    "schema": lambda v, w: v,
    "kind": _text,
    "pipeline": _text,
    "created": utc_timestamp,
    "source": lambda v, w: _object(v, w, {"revision": _text, "dirty": _bool}),
    "lockfile": lambda v, w: _object(v, w, {"path": _text, "sha256": sha256_hex}),
    "config": lambda v, w: _object(v, w, {"path": _text, "sha256": sha256_hex}),
    "hyperparameters": _hyperparameters,
    "pex": lambda v, w: _object(v, w, {"path": _text, "sha256": sha256_hex}),
    # A run from sources (`pants run`): no PEX is built, so what ran is pinned by the digest of
    # its sources (code + config) and of its locked requirements; `sha256` pins the pair.
    "code": lambda v, w: _object(
        v, w, {"sha256": sha256_hex, "sources_sha256": sha256_hex, "requirements_sha256": sha256_hex}
    ),
    "image": lambda v, w: _object(
        v,
        w,
        {
            "ref": _text,
            "manifest_digest": oci_digest,
            "config_digest": oci_digest,
            "layers": _digests,
            "diff_ids": _digests,
            "base_digest": oci_digest,
            "base_name": _text,
        },
    ),
    "job": lambda v, w: _object(
        v,
        w,
        {"name": _text, "arn": _text, "region": _text, "start": utc_timestamp, "end": utc_timestamp, "status": _status},
    ),
    "data": _data,
    "outputs": _data,  # a predict record's output files, like channels: name, uri, checksum
    # NB: `sha256` is the file at `uri` (a run's model.pkl, a publish's model.tar.gz); `checksum`
    # is over the model's files (digests.model_checksum), the same for a directory and its archive.
    "model": lambda v, w: _object(v, w, {"uri": _text, "sha256": sha256_hex, "checksum": oci_digest}),
    "provenance": lambda v, w: _object(
        v, w, {"digest": oci_digest, "statement_sha256": sha256_hex, "subject": oci_digest}
    ),
    "metrics": _metrics,
    "parents": _ids,
    "extra": _free,
}


def normalize(body: Mapping[str, Any]) -> Dict[str, Any]:
    """Validate a record body and put it in canonical form (raises RecordError)."""
    # NB: an empty object or list says nothing; dropping it keeps `{}` and absent the same id.
    result = {k: v for k, v in _object(body, "record", FIELDS).items() if v not in ({}, [])}
    for required in ("kind", "pipeline", "created"):
        if required not in result:
            raise RecordError(f"record: `{required}` is required.")
    if result["kind"] not in KINDS:
        raise RecordError(f"record.kind: {result['kind']!r} is not one of {', '.join(KINDS)}.")
    if result.setdefault("schema", SCHEMA) != SCHEMA:
        raise RecordError(f"record.schema: {result['schema']!r} is not supported (this mlbuild reads {SCHEMA}).")
    return result


# NB: what readers index into, by field: a stored record with another shape would crash
# them (a TypeError deep in `runs` or `diff`), so `from_stored` refuses it up front. Plain
# loops and exact type checks: this runs for every record on every load.
_OBJECT_FIELDS = ("source", "lockfile", "config", "pex", "code", "image", "job", "model", "provenance")
_SCALARS = (str, bool, int, float)
_NON_FINITE = (repr(math.nan), repr(math.inf), repr(-math.inf))  # how `_number` keeps them


def _shape_error(body: Any, what: str, expected: str) -> RecordError:
    # NB: the full validation names the exact problem when it finds one; else say what the shape check saw.
    try:
        normalize(body)
    except RecordError as e:
        return e
    return RecordError(f"{what}: expected {expected}.")


def check_shape(body: Any) -> None:
    """Cheaply check that a stored body has the types readers rely on; raise RecordError naming the field."""
    if type(body) is not dict:
        raise RecordError(f"record: expected a JSON object, got a JSON {type(body).__name__}.")
    for name in ("kind", "pipeline", "created"):
        if type(body.get(name)) is not str:
            raise _shape_error(body, f"record.{name}", "a string")
    if body["kind"] not in KINDS or body.get("schema", SCHEMA) != SCHEMA or not body.keys() <= FIELDS.keys():
        raise _shape_error(body, "record", f"kind one of {', '.join(KINDS)}, schema {SCHEMA} and only known fields")
    for name in _OBJECT_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if type(value) is not dict:
            raise _shape_error(body, f"record.{name}", "an object")
        for v in value.values():
            if type(v) not in _SCALARS and not (type(v) is list and all(type(x) is str for x in v)):
                raise _shape_error(body, f"record.{name}", "an object of strings, numbers and lists of strings")
    for name, ok in (("hyperparameters", _is_text), ("metrics", _is_stored_number)):
        value = body.get(name, {})
        if type(value) is not dict or not all(ok(v) for v in value.values()):
            raise _shape_error(
                body,
                f"record.{name}",
                "an object of "
                + ("name to JSON-encoded string" if name == "hyperparameters" else "metric name to number"),
            )
    for name in ("data", "outputs"):
        files = body.get(name, [])
        if type(files) is not list or not all(
            type(c) is dict and type(c.get("name")) is str and all(type(v) is str for v in c.values()) for c in files
        ):
            raise _shape_error(body, f"record.{name}", "a list of objects with a `name` and string values")
    parents = body.get("parents", [])
    if type(parents) is not list or not all(type(p) is str for p in parents):
        raise _shape_error(body, "record.parents", "a list of record ids")


def _is_text(value: Any) -> bool:
    return type(value) is str


def _is_stored_number(value: Any) -> bool:
    """A number, or the name `_number` keeps a non-finite one as."""
    return type(value) in (int, float) or (type(value) is str and value in _NON_FINITE)


class Record:
    """An immutable, normalised record; `id` is the sha256 of `canonical`."""

    __slots__ = ("_body", "canonical", "id")

    def __init__(self, body: Mapping[str, Any]) -> None:
        normal = normalize(body)
        self.canonical = canonical_json(normal)
        self.id = hashlib.sha256(self.canonical).hexdigest()
        self._body = json.loads(self.canonical)  # NB: a private deep copy; callers can't mutate it.

    @classmethod
    def from_bytes(cls, data: bytes) -> "Record":
        return cls(json.loads(data))

    @classmethod
    def from_stored(cls, data: bytes) -> "Record":
        """Bytes the store wrote (so already canonical); checks their shape, not every value.

        NB: re-normalising thousands of records on every load is most of the load time (6x
        parsing alone); the store checks each file's name against the sha256 of its bytes,
        and `check_shape` that a hand-made file can't crash a reader. Raises RecordError.
        """
        try:
            body = json.loads(data)
        except ValueError as e:  # NB: UnicodeDecodeError is a ValueError too
            raise RecordError(f"record: not JSON ({e}).") from None
        check_shape(body)
        record = cls.__new__(cls)
        record.canonical = data
        record.id = hashlib.sha256(data).hexdigest()
        record._body = body
        return record

    @property
    def body(self) -> Dict[str, Any]:
        return json.loads(self.canonical)

    def get(self, dotted: str, default: Any = None) -> Any:
        """`record.get("image.manifest_digest")`."""
        value: Any = self._body
        for part in dotted.split("."):
            if type(value) is not dict or part not in value:  # NB: json bodies; the ABC check is slow
                return default
            value = value[part]
        return value

    kind = property(lambda self: self._body["kind"])
    pipeline = property(lambda self: self._body["pipeline"])
    created = property(lambda self: self._body["created"])
    parents = property(lambda self: list(self._body.get("parents", [])))
    metrics = property(lambda self: dict(self._body.get("metrics", {})))
    hyperparameters = property(lambda self: dict(self._body.get("hyperparameters", {})))
    status = property(lambda self: self.get("job.status"))

    @property
    def data_checksums(self) -> Dict[str, str]:
        return {c["name"]: c["checksum"] for c in self._body.get("data", []) if "checksum" in c}

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Record({self.kind} {self.id[:12]} {self.pipeline} {self.created})"


def make_record(kind: str, pipeline: str, created: Optional[str] = None, **fields: Any) -> Record:
    """`make_record("run", "src/p:train", pex={"sha256": ...}, metrics={...})`; created defaults to now."""
    return Record({"kind": kind, "pipeline": pipeline, "created": created or now(), **fields})


def source_from_revision(revision: str) -> Dict[str, Any]:
    """The package label's revision (`<sha>`, `<sha>-dirty` or `unknown`) as a source object."""
    dirty = revision.endswith("-dirty")
    return {"revision": revision[: -len("-dirty")] if dirty else revision, "dirty": dirty}
