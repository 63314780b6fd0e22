"""`inspect HASH`: a lineage as an indented text tree, or as JSON for machines."""

from __future__ import annotations

from typing import Any, Dict, List

from mlbuild.lineage.digests import bare_hex
from mlbuild.lineage.graph import Lineage, Node
from mlbuild.lineage.record import Record

SHORT = 12


def short(value: str) -> str:
    """`sha256:1a2b…` / `1a2b…` -> the first 12 hex, keeping the `sha256:` spelling if present."""
    h = bare_hex(value)
    return ("sha256:" if value.startswith("sha256:") else "") + h[:SHORT]


def headline(record: Record) -> str:
    parts = [f"{record.kind} {record.id[:SHORT]}", record.pipeline, record.created]
    if record.get("job.name"):
        parts.append(f"job {record.get('job.name')}")
    if record.status:
        parts.append(record.status)
    if record.get("extra.replay.verdict"):  # NB: written by mlbuild.replay
        parts.append(f"replayed on {record.created[:10]}: {record.get('extra.replay.verdict')}")
    return "  ".join(parts)


def facts(record: Record) -> List[str]:
    """One line per thing the record knows, inputs first, then outputs."""
    g = record.get
    lines = []
    if g("source.revision"):
        lines.append(f"source      {short(g('source.revision'))}" + (" (dirty)" if g("source.dirty") else ""))
    for name in ("lockfile", "config"):
        if g(f"{name}.sha256"):
            lines.append(f"{name:<11} {short(g(f'{name}.sha256'))}  {g(f'{name}.path') or ''}".rstrip())
    if g("image.base_digest"):
        lines.append(f"base image  {short(g('image.base_digest'))}  {g('image.base_name') or ''}".rstrip())
    for channel in g("data") or []:
        lines.append(
            f"data        {channel['name']}: {short(channel.get('checksum', '?'))}  {channel.get('uri', '')}".rstrip()
        )
    if record.hyperparameters:
        lines.append("hyperparams " + " ".join(f"{k}={v}" for k, v in sorted(record.hyperparameters.items())))
    if g("pex.sha256"):
        lines.append(f"pex         {short(g('pex.sha256'))}  {g('pex.path') or ''}".rstrip())
    if g("code.sha256"):
        lines.append(
            f"code        {short(g('code.sha256'))}  sources {short(g('code.sources_sha256'))}"
            f" + requirements {short(g('code.requirements_sha256'))} (a run from sources)"
        )
    if g("image.manifest_digest"):
        extra = f" ({len(g('image.layers'))} layers)" if g("image.layers") else ""
        lines.append(f"image       {short(g('image.manifest_digest'))}  {g('image.ref') or ''}{extra}".rstrip())
    if g("provenance.digest"):
        lines.append(
            f"provenance  {short(g('provenance.digest'))}  SLSA v1 statement {short(g('provenance.statement_sha256'))}"
            f" about {short(g('provenance.subject') or '?')}"
        )
    if g("job.start") or g("job.end"):
        lines.append(f"job         {g('job.start') or '?'} .. {g('job.end') or '?'}  {g('job.arn') or ''}".rstrip())
    if g("model.sha256") or g("model.uri"):
        lines.append(f"model       {short(g('model.sha256') or '?')}  {g('model.uri') or ''}".rstrip())
    if record.metrics:
        lines.append("metrics     " + " ".join(f"{k}={v}" for k, v in sorted(record.metrics.items())))
    return lines


def _render(node: Node, prefix: str, last: bool, with_facts: bool, out: List[str]) -> None:
    via = f"  <- {node.via}" if node.via else ""
    more = "  (shown above)" if node.repeated else ""
    out.append(f"{prefix}{'└─ ' if last else '├─ '}{headline(node.record)}{via}{more}")
    inner = prefix + ("   " if last else "│  ")
    if with_facts and not node.repeated:
        out.extend(f"{inner}{'│  ' if node.children else '   '}{line}" for line in facts(node.record))
    for i, child in enumerate(node.children):
        _render(child, inner, i == len(node.children) - 1, with_facts, out)


def format_lineage(lineage: Lineage) -> str:
    m = lineage.match
    fields = sorted({how for _, how in m.mentions})
    out = [f"lineage of {m.display} ({', '.join(fields)})"]
    for record, up, down in zip(lineage.focus, lineage.upstream, lineage.downstream):
        out += ["", f"* {headline(record)}"]
        out += [f"    {line}" for line in facts(record)]
        out.append("  upstream (made from):")
        if not up.children:
            out.append("    (no upstream records)")
        for i, child in enumerate(up.children):
            _render(child, "    ", i == len(up.children) - 1, True, out)
        out.append("  downstream (made from it):")
        if not down.children:
            out.append("    (no downstream records)")
        for i, child in enumerate(down.children):
            _render(child, "    ", i == len(down.children) - 1, False, out)
    return "\n".join(out) + "\n"


def _tree_json(node: Node) -> Dict[str, Any]:
    data: Dict[str, Any] = {"id": node.record.id, "kind": node.record.kind}
    if node.via:
        data["via"] = node.via
    if node.repeated:
        data["repeated"] = True
    data["children"] = [_tree_json(c) for c in node.children]
    return data


def lineage_json(lineage: Lineage) -> Dict[str, Any]:
    m = lineage.match
    return {
        "query": m.query,
        "key": m.display,
        "mentions": [{"record": rid, "field": how} for rid, how in m.mentions],
        "focus": [r.id for r in lineage.focus],
        "upstream": [_tree_json(t) for t in lineage.upstream],
        "downstream": [_tree_json(t) for t in lineage.downstream],
        "edges": [{"from": a, "to": b, "via": via} for a, b, via in lineage.edges()],
        "records": {rid: r.body for rid, r in lineage.records().items()},
    }
