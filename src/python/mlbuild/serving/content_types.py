"""Request bodies to records, predictions to response bodies, and Accept negotiation.

Three media types, as SageMaker's hosting and batch transform send them:

    text/csv               rows without a header: the training columns, the label left out;
                           each record is a list of strings (CSV has no types)
    application/json       a list of records, `{"instances": [...]}`, one object (one record)
                           or one list of scalars (one record); a record is a list or an object
    application/jsonlines  one record (list or object) per line

Responses: CSV has one line per prediction (a list prediction is one comma-separated row),
JSON is `{"predictions": [...]}`, JSON Lines one JSON value per line.
https://docs.aws.amazon.com/sagemaker/latest/dg/cdf-inference.html

Bad requests raise a `RequestError` whose `status` is the HTTP status to answer with.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, List, Optional, Tuple

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
SUPPORTED = (CSV, JSON, JSONLINES)
# NB: JSON Lines has no registered media type; these spellings are all in use (SageMaker's
# own docs use application/jsonlines, its clarify and autopilot application/x-jsonlines).
ALIASES = {"application/x-jsonlines": JSONLINES, "application/jsonl": JSONLINES, "application/x-ndjson": JSONLINES}


class RequestError(Exception):
    """A request this server refuses; `status` is the HTTP status, the message the body."""

    status = 400


class MalformedPayload(RequestError):
    status = 400


class UnsupportedContentType(RequestError):
    status = 415


class NotAcceptable(RequestError):
    status = 406


def media_type(header: Optional[str]) -> str:
    """`text/CSV; charset=utf-8` -> `text/csv`; an alias -> its canonical name."""
    name = (header or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(name, name)


def request_type(header: Optional[str]) -> str:
    """The request's media type, refused (415) unless this server parses it."""
    name = media_type(header)
    if name not in SUPPORTED:
        got = f"Content-Type {header!r}" if header else "no Content-Type"
        raise UnsupportedContentType(f"{got}: this server takes {', '.join(SUPPORTED)}. Fix: send one of them.")
    return name


def negotiate(accept: Optional[str], content_type: str) -> str:
    """The response type: the best of Accept (by q, then order) that this server writes.

    No Accept (or `*/*`) answers in the request's own type, as SageMaker's built-in
    containers do.
    """
    if not accept or not accept.strip():
        return content_type
    choices: List[Tuple[float, int, str]] = []
    for position, entry in enumerate(accept.split(",")):
        name, *params = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name and quality > 0:
            choices.append((-quality, position, name.lower()))
    for _, _, name in sorted(choices):
        found = _match(name, content_type)
        if found:
            return found
    raise NotAcceptable(f"Accept {accept!r}: this server answers {', '.join(SUPPORTED)}. Fix: accept one of them.")


def _match(name: str, content_type: str) -> Optional[str]:
    if name == "*/*":
        return content_type
    if name.endswith("/*"):
        family = name[:-1]
        return (
            content_type
            if content_type.startswith(family)
            else next((t for t in SUPPORTED if t.startswith(family)), None)
        )
    name = ALIASES.get(name, name)
    return name if name in SUPPORTED else None


def parse_records(body: bytes, content_type: str) -> List[Any]:
    """The records of a request body of `content_type` (one of SUPPORTED)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedPayload(f"the body is not UTF-8 (byte {e.start}). Fix: send UTF-8 text.") from None
    if content_type == CSV:
        records = _csv_rows(text)
    elif content_type == JSON:
        records = _json_records(text)
    else:
        records = _jsonlines_records(text)
    if not records:
        raise MalformedPayload(f"the {content_type} body holds no records. Fix: send at least one.")
    return records


def _csv_rows(text: str) -> List[List[str]]:
    if '"' not in text:
        # NB: the fast path (no quoting): 3-5x the csv module's speed on 1,000-row payloads.
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
    else:
        try:
            rows = [
                row
                for row in csv.reader(io.StringIO(text, newline=""), strict=True)
                if row and any(c.strip() for c in row)
            ]
        except csv.Error as e:
            raise MalformedPayload(
                f"malformed CSV: {e}. Fix: send rows of comma-separated values, quoted as RFC 4180 says."
            ) from None
    if rows:
        width = len(rows[0])
        for number, row in enumerate(rows, 1):
            if len(row) != width:
                raise MalformedPayload(
                    f"CSV row {number} has {len(row)} columns, row 1 has {width}. "
                    f"Fix: every row needs the same columns (the training columns without the label)."
                )
    return rows


def _json_value(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedPayload(f"malformed JSON{where}: {e.msg} at line {e.lineno} column {e.colno}.") from None


def _json_records(text: str) -> List[Any]:
    value = _json_value(text, "")
    if isinstance(value, dict):
        if "instances" not in value:
            return [value]
        value = value["instances"]
        if not isinstance(value, list):
            raise MalformedPayload('"instances" must be a list of records.')
    if not isinstance(value, list):
        raise MalformedPayload(f"a JSON body must be a list of records or an object, got {type(value).__name__}.")
    if value and not any(isinstance(v, (list, dict)) for v in value):
        return [value]  # NB: one record given as a bare list of values
    for number, record in enumerate(value, 1):
        _check_record(record, f"record {number}")
    return value


def _jsonlines_records(text: str) -> List[Any]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            records.append(_check_record(_json_value(line, f" on line {number}"), f"line {number}"))
    return records


def _check_record(record: Any, where: str) -> Any:
    if not isinstance(record, (list, dict)):
        raise MalformedPayload(f"{where} is a {type(record).__name__}; a record is a list of values or an object.")
    return record


def plain(predictions: Any) -> List[Any]:
    """numpy arrays and scalars as Python lists and values (what json and csv can write)."""
    if hasattr(predictions, "tolist"):
        predictions = predictions.tolist()
    return [p.tolist() if hasattr(p, "tolist") else p for p in predictions]


def serialise(predictions: List[Any], accept: str) -> bytes:
    """The response body for plain predictions (see `plain`) in the `accept` type."""
    if accept == CSV:
        return _csv_body(predictions)
    if accept == JSON:
        return (json.dumps({"predictions": predictions}, separators=(",", ":")) + "\n").encode()
    return "".join(json.dumps(p, separators=(",", ":")) + "\n" for p in predictions).encode()


def _csv_body(predictions: List[Any]) -> bytes:
    if all(type(p) in (float, int) for p in predictions):
        # NB: the common case (one number per record) without the csv module: 5x faster on
        # 1,000 predictions, and the same text (csv writes floats with repr too).
        return "".join(f"{p!r}\n" for p in predictions).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for prediction in predictions:
        if isinstance(prediction, dict):
            raise NotAcceptable(
                "predict returned objects, which text/csv cannot hold. Fix: accept application/json or application/jsonlines."
            )
        writer.writerow(prediction if isinstance(prediction, (list, tuple)) else [prediction])
    return out.getvalue().encode()
