"""SLSA v1.0 provenance for a pipeline image, as an in-toto Statement v1.

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": IMAGE REF, "digest": {"sha256": MANIFEST HEX}}],
     "predicateType": "https://slsa.dev/provenance/v1",
     "predicate": {"buildDefinition": {...}, "runDetails": {...}}}

Specs: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md and
https://slsa.dev/spec/v1.0/provenance. The statement is unsigned (no DSSE envelope).

`attach` stores it in the image's OCI layout as an OCI 1.1 referrer (oci/referrer.py),
and the registry push carries it along (registry/referrers.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from mlbuild.lineage import collect
from mlbuild.lineage.collect import ImageBuild
from mlbuild.lineage.digests import sha256_hex
from mlbuild.lineage.errors import MLBuildError, RecordError, UserError
from mlbuild.lineage.record import source_from_revision
from mlbuild.names import EXIT_NOT_VERIFIED
from mlbuild.oci import referrer
from mlbuild.oci.descriptor import Descriptor
from mlbuild.oci.layout import read_index
from mlbuild.oci.referrer import IN_TOTO_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# NB: a TypeURI only has to be unique and stable; it names the build's parameter schema
# (the externalParameters below), not a web page that must exist.
BUILD_TYPE = "https://mlbuild.dev/buildtypes/ml_pipeline/v1"
DEFAULT_BUILDER_ID = "https://mlbuild.dev/builders/pants-local/v1"


class VerificationError(MLBuildError):
    """A statement does not describe the artifact it was checked against."""

    exit_code = EXIT_NOT_VERIFIED


@dataclass(frozen=True)
class BuildContext:
    """What the image summary and labels don't know; the Pants glue passes it in."""

    subject_name: Optional[str] = None  # e.g. `<registry>/<repo>:<tag>`; default: the summary's ref
    config_path: Optional[str] = None
    config_sha256: Optional[str] = None
    source_uri: str = "git+file:."  # e.g. git+https://github.com/org/repo
    pants_version: str = "unknown"
    mlbuild_version: str = "unknown"
    builder_id: str = DEFAULT_BUILDER_ID
    invocation_id: Optional[str] = None
    started_on: Optional[str] = None
    finished_on: Optional[str] = None


def _descriptor(name: str, uri: Optional[str] = None, sha256: Optional[str] = None, **digest: str) -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": name}
    if uri:
        d["uri"] = uri
    digests = dict(digest)
    if sha256:
        digests["sha256"] = sha256_hex(sha256, name)
    if digests:
        d["digest"] = digests
    return d


def byproduct_sha256(statement: Mapping[str, Any], name: str) -> Optional[str]:
    """The sha256 a statement gives for its byproduct `name` (e.g. "pex"), if it names one."""
    run_details = (statement.get("predicate") or {}).get("runDetails") or {}
    for item in run_details.get("byproducts") or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            sha = (item.get("digest") or {}).get("sha256")
            return str(sha) if sha else None
    return None


def statement(build: ImageBuild, context: BuildContext = BuildContext()) -> Dict[str, Any]:
    pipeline = build.label(collect.PIPELINE_LABEL)
    if not pipeline:
        raise UserError(
            f"{build.summary_path}: no `{collect.PIPELINE_LABEL}` label; was the image built by `pants package`?"
        )
    external: Dict[str, Any] = {"pipeline": pipeline}
    if context.config_path or context.config_sha256:
        config: Dict[str, Any] = {"path": context.config_path} if context.config_path else {}
        if context.config_sha256:
            config["sha256"] = sha256_hex(context.config_sha256, "config sha256")
        external["config"] = config
    dependencies: List[Dict[str, Any]] = []
    revision = build.label(collect.REVISION_LABEL)
    source = source_from_revision(revision) if revision and revision != "unknown" else None
    if source:
        dep = _descriptor("source", f"{context.source_uri}@{source['revision']}", gitCommit=source["revision"])
        # NB: a dirty tree's commit is not what was built; say so rather than omit it.
        dep["annotations"] = {"dirty": source["dirty"]}
        dependencies.append(dep)
    else:
        dependencies.append(_descriptor("source", context.source_uri))
    if build.label(collect.LOCKFILE_LABEL):
        dependencies.append(
            _descriptor("lockfile", build.label(collect.LOCKFILE_PATH_LABEL), build.label(collect.LOCKFILE_LABEL))
        )
    if build.label(collect.BASE_DIGEST_LABEL):
        dependencies.append(
            _descriptor("base-image", build.label(collect.BASE_NAME_LABEL), build.label(collect.BASE_DIGEST_LABEL))
        )
    dependencies.append(_descriptor("pants", f"pkg:pypi/pantsbuild.pants@{context.pants_version}"))
    dependencies.append(_descriptor("mlbuild", f"pkg:generic/mlbuild@{context.mlbuild_version}"))
    byproducts = [_descriptor("image-config", sha256=build.config_digest)]
    if build.pex_sha256:
        byproducts.insert(0, _descriptor("pex", sha256=build.pex_sha256))
    metadata = {
        k: v
        for k, v in (
            ("invocationId", context.invocation_id),
            ("startedOn", context.started_on),
            ("finishedOn", context.finished_on),
        )
        if v
    }
    run_details: Dict[str, Any] = {
        "builder": {
            "id": context.builder_id,
            "version": {"pants": context.pants_version, "mlbuild": context.mlbuild_version},
        },
        "byproducts": byproducts,
    }
    if metadata:
        run_details["metadata"] = metadata
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": context.subject_name or build.ref,
                "digest": {"sha256": sha256_hex(build.manifest_digest, "manifest")},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": dependencies,
            },
            "runDetails": run_details,
        },
    }


