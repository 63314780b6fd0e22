"""Which package record `verify` rebuilds: the one that made what a query names.

A run or publish record is followed upstream to its package (by PEX sha256 / image
digest, then parents); a dirty or unknown revision can't be rebuilt.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Tuple

from mlbuild.lineage import graph
from mlbuild.lineage.errors import UserError
from mlbuild.lineage.rebuild_runner import CannotRebuild
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store

DIRTY_REFUSAL = "cannot rebuild: the build came from uncommitted changes; commit and package again"


def _followed_packages(store: Store, start: Iterable[Record]) -> List[Record]:
    """Package records upstream of run/publish records: by PEX sha / image digest, then parents."""
    seen = {r.id for r in start}
    frontier = list(start)
    while frontier:
        found: List[Record] = []
        nxt: List[Record] = []
        for record in frontier:
            for other, _via in graph.upstream_of(store, record):
                if other.id in seen:
                    continue
                seen.add(other.id)
                (found if other.kind == "package" else nxt).append(other)
        if found:
            return found
        frontier = nxt
    return []


def _rebuildable(record: Record) -> bool:
    return record.get("source.revision", "unknown") != "unknown" and not record.get("source.dirty", False)


def resolve_package(store: Store, query: str, log: Callable[[str], None] = lambda _: None) -> Record:
    """The package record that made what `query` names."""
    match = store.resolve(query)
    mentioned: Dict[str, Tuple[Record, List[str]]] = {}
    for rid, how in match.mentions:
        mentioned.setdefault(rid, (store.get(rid), []))[1].append(how)
    direct = [
        r
        for r, hows in mentioned.values()
        if r.kind == "package" and any(h in graph.OUTPUTS["package"] | graph.IDENTIFIES for h in hows)
    ]
    if direct:
        candidates = direct
    else:
        # NB: a run/publish record, its model or job: follow it to the package it ran.
        made = [
            r
            for r, hows in mentioned.values()
            if r.kind != "package"
            and any(h in graph.OUTPUTS[r.kind] | graph.IDENTIFIES | set(graph.CONSUMES[r.kind]) for h in hows)
        ]
        if not made:
            uses = ", ".join(sorted({f"{h} of {r.kind} {r.id[:12]}" for r, hows in mentioned.values() for h in hows}))
            raise UserError(
                f"{query!r} is not an artifact mlbuild built or ran (it is the {uses}). "
                "Fix: give an image digest, PEX sha256, model sha256, job name or record id."
            )
        candidates = _followed_packages(store, made)
        if not candidates:
            raise UserError(
                f"{query!r} names {', '.join(f'{r.kind} record {r.id[:12]}' for r in made)}, but no package record in "
                f"{store.root} has its PEX or image. Fix: verify from the store (or --root) where it was packaged."
            )
    # NB: packaging the same commit twice gives two records (different `created`) of one build.
    candidates = sorted(candidates, key=lambda r: (r.created, r.id))
    clean = [r for r in candidates if _rebuildable(r)]
    chosen = (clean or candidates)[-1]
    builds = {
        (r.pipeline, r.get("source.revision"), r.get("image.manifest_digest"), r.get("pex.sha256"))
        for r in (clean or candidates)
    }
    if len(builds) > 1:
        log(f"{len(builds)} different builds match {query!r}; verifying the newest, package record {chosen.id[:12]}.")
    return chosen


def check_rebuildable(record: Record) -> str:
    """The record's git revision, or CannotRebuild."""
    revision = record.get("source.revision")
    where = f" (package record {record.id[:12]}, {record.pipeline})"
    if record.get("source.dirty"):
        raise CannotRebuild(f"{DIRTY_REFUSAL}{where}: it was built from {revision} plus changes no commit holds.")
    if not revision or revision == "unknown":
        raise CannotRebuild(
            f"cannot rebuild: the build's git revision is unknown{where}: it was not built in a git checkout. "
            "Fix: commit and package again in one."
        )
    if not record.get("image.manifest_digest") and not record.get("pex.sha256"):
        raise CannotRebuild(
            f"cannot verify{where}: the record has neither an image digest nor a PEX sha256 to compare."
        )
    return revision
