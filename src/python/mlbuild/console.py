"""One progress/log style for mlbuild's host-side commands.

Every line a command writes about its own work goes to stderr and starts with `mlbuild: `, so
a CI log, or the stderr Pants shows when a process fails, reads the same whichever tool wrote
it. Lines, never a redrawn bar; each written whole and flushed:

    mlbuild: replaying job churn-3f2a (Completed) of src/python/pipelines/churn:train: image sha256:…
    mlbuild: warning: .mlbuild/lineage/ab/ab12….json: not valid JSON; skipped (--strict fails instead). Fix: …
    mlbuild: error: command line: hyperparameter 'C' is -1.0, below its min 0.0. Fix: raise it.
    mlbuild: pulling sha256:0123456789ab: 12.0 MB/80.0 MB at 6.0 MB/s
    mlbuild: pulling sha256:0123456789ab: 80.0 MB/80.0 MB at 6.1 MB/s done

- `say`: a step or a fact (`mlbuild: <message>`); `warn`: something failed that the command
  carries on past (`mlbuild: warning: <message>`); `fail`: the one line a command ends with
  on an error (`mlbuild: error: <message>`), returning the exit code it is given. The message
  itself names the file, the field and the fix; the codes are `mlbuild.names`' table.
- `Progress`: a long transfer: a line every `interval` seconds, and one ending ` done` for a
  blob that was big or slow.
- `stream`: where a caller keeps its steps beside other output, the same line goes there
  (container_run's steps go into the run's own output, stdout unless the caller says).
- What a command outputs for programs (record ids, digests, JSON, reports) stays on stdout,
  without the prefix; what a job prints (the container's output, CloudWatch's lines) is passed
  through as it is.

`run_command` is the one boundary every command's `main()` goes through: an error that carries
an `exit_code` becomes its `fail` line and that code, Ctrl-C the interrupt code, anything else a
`bug` (traceback, then the line). The codes are `mlbuild.names`' one table.

NB: a leaf: imports only `mlbuild.names` (itself a leaf), so any layer may use it. The in-container runtime and
the model server keep `logging` (`%(asctime)s %(name)s %(levelname)s %(message)s`): that is what
CloudWatch shows for a SageMaker job.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Callable, Optional, TextIO

from mlbuild.names import EXIT_INTERRUPTED, EXIT_PLATFORM_ERROR, EXIT_UNEXPECTED

PREFIX = "mlbuild: "
MB = 1024 * 1024
SUMMARY_THRESHOLD = 8 * MB  # a transfer at least this big always gets its ` done` line

_LOCK = threading.Lock()  # NB: parallel uploads share stderr; keep each line whole


def say(message: str, stream: Optional[TextIO] = None) -> None:
    """`mlbuild: <message>` on `stream` (default: stderr, looked up per call so tests can capture it)."""
    out = sys.stderr if stream is None else stream
    with _LOCK:
        out.write(f"{PREFIX}{message}\n")
        out.flush()


def warn(message: str, stream: Optional[TextIO] = None) -> None:
    """`mlbuild: warning: <message>`: the command carries on."""
    say(f"warning: {message}", stream)


def fail(error: object, exit_code: int, stream: Optional[TextIO] = None) -> int:
    """`mlbuild: error: <error>`; returns `exit_code`, so a command ends with `return fail(e, e.exit_code)`."""
    say(f"error: {error}", stream)
    return exit_code


def bug(command: str, exit_code: int) -> int:
    """An exception no handler expected: its traceback, then the one error line."""
    traceback.print_exc()
    return fail(f"{command} failed unexpectedly (a bug); please report the traceback above.", exit_code)


def run_command(command: Callable[[], int], name: str, interrupted: str = "") -> int:
    """Run a command's body and turn whatever it raises into an exit code, here and only here.

    `name` is what a bug report names; `interrupted` says what Ctrl-C left behind (e.g. "a
    submitted job keeps running in SageMaker"). Errors are duck-typed on an int `exit_code`
    (the error classes live above this leaf module).
    """
    try:
        return command()
    except KeyboardInterrupt:
        say(f"interrupted; {interrupted}" if interrupted else "interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:  # NB: the one place that turns any error into an exit code
        code = getattr(e, "exit_code", None)
        if isinstance(code, int) and not isinstance(code, bool):
            return fail(e, code)
        if isinstance(e, OSError):  # NB: the machine (a full disk, permissions): one line, not a traceback
            where = f"{e.filename}: " if e.filename else ""
            return fail(f"{where}{e.strerror or e}", EXIT_PLATFORM_ERROR)
        return bug(name, EXIT_UNEXPECTED)


def megabytes(n: float) -> str:
    return f"{n / MB:.1f} MB"


class Progress:
    """Progress lines for a long transfer on `stream` (None: quiet).

    `mlbuild: <label>: <done>/<total> at <rate>/s` at most every `interval` seconds while bytes
    move, and the same line ending in ` done` at the end for a transfer of at least
    SUMMARY_THRESHOLD bytes or one that took `interval` or longer.
    """

    def __init__(
        self,
        stream: Optional[TextIO],
        label: str,
        total: int,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.label, self.total, self.interval, self.clock = stream, label, total, interval, clock
        self.done_bytes = 0
        self.start = self.last = clock()

    def advance(self, n: int) -> None:
        self.done_bytes += n
        now = self.clock()
        if self.stream is not None and now - self.last >= self.interval:
            self.last = now
            self._line("")

    def finish(self) -> float:
        """Seconds since the start; the ` done` line when the transfer was big or slow."""
        elapsed = self.clock() - self.start
        if self.stream is not None and (self.total >= SUMMARY_THRESHOLD or elapsed >= self.interval):
            self._line(" done")
        return elapsed

    def _line(self, suffix: str) -> None:
        rate = self.done_bytes / max(self.clock() - self.start, 1e-6)
        say(
            f"{self.label}: {megabytes(self.done_bytes)}/{megabytes(self.total)} at {megabytes(rate)}/s{suffix}",
            self.stream,
        )
