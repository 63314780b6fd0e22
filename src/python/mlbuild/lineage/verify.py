"""`verify QUERY`: rebuild an artifact from a clean checkout of its recorded revision and compare.

    QUERY -> the package record that made the artifact (a run or publish record is followed to
             its package by PEX sha256 / image digest)
          -> refuse if the build was dirty or its revision unknown
          -> git clone --no-hardlinks <repo> TMP && git -C TMP checkout <revision>
          -> ./pants --no-pantsd --no-local-cache package <pipeline>   (in TMP, output to stderr)
          -> compare TMP/dist/<path dotted>/<name>.image.json and .pex with the record

A match prints `verified: <manifest digest> rebuilt identically from <revision>`. A mismatch
raises `NotReproducible` (exit 4) naming each input whose recorded and rebuilt values differ:
lockfile, config, base image, PEX (code), each layer (by its `org.mlbuild.layer.name`), tool
versions. Every git/Pants call goes through one `Runner`, so tests replace it.

NB: the rebuild runs with `--no-local-cache` by default: with Pants' process cache, identical
inputs replay the outputs of the original build instead of rebuilding them, which shows the
inputs match but not that the build reproduces. `reuse_cache=True` (`--reuse-cache`) trades
that for speed. It also gets fresh named caches (Pants' pex_root: downloaded and installed
wheels, venvs), so nothing a developer ran on this machine can reach the rebuild; the lockfile
pins what gets downloaded again. Shared still: the launcher's Pants venv and pex CLI, and the
system's interpreters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from mlbuild.lineage import collect, graph, provenance
from mlbuild.lineage.digests import bare_hex, file_sha256
from mlbuild.lineage.errors import PlatformError, UserError
from mlbuild.lineage.provenance import VerificationError
from mlbuild.lineage.record import Record
from mlbuild.lineage.store import Store
from mlbuild.names import DIST_LINEAGE_SUBDIR, LAYER_COMPRESSOR_ANNOTATION, LAYER_NAME_ANNOTATION

DIRTY_REFUSAL = "cannot rebuild: the build came from uncommitted changes; commit and package again"
# NB: variables that would make the checkout's Pants (or the plugin it imports) come from
# somewhere other than the checkout: `PYTHONPATH=src/python python -m mlbuild.lineage` is
# the documented way to run this CLI, and the plugin is on Pants' pythonpath.
SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PEX", "PEX_ROOT", "PEX_PATH", "PEX_MODULE", "PEX_SCRIPT")


class CannotRebuild(UserError):
    """The record can't be rebuilt (dirty or unknown revision, revision not in the repo)."""


class RebuildFailed(PlatformError):
    """git or Pants failed in the temporary checkout."""


class NotReproducible(VerificationError):
    """The rebuilt artifact differs from the recorded one (exit code 4)."""

    def __init__(self, message: str, differences: Sequence["Difference"]) -> None:
        super().__init__(message)
        self.differences = list(differences)


# --- the one side effect: running git and Pants -------------------------------------------

# run(argv, cwd, stream) -> stdout. stream=True: send the command's output to stderr as it
# comes (Pants); False: capture and return stdout (git). Raises RebuildFailed on failure.
Runner = Callable[[Sequence[str], Optional[Path], bool], str]


def child_env(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in SCRUBBED_ENV}


