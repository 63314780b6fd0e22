"""A fresh clone finds an image's lineage in its registry: labels + the provenance pushed with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from mlbuild.commands.cli import main
from mlbuild.lineage import build_cli
from mlbuild.lineage.store import Store
from mlbuild.lineage.testing import LABELS, h
from mlbuild.names import EXIT_NOT_VERIFIED, PEX_SHA256_LABEL
from mlbuild.oci.archive import write_oci_archive
from mlbuild.oci.image import Image, set_config
from mlbuild.oci.layout import write_layout
from mlbuild.registry import push_layout
from mlbuild.registry.local_server import serve_registry
from mlbuild.tools_required import require_tool

pytestmark = require_tool("docker-registry", "docker-registry")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running.host


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _package(tmp_path: Path, capsys) -> tuple[Path, str, str]:
    """A labelled image, its provenance attached the way `pants package` does; (summary, digest, record id).

    As `pants package` builds it: the PEX beside the image, named to the provenance step, not in a label.
    """
    labels = {k: v for k, v in LABELS.items() if k != PEX_SHA256_LABEL}
    image = set_config(Image(), entrypoint=["train"], labels=labels)
    dist = tmp_path / "dist"
    entry = write_layout(image, dist / "train.oci", "train")
    write_oci_archive(dist / "train.oci", dist / "train.oci.tar")
    summary = {
        "ref": "train",
        "layout": "train.oci",
        "archive": "train.oci.tar",
        "manifest_digest": entry.digest,
        "config_digest": image.config_descriptor().digest,
        "layers": [],
    }
    (dist / "train.image.json").write_text(json.dumps(summary))
    (tmp_path / "pipeline.yaml").write_text("name: churn\n")
    code = build_cli.main(
        [
            str(a)
            for a in (
                "--lineage-dir",
                tmp_path / "store",
                "provenance",
                "--image-json",
                dist / "train.image.json",
                "--output",
                dist / "train.provenance.json",
                "--config",
                tmp_path / "pipeline.yaml",
                "--record",
                "--attach",
                "--pex-sha256",
                h("pex"),
            )
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return dist / "train.image.json", entry.digest, out.strip()


def test_attached_provenance_is_in_the_layout_and_the_record(tmp_path: Path, capsys) -> None:
    summary, digest, record_id = _package(tmp_path, capsys)
    record = Store(tmp_path / "store").get(record_id)
    assert record.get("provenance.subject") == digest
    statement = (summary.parent / "train.provenance.json").read_bytes()
    blob = summary.parent / "train.oci" / "blobs" / "sha256" / record.get("provenance.statement_sha256")
    assert blob.read_bytes() == statement  # the same bytes beside the layout and inside it
    code, out, _ = _run(capsys, "verify-provenance", "--image-json", summary)
    assert code == 0 and digest.split(":")[1] in out
    # Inspecting the statement's own hash leads to the package record.
    code, out, _ = _run(
        capsys, "inspect", "--lineage-dir", tmp_path / "store", record.get("provenance.digest"), "--json"
    )
    assert code == 0 and json.loads(out)["focus"] == [record_id]


def test_a_fresh_clone_inspects_a_pushed_image_by_reference(registry: str, tmp_path: Path, capsys) -> None:
    summary, digest, record_id = _package(tmp_path, capsys)
    pushed = push_layout(summary.parent / "train.oci", "train", f"{registry}/ml/churn", progress=None, env={})
    assert pushed.digest == digest and len(pushed.referrers) == 1
    local = Store(tmp_path / "store").get(record_id)

    fresh = tmp_path / "fresh-clone-store"
    code, out, err = _run(capsys, "inspect", "--lineage-dir", fresh, pushed.image_uri, "--json")
    assert code == 0, err
    assert "fetched 1 record(s)" in err
    lineage = json.loads(out)
    (fetched,) = lineage["records"].values()
    assert fetched["kind"] == "package" and fetched["image"]["manifest_digest"] == digest
    # The PEX comes from the statement pushed with the image (the image has no PEX label).
    assert fetched["pex"]["sha256"] == local.get("pex.sha256") == h("pex")
    for field in ("lockfile", "source", "config", "provenance"):
        assert fetched[field] == local.body[field], field
    # Twice, or from another machine: the same record id (created comes from the image).
    assert (
        _run(capsys, "fetch", "--lineage-dir", tmp_path / "other", pushed.image_uri)[1].split()[0]
        == lineage["focus"][0]
    )
    # The provenance in the registry names the pushed digest; another digest fails.
    code, out, _ = _run(capsys, "verify-provenance", "--image", pushed.image_uri)
    assert code == 0 and out.count(f"{digest} (unsigned statement)") == 1
    # The statement pushed with this image is not about another image in the same repository.
    other = push_layout(_other_image(tmp_path), "train", f"{registry}/ml/churn", progress=None, env={})
    code, _, err = _run(capsys, "verify-provenance", "--image", other.image_uri)
    assert code == EXIT_NOT_VERIFIED and "holds no provenance" in err
    stmt = summary.parent / "train.provenance.json"
    code, _, err = _run(capsys, "verify-provenance", stmt, "--image", other.image_uri)
    assert code == EXIT_NOT_VERIFIED and "no subject has digest" in err


def _other_image(tmp_path: Path) -> Path:
    write_layout(set_config(Image(), entrypoint=["other"], labels=LABELS), tmp_path / "other.oci", "train")
    return tmp_path / "other.oci"


def test_an_unknown_image_is_a_clear_error(registry: str, tmp_path: Path, capsys) -> None:
    code, _, err = _run(capsys, "inspect", "--lineage-dir", tmp_path, f"{registry}/ml/none@sha256:{'1' * 64}")
    assert code == 2 and "no lineage record mentions" in err and "Looking beside the artifact failed too" in err
