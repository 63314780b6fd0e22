from __future__ import annotations

import hashlib
import json
import os

import pytest

from mlbuild.lineage import digests
from mlbuild.lineage.errors import RecordError
from mlbuild.lineage.record import Record, canonical_json, make_record, source_from_revision
from mlbuild.lineage.testing import PIPELINE, d, h, package


def test_same_facts_same_id() -> None:
    a = package()
    b = package()
    assert a.id == b.id == hashlib.sha256(a.canonical).hexdigest()
    assert a.canonical == canonical_json(json.loads(a.canonical))
    assert b"\n" not in a.canonical and b": " not in a.canonical


@pytest.mark.parametrize(
    "variant",
    [
        # key order, digest spelling, time zone, typed vs encoded hyperparameters, empty fields
        lambda body: dict(reversed(list(body.items()))),
        lambda body: {**body, "pex": {"sha256": "sha256:" + body["pex"]["sha256"].upper()}},
        lambda body: {**body, "created": "2024-05-01T12:00:00+02:00"},
        lambda body: {**body, "hyperparameters": {"epochs": "3", "lr": "0.1"}},
        lambda body: {**body, "metrics": {}, "parents": []},
    ],
)
def test_normalisation_keeps_the_id(variant) -> None:
    body = {
        "kind": "run",
        "pipeline": PIPELINE,
        "created": "2024-05-01T10:00:00Z",
        "pex": {"sha256": h("pex")},
        "hyperparameters": {"lr": 0.1, "epochs": 3},
    }
    assert Record(variant(body)).id == Record(body).id


def test_a_changed_fact_changes_the_id() -> None:
    assert package().id != package(created="2024-05-01T10:00:01Z").id
    assert package().id != package(seed="other").id


@pytest.mark.parametrize(
    "body, message",
    [
        ({"pipeline": PIPELINE, "created": "2024-05-01T10:00:00Z"}, "`kind` is required"),
        ({"kind": "train", "pipeline": PIPELINE, "created": "2024-05-01T10:00:00Z"}, "record.kind"),
        ({"kind": "run", "pipeline": PIPELINE, "created": "yesterday"}, "record.created"),
        ({"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01", "pex": {"sha256": "abc"}}, "record.pex.sha256"),
        (
            {"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01", "pex": {"sha": h("x")}},
            "unknown field(s) sha",
        ),
        ({"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01", "colour": "red"}, "unknown field(s) colour"),
        (
            {"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01", "job": {"status": "Done"}},
            "record.job.status",
        ),
        ({"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01", "metrics": {"a": "x"}}, "record.metrics.a"),
        (
            {"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01", "data": [{"name": "a"}, {"name": "a"}]},
            "unique `name`",
        ),
        ({"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01", "schema": 2}, "record.schema"),
    ],
)
def test_bad_bodies_name_the_field(body, message) -> None:
    with pytest.raises(RecordError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Record(body)


def test_nan_metric_is_kept_as_text() -> None:
    record = make_record("run", PIPELINE, "2024-05-01", metrics={"loss": float("nan"), "acc": 1})
    assert record.metrics == {"loss": "nan", "acc": 1}


def test_accessors() -> None:
    record = make_record(
        "run",
        PIPELINE,
        "2024-05-01",
        job={"status": "Completed"},
        data=[{"name": "b", "checksum": d("b")}, {"name": "a", "checksum": d("a")}],
    )
    assert record.succeeded
    assert record.get("job.status") == "Completed" and record.get("job.nope") is None
    assert list(record.data_checksums) == ["a", "b"]
    assert record.created == "2024-05-01T00:00:00Z"
    body = record.body
    body["kind"] = "publish"
    assert record.kind == "run"  # NB: the body handed out is a copy


@pytest.mark.parametrize(
    "label, expected",
    [("abc123", {"revision": "abc123", "dirty": False}), ("abc123-dirty", {"revision": "abc123", "dirty": True})],
)
def test_source_from_revision(label, expected) -> None:
    assert source_from_revision(label) == expected


def _tree(root, files, order):
    root.mkdir()
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    os.symlink("a.csv", root / "link")


def test_tree_checksum_is_order_independent_and_sees_every_byte(tmp_path) -> None:
    files = {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n", "sub/deeper/c": b""}
    _tree(tmp_path / "one", files, sorted(files))
    _tree(tmp_path / "two", files, sorted(files, reverse=True))
    one = digests.tree_checksum(tmp_path / "one")
    assert one == digests.tree_checksum(tmp_path / "two")
    assert one.startswith("sha256:") and len(one) == 71
    # the channel symlink a run dir holds is followed at the root
    os.symlink(tmp_path / "one", tmp_path / "channel")
    assert digests.tree_checksum(tmp_path / "channel") == one
    (tmp_path / "two" / "sub" / "b.csv").write_bytes(b"3,5\n")
    assert digests.tree_checksum(tmp_path / "two") != one


def test_tree_checksum_records_symlinks_by_target(tmp_path) -> None:
    files = {"a.csv": b"x", "b.csv": b"x"}
    _tree(tmp_path / "one", files, sorted(files))
    before = digests.tree_checksum(tmp_path / "one")
    os.unlink(tmp_path / "one" / "link")
    os.symlink("b.csv", tmp_path / "one" / "link")  # same bytes behind it, different target
    assert digests.tree_checksum(tmp_path / "one") != before


def test_file_sha256(tmp_path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    assert digests.file_sha256(tmp_path / "f") == hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(RecordError, match="no such file"):
        digests.tree_checksum(tmp_path / "missing")
