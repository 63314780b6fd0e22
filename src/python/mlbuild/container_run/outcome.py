"""What a container run left behind, read back from its run directory the way SageMaker reads it."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from mlbuild.runtime import contract


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path  # the final run directory (`<id>` or `<id>.failed`)
    exit_code: int  # train's exit status; negative: killed by that signal
    failure_reason: Optional[str]  # None when the run succeeded
    metrics: Optional[dict[str, Any]]  # model/metrics.json, if written and valid JSON

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    @property
    def model_dir(self) -> Path:
        return self.run_dir / contract.MODEL_DIR


def read_outcome(run_dir: Path, exit_code: int, output_tail: Sequence[str] = ()) -> RunOutcome:
    return RunOutcome(run_dir, exit_code, failure_reason(run_dir, exit_code, output_tail), read_metrics(run_dir))


def read_metrics(run_dir: Path) -> Optional[dict[str, Any]]:
    try:
        value = json.loads((run_dir / contract.METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def failure_reason(run_dir: Path, exit_code: int, output_tail: Sequence[str] = ()) -> Optional[str]:
    """SageMaker's FailureReason: the first 1024 characters of /opt/ml/output/failure."""
    if exit_code == 0:
        return None  # NB: SageMaker goes by the exit status alone; a stray failure file is ignored.
    try:
        text = (run_dir / contract.FAILURE_FILE).read_text(errors="replace")[: contract.FAILURE_REASON_LIMIT]
    except OSError:
        text = ""
    if text.strip():
        return text
    status = f"was killed by {_signal_name(-exit_code)}" if exit_code < 0 else f"exited with code {exit_code}"
    last = next((line.strip() for line in reversed(output_tail) if line.strip()), "")
    tail = f" Its last output line: {last!r}." if last else " It printed nothing."
    return (
        f"train {status} and wrote no /opt/ml/{contract.FAILURE_FILE} (SageMaker would report no "
        f"FailureReason beyond the exit code).{tail}"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
