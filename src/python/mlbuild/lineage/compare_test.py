from __future__ import annotations

import tarfile

import pytest

from mlbuild.lineage import compare
from mlbuild.lineage.store import Store
from mlbuild.lineage.testing import chain, d, package, run


def _runs(tmp_path):
    store = Store(tmp_path)
    pkg = package()
    records = [
        run(pkg, "2024-05-03T00:00:00Z", {"accuracy": 0.93, "loss": 0.2}),
        run(pkg, "2024-05-01T00:00:00Z", {"accuracy": 0.90, "loss": 0.3}),
        run(pkg, "2024-05-02T00:00:00Z", {"accuracy": 0.5}, status="Failed"),
        run(
            pkg,
            "2024-05-04T00:00:00Z",
            {"accuracy": 0.95, "f1": 0.7},
            hyperparameters={"lr": 0.05, "epochs": 3},
            data_seed="new",
        ),
    ]
    for r in [pkg, *records]:
        store.put(r)
    return store, sorted(records, key=lambda r: r.created)


def test_runs_are_sorted_by_time_with_metrics_side_by_side(tmp_path) -> None:
    store, records = _runs(tmp_path)
    listed = compare.runs(store, records[0].pipeline)
    assert listed == records
    lines = compare.runs_table(listed).splitlines()
    # The hyperparameters that differ between the runs tell runs with equal metrics apart.
    assert lines[0].split() == [
        "created",
        "record",
        "kind",
        "status",
        "revision",
        "accuracy",
        "f1",
        "loss",
        "hyperparameters",
    ]
    assert [line.split()[0] for line in lines[1:]] == [r.created for r in records]
    assert lines[1].split()[-4:] == ["0.9", "-", "0.3", "lr=0.1"]
    assert lines[4].split()[-1] == "lr=0.05"
    assert lines[2].split()[3] == "Failed"
    assert lines[0].index(" loss") + len(" loss") == lines[1].index(" 0.3") + len(" 0.3")  # columns line up
    assert lines[0].index("hyperparameters") == lines[1].index("lr=0.1")
    assert compare.runs_json(listed)[3]["metrics"] == {"accuracy": 0.95, "f1": 0.7}


def test_diff_reports_changes_and_metric_deltas(tmp_path) -> None:
    store, records = _runs(tmp_path)
    result = compare.diff(records[2], records[3])
    metrics = {m["name"]: m for m in result["metrics"]}
    assert metrics["accuracy"]["delta"] == pytest.approx(0.02)
    assert metrics["loss"] == {"name": "loss", "a": 0.2, "b": None, "delta": None}
    assert metrics["f1"] == {"name": "f1", "a": None, "b": 0.7, "delta": None}
    assert result["data"] == [{"channel": "train", "a": d("train-data"), "b": d("new"), "changed": True}]
    assert {h["name"]: h["changed"] for h in result["hyperparameters"]} == {"epochs": False, "lr": True}
    fields = {f["field"]: f["changed"] for f in result["fields"]}
    assert fields["pex.sha256"] is False and fields["model.sha256"] is True
    text = compare.format_diff(result)
    assert "(+0.02)" in text and "* lr" in text and "0.1 -> 0.05" in text


def test_diff_of_package_and_publish_sees_code_and_lockfile(tmp_path) -> None:
    a, b = package(), package(seed="q")
    fields = {f["field"]: f for f in compare.diff(a, b)["fields"]}
    assert fields["source.revision"]["changed"] and fields["lockfile.sha256"]["changed"]
    assert not fields["image.base_digest"]["changed"]


def test_previous_run(tmp_path) -> None:
    store, records = _runs(tmp_path)
    pipeline = records[0].pipeline
    # the run before the 4th is the 3rd, not the failed 2nd
    assert compare.previous_run(store, pipeline, before=records[3]) == records[2]
    assert compare.previous_run(store, pipeline, before=records[2]) == records[0]
    assert compare.previous_run(store, pipeline, before=records[0]) is None
    assert compare.previous_run(store, pipeline) == records[3]
    assert compare.previous_metrics(store, pipeline, before=records[2]) == {"accuracy": 0.9, "loss": 0.3}
    assert compare.previous_run(store, "other:pipeline") is None


def test_previous_run_counts_sagemaker_jobs(tmp_path) -> None:
    c = chain(tmp_path)
    later = run(c.package, "2024-05-02T00:00:00Z")
    c.store.put(later)
    assert compare.previous_run(c.store, later.pipeline, before=later) == c.publish


def test_data_pinned_by_s3_listing_and_by_bytes_is_not_compared(tmp_path) -> None:
    pkg = package()
    local = run(pkg, "2024-05-01T00:00:00Z")
    cloud = run(
        pkg,
        "2024-05-02T00:00:00Z",
        data=[{"name": "train", "uri": "s3://b/train/", "checksum": d("listing"), "pin": "s3-listing"}],
    )
    (row,) = compare.diff(local, cloud)["data"]
    assert row["changed"] and row["comparable"] is False
    assert "not comparable" in compare.format_diff(compare.diff(local, cloud))
    again = run(
        pkg,
        "2024-05-03T00:00:00Z",
        data=[{"name": "train", "uri": "s3://b/train/", "checksum": d("listing"), "pin": "s3-listing"}],
    )
    (same,) = compare.diff(cloud, again)["data"]
    assert same["changed"] is False and "comparable" not in same


def test_runs_table_shows_the_revision_and_every_pipeline_when_none_is_named(tmp_path) -> None:
    store, records = _runs(tmp_path)
    other = run(package(seed="other"), "2024-05-05T00:00:00Z", {"accuracy": 0.1})
    other = other.__class__(
        {**other.body, "pipeline": "src/python/pipelines/cancer:train", "source": {"revision": "c" * 40, "dirty": True}}
    )
    store.put(other)
    everything = compare.runs(store, None)
    assert len(everything) == len(records) + 1
    lines = compare.runs_table(everything).splitlines()
    assert lines[0].split()[:2] == ["pipeline", "created"]
    assert lines[-1].split()[:1] == ["src/python/pipelines/cancer:train"] and "c" * 12 + "*" in lines[-1]


def test_a_run_and_a_publish_of_the_same_model_files_do_not_differ_in_model(tmp_path) -> None:
    from mlbuild.lineage.collect import run_record
    from mlbuild.lineage.digests import file_sha256, model_checksum
    from mlbuild.lineage.record import make_record

    run_dir = tmp_path / "runs" / "20240501T100000Z-abcd1234"
    (run_dir / "input" / "config").mkdir(parents=True)
    (run_dir / "model").mkdir()
    (run_dir / "model" / "model.pkl").write_bytes(b"weights")
    (run_dir / "model" / "metrics.json").write_text('{"auc": 0.8}')
    host = run_record(run_dir, "p:train")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # as SageMaker archives /opt/ml/model: `./` names, folders listed
        tar.add(run_dir / "model", arcname=".")
    archive_sha = file_sha256(archive)
    published = make_record(
        "publish",
        "p:train",
        model={"uri": archive.as_uri(), "sha256": archive_sha, "checksum": model_checksum(archive)},
    )
    assert host.get("model.sha256") == file_sha256(run_dir / "model" / "model.pkl") != published.get("model.sha256")
    fields = {f["field"]: f for f in compare.diff(host, published)["fields"]}
    assert fields["model.checksum"]["changed"] is False and "model.sha256" not in fields
    (run_dir / "model" / "model.pkl").write_bytes(b"other weights")
    fields = {f["field"]: f for f in compare.diff(run_record(run_dir, "p:train"), published)["fields"]}
    assert fields["model.checksum"]["changed"] is True
