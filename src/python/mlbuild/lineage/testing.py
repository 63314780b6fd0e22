"""Test helpers: fake hashes and a package -> run -> publish chain in a store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from mlbuild import names
from mlbuild.lineage.record import Record, make_record
from mlbuild.lineage.store import Store

PIPELINE = "src/python/pipelines/churn:train"


def h(seed: str) -> str:
    """A deterministic fake sha256 (bare hex)."""
    return hashlib.sha256(seed.encode()).hexdigest()


def d(seed: str) -> str:
    """A deterministic fake OCI digest."""
    return "sha256:" + h(seed)


MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
LABELS = {
    names.OCI_REVISION_LABEL: "a" * 40 + "-dirty",
    names.OCI_BASE_NAME_LABEL: "//3rdparty/images:python311",
    names.OCI_BASE_DIGEST_LABEL: d("base"),
    names.PIPELINE_ADDRESS_LABEL: PIPELINE,
    names.PEX_SHA256_LABEL: h("pex"),
    names.LOCKFILE_PATH_LABEL: "3rdparty/python/default.lock",
    names.LOCKFILE_SHA256_LABEL: h("lock"),
}


@dataclass(frozen=True)
class Chain:
    store: Store
    package: Record
    run: Record
    publish: Record

    @property
    def ids(self):
        return {self.package.id, self.run.id, self.publish.id}


def package(seed: str = "p", created: str = "2024-05-01T10:00:00Z", **fields: Any) -> Record:
    body: Dict[str, Any] = dict(
        source={"revision": hashlib.sha1(seed.encode()).hexdigest(), "dirty": False},
        lockfile={"path": "3rdparty/python/default.lock", "sha256": h(seed + "lock")},
        config={"path": "src/python/pipelines/churn/pipeline.yaml", "sha256": h(seed + "config")},
        pex={"path": "src.python.pipelines.churn/train.pex", "sha256": h(seed + "pex")},
        image={
            "ref": "train",
            "manifest_digest": d(seed + "manifest"),
            "config_digest": d(seed + "imgconfig"),
            "layers": [d("base-layer"), d(seed + "layer")],
            "diff_ids": [d("base-diff"), d(seed + "diff")],
            "base_digest": d("base"),
            "base_name": "//3rdparty/images:python311",
        },
    )
    body.update(fields)
    return make_record("package", PIPELINE, created, **body)


def run(
    pkg: Record,
    created: str = "2024-05-01T11:00:00Z",
    metrics: Optional[Dict[str, Any]] = None,
    status: str = "Completed",
    hyperparameters: Optional[Dict[str, Any]] = None,
    data_seed: str = "train-data",
    **fields: Any,
) -> Record:
    body: Dict[str, Any] = dict(
        source=pkg.get("source"),
        pex={"sha256": pkg.get("pex.sha256")},
        hyperparameters=hyperparameters if hyperparameters is not None else {"lr": 0.1, "epochs": 3},
        data=[{"name": "train", "uri": "file:///repo/data/train", "checksum": d(data_seed)}],
        model={"uri": "file:///runs/x/model/model.pkl", "sha256": h(created + "model")},
        metrics=metrics if metrics is not None else {"accuracy": 0.9, "loss": 0.3},
        job={"name": created.replace(":", "").replace("-", "") + "-local", "status": status},
    )
    body.update(fields)
    return make_record("run", PIPELINE, created, **body)


def publish(
    pkg: Record, parent: Optional[Record] = None, created: str = "2024-05-01T12:00:00Z", **fields: Any
) -> Record:
    body: Dict[str, Any] = dict(
        source=pkg.get("source"),
        image={
            "ref": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn@" + pkg.get("image.manifest_digest"),
            "manifest_digest": pkg.get("image.manifest_digest"),
        },
        job={
            "name": "churn-train-20240501-abc123",
            "arn": "arn:aws:sagemaker:eu-west-1:123456789012:training-job/churn-train-20240501-abc123",
            "region": "eu-west-1",
            "start": "2024-05-01T12:00:00Z",
            "end": "2024-05-01T12:30:00Z",
            "status": "Completed",
        },
        data=[{"name": "train", "uri": "s3://bucket/churn/train", "checksum": d("train-data")}],
        hyperparameters={"lr": 0.1, "epochs": 3},
        model={
            "uri": "s3://bucket/out/churn-train-20240501-abc123/output/model.tar.gz",
            "sha256": h("published-model"),
        },
        metrics={"accuracy": 0.92, "loss": 0.25},
        parents=[parent.id] if parent else [],
    )
    body.update(fields)
    return make_record("publish", PIPELINE, created, **body)


def chain(root: Path) -> Chain:
    """package -> run (linked only by the PEX sha256) -> publish (linked by parents and image digest)."""
    store = Store(root)
    pkg = package()
    r = run(pkg)
    pub = publish(pkg, r)
    for record in (pub, r, pkg):  # NB: insertion order must not matter.
        store.put(record)
    return Chain(Store(root), pkg, r, pub)


def write_image(out_dir: Path, labels: Dict[str, str], manifest: bytes = b'{"schemaVersion":2}') -> Path:
    """A minimal `<name>.image.json` plus the layout blobs that hold its manifest and labelled config."""
    blobs = out_dir / "train.oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    config = json.dumps({"config": {"Labels": labels}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest_hex = hashlib.sha256(manifest).hexdigest()
    (blobs / config_hex).write_bytes(config)
    (blobs / manifest_hex).write_bytes(manifest)
    summary = {
        "ref": "train",
        "manifest_digest": "sha256:" + manifest_hex,
        "manifest_size": len(manifest),
        "config_digest": "sha256:" + config_hex,
        "layers": [
            {"digest": d("base-layer"), "diff_id": d("base-diff")},
            {"digest": d("layer"), "diff_id": d("diff")},
        ],
        "layout": "train.oci",
        "archive": "train.oci.tar",
    }
    path = out_dir / "train.image.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True))
    return path
