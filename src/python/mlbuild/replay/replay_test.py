from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from mlbuild.lineage.record import make_record
from mlbuild.lineage.store import Store
from mlbuild.replay import verdict as v
from mlbuild.replay.job import resolve
from mlbuild.replay.replay import REPLAYS_DIR, replay, sagemaker_metrics
from mlbuild.replay.testing import ADDRESS, JOB, MODEL, FakeRun, local_job
from mlbuild.runtime.errors import UserError


def finished_job(tmp_path: Path, **kwargs):
    body = local_job(tmp_path, **kwargs)
    store = Store(tmp_path / "lineage")
    parent = store.put(
        make_record(
            "publish",
            ADDRESS,
            body["end"],
            job={"name": JOB, "status": body["status"]},
            image={"manifest_digest": body["image_digest"]},
        )
    )
    return resolve(JOB, tmp_path / "local" / "jobs", store), store, parent


def go(tmp_path: Path, job, store, run, **kwargs):
    return replay(
        job,
        local_root=tmp_path / "local",
        cache_dir=tmp_path / "cache",
        store=store,
        run=run,
        stream=io.StringIO(),
        **kwargs,
    )


def test_identical_replay_runs_the_jobs_image_config_hyperparameters_and_data(tmp_path: Path) -> None:
    job, store, parent = finished_job(tmp_path)
    run = FakeRun()
    result = go(tmp_path, job, store, run)
    assert result.verdict.outcome == v.IDENTICAL and result.verdict.exit_code == 0
    assert any("byte-identical" in n for n in result.verdict.notes)
    plan = run.calls[0]
    assert (plan.ref, plan.address, dict(plan.overrides)) == ("tiny:t1", ADDRESS, {"scale": "2.0"})
    # NB: the config is the image's, parsed in memory: not the repo's, and not written to disk to be read back
    assert plan.config.source.endswith(":/opt/mlbuild/app/pipelines/tiny/pipeline.yaml") and [
        c.name for c in plan.config.channels
    ] == ["train"]
    assert not list((tmp_path / "local").rglob("pipeline.yaml"))
    assert (Path(plan.data_dir) / "train").resolve() == (tmp_path / "data" / "train").resolve()
    record = store.get(result.record_id)
    assert record.kind == "run" and record.get("parents") == [parent]
    assert record.get("extra.replay") == {"of": JOB, "of_record": parent, "verdict": v.IDENTICAL}
    assert set(result.seconds) == {"image", "data", "run", "compare"}


def test_model_and_metric_differences(tmp_path: Path) -> None:
    job, store, _ = finished_job(tmp_path)
    result = go(tmp_path, job, store, FakeRun(model={**MODEL, "model.txt": "weights 1 2 4\n"}))
    assert result.verdict.outcome == v.MODEL_DIFFERS and [f["file"] for f in result.verdict.model_files] == [
        "model.txt"
    ]
    result = go(tmp_path, job, store, FakeRun(metrics={"score": 0.6}))
    assert result.verdict.outcome == v.METRICS_DIFFER
    assert result.verdict.metrics == [{"metric": "score", "job": 0.5, "replay": 0.6}]


def test_a_failed_job_replayed(tmp_path: Path) -> None:
    job, store, _ = finished_job(tmp_path, status="Failed", failure="DataError: bad row 3\nTraceback...")
    same = go(tmp_path, job, store, FakeRun(failure="DataError: bad row 3\nTraceback (other)"), expect_failure=True)
    assert (same.verdict.outcome, same.verdict.exit_code) == (v.SAME_FAILURE, 0)
    other = go(tmp_path, job, store, FakeRun(failure="KeyError: x"), expect_failure=True)
    assert (other.verdict.outcome, other.verdict.exit_code) == (v.FAILURE_DIFFERS, 1)


def test_changed_data_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    job, store, _ = finished_job(tmp_path)
    (tmp_path / "data" / "train" / "a.csv").write_text("changed\n")
    run = FakeRun()
    with pytest.raises(UserError, match="the data changed since the job ran: train"):
        go(tmp_path, job, store, run)
    assert not run.calls and not (tmp_path / "local" / REPLAYS_DIR).exists() and len(store.records()) == 1


def test_sample_data_replay_says_the_data_differ(tmp_path: Path) -> None:
    job, store, _ = finished_job(tmp_path)
    (tmp_path / "other" / "train").mkdir(parents=True)
    (tmp_path / "other" / "train" / "b.csv").write_text("9\n")
    result = go(tmp_path, job, store, FakeRun(), sample_data=tmp_path / "other")
    assert any("not the job's data (channels differ: train)" in n for n in result.verdict.notes)


def test_a_gone_model_and_a_wrong_expect_failure(tmp_path: Path) -> None:
    job, store, _ = finished_job(tmp_path)
    with pytest.raises(UserError, match="--expect-failure is for replaying a failed job"):
        go(tmp_path, job, store, FakeRun(), expect_failure=True)
    Path(job.model).unlink()
    with pytest.raises(UserError, match="its model .* is gone"):
        go(tmp_path, job, store, FakeRun())


def test_what_the_replay_cannot_reproduce_is_said_with_the_verdict(tmp_path: Path) -> None:
    job, store, _ = finished_job(tmp_path)
    plain = go(tmp_path, job, store, FakeRun())
    assert not any("instances" in n or "checkpoints" in n or "environment" in n for n in plain.verdict.notes)
    shaped = replace(
        job,
        instance_count=2,
        instance_type="ml.m5.large",
        checkpoint_uri="s3://b/ckpt/",
        environment={"B": "2", "A": "1"},
    )
    run = FakeRun()
    notes = go(tmp_path, shaped, store, run).verdict.notes
    assert run.calls[-1].instance_count == 2  # replayed on as many local hosts
    assert run.calls[-1].environment == {"B": "2", "A": "1"}  # with the job's environment
    assert not any("instances" in n for n in notes), notes
    assert any("checkpoints (s3://b/ckpt/) were not restored" in n for n in notes), notes
    assert not any("environment" in n for n in notes), notes


def test_a_job_without_final_metrics_is_judged_on_its_model_files(tmp_path: Path) -> None:
    job, store, _ = finished_job(tmp_path)
    silent = replace(job, metrics={})
    result = go(tmp_path, silent, store, FakeRun())
    assert result.verdict.outcome == v.IDENTICAL and result.verdict.metrics == []
    assert any("no final metrics, so only the model files were compared" in n for n in result.verdict.notes)
    differs = go(tmp_path, silent, store, FakeRun(model={**MODEL, "model.txt": "weights 9\n"}))
    assert differs.verdict.outcome == v.MODEL_DIFFERS  # the model is still compared


def test_a_sagemaker_job_is_compared_on_the_metrics_the_pipeline_defines() -> None:
    notes: list = []
    job, replayed = sagemaker_metrics(
        ["score"], {"score": 0.5, "train:progress": 100.0}, {"score": 0.5, "rows": 3}, notes
    )
    assert (job, replayed) == ({"score": 0.5}, {"score": 0.5})
    assert notes == ["job metrics the pipeline does not define were not compared: train:progress"]
    job, replayed = sagemaker_metrics(["score"], {"score": 0.5}, {"score": 0.6}, notes)
    assert (job, replayed) == ({"score": 0.5}, {"score": 0.6}) and len(notes) == 1  # a real difference stays
