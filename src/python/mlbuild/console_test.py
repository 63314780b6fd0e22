import ast
import io
import threading
from pathlib import Path

import pytest

from mlbuild import console, names


def test_say_warn_fail_share_one_prefix_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    console.say("serving x with the model in m")
    console.warn("could not update the referrers index t: 403")
    assert console.fail("pipeline.yaml: `sagemaker.instance_count`: bad. Fix: set it to 1.", 2) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "mlbuild: serving x with the model in m",
        "mlbuild: warning: could not update the referrers index t: 403",
        "mlbuild: error: pipeline.yaml: `sagemaker.instance_count`: bad. Fix: set it to 1.",
    ]


def test_a_given_stream_gets_the_same_line() -> None:
    out = io.StringIO()
    console.say("running train in /tmp/x", out)
    assert out.getvalue() == "mlbuild: running train in /tmp/x\n"


def test_bug_prints_the_traceback_then_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        assert console.bug("mlbuild.oci", 3) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert (
        err.splitlines()[-1]
        == "mlbuild: error: mlbuild.oci failed unexpectedly (a bug); please report the traceback above."
    )


def test_lines_from_threads_stay_whole() -> None:
    out = io.StringIO()

    def say_50(i: int) -> None:
        for _ in range(50):
            console.say(f"line {i} " + "x" * 200, out)

    threads = [threading.Thread(target=say_50, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 400 and all(line.startswith("mlbuild: line ") and line.endswith("x" * 200) for line in lines)


def test_progress_lines_every_interval_and_done_for_big_or_slow_transfers() -> None:
    now = [0.0]
    out = io.StringIO()
    p = console.Progress(out, "pulling sha256:0123456789ab", 10 * console.MB, interval=2.0, clock=lambda: now[0])
    p.advance(console.MB)  # too soon for a line
    now[0] = 2.0
    p.advance(3 * console.MB)
    now[0] = 4.0
    p.advance(6 * console.MB)
    assert p.finish() == 4.0
    assert out.getvalue().splitlines() == [
        "mlbuild: pulling sha256:0123456789ab: 4.0 MB/10.0 MB at 2.0 MB/s",
        "mlbuild: pulling sha256:0123456789ab: 10.0 MB/10.0 MB at 2.5 MB/s",
        "mlbuild: pulling sha256:0123456789ab: 10.0 MB/10.0 MB at 2.5 MB/s done",
    ]


def test_a_small_fast_transfer_says_nothing_and_no_stream_is_quiet() -> None:
    out = io.StringIO()
    small = console.Progress(out, "pushing x", 1024, clock=lambda: 0.0)
    small.advance(1024)
    small.finish()
    assert out.getvalue() == ""
    quiet = console.Progress(None, "pushing y", 100 * console.MB, interval=0.0)
    quiet.advance(100 * console.MB)
    quiet.finish()  # NB: nothing to write to, nothing raised


def test_a_leaf_that_imports_only_the_names_table() -> None:
    tree = ast.parse((Path(__file__).parent / "console.py").read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m for m in modules if m == "mlbuild" or m.startswith("mlbuild.")} == {"mlbuild.names"}


class _CodedError(Exception):
    exit_code = 7


def _raise(error: BaseException) -> int:
    raise error


@pytest.mark.parametrize(
    "error, code, line",
    [
        (
            _CodedError("the provenance names another digest"),
            7,
            "mlbuild: error: the provenance names another digest\n",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "x.json"),
            3,
            "mlbuild: error: x.json: No such file or directory\n",
        ),
        (KeyboardInterrupt(), 130, "mlbuild: interrupted; the run was marked failed\n"),
    ],
)
def test_the_boundary_maps_errors_to_the_table_codes(error, code, line, capsys: pytest.CaptureFixture[str]) -> None:
    assert console.run_command(lambda: _raise(error), "x", interrupted="the run was marked failed") == code
    assert capsys.readouterr().err == line


def test_the_boundary_turns_a_bug_into_its_traceback_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert console.run_command(lambda: _raise(ZeroDivisionError("oops")), "mlbuild inspect") == names.EXIT_UNEXPECTED
    err = capsys.readouterr().err
    assert "ZeroDivisionError: oops" in err and err.endswith(
        "mlbuild inspect failed unexpectedly (a bug); please report the traceback above.\n"
    )


def test_the_boundary_passes_the_command_s_own_code_and_argparse_exits_through() -> None:
    assert console.run_command(lambda: 5, "x") == 5
    with pytest.raises(SystemExit):
        console.run_command(lambda: _raise(SystemExit(2)), "x")