def run_command(argv: Sequence[str], cwd: Optional[Path] = None, stream: bool = False) -> str:
    """The real Runner: subprocess, with the environment scrubbed (see SCRUBBED_ENV)."""
    where = f" (in {cwd})" if cwd else ""
    try:
        if not stream:
            done = subprocess.run(list(argv), cwd=cwd, env=child_env(), capture_output=True, text=True)
            if done.returncode != 0:
                raise RebuildFailed(f"`{' '.join(argv)}`{where} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
            return done.stdout
        with subprocess.Popen(
            list(argv), cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as proc:
            assert proc.stdout is not None
            for line in iter(proc.stdout.readline, b""):
                sys.stderr.write(line.decode("utf-8", "replace"))
                sys.stderr.flush()
            code = proc.wait()
        if code != 0:
            raise RebuildFailed(f"`{' '.join(argv)}`{where} exited {code}; its output is above.")
        return ""
    except FileNotFoundError as e:
        raise RebuildFailed(f"`{argv[0]}`{where}: not found ({e}).")


# --- which record to rebuild --------------------------------------------------------------


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
    direct = [r for r, hows in mentioned.values() if r.kind == "package" and any(h in graph.OUTPUTS["package"] | graph.IDENTIFIES for h in hows)]
    if direct:
        candidates = direct
    else:
        # NB: a run/publish record, its model or job: follow it to the package it ran.
        made = [
            r for r, hows in mentioned.values()
            if r.kind != "package" and any(h in graph.OUTPUTS[r.kind] | graph.IDENTIFIES | set(graph.CONSUMES[r.kind]) for h in hows)
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
    builds = {(r.pipeline, r.get("source.revision"), r.get("image.manifest_digest"), r.get("pex.sha256")) for r in (clean or candidates)}
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
        raise CannotRebuild(f"cannot verify{where}: the record has neither an image digest nor a PEX sha256 to compare.")
    return revision


# --- what was built: recorded and rebuilt -------------------------------------------------


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
        if any(bare_hex(str((s.get("digest") or {}).get("sha256", ""))) == bare_hex(manifest_digest) for s in subjects if isinstance(s, dict)):
            version = ((statement.get("predicate") or {}).get("runDetails") or {}).get("builder", {}).get("version") or {}
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
        raise RebuildFailed(f"`pants package {pipeline}` wrote no dist/{sub}/{name}.image.json (nor any image of that pipeline) in {checkout}.")
    summary = _read_json(summary_path) or {}
    build = collect.read_image_build(summary_path)
    pex = summary_path.with_name(summary_path.name[: -len(".image.json")] + ".pex")
    config_path = record.get("config.path")
    layers = _layers(summary)
    return Facts(
        revision=build.label(collect.REVISION_LABEL),
        manifest_digest=build.manifest_digest,
        config_digest=build.config_digest,
        pex_sha256=file_sha256(pex) if pex.is_file() else build.label(collect.PEX_LABEL),
        lockfile_sha256=build.label(collect.LOCKFILE_LABEL),
        config_sha256=file_sha256(checkout / config_path) if config_path and (checkout / config_path).is_file() else None,
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


# --- the comparison -----------------------------------------------------------------------


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
            found.append(Difference("layer count", str(len(recorded.layers)), str(len(rebuilt.layers)), "the image is split differently"))
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
        found.append(Difference("image config digest", recorded.config_digest, rebuilt.config_digest, "labels, env or layer list"))
    if not _same(recorded.manifest_digest, rebuilt.manifest_digest):
        found.append(Difference("image manifest digest", recorded.manifest_digest, rebuilt.manifest_digest))
    return found


def _diagnosis(found: Sequence[Difference]) -> str:
    inputs = [d.what for d in found if d.what in {w for w, _, _ in INPUTS} - {"PEX sha256"}]
    layer_roles = sorted({d.what.rsplit("(", 1)[-1].rstrip(")") for d in found if d.what.startswith("layer ") and "(" in d.what})
    tools = [d.what for d in found if d.what.startswith("tool ")]
    parts = []
    if inputs:
        parts.append("different inputs: " + ", ".join(inputs))
    if any(d.what == "PEX sha256" for d in found):
        parts.append("different code/PEX")
    if layer_roles:
        parts.append("changed layer(s): " + ", ".join(layer_roles))
    if tools:
        parts.append("different tools: " + ", ".join(t[len("tool "):] for t in tools))
    if not inputs and not tools:
        parts.append("no recorded input differs, so the build is not deterministic (same inputs, different bytes)")
    return "; ".join(parts)


def check(record: Record, recorded: Facts, rebuilt: Facts, revision: str) -> str:
    """The success line, or NotReproducible explaining what differs."""
    found = differences(recorded, rebuilt)
    artifact_differs = not _same(recorded.manifest_digest, rebuilt.manifest_digest) or not _same(recorded.pex_sha256, rebuilt.pex_sha256)
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


def check_rebuilt_provenance(checkout: Path, record: Record) -> str:
    """The rebuilt layout's provenance: about the rebuilt image, and the recorded statement's bytes.

    Same revision, same Pants (pinned in pants.toml) and same mlbuild (in the tree), so the
    statement, which carries no timestamps, rebuilds byte for byte like the image does.
    """
    recorded = record.get("provenance.digest")
    if recorded and record.get("provenance.subject") not in (None, record.get("image.manifest_digest")):
        raise VerificationError(
            f"package record {record.id[:12]}: its provenance is about {record.get('provenance.subject')}, "
            f"not its image {record.get('image.manifest_digest')}; the record is inconsistent."
        )
    summary_path = _summary_path(checkout / "dist", record.pipeline, search=True)
    build = collect.read_image_build(summary_path) if summary_path else None
    stored = provenance.stored_in_layout(build.layout, build.manifest_digest) if build and build.layout else None
    if stored is None:
        if recorded:
            raise NotReproducible(
                f"not reproducible: the rebuild stored no provenance, the record names {recorded}.",
                [Difference("provenance digest", recorded, None, "the rebuilt layout holds no statement")],
            )
        return "the rebuilt layout holds no provenance (built before mlbuild stored it there)"
    assert build is not None
    subject = provenance.verify_statement(provenance.from_layout(build.layout, build.manifest_digest) or {}, build.manifest_digest)
    rebuilt = stored.descriptor.digest
    if recorded and recorded != rebuilt:
        raise NotReproducible(
            f"not reproducible: the image rebuilt identically but its provenance did not (recorded {recorded}, "
            f"rebuilt {rebuilt}); the statement names the Pants and mlbuild versions and the config, so one of those differs.",
            [Difference("provenance digest", recorded, rebuilt, "tool versions or config in the statement")],
        )
    same = f", identical to the recorded {recorded[:19]}" if recorded else ""
    return f"its provenance's subject is {subject.get('name')} (sha256:{subject['digest']['sha256'][:12]}){same}"


# --- the whole thing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    repo: Optional[Path] = None
    keep: bool = False
    reuse_cache: bool = False
    workdir: Optional[Path] = None  # where the temporary checkout goes (default: $TMPDIR)


def pants_argv(pipeline: str, reuse_cache: bool = False, named_caches: Optional[Path] = None) -> List[str]:
    isolation = [] if reuse_cache else ["--no-local-cache", *([f"--named-caches-dir={named_caches}"] if named_caches else [])]
    return ["./pants", "--no-pantsd", *isolation, "package", pipeline]


def git_toplevel(runner: Runner, cwd: Optional[Path] = None) -> Path:
    try:
        return Path(runner(["git", "rev-parse", "--show-toplevel"], cwd, False).strip())
    except RebuildFailed as e:
        raise UserError(f"not in a git repository, and no --repo given ({e}).")


def verify(
    store: Store,
    query: str,
    options: Options = Options(),
    runner: Optional[Runner] = None,
    log: Callable[[str], None] = lambda msg: print(f"verify: {msg}", file=sys.stderr, flush=True),
) -> str:
    """Rebuild what `query` names from a clean checkout and compare; the success line, or raises."""
    runner = runner or run_command  # NB: looked up per call, so tests can patch the module's
    record = resolve_package(store, query, log)
    revision = check_rebuildable(record)
    repo = Path(options.repo).resolve() if options.repo else git_toplevel(runner)
    try:
        runner(["git", "-C", str(repo), "cat-file", "-e", f"{revision}^{{commit}}"], None, False)
    except RebuildFailed:
        raise CannotRebuild(f"cannot rebuild: revision {revision} is not in {repo}. Fix: fetch it, or pass --repo with a clone that has it.")
    log(f"package record {record.id[:12]}: {record.pipeline} at {revision}, image {record.get('image.manifest_digest')}")
    checkout = Path(tempfile.mkdtemp(prefix="mlbuild-verify-", dir=str(options.workdir) if options.workdir else None))
    try:
        runner(["git", "clone", "--no-hardlinks", "--quiet", str(repo), str(checkout)], None, False)
        runner(["git", "-C", str(checkout), "checkout", "--quiet", revision], None, False)
        # NB: fresh named caches too: the developer's pex_root (wheels, installed wheels,
        # venvs) is state a build could read (issue 18); a verdict must not depend on it.
        argv = pants_argv(record.pipeline, options.reuse_cache, checkout.parent / f"{checkout.name}-named-caches")
        shutil.rmtree(checkout.parent / f"{checkout.name}-named-caches", ignore_errors=True)
        log(f"rebuilding in {checkout}: {' '.join(argv)}")
        runner(argv, checkout, True)
        rebuilt = rebuilt_facts(checkout, record)
        dists = [repo / "dist"]
        for root in (store.root, *store.inboxes):
            if root.parts[-3:] == ("dist", *Path(DIST_LINEAGE_SUBDIR).parts):
                dists.append(root.parent.parent)
        dists = list(dict.fromkeys(dists))
        verified = check(record, recorded_facts(record, dists), rebuilt, revision)
        return f"{verified}; {check_rebuilt_provenance(checkout, record)}"
    finally:
        if options.keep:
            log(f"kept the checkout: {checkout}")
        else:
            shutil.rmtree(checkout, ignore_errors=True)
            shutil.rmtree(checkout.parent / f"{checkout.name}-named-caches", ignore_errors=True)
