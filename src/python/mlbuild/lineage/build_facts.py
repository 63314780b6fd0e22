"""What a build made, as comparable facts: from the record (and the dist it left), or from a rebuild."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from mlbuild.lineage import collect
from mlbuild.lineage.digests import bare_hex, file_sha256, pex_sha256
from mlbuild.lineage.errors import UserError
from mlbuild.lineage.rebuild_runner import RebuildFailed
from mlbuild.lineage.record import Record
from mlbuild.names import LAYER_COMPRESSOR_ANNOTATION, LAYER_NAME_ANNOTATION


@dataclass(frozen=True)
class Layer:
    digest: str
    name: Optional[str] = None
    compressor: Optional[str] = None

    @property
    def role(self) -> str:
        """base, deps or app: the pipeline's own layers are named deps / dep-<wheel> / app."""
        if self.name == "app":
            return "app"
        if self.name and (self.name == "deps" or self.name.startswith("dep-")):
            return "deps"
        return "base" if self.name else "?"


@dataclass(frozen=True)
class Facts:
    """What one build was made from and made; None where it isn't known."""

    revision: Optional[str] = None
    manifest_digest: Optional[str] = None
    config_digest: Optional[str] = None
    pex_sha256: Optional[str] = None
    lockfile_sha256: Optional[str] = None
    config_sha256: Optional[str] = None
    base_digest: Optional[str] = None
    layers: Tuple[Layer, ...] = ()
    tools: Mapping[str, str] = field(default_factory=dict)


def output_paths(pipeline: str) -> Tuple[str, str]:
    """(dist subdirectory, name) of a pipeline's default package output: Pants' `<path dotted>/<name>`."""
    path, colon, name = pipeline.partition(":")
    path = path.strip("/")
    return path.replace("/", "."), (name if colon else path.rsplit("/", 1)[-1])


def _summary_path(dist: Path, pipeline: str, search: bool = False) -> Optional[Path]:
    sub, name = output_paths(pipeline)
    default = dist / sub / f"{name}.image.json"
    if default.is_file():
        return default
    # NB: a custom `output_path`: the summary whose image says it is this pipeline. Only in
    # the fresh checkout's dist/, which holds nothing else.
    for candidate in sorted(dist.glob("**/*.image.json")) if search and dist.is_dir() else []:
        try:
            if collect.read_image_build(candidate).label(collect.PIPELINE_LABEL) == pipeline:
                return candidate
        except UserError:
            continue
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _layers(summary: Mapping[str, Any]) -> Tuple[Layer, ...]:
    return tuple(
        Layer(
            layer["digest"],
            (layer.get("annotations") or {}).get(LAYER_NAME_ANNOTATION),
            (layer.get("annotations") or {}).get(LAYER_COMPRESSOR_ANNOTATION),
        )
        for layer in summary.get("layers", [])
    )


def _tools(summary_path: Path, manifest_digest: Optional[str], layers: Sequence[Layer]) -> Dict[str, str]:
    """Tool versions the build left behind: its provenance's builder versions, the layer compressor."""
    tools: Dict[str, str] = {}
    statement = _read_json(summary_path.with_name(summary_path.name[: -len(".image.json")] + ".provenance.json"))
    if isinstance(statement, dict) and manifest_digest:
        subjects = statement.get("subject") or []
        if any(
            bare_hex(str((s.get("digest") or {}).get("sha256", ""))) == bare_hex(manifest_digest)
            for s in subjects
            if isinstance(s, dict)
        ):
            version = ((statement.get("predicate") or {}).get("runDetails") or {}).get("builder", {}).get(
                "version"
            ) or {}
            tools.update({str(k): str(v) for k, v in version.items()})
    compressors = sorted({layer.compressor for layer in layers if layer.compressor})
    if compressors:
        tools["layer compressor"] = ", ".join(compressors)
    return tools


def rebuilt_facts(checkout: Path, record: Record) -> Facts:
    """What `pants package` wrote in the checkout."""
    pipeline = record.pipeline
    summary_path = _summary_path(checkout / "dist", pipeline, search=True)
    if summary_path is None:
        sub, name = output_paths(pipeline)
        raise RebuildFailed(
            f"`pants package {pipeline}` wrote no dist/{sub}/{name}.image.json (nor any image of that pipeline) in {checkout}."
        )
    summary = _read_json(summary_path) or {}
    build = collect.read_image_build(summary_path)
    pex = summary_path.with_name(summary_path.name[: -len(".image.json")] + ".pex")
    config_path = record.get("config.path")
    layers = _layers(summary)
    return Facts(
        revision=build.label(collect.REVISION_LABEL),
        manifest_digest=build.manifest_digest,
        config_digest=build.config_digest,
        pex_sha256=pex_sha256(pex) if pex.exists() else build.pex_sha256,
        lockfile_sha256=build.label(collect.LOCKFILE_LABEL),
        config_sha256=(
            file_sha256(checkout / config_path) if config_path and (checkout / config_path).is_file() else None
        ),
        base_digest=build.label(collect.BASE_DIGEST_LABEL),
        layers=layers,
        tools=_tools(summary_path, build.manifest_digest, layers),
    )


def recorded_facts(record: Record, dists: Sequence[Path] = ()) -> Facts:
    """The record's facts; layer names and tool versions from the original summary in `dists`, if it's still there."""
    manifest = record.get("image.manifest_digest")
    layers = tuple(Layer(d) for d in record.get("image.layers") or [])
    tools: Dict[str, str] = {}
    extra_tools = record.get("extra.tools")
    if isinstance(extra_tools, dict):
        tools.update({str(k): str(v) for k, v in extra_tools.items()})
    for dist in dists:
        summary_path = _summary_path(dist, record.pipeline)
        summary = _read_json(summary_path) if summary_path else None
        if not isinstance(summary, dict) or not manifest or summary.get("manifest_digest") != manifest:
            continue  # NB: a later build overwrote it; its names and versions aren't this record's.
        named = _layers(summary)
        if [x.digest for x in named] == [x.digest for x in layers] or not layers:
            layers = named
        assert summary_path is not None
        tools = {**_tools(summary_path, manifest, named), **tools}
        break
    revision = record.get("source.revision")
    return Facts(
        revision=f"{revision}-dirty" if revision and record.get("source.dirty") else revision,
        manifest_digest=manifest,
        config_digest=record.get("image.config_digest"),
        pex_sha256=record.get("pex.sha256"),
        lockfile_sha256=record.get("lockfile.sha256"),
        config_sha256=record.get("config.sha256"),
        base_digest=record.get("image.base_digest"),
        layers=layers,
        tools=tools,
    )
