"""Lineage as a graph: records link by `parents` and by the hashes they share.

A record *produces* some hashes (a package: its PEX and image; a run or publish: its model)
and *consumes* others (a run: the PEX or image it ran; a package: its base image). B is
downstream of A when B lists A in `parents` or consumes a hash A produces, so a run that
only knows its PEX's sha256 still hangs under the package that built that PEX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Set, Tuple

from mlbuild.lineage.digests import bare_hex
from mlbuild.lineage.index import Match
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store

# NB: layer digests are not links: every image on one base shares the base's layers, so
# they would tie unrelated packages together. They are still indexed for lookup.
PRODUCES = {
    "package": ("pex.sha256", "image.manifest_digest"),
    "run": ("model.sha256", "model.checksum"),
    "publish": ("model.sha256", "model.checksum"),
    "predict": ("outputs.checksum",),
}
CONSUMES = {
    "package": ("image.base_digest",),
    "run": ("pex.sha256", "code.sha256", "image.manifest_digest"),
    "publish": ("pex.sha256", "image.manifest_digest"),
    # NB: the model by the checksum of its files: the same for a run's model/ and a job's model.tar.gz.
    "predict": ("model.checksum", "image.manifest_digest"),
}
# Fields that say "this record *is* the thing looked up" rather than "it used the thing".
IDENTIFIES = {"id", "job.name", "job.arn"}
OUTPUTS = {
    "package": {
        "pex.sha256",
        "image.manifest_digest",
        "image.config_digest",
        "image.layers",
        "image.diff_ids",
        "image.ref",
    },
    "run": {"model.sha256", "model.checksum"},
    "publish": {"model.sha256", "model.checksum"},
    "predict": {"outputs.checksum"},
}


def upstream_of(store: Store, record: Record) -> List[Tuple[Record, str]]:
    """(record, via) for each record `record` was made from."""
    found: Dict[str, Tuple[Record, str]] = {}
    for parent in record.parents:
        for other, how in store.mentioning(parent):
            if how == "id":
                found[other.id] = (other, "parents")
    for consumed in CONSUMES[record.kind]:
        value = record.get(consumed)
        for other, how in store.mentioning(bare_hex(value)) if value else []:
            if other.id != record.id and how in PRODUCES[other.kind]:
                found.setdefault(other.id, (other, consumed))
    return sorted(found.values(), key=lambda pair: (pair[0].created, pair[0].id))


def downstream_of(store: Store, record: Record) -> List[Tuple[Record, str]]:
    """(record, via) for each record made from `record`."""
    found: Dict[str, Tuple[Record, str]] = {}
    for other, how in store.mentioning(record.id):
        if how == "parents":
            found[other.id] = (other, "parents")
    for produced in PRODUCES[record.kind]:
        value = record.get(produced)
        for other, how in store.mentioning(bare_hex(value)) if value else []:
            if other.id != record.id and how in CONSUMES[other.kind]:
                found.setdefault(other.id, (other, produced))
    return sorted(found.values(), key=lambda pair: (pair[0].created, pair[0].id))


@dataclass
class Node:
    record: Record
    via: str = ""  # the field that links it to its parent node in the tree
    children: List["Node"] = field(default_factory=list)
    repeated: bool = False  # shown already higher in the same tree; children omitted

    def walk(self) -> List["Node"]:
        return [self] + [n for c in self.children for n in c.walk()]


def _tree(store: Store, record: Record, via: str, up: bool, path: FrozenSet[str], seen: Set[str]) -> Node:
    node = Node(record, via)
    if record.id in seen:
        node.repeated = True
        return node
    seen.add(record.id)
    for other, how in (upstream_of if up else downstream_of)(store, record):
        if other.id not in path:  # NB: hash links could in principle form a cycle; ids can't.
            node.children.append(_tree(store, other, how, up, path | {record.id}, seen))
    return node


def upstream_tree(store: Store, record: Record) -> Node:
    return _tree(store, record, "", True, frozenset(), set())


def downstream_tree(store: Store, record: Record) -> Node:
    return _tree(store, record, "", False, frozenset(), set())


@dataclass
class Lineage:
    match: Match
    focus: List[Record]
    upstream: List[Node]  # one tree per focus record, rooted at it
    downstream: List[Node]

    def records(self) -> Dict[str, Record]:
        every = [n.record for tree in self.upstream + self.downstream for n in tree.walk()]
        return {r.id: r for r in sorted(every, key=lambda r: (r.created, r.id))}

    def edges(self) -> List[Tuple[str, str, str]]:
        """(upstream id, downstream id, via), each once."""
        result: Set[Tuple[str, str, str]] = set()
        for tree in self.upstream:
            for node in tree.walk():
                result.update((c.record.id, node.record.id, c.via) for c in node.children)
        for tree in self.downstream:
            for node in tree.walk():
                result.update((node.record.id, c.record.id, c.via) for c in node.children)
        return sorted(result)


def focus_of(store: Store, match: Match) -> List[Record]:
    """The records a lookup is *about*: those the hash identifies or that produced it;
    failing that (a lockfile, a data checksum), the most upstream records that used it."""
    mentioned = {rec.id: (rec, how) for rec, how in store.mentioning(match.key)}
    direct = [rec for rec, how in mentioned.values() if how in IDENTIFIES or how in OUTPUTS[rec.kind]]
    if direct:
        return sorted(direct, key=lambda r: (r.created, r.id))
    result = []
    for rec, _ in mentioned.values():
        ancestors = {n.record.id for n in upstream_tree(store, rec).walk()} - {rec.id}
        if not ancestors & set(mentioned):
            result.append(rec)
    return sorted(result, key=lambda r: (r.created, r.id))


def lineage(store: Store, query: str) -> Lineage:
    """Everything upstream and downstream of what `query` (hash, prefix, job name, image ref) names."""
    match = store.resolve(query)
    focus = focus_of(store, match)
    return Lineage(match, focus, [upstream_tree(store, r) for r in focus], [downstream_tree(store, r) for r in focus])