def statement_bytes(stmt: Mapping[str, Any]) -> bytes:
    """The one serialisation: written beside the layout and stored in it, byte for byte."""
    return (json.dumps(stmt, indent=2, sort_keys=True) + "\n").encode()


def attach(build: ImageBuild, payload: bytes, layout_dir: Path) -> Descriptor:
    """Store `payload` (a statement's bytes) in `layout_dir` as a referrer of the build's image."""
    index = read_index(layout_dir)
    entry = next((m for m in index.get("manifests", []) if m.get("digest") == build.manifest_digest), None)
    if entry is None:
        raise UserError(f"{layout_dir}: no image {build.manifest_digest} in index.json; rebuild with `pants package`.")
    subject = Descriptor(str(entry["mediaType"]), build.manifest_digest, int(entry["size"]))
    annotations = {PREDICATE_TYPE_ANNOTATION: PREDICATE_TYPE}
    return referrer.attach(layout_dir, referrer.make_referrer(subject, IN_TOTO_MEDIA_TYPE, payload, annotations))


def stored_in_layout(layout_dir: Path, manifest_digest: str) -> Optional[referrer.Referrer]:
    """The provenance referrer a layout holds for that image, or None."""
    if not (Path(layout_dir) / "index.json").is_file():
        return None
    found = referrer.referrers(layout_dir, manifest_digest, IN_TOTO_MEDIA_TYPE)
    return found[0] if found else None  # NB: `attach` keeps one per image


def from_layout(layout_dir: Path, manifest_digest: str) -> Optional[Dict[str, Any]]:
    """The provenance statement stored in a layout for that image, or None."""
    stored = stored_in_layout(layout_dir, manifest_digest)
    try:
        return json.loads(stored.payload) if stored else None
    except ValueError as e:
        raise VerificationError(f"{layout_dir}: the stored provenance is not JSON ({e}).") from e


def manifest_digest_of(manifest_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


def verify_statement(statement: Mapping[str, Any], manifest_digest: str) -> Dict[str, Any]:
    """Check `statement` is SLSA provenance whose subject is the manifest `manifest_digest`.

    Returns the matching subject; raises VerificationError otherwise.
    """
    try:
        want = sha256_hex(manifest_digest, "digest")
    except RecordError as e:
        raise UserError(str(e)) from e
    if not isinstance(statement, Mapping) or statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError(f"not an in-toto Statement v1 (`_type` must be {STATEMENT_TYPE}).")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(f"predicateType is {statement.get('predicateType')!r}, expected {PREDICATE_TYPE}.")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("the statement has no subject.")
    for subject in subjects:
        if not isinstance(subject, Mapping) or not isinstance(subject.get("digest"), Mapping):
            continue
        digest = subject["digest"]
        if str(digest.get("sha256", "")).lower() == want:
            return dict(subject)
    have = (
        ", ".join(
            f"{s.get('name')}@sha256:{s['digest'].get('sha256')}"
            for s in subjects
            if isinstance(s, Mapping) and isinstance(s.get("digest"), Mapping)
        )
        or "nothing mlbuild can read"
    )
    raise VerificationError(f"no subject has digest sha256:{want}; the statement is about {have}.")
