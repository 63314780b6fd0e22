"""Did the replay come out the same? Model files byte for byte, metrics exactly, failures by line.

    identical           every model file and every final metric equal
    metrics differ      the model files equal, some metric not (a table of them)
    model differs       some model file differs (metrics.json aside: that is `metrics differ`)
    replay failed       the job completed, the replay did not
    same failure        the job failed and the replay failed with the same first failure line
    failure differs     both failed, with different first lines
    replay succeeded    the job failed, the replay completed

Exit 0 only for `identical`, or `same failure` when the failure was expected (--expect-failure).
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence

from mlbuild.lineage.digests import CHUNK
from mlbuild.runtime import contract
from mlbuild.runtime.errors import PlatformError

IDENTICAL = "identical"
METRICS_DIFFER = "metrics differ"
MODEL_DIFFERS = "model differs"
REPLAY_FAILED = "replay failed"
SAME_FAILURE = "same failure"
FAILURE_DIFFERS = "failure differs"
REPLAY_SUCCEEDED = "replay succeeded"
DIFFERENT_EXIT_CODE = 1
METRICS_NAME = Path(contract.METRICS_FILE).name
_NONE: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Verdict:
    outcome: str
    job: str
    replay_run_dir: str
    expect_failure: bool = False
    model_files: List[Dict[str, Optional[str]]] = field(default_factory=list)  # {file, job, replay} sha256s that differ
    metrics: List[Dict[str, Any]] = field(default_factory=list)  # {metric, job, replay} that differ
    job_failure: Optional[str] = None  # first lines of output/failure
    replay_failure: Optional[str] = None
    notes: List[str] = field(default_factory=list)  # e.g. replayed on other data

    @property
    def exit_code(self) -> int:
        if self.outcome == IDENTICAL or (self.outcome == SAME_FAILURE and self.expect_failure):
            return 0
        return DIFFERENT_EXIT_CODE

    def to_json(self) -> Dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}

    def text(self) -> str:
        lines = [f"mlbuild: replay of {self.job}: {self.outcome}"]
        if self.model_files:
            lines.append("  model files that differ (sha256, job vs replay):")
            lines += [f"    {d['file']}: {_short(d['job'])} vs {_short(d['replay'])}" for d in self.model_files]
        if self.metrics:
            width = max(len(m["metric"]) for m in self.metrics)
            lines.append(f"  {'metric':<{width}}  {'job':>14}  {'replay':>14}  change")
            for m in self.metrics:
                change = m["replay"] - m["job"] if _numbers(m["job"], m["replay"]) else None
                lines.append(
                    f"  {m['metric']:<{width}}  {_value(m['job']):>14}  {_value(m['replay']):>14}  "
                    f"{'-' if change is None else f'{change:+.3g}'}"
                )
        if self.job_failure or self.replay_failure:
            lines.append(f"  job failure:    {self.job_failure or '-'}")
            lines.append(f"  replay failure: {self.replay_failure or '-'}")
        if self.outcome == SAME_FAILURE and not self.expect_failure:
            lines.append("  (the job failed; pass --expect-failure to accept the same failure as a reproduction)")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  replay run: {self.replay_run_dir}")
        return "\n".join(lines) + "\n"


def first_line(failure: Optional[str]) -> Optional[str]:
    """The first non-empty line of a failure reason (what SageMaker shows first)."""
    return next((line.strip() for line in (failure or "").splitlines() if line.strip()), None) if failure else None


def archive_files(archive: Path) -> Dict[str, str]:
    """`model.tar.gz` -> {file path: sha256 of its bytes (links: `-> target`)}."""
    files: Dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if member.issym():
                    files[name] = f"-> {member.linkname}"
                elif member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    h = hashlib.sha256()
                    while chunk := source.read(CHUNK):
                        h.update(chunk)
                    files[name] = h.hexdigest()
    except (tarfile.TarError, OSError) as e:
        raise PlatformError(f"{archive}: not a readable model archive ({e}). Fix: publish the job again.") from e
    return files


def differing_files(job: Mapping[str, str], replay: Mapping[str, str]) -> List[Dict[str, Optional[str]]]:
    return [
        {"file": name, "job": job.get(name), "replay": replay.get(name)}
        for name in sorted(set(job) | set(replay))
        if name != METRICS_NAME and job.get(name) != replay.get(name)
    ]


def differing_metrics(job: Mapping[str, Any], replay: Mapping[str, Any]) -> List[Dict[str, Any]]:
    return [
        {"metric": name, "job": job.get(name), "replay": replay.get(name)}
        for name in sorted(set(job) | set(replay))
        if job.get(name) != replay.get(name)
    ]


def judge(
    job_name: str,
    job_succeeded: bool,
    replay_succeeded: bool,
    replay_run_dir: Path,
    *,
    job_files: Mapping[str, str] = _NONE,
    replay_files: Mapping[str, str] = _NONE,
    job_metrics: Mapping[str, Any] = _NONE,
    replay_metrics: Mapping[str, Any] = _NONE,
    job_failure: Optional[str] = None,
    replay_failure: Optional[str] = None,
    expect_failure: bool = False,
    notes: Sequence[str] = (),
) -> Verdict:
    common = dict(job=job_name, replay_run_dir=str(replay_run_dir), expect_failure=expect_failure, notes=list(notes))
    job_line, replay_line = first_line(job_failure), first_line(replay_failure)
    if not job_succeeded:
        if not replay_succeeded:
            outcome = SAME_FAILURE if job_line == replay_line else FAILURE_DIFFERS
        else:
            outcome = REPLAY_SUCCEEDED
        return Verdict(outcome, job_failure=job_line, replay_failure=replay_line, **common)  # type: ignore[arg-type]
    if not replay_succeeded:
        return Verdict(REPLAY_FAILED, replay_failure=replay_line, **common)  # type: ignore[arg-type]
    files = differing_files(job_files, replay_files)
    metrics = differing_metrics(job_metrics, replay_metrics)
    outcome = MODEL_DIFFERS if files else METRICS_DIFFER if metrics else IDENTICAL
    return Verdict(outcome, model_files=files, metrics=metrics, **common)  # type: ignore[arg-type]


def _short(value: Optional[str]) -> str:
    if value is None:
        return "(absent)"
    return value if value.startswith("->") else value[:12]


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _value(value: Any) -> str:
    if value is None:
        return "(absent)"
    return f"{value:.6g}" if _numbers(value) else str(value)
