"""Records from the artifacts mlbuild already writes: an image summary, a run dir, a report.

package  <- `<name>.image.json` + the image's labels (`org.mlbuild.*`, OCI base/revision)
run      <- a local run directory (input/config, input/data/<channel>, model/)
publish  <- `./pants mlbuild submit|wait ... --report-json` output
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from mlbuild.lineage.digests import file_sha256, model_checksum, tree_checksum
from mlbuild.lineage.errors import UserError
from mlbuild.lineage.record import Record, make_record, source_from_revision
from mlbuild.names import (  # NB: the labels package.py puts on every image
    HOSTS_RECORD,
    LOCKFILE_PATH_LABEL,
)
from mlbuild.names import (
    LOCKFILE_SHA256_LABEL as LOCKFILE_LABEL,
)
from mlbuild.names import (
    OCI_BASE_DIGEST_LABEL as BASE_DIGEST_LABEL,
)
from mlbuild.names import (
    OCI_BASE_NAME_LABEL as BASE_NAME_LABEL,
)
from mlbuild.names import (
    OCI_REVISION_LABEL as REVISION_LABEL,
)
from mlbuild.names import (
    PEX_SHA256_LABEL as PEX_LABEL,
)
from mlbuild.names import (
    PIPELINE_ADDRESS_LABEL as PIPELINE_LABEL,
)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found.") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: {what} is not readable JSON ({e}).") from e


@dataclass(frozen=True)
class ImageBuild:
    """What one `pants package` of an ml_pipeline made, from its summary and labels."""

    summary_path: Path
    ref: str
    manifest_digest: str
    config_digest: str
    layers: List[str]
    diff_ids: List[str]
    labels: Dict[str, str] = field(default_factory=dict)
    layout: Optional[Path] = None  # the OCI layout directory beside the summary
    pex: Optional[str] = None  # the sha256 of the PEX built beside the image, when the builder says

    def label(self, name: str) -> Optional[str]:
        return self.labels.get(name) or None

    @property
    def pex_sha256(self) -> Optional[str]:
        """The PEX built with this image: named by the build (`pants package` builds the two side
        by side, so the image's bytes never wait for the PEX), else by an older image's label."""
        return self.pex or self.label(PEX_LABEL)


def labels_from_layout(summary_path: Path, summary: Mapping[str, Any]) -> Dict[str, str]:
    """The image config's Labels, read from the OCI layout next to the summary."""
    config_hex = str(summary.get("config_digest", "")).split(":", 1)[-1]
    blob = Path(summary_path).parent / str(summary.get("layout", "")) / "blobs" / "sha256" / config_hex
    if not summary.get("layout") or not blob.is_file():
        return {}
    return dict((_read_json(blob, "image config").get("config") or {}).get("Labels") or {})


def read_image_build(summary_path: Path, labels: Optional[Mapping[str, str]] = None) -> ImageBuild:
    """`labels` default to the ones in the image config (from the layout beside the summary)."""
    summary = _read_json(summary_path, "image summary")
    for key in ("manifest_digest", "config_digest", "layers"):
        if key not in summary:
            raise UserError(f"{summary_path}: `{key}` missing; is this a `<name>.image.json` from `pants package`?")
    return ImageBuild(
        summary_path=Path(summary_path),
        ref=str(summary.get("ref") or Path(summary_path).name[: -len(".image.json")]),
        manifest_digest=summary["manifest_digest"],
        config_digest=summary["config_digest"],
        layers=[layer["digest"] for layer in summary["layers"]],
        diff_ids=[layer["diff_id"] for layer in summary["layers"] if "diff_id" in layer],
        labels=dict(labels) if labels is not None else labels_from_layout(Path(summary_path), summary),
        layout=Path(summary_path).parent / summary["layout"] if summary.get("layout") else None,
    )


def package_record(
    build: ImageBuild,
    pipeline: Optional[str] = None,
    config_path: Optional[str] = None,
    config_sha256: Optional[str] = None,
    pex_path: Optional[str] = None,
    created: Optional[str] = None,
    provenance: Optional[Mapping[str, str]] = None,
) -> Record:
    """`provenance`: {"digest": referrer manifest, "statement_sha256": ..., "subject": image}."""
    pipeline = pipeline or build.label(PIPELINE_LABEL)
    if not pipeline:
        raise UserError(f"{build.summary_path}: no `{PIPELINE_LABEL}` label; pass the pipeline address explicitly.")
    revision, lock_sha = build.label(REVISION_LABEL), build.label(LOCKFILE_LABEL)
    return make_record(
        "package",
        pipeline,
        created,
        source=source_from_revision(revision) if revision else None,
        lockfile={"path": build.label(LOCKFILE_PATH_LABEL), "sha256": lock_sha} if lock_sha else None,
        config={"path": config_path, "sha256": config_sha256} if config_sha256 else None,
        pex={"path": pex_path, "sha256": build.pex_sha256} if build.pex_sha256 else None,
        image={
            "ref": build.ref,
            "manifest_digest": build.manifest_digest,
            "config_digest": build.config_digest,
            "layers": build.layers,
            "diff_ids": build.diff_ids or None,
            "base_digest": build.label(BASE_DIGEST_LABEL),
            "base_name": build.label(BASE_NAME_LABEL),
        },
        provenance=dict(provenance) if provenance else None,
    )


def run_record(
    run_dir: Path,
    pipeline: str,
    parents: Sequence[str] = (),
    pex_sha256: Optional[str] = None,
    image_digest: Optional[str] = None,
    created: Optional[str] = None,
    code: Optional[Mapping[str, str]] = None,
    source: Optional[Mapping[str, Any]] = None,
) -> Record:
    """A record of a local run directory (`dist/mlbuild/runs/.../<run id>[.failed]`).

    `source`: the git revision it ran from (lineage.source.current_source).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "input" / "config").is_dir():
        raise UserError(
            f"{run_dir}: not a run directory (no input/config/). Fix: pass `dist/mlbuild/runs/.../<run id>`."
        )
    hp_file = run_dir / "input" / "config" / "hyperparameters.json"
    data_dir = run_dir / "input" / "data"
    channels = sorted(p for p in data_dir.iterdir()) if data_dir.is_dir() else []
    model_dir, metrics_file = run_dir / "model", run_dir / "model" / "metrics.json"
    failed = run_dir.name.endswith(".failed") or (run_dir / "output" / "failure").exists()
    return make_record(
        "run",
        pipeline,
        created,
        source=dict(source) if source else None,
        hyperparameters=_read_json(hp_file, "hyperparameters") if hp_file.exists() else None,
        data=[{"name": p.name, "uri": p.resolve().as_uri(), "checksum": tree_checksum(p)} for p in channels] or None,
        model=_model(model_dir),
        metrics=_read_json(metrics_file, "metrics") if metrics_file.is_file() else None,
        pex={"sha256": pex_sha256} if pex_sha256 else None,
        code=dict(code) if code else None,
        image={"manifest_digest": image_digest} if image_digest else None,
        job={
            "name": run_dir.name[: -len(".failed")] if run_dir.name.endswith(".failed") else run_dir.name,
            "status": "Failed" if failed else "Completed",
        },
        parents=list(parents) or None,
        extra={"run_dir": str(run_dir.resolve()), **_hosts(run_dir)},
    )


def _hosts(run_dir: Path) -> Dict[str, Any]:
    """A multi-host run's `instance_count` and each host's data shards, as the runner recorded them."""
    path = run_dir / HOSTS_RECORD
    if not path.is_file():
        return {}
    hosts = _read_json(path, "hosts record")
    return {"instance_count": hosts.get("instance_count"), "hosts": hosts.get("hosts")}


def _model(model_dir: Path) -> Optional[Dict[str, str]]:
    """model.pkl's uri and sha256 (what `save` writes by default) and the checksum of every
    file the run saved, which a publish's model.tar.gz of the same files matches."""
    model_file = model_dir / "model.pkl"
    saved = model_dir.is_dir() and any(p.name != "metrics.json" for p in model_dir.iterdir())
    if not model_file.is_file() and not saved:
        return None
    model = {
        "uri": (model_file if model_file.is_file() else model_dir).resolve().as_uri(),
        "checksum": model_checksum(model_dir),
    }
    if model_file.is_file():
        model["sha256"] = file_sha256(model_file)
    return model


def publish_record(
    report: Mapping[str, Any],
    parents: Sequence[str] = (),
    created: Optional[str] = None,
    image_digest: Optional[str] = None,
    **fields: Any,
) -> Record:
    """A record from a SageMaker job's `JobReport.to_dict()` (report.json); `fields` add what the
    report lacks (data, hyperparameters).

    `image_digest` is the manifest digest the publisher pushed; without it (a report read
    from a file) it is the one pinned in the report's `image_uri`.
    """
    if not report.get("pipeline_address"):
        raise UserError("report: `pipeline_address` is empty; submit with --pipeline-address.")
    image_uri = str(report.get("image_uri") or "")
    digest = image_digest or (image_uri.rsplit("@", 1)[1] if "@" in image_uri else None)
    status = report.get("status")
    git_sha = str(report.get("git_sha") or "")
    return make_record(
        "publish",
        report["pipeline_address"],
        created,
        source=source_from_revision(git_sha) if git_sha else None,
        pex={"sha256": report["pex_sha256"]} if report.get("pex_sha256") else None,
        image={"ref": image_uri, "manifest_digest": digest} if digest else None,
        job={
            "name": report.get("job_name"),
            "arn": report.get("job_arn") or None,
            "region": report.get("region") or None,
            "status": status if status and status != "Unknown" else None,
        },
        model=_report_model(report.get("model")),
        metrics=report.get("metrics") or None,
        parents=list(parents) or None,
        **fields,
    )


def _report_model(model: Any) -> Optional[dict]:
    """report.json's `model` ({"uri", "sha256"}) as a record's, without the keys it does not know yet."""
    if not isinstance(model, Mapping) or not model.get("uri"):
        return None
    return {"uri": model["uri"], "sha256": model.get("sha256")}
