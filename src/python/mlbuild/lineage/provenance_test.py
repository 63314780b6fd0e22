from __future__ import annotations

import hashlib

import pytest

from mlbuild.lineage import collect, provenance
from mlbuild.lineage.provenance import BuildContext, VerificationError
from mlbuild.lineage.testing import LABELS, MANIFEST, PIPELINE, d, h, write_image
from mlbuild.names import EXIT_NOT_VERIFIED

CONTEXT = BuildContext(
    subject_name="123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn:abc",
    config_path="src/python/pipelines/churn/pipeline.yaml",
    config_sha256=h("config"),
    source_uri="git+https://github.com/example/repo",
    pants_version="2.17.1",
    mlbuild_version="0.1.0",
)


def _statement(tmp_path):
    build = collect.read_image_build(write_image(tmp_path, LABELS, MANIFEST))
    return provenance.statement(build, CONTEXT)


def test_statement_shape(tmp_path) -> None:
    stmt = _statement(tmp_path)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == "https://slsa.dev/provenance/v1"
    assert stmt["subject"] == [
        {"name": CONTEXT.subject_name, "digest": {"sha256": hashlib.sha256(MANIFEST).hexdigest()}}
    ]
    build = stmt["predicate"]["buildDefinition"]
    assert build["buildType"] == provenance.BUILD_TYPE
    assert build["externalParameters"] == {
        "pipeline": PIPELINE,
        "config": {"path": CONTEXT.config_path, "sha256": h("config")},
    }
    deps = {dep["name"]: dep for dep in build["resolvedDependencies"]}
    assert deps["source"] == {
        "name": "source",
        "uri": "git+https://github.com/example/repo@" + "a" * 40,
        "digest": {"gitCommit": "a" * 40},
        "annotations": {"dirty": True},
    }
    assert deps["lockfile"]["digest"] == {"sha256": h("lock")}
    assert deps["base-image"] == {
        "name": "base-image",
        "uri": "//3rdparty/images:python311",
        "digest": {"sha256": h("base")},
    }
    assert deps["pants"]["uri"] == "pkg:pypi/pantsbuild.pants@2.17.1"
    assert deps["mlbuild"]["uri"] == "pkg:generic/mlbuild@0.1.0"
    assert stmt["predicate"]["runDetails"]["builder"]["id"] == provenance.DEFAULT_BUILDER_ID
    assert stmt["predicate"]["runDetails"]["byproducts"][0] == {"name": "pex", "digest": {"sha256": h("pex")}}


def test_labels_come_from_the_layout_unless_given(tmp_path) -> None:
    path = write_image(tmp_path, LABELS, MANIFEST)
    assert collect.read_image_build(path).labels == LABELS
    assert collect.read_image_build(path, {"x": "y"}).labels == {"x": "y"}


@pytest.mark.parametrize("spelling", [lambda hx: "sha256:" + hx, lambda hx: hx, lambda hx: hx.upper()])
def test_verify_accepts_the_manifest(tmp_path, spelling) -> None:
    stmt = _statement(tmp_path)
    subject = provenance.verify_statement(stmt, spelling(hashlib.sha256(MANIFEST).hexdigest()))
    assert subject["name"] == CONTEXT.subject_name


def test_a_changed_byte_fails_verification(tmp_path) -> None:
    stmt = _statement(tmp_path)
    changed = bytearray(MANIFEST)
    changed[5] ^= 1
    assert provenance.manifest_digest_of(MANIFEST) != provenance.manifest_digest_of(bytes(changed))
    with pytest.raises(VerificationError, match="no subject has digest") as e:
        provenance.verify_statement(stmt, provenance.manifest_digest_of(bytes(changed)))
    assert e.value.exit_code == EXIT_NOT_VERIFIED


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "Statement v1"),
        (lambda s: s.update(predicateType="https://slsa.dev/provenance/v0.2"), "predicateType"),
        (lambda s: s.update(subject=[]), "no subject"),
    ],
)
def test_not_slsa_v1_fails(tmp_path, mutate, message) -> None:
    stmt = _statement(tmp_path)
    mutate(stmt)
    with pytest.raises(VerificationError, match=message):
        provenance.verify_statement(stmt, provenance.manifest_digest_of(MANIFEST))


def test_package_record_from_the_same_build(tmp_path) -> None:
    build = collect.read_image_build(write_image(tmp_path, LABELS, MANIFEST))
    record = collect.package_record(build, config_sha256=h("config"), created="2024-05-01")
    assert record.get("source") == {"revision": "a" * 40, "dirty": True}
    assert record.get("image.manifest_digest") == provenance.manifest_digest_of(MANIFEST)
    assert record.get("image.layers") == [d("base-layer"), d("layer")]
    assert record.get("pex.sha256") == h("pex") and record.pipeline == PIPELINE
