from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbuild.lineage import producers
from mlbuild.lineage.store import ROOT_ENV_VAR

SOURCES, REQUIREMENTS = "a" * 64, "b" * 64


def finished_run(runs: Path, name: str) -> Path:
    run_dir = runs / name
    (run_dir / "input" / "config").mkdir(parents=True)
    (run_dir / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"lr": "0.1"}))
    (run_dir / "input" / "data" / "train").mkdir(parents=True)
    (run_dir / "input" / "data" / "train" / "rows.csv").write_text("x\n1\n")
    (run_dir / "model").mkdir()
    (run_dir / "model" / "model.pkl").write_bytes(b"model")
    return run_dir


def test_code_pin_needs_both_digests_and_pins_the_pair() -> None:
    assert producers.code_pin({producers.SOURCES_SHA256_ENV_VAR: SOURCES}) is None
    pin = producers.code_pin({producers.SOURCES_SHA256_ENV_VAR: SOURCES, producers.REQUIREMENTS_SHA256_ENV_VAR: REQUIREMENTS})
    assert pin is not None and (pin["sources_sha256"], pin["requirements_sha256"]) == (SOURCES, REQUIREMENTS)
    other = producers.code_pin({producers.SOURCES_SHA256_ENV_VAR: "c" * 64, producers.REQUIREMENTS_SHA256_ENV_VAR: REQUIREMENTS})
    assert other is not None and other["sha256"] != pin["sha256"]


def test_a_run_from_sources_is_recorded_and_reused_by_its_code_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "store"))
    monkeypatch.delenv(producers.PEX_SHA256_ENV_VAR, raising=False)
    monkeypatch.setenv(producers.SOURCES_SHA256_ENV_VAR, SOURCES)
    monkeypatch.setenv(producers.REQUIREMENTS_SHA256_ENV_VAR, REQUIREMENTS)
    run_dir = finished_run(tmp_path / "runs", "r1")
    record_id = producers.record_run(run_dir, "src/p:train")
    assert record_id
    record = json.loads(next((tmp_path / "store").rglob(f"{record_id}.json")).read_text())
    assert record["code"]["sources_sha256"] == SOURCES and "pex" not in record
    channels = {"train": run_dir / "input" / "data" / "train"}
    assert producers.reusable_run_dir({"lr": "0.1"}, channels) == run_dir.resolve()
    # An edit changes the sources digest: the earlier run is not reused.
    monkeypatch.setenv(producers.SOURCES_SHA256_ENV_VAR, "c" * 64)
    assert producers.reusable_run_dir({"lr": "0.1"}, channels) is None
