"""Runs side by side, the difference between two records, and "the previous model"."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from mlbuild.lineage.inspect import short
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store

RUN_KINDS = ("run", "publish")
# The scalar facts a diff compares, in the order it prints them.
DIFF_FIELDS = (
    "source.revision",
    "source.dirty",
    "lockfile.sha256",
    "config.sha256",
    "image.base_digest",
    "pex.sha256",
    "image.manifest_digest",
    "job.status",
    "model.checksum",
    "model.sha256",
)


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def runs(store: Store, pipeline: Optional[str], kinds: Sequence[str] = RUN_KINDS) -> List[Record]:
    """The pipeline's runs (local and SageMaker), oldest first; every pipeline's if None."""
    return [r for r in store.records() if (pipeline is None or r.pipeline == pipeline) and r.kind in kinds]


def runs_json(records: Sequence[Record]) -> List[Dict[str, Any]]:
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "created": r.created,
            "status": r.status,
            "job": r.get("job.name"),
            "pipeline": r.pipeline,
            "revision": r.get("source.revision"),
            "dirty": r.get("source.dirty"),
            "hyperparameters": r.hyperparameters,
            "metrics": r.metrics,
        }
        for r in records
    ]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    number = _number(value)
    return f"{number:.6g}" if number is not None else str(value)


def varying_hyperparameters(records: Sequence[Record]) -> List[str]:
    """The hyperparameter names whose value is not the same in every record."""
    names = sorted({n for r in records for n in r.hyperparameters})
    return [n for n in names if len({r.hyperparameters.get(n) for r in records}) > 1]


def runs_table(records: Sequence[Record]) -> str:
    """A fixed-width table: one row per run, one column per metric any run reported.

    A `pipeline` column when the runs are of several pipelines; a last `hyperparameters`
    column with those that differ between the rows (`name=value,...`), so runs with the same
    metrics can be told apart.
    """
    metrics = sorted({name for r in records for name in r.metrics})
    several = len({r.pipeline for r in records}) > 1
    varying = varying_hyperparameters(records)
    lead = ["pipeline"] if several else []
    header = [
        *lead,
        "created",
        "record",
        "kind",
        "status",
        "revision",
        *metrics,
        *(["hyperparameters"] if varying else []),
    ]
    rows = [header]
    for r in records:
        revision = r.get("source.revision")
        rev = (revision[:12] + ("*" if r.get("source.dirty") else "")) if revision else "-"
        hps = (
            [",".join(f"{n}={r.hyperparameters[n]}" for n in varying if n in r.hyperparameters) or "-"]
            if varying
            else []
        )
        rows.append(
            [
                *([r.pipeline] if several else []),
                r.created,
                r.id[:12],
                r.kind,
                r.status or "-",
                rev,
                *(_cell(r.metrics.get(m)) for m in metrics),
                *hps,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    first_metric, after_metrics = len(lead) + 5, len(lead) + 5 + len(metrics)
    # NB: text left-aligned, metrics right-aligned so decimal columns line up.
    lines = [
        "  ".join(
            c.rjust(w) if first_metric <= i < after_metrics else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def diff(a: Record, b: Record) -> Dict[str, Any]:
    """What changed from `a` to `b`: provenance fields, data, hyperparameters, metric deltas."""
    fields = [
        {"field": f, "a": a.get(f), "b": b.get(f), "changed": a.get(f) != b.get(f)}
        for f in _model_fields(a, b)
        if a.get(f) is not None or b.get(f) is not None
    ]
    da, db = a.data_checksums, b.data_checksums
    pa, pb = _pins(a), _pins(b)
    data = [
        {
            "channel": n,
            "a": da.get(n),
            "b": db.get(n),
            "changed": da.get(n) != db.get(n),
            **({"comparable": False} if n in pa and n in pb and pa[n] != pb[n] else {}),
        }
        for n in sorted(set(da) | set(db))
    ]
    ha, hb = a.hyperparameters, b.hyperparameters
    hps = [
        {"name": n, "a": ha.get(n), "b": hb.get(n), "changed": ha.get(n) != hb.get(n)}
        for n in sorted(set(ha) | set(hb))
    ]
    metrics = []
    for name in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = _number(a.metrics.get(name)), _number(b.metrics.get(name))
        delta = vb - va if va is not None and vb is not None else None
        metrics.append({"name": name, "a": a.metrics.get(name), "b": b.metrics.get(name), "delta": delta})
    return {"a": a.id, "b": b.id, "fields": fields, "data": data, "hyperparameters": hps, "metrics": metrics}


def _model_fields(a: Record, b: Record) -> List[str]:
    """DIFF_FIELDS, comparing models by their files when both records know them.

    NB: a run's `model.sha256` is model.pkl's and a publish's is model.tar.gz's, so those never
    match even for the same model; `model.checksum` (over the files) compares like with like.
    """
    both = a.get("model.checksum") is not None and b.get("model.checksum") is not None
    skip = "model.sha256" if both else "model.checksum"
    return [f for f in DIFF_FIELDS if f != skip]


def _pins(record: Record) -> Dict[str, str]:
    return {c["name"]: c.get("pin", "bytes") for c in record.get("data") or []}


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    return short(value) if isinstance(value, str) and len(value) >= 40 else str(value)


def format_diff(d: Dict[str, Any]) -> str:
    out = [f"a: {d['a']}", f"b: {d['b']}"]
    sections = (
        ("provenance", "fields", "field"),
        ("data", "data", "channel"),
        ("hyperparameters", "hyperparameters", "name"),
    )
    for title, section, key in sections:
        rows = d[section]
        if rows:
            out.append(f"{title}:")
        for row in rows:
            change = f"{_show(row['a'])} -> {_show(row['b'])}" if row["changed"] else f"= {_show(row['a'])}"
            if row.get("comparable") is False:
                change += "  (pinned differently: S3 listing vs file bytes; not comparable)"
            out.append(f"  {'*' if row['changed'] else ' '} {row[key]:<22} {change}")
    if d["metrics"]:
        out.append("metrics:")
    for row in d["metrics"]:
        delta = "" if row["delta"] is None else f"  ({row['delta']:+.6g})"
        out.append(f"    {row['name']:<22} {_cell(row['a'])} -> {_cell(row['b'])}{delta}")
    return "\n".join(out) + "\n"


def previous_run(
    store: Store,
    pipeline: str,
    before: Optional[Record] = None,
    kinds: Sequence[str] = RUN_KINDS,
    exclude_job: Optional[str] = None,
) -> Optional[Record]:
    """The latest successful run of `pipeline` created before `before` (or at all), with metrics;
    never one of job `exclude_job` (a publish that reused a job is not its own previous run)."""
    candidates = [
        r
        for r in runs(store, pipeline, kinds)
        if r.succeeded
        and r.metrics
        and (before is None or r.created < before.created)
        and (exclude_job is None or r.get("job.name") != exclude_job)
    ]
    return candidates[-1] if candidates else None


def previous_metrics(
    store: Store, pipeline: str, before: Optional[Record] = None, exclude_job: Optional[str] = None
) -> Optional[Dict[str, Any]]:
    """A job report's `previous_metrics`: the previous successful run's metrics, or None."""
    record = previous_run(store, pipeline, before, exclude_job=exclude_job)
    return record.metrics if record else None
