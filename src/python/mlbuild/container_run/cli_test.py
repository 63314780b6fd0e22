from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import pytest

from mlbuild.container_run import cli
from mlbuild.container_run.errors import SandboxUnavailableError
from mlbuild.container_run.outcome import RunOutcome
from mlbuild.oci.errors import UnsafeLayerError
from mlbuild.runtime.errors import HyperparameterError

ARGS = ["--layout", "L", "--config", "c.yaml", "--address", "a:b", "--data-dir", "d", "--runs-dir", "r"]


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ARGS' c.yaml, in a folder of the test's own."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("hyperparameters:\n  max_depth: 3\n  seed: 1\n")


def _main(monkeypatch: pytest.MonkeyPatch, result: object, extra: Sequence[str] = ()) -> tuple[int, str, dict]:
    seen: dict = {}

    def fake_run_image(plan: object, stream: object = None) -> RunOutcome:
        seen.update(plan=plan)
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[return-value]

    monkeypatch.setattr(cli, "run_image", fake_run_image)
    out = io.StringIO()
    return cli.main([*ARGS, *extra], out=out), out.getvalue(), seen


def test_success_prints_run_model_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = RunOutcome(Path("/runs/x/1"), 0, None, {"auc": 0.9})
    code, out, seen = _main(monkeypatch, outcome, ["--ref-name", "t:1", "--network", "max_depth=3", "seed=1"])
    assert code == 0
    assert "run complete: /runs/x/1" in out and "model:   /runs/x/1/model/" in out and '{"auc": 0.9}' in out
    assert seen["plan"].ref == "t:1" and seen["plan"].overrides == {"max_depth": "3", "seed": "1"}
    assert seen["plan"].network is True and seen["plan"].config.source == ARGS[3]  # NB: parsed once, handed over


@pytest.mark.parametrize("exit_code, expect", [(1, 1), (2, 2), (300, 255), (-9, 137)])
def test_failure_exits_with_trains_code(monkeypatch: pytest.MonkeyPatch, exit_code: int, expect: int) -> None:
    code, out, _ = _main(monkeypatch, RunOutcome(Path("/runs/x/1.failed"), exit_code, "DataError: no rows", None))
    assert code == expect
    assert "FAILED" in out and "failure: DataError: no rows" in out


@pytest.mark.parametrize(
    "error, expect",
    [
        (HyperparameterError("bad"), 2),
        (UnsafeLayerError("sha256:x", "a", "b"), 2),
        (SandboxUnavailableError("apt-get install bubblewrap"), 3),
        (OSError(28, "No space left on device"), 3),
        (KeyboardInterrupt(), 130),
        (RuntimeError("bug"), 1),  # NB: a bug is the table's "unexpected mlbuild error"
    ],
)
def test_errors_become_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, error: BaseException, expect: int
) -> None:
    assert _main(monkeypatch, error)[0] == expect
    assert capsys.readouterr().err


def test_bad_assignment_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _main(monkeypatch, RunOutcome(Path("/r"), 0, None, None), ["oops"])[0] == 2


def test_a_bare_name_is_answered_with_the_pipelines_own_example(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("hyperparameters:\n  C: 1.0\n")
    monkeypatch.setattr(cli, "run_image", lambda *a, **k: RunOutcome(Path("/r"), 0, None, None))
    args = [*ARGS[:2], "--config", str(config), *ARGS[4:], "C"]
    assert cli.main(args, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "e.g. C=1.0" in err and "max_depth" not in err


def test_keep_0_is_a_user_error_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--layout",
        str(tmp_path / "L"),
        "--config",
        str(tmp_path / "c.yaml"),
        "--address",
        "a:b",
        "--data-dir",
        str(tmp_path),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--keep",
        "0",
    ]
    assert cli.main(args, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "Fix: --keep 1 or more" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_instance_count_and_no_gpus_reach_run_image(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = RunOutcome(Path("/runs/x/1"), 0, None, None)
    _, _, seen = _main(monkeypatch, outcome, ["--instance-count", "3", "--no-gpus"])
    assert seen["plan"].instance_count == 3 and seen["plan"].use_gpus is False
    _, _, seen = _main(monkeypatch, outcome)
    assert seen["plan"].instance_count is None and seen["plan"].use_gpus is True  # None: the config's


def test_an_identical_finished_run_is_reused_unless_forced_as_pants_run_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    previous = tmp_path / "runs" / "earlier"
    (previous / "model").mkdir(parents=True)
    (previous / "model" / "metrics.json").write_text('{"auc": 0.9}')
    asked: list = []

    def fake_previous_run(args: object, overrides: dict) -> Path:
        asked.append(overrides)
        return previous

    monkeypatch.setattr(cli, "previous_run", fake_previous_run)
    outcome = RunOutcome(Path("/runs/x/1"), 0, None, None)
    code, out, seen = _main(monkeypatch, outcome, ["--image-digest", "sha256:" + "a" * 64, "seed=1"])
    assert code == 0 and not seen and asked == [{"seed": "1"}]
    assert f"an identical run already finished (same image, hyperparameters and data): {previous}" in out
    assert "pass -- --force to train again" in out
    code, out, seen = _main(monkeypatch, outcome, ["--image-digest", "sha256:" + "a" * 64, "--force", "seed=1"])
    assert code == 0 and seen and len(asked) == 1  # forced: trained, never looked


def test_no_reuse_when_the_host_count_is_not_the_images_own(tmp_path: Path) -> None:
    args = cli.parser().parse_args([*ARGS, "--image-digest", "sha256:" + "a" * 64, "--instance-count", "2"])
    assert cli.previous_run(args, {}) is None
    assert cli.previous_run(cli.parser().parse_args(ARGS), {}) is None  # nothing pins what ran
