from pathlib import Path

import pytest

from mlbuild.container_run.serve_cli import choose_model, newest_local_model
from mlbuild.runtime.errors import UserError

ADDRESS = "src/python/pipelines/churn:train"


def make_run(runs: Path, name: str, model: bool = True) -> Path:
    run = runs / "src.python.pipelines.churn" / "train" / name
    (run / "output").mkdir(parents=True)
    if model:
        (run / "model").mkdir()
        (run / "model" / "model.pkl").write_bytes(b"x")
    return run


def test_the_newest_finished_run_is_served_by_default(tmp_path: Path) -> None:
    make_run(tmp_path, "20261130T010000Z-aaaa")
    newest = make_run(tmp_path, "20261130T020000Z-bbbb")
    make_run(tmp_path, "20261130T030000Z-cccc.failed")
    make_run(tmp_path, "20261130T040000Z-dddd", model=False)
    assert newest_local_model(tmp_path, ADDRESS) == newest / "model"
    assert choose_model(None, tmp_path, ADDRESS) == newest / "model"


def test_a_path_names_a_run_a_model_folder_or_an_archive(tmp_path: Path) -> None:
    run = make_run(tmp_path, "20261130T010000Z-aaaa")
    assert choose_model(str(run), tmp_path, ADDRESS) == run / "model"
    assert choose_model(str(run / "model"), tmp_path, ADDRESS) == run / "model"
    (tmp_path / "model.tar.gz").write_bytes(b"")
    assert choose_model(str(tmp_path / "model.tar.gz"), tmp_path, ADDRESS) == tmp_path / "model.tar.gz"


def test_no_run_yet_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(
        UserError,
        match=r"no finished local run of .*Fix: train one first \(`./pants run src/python/pipelines/churn:train`\)",
    ):
        newest_local_model(tmp_path, ADDRESS)


def test_a_local_jobs_name_leads_to_its_model_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from mlbuild.container_run.serve_cli import model_by_hash
    from mlbuild.lineage.record import make_record
    from mlbuild.lineage.store import Store
    from mlbuild.names import LINEAGE_DIR_ENV

    archive = tmp_path / "jobs" / "churn-train-0123456789ab" / "output" / "model.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"model")
    store = Store(tmp_path / "store")
    store.put(
        make_record(
            "publish",
            ADDRESS,
            job={"name": "churn-train-0123456789ab", "status": "Completed"},
            model={"uri": str(archive), "sha256": hashlib.sha256(b"model").hexdigest()},
        )
    )
    monkeypatch.setenv(LINEAGE_DIR_ENV, str(tmp_path / "store"))
    assert model_by_hash("churn-train-0123456789ab") == archive
    assert choose_model(hashlib.sha256(b"model").hexdigest(), tmp_path, ADDRESS) == archive
    archive.unlink()
    with pytest.raises(UserError, match="none a local run or job whose model is still on disk"):
        model_by_hash("churn-train-0123456789ab")
