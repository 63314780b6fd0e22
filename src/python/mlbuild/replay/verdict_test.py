from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlbuild.publish.model_archive import write_model_archive
from mlbuild.replay import verdict as v
from mlbuild.replay.testing import write_model

FILES = {"model.pkl": "a" * 64, "metrics.json": "m" * 64}


def judge(**kwargs):
    base = dict(job_files=FILES, replay_files=FILES, job_metrics={"auc": 0.8}, replay_metrics={"auc": 0.8})
    return v.judge("job-1", kwargs.pop("job_ok", True), kwargs.pop("replay_ok", True), Path("/r"), **{**base, **kwargs})


@pytest.mark.parametrize(
    "kwargs, outcome, code",
    [
        ({}, v.IDENTICAL, 0),
        ({"replay_metrics": {"auc": 0.81}}, v.METRICS_DIFFER, 1),
        # NB: metrics.json differs whenever a metric does; that alone is not "model differs"
        ({"replay_metrics": {"auc": 0.81}, "replay_files": {**FILES, "metrics.json": "n" * 64}}, v.METRICS_DIFFER, 1),
        ({"replay_files": {**FILES, "model.pkl": "b" * 64}}, v.MODEL_DIFFERS, 1),
        ({"replay_files": {"metrics.json": "m" * 64}}, v.MODEL_DIFFERS, 1),
        ({"replay_ok": False, "replay_failure": "Boom\n"}, v.REPLAY_FAILED, 1),
        (
            {"job_ok": False, "replay_ok": False, "job_failure": "E: x\nmore", "replay_failure": "\nE: x\nother"},
            v.SAME_FAILURE,
            1,
        ),
        (
            {
                "job_ok": False,
                "replay_ok": False,
                "job_failure": "E: x",
                "replay_failure": "E: x",
                "expect_failure": True,
            },
            v.SAME_FAILURE,
            0,
        ),
        (
            {
                "job_ok": False,
                "replay_ok": False,
                "job_failure": "E: x",
                "replay_failure": "E: y",
                "expect_failure": True,
            },
            v.FAILURE_DIFFERS,
            1,
        ),
        ({"job_ok": False, "job_failure": "E: x", "expect_failure": True}, v.REPLAY_SUCCEEDED, 1),
    ],
)
def test_outcomes_and_exit_codes(kwargs, outcome, code) -> None:
    verdict = judge(**kwargs)
    assert (verdict.outcome, verdict.exit_code) == (outcome, code)
    assert verdict.to_json()["exit_code"] == code


def test_text_names_the_files_and_tabulates_the_metrics() -> None:
    text = judge(
        replay_files={**FILES, "model.pkl": "b" * 64, "extra.bin": "c" * 64}, replay_metrics={"auc": 0.81}
    ).text()
    assert "model differs" in text
    assert "model.pkl: aaaaaaaaaaaa vs bbbbbbbbbbbb" in text and "extra.bin: (absent) vs cccccccccccc" in text
    assert "auc" in text and "0.8" in text and "0.81" in text and "+0.01" in text
    assert "--expect-failure" in judge(job_ok=False, replay_ok=False, job_failure="E", replay_failure="E").text()


def test_archive_files_hashes_each_file_inside_the_archive(tmp_path: Path) -> None:
    (tmp_path / "m" / "sub").mkdir(parents=True)
    write_model(tmp_path / "m", {"model.txt": "w", "sub/x.bin": "y"}, {"s": 1})
    write_model_archive(tmp_path / "m", tmp_path / "a.tar.gz")
    files = v.archive_files(tmp_path / "a.tar.gz")
    assert set(files) == {"model.txt", "sub/x.bin", "metrics.json"}
    assert files["model.txt"] == hashlib.sha256(b"w").hexdigest()


def test_an_unreadable_archive_is_a_platform_error(tmp_path: Path) -> None:
    (tmp_path / "a.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(v.PlatformError, match="not a readable model archive"):
        v.archive_files(tmp_path / "a.tar.gz")
