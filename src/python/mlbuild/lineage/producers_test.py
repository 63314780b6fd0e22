from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pytest

from mlbuild.lineage import producers
from mlbuild.lineage.store import ROOT_ENV_VAR
from mlbuild.tools_required import tool_path

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


def test_the_code_pin_needs_both_digests_and_pins_the_pair() -> None:
    assert producers.RunPins(sources_sha256=SOURCES).code is None
    pin = producers.RunPins(sources_sha256=SOURCES, requirements_sha256=REQUIREMENTS).code
    assert pin is not None and (pin["sources_sha256"], pin["requirements_sha256"]) == (SOURCES, REQUIREMENTS)
    other = producers.RunPins(sources_sha256="c" * 64, requirements_sha256=REQUIREMENTS).code
    assert other is not None and other["sha256"] != pin["sha256"]
    assert (
        producers.RunPins(pex_sha256="d" * 64, sources_sha256=SOURCES, requirements_sha256=REQUIREMENTS).artifact
        == "d" * 64
    )
    assert producers.RunPins().artifact is None


def test_a_run_from_sources_is_recorded_and_reused_by_its_code_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "store"))
    pins = producers.RunPins(sources_sha256=SOURCES, requirements_sha256=REQUIREMENTS)
    run_dir = finished_run(tmp_path / "runs", "r1")
    record_id = producers.record_run(run_dir, "src/p:train", pins)
    assert record_id
    record = json.loads(next((tmp_path / "store").rglob(f"{record_id}.json")).read_text())
    assert record["code"]["sources_sha256"] == SOURCES and "pex" not in record
    channels = {"train": run_dir / "input" / "data" / "train"}
    assert producers.reusable_run_dir({"lr": "0.1"}, channels, pins) == run_dir.resolve()
    assert (
        producers.reusable_run_dir({"lr": "0.1"}, channels, producers.RunPins()) is None
    )  # nothing pinned: never reused
    # An edit changes the sources digest: the earlier run is not reused.
    edited = producers.RunPins(sources_sha256="c" * 64, requirements_sha256=REQUIREMENTS)
    assert producers.reusable_run_dir({"lr": "0.1"}, channels, edited) is None


def _stored(store: Path, record_id: Optional[str]) -> dict:
    assert record_id, "no record was written"
    return json.loads(next(store.rglob(f"{record_id}.json")).read_text())


def test_a_run_record_carries_the_revision_and_the_resolved_hyperparameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlbuild.lineage.source import SOURCE_REVISION_ENV_VAR

    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "store"))
    monkeypatch.setenv(SOURCE_REVISION_ENV_VAR, "d" * 40 + "-dirty")  # what the Pants rule sets
    record = _stored(tmp_path / "store", producers.record_run(finished_run(tmp_path / "runs", "r1"), "src/p:train"))
    assert record["source"] == {"revision": "d" * 40, "dirty": True}
    assert record["hyperparameters"] == {"lr": "0.1"}


def test_without_the_variable_the_revision_comes_from_git_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    import subprocess

    from mlbuild.lineage import source

    monkeypatch.delenv(source.SOURCE_REVISION_ENV_VAR, raising=False)
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # NB: don't find a repo above tmp_path
    assert source.current_source({}, outside) is None
    tool_path("git", "git")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    assert source.current_source({}, repo) is None  # no commit yet
    (repo / "a.txt").write_text("1\n")
    subprocess.run([*git, "add", "a.txt"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], cwd=repo, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert source.current_source({}, repo) == {"revision": head, "dirty": False}
    (repo / "a.txt").write_text("2\n")
    assert source.current_source({}, repo) == {"revision": head, "dirty": True}
    assert source.current_source({source.SOURCE_REVISION_ENV_VAR: "e" * 40}, repo) == {
        "revision": "e" * 40,
        "dirty": False,
    }
    monkeypatch.chdir(repo)  # the record of a `pants run` (cwd: the repo root)
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "store"))
    capfd.readouterr()
    record = _stored(tmp_path / "store", producers.record_run(finished_run(tmp_path / "runs", "r2"), "src/p:train"))
    assert record["source"] == {"revision": head, "dirty": True}
    assert capfd.readouterr().err == ""  # quiet


def test_a_record_with_no_store_configured_is_said_not_silently_dropped(monkeypatch, capsys, tmp_path: Path) -> None:
    from mlbuild.lineage import testing

    monkeypatch.delenv(ROOT_ENV_VAR, raising=False)
    assert producers.save(testing.package()) is None
    err = capsys.readouterr().err
    assert f"{ROOT_ENV_VAR} is not set, so this package record is not kept" in err
    # With the store configured the same record is kept, and nothing is said.
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "lineage"))
    assert producers.save(testing.package()) is not None
    assert capsys.readouterr().err == ""
