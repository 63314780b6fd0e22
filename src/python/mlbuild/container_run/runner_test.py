"""run_image without bwrap: everything wrong with the input fails before anything is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.container_run import runner
from mlbuild.container_run.errors import ImageCommandError, SandboxUnavailableError
from mlbuild.container_run.testing import write_image, write_pipeline
from mlbuild.oci.errors import UserError as OCIUserError
from mlbuild.oci.layer import LayerEntry
from mlbuild.runtime.config import load_config
from mlbuild.runtime.errors import DataError, HyperparameterError


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setattr(runner, "check_bwrap", lambda: "/nonexistent/bwrap")
    config, data_dir = write_pipeline(tmp_path / "pipe")
    layout = tmp_path / "layout"
    # An image whose train is a shell script: the distroless trap.
    write_image(layout, tmp_path / "blobs", [[LayerEntry.file("/usr/local/bin/train", b"#!/bin/sh\necho hi\n", 0o755)]])
    return {
        "layout_dir": layout,
        "ref": None,
        "config": load_config(config),
        "address": "src/p:train",
        "data_dir": data_dir,
        "runs_dir": tmp_path / "runs",
        "overrides": {},
        "cache_dir": tmp_path / "cache",
    }


@pytest.mark.parametrize(
    "change, error, creates_cache",
    [
        ({"overrides": {"sclae": "3"}}, HyperparameterError, False),
        ({"overrides": {"scale": "big"}}, HyperparameterError, False),
        ({"data_dir": Path("/nonexistent")}, DataError, False),
        ({"ref": "other"}, OCIUserError, False),
        ({}, ImageCommandError, True),  # found only once the rootfs is unpacked
    ],
    ids=["unknown-hp", "bad-hp", "no-data", "bad-ref", "bad-train"],
)
def test_errors_come_before_the_run_dir(setup: dict, change: dict, error: type, creates_cache: bool) -> None:
    with pytest.raises(error):
        runner.run_image(runner.RunPlan(**{**setup, **change}))
    assert not setup["runs_dir"].exists()
    assert setup["cache_dir"].exists() == creates_cache


def test_missing_bwrap_is_checked_first(setup: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> str:
        raise SandboxUnavailableError("apt-get install bubblewrap")

    monkeypatch.setattr(runner, "check_bwrap", missing)
    with pytest.raises(SandboxUnavailableError, match="apt-get install bubblewrap"):
        runner.run_image(runner.RunPlan(**setup))
    assert not setup["runs_dir"].exists() and not setup["cache_dir"].exists()


def test_prepare_rootfs_makes_mount_points_and_workdir(tmp_path: Path) -> None:
    runner.prepare_rootfs(tmp_path, "/opt/program")
    for d in ("proc", "dev", "tmp", "opt/ml", "opt/program"):
        assert (tmp_path / d).is_dir()


def test_stream_process_streams_and_keeps_the_tail(tmp_path: Path) -> None:
    import io
    import sys

    out = io.StringIO()
    code, tail = runner.stream_process(
        [sys.executable, "-c", "import sys; print('a', flush=True); sys.stderr.write('é\\nlast'); sys.exit(4)"], out
    )
    assert code == 4
    # NB: stdout is flushed before stderr is written, so the merged order is fixed.
    assert out.getvalue().replace("\r", "") == "a\né\nlast"
    assert tail[-1] == "last"


@pytest.mark.parametrize("checkpoints", [None, "s3://b/ckpt/"])
def test_sagemaker_output_dirs(tmp_path: Path, checkpoints: str | None) -> None:
    from dataclasses import replace

    from mlbuild.runtime.config import load_config

    config = load_config(write_pipeline(tmp_path / "p")[0])
    config = replace(config, sagemaker=replace(config.sagemaker, checkpoint_s3_uri=checkpoints))
    runner.make_sagemaker_dirs(tmp_path / "run", config)
    assert sorted(str(p.relative_to(tmp_path / "run")) for p in (tmp_path / "run").rglob("*")) == sorted(
        ["model", "output", "output/data", *(["checkpoints"] if checkpoints else [])]
    )


def test_after_a_run_channel_mount_points_become_links_to_the_data(tmp_path: Path) -> None:
    staging, data = tmp_path / "run", tmp_path / "data" / "train"
    (staging / "input" / "data" / "train").mkdir(parents=True)
    data.mkdir(parents=True)
    (data / "rows.csv").write_text("1\n")
    runner.link_channels(staging, {"train": data})
    link = staging / "input" / "data" / "train"
    assert link.is_symlink() and (link / "rows.csv").read_text() == "1\n"
