"""Recorded facts versus rebuilt facts: which inputs differ, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from mlbuild.lineage.build_facts import Facts
from mlbuild.lineage.digests import bare_hex
from mlbuild.lineage.provenance import VerificationError
from mlbuild.lineage.record import Record


class NotReproducible(VerificationError):
    """The rebuilt artifact differs from the recorded one (exit code 7, names.EXIT_NOT_VERIFIED)."""

    def __init__(self, message: str, differences: Sequence["Difference"]) -> None:
        super().__init__(message)
        self.differences = list(differences)


@dataclass(frozen=True)
class Difference:
    what: str
    recorded: Optional[str]
    rebuilt: Optional[str]
    why: str = ""

    def __str__(self) -> str:
        why = f" ({self.why})" if self.why else ""
        return f"{self.what}: recorded {self.recorded or '(none)'}, rebuilt {self.rebuilt or '(none)'}{why}"


def _same(a: Optional[str], b: Optional[str]) -> bool:
    return bare_hex(a) == bare_hex(b) if a and b else True  # NB: unknown on either side is no evidence


INPUTS = (
    ("lockfile sha256", "lockfile_sha256", "the locked third-party dependencies differ"),
    ("config sha256", "config_sha256", "the pipeline config differs"),
    ("base image digest", "base_digest", "the base image differs"),
    ("PEX sha256", "pex_sha256", "the code or its packaging differs"),
)


def differences(recorded: Facts, rebuilt: Facts) -> List[Difference]:
    """Every compared value that differs, inputs first, then layers, tools and the image itself."""
    found: List[Difference] = []
    for what, attr, why in INPUTS:
        a, b = getattr(recorded, attr), getattr(rebuilt, attr)
        if not _same(a, b):
            found.append(Difference(what, a, b, why))
    if recorded.layers and rebuilt.layers:
        if len(recorded.layers) != len(rebuilt.layers):
            found.append(
                Difference(
                    "layer count", str(len(recorded.layers)), str(len(rebuilt.layers)), "the image is split differently"
                )
            )
        for i in range(max(len(recorded.layers), len(rebuilt.layers))):
            a = recorded.layers[i] if i < len(recorded.layers) else None
            b = rebuilt.layers[i] if i < len(rebuilt.layers) else None
            if a and b and a.digest == b.digest:
                continue
            named = b if b and b.name else a
            label = f"layer {i} {named.name} ({named.role})" if named and named.name else f"layer {i}"
            found.append(Difference(label, a.digest if a else None, b.digest if b else None))
    for tool in sorted(set(recorded.tools) & set(rebuilt.tools)):
        if recorded.tools[tool] != rebuilt.tools[tool]:
            found.append(Difference(f"tool {tool}", recorded.tools[tool], rebuilt.tools[tool]))
    if recorded.revision and rebuilt.revision and recorded.revision != rebuilt.revision:
        found.append(Difference("source revision label", recorded.revision, rebuilt.revision))
    if not _same(recorded.config_digest, rebuilt.config_digest):
        found.append(
            Difference(
                "image config digest", recorded.config_digest, rebuilt.config_digest, "labels, env or layer list"
            )
        )
    if not _same(recorded.manifest_digest, rebuilt.manifest_digest):
        found.append(Difference("image manifest digest", recorded.manifest_digest, rebuilt.manifest_digest))
    return found


def _diagnosis(found: Sequence[Difference]) -> str:
    inputs = [d.what for d in found if d.what in {w for w, _, _ in INPUTS} - {"PEX sha256"}]
    layer_roles = sorted(
        {d.what.rsplit("(", 1)[-1].rstrip(")") for d in found if d.what.startswith("layer ") and "(" in d.what}
    )
    tools = [d.what for d in found if d.what.startswith("tool ")]
    parts = []
    if inputs:
        parts.append("different inputs: " + ", ".join(inputs))
    if any(d.what == "PEX sha256" for d in found):
        parts.append("different code/PEX")
    if layer_roles:
        parts.append("changed layer(s): " + ", ".join(layer_roles))
    if tools:
        parts.append("different tools: " + ", ".join(t[len("tool ") :] for t in tools))
    if not inputs and not tools:
        parts.append("no recorded input differs, so the build is not deterministic (same inputs, different bytes)")
    return "; ".join(parts)


def check(record: Record, recorded: Facts, rebuilt: Facts, revision: str) -> str:
    """The success line, or NotReproducible explaining what differs."""
    found = differences(recorded, rebuilt)
    artifact_differs = not _same(recorded.manifest_digest, rebuilt.manifest_digest) or not _same(
        recorded.pex_sha256, rebuilt.pex_sha256
    )
    if not artifact_differs:
        # NB: the artifact is identical; a difference elsewhere (a tool version read from a
        # provenance file) can't be evidence against it.
        return f"verified: {recorded.manifest_digest or 'sha256:' + str(recorded.pex_sha256)} rebuilt identically from {revision}"
    lines = "\n".join(f"  {d}" for d in found)
    raise NotReproducible(
        f"not reproducible: rebuilding {record.pipeline} from {revision} (package record {record.id[:12]}) gave a different "
        f"artifact; {_diagnosis(found)}.\n{lines}",
        found,
    )
