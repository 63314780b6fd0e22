"""Stream a training job's CloudWatch log lines as they arrive.

SageMaker writes each instance's output to `/aws/sagemaker/TrainingJobs`, stream
`<job name>/algo-<n>-<epoch seconds>`. Each `poll` lists the job's streams by prefix and
reads every stream forward from where the last poll stopped.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from botocore.exceptions import ClientError

from mlbuild.sagemaker.aws import TRAINING_JOB_LOG_GROUP, is_missing, next_log_token, translate
from mlbuild.sagemaker.errors import AwsError

# NB: GetLogEvents can keep handing out new tokens while lines arrive faster than they are
# read; a poll stops after this many pages and the next poll continues from the token.
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html
MAX_PAGES_PER_POLL = 50


class LogTail:
    def __init__(self, logs: Any, job_name: str, emit: Callable[[str], None]) -> None:
        self._logs = logs
        self._prefix = job_name + "/"
        self._emit = emit
        self._tokens: Dict[str, Optional[str]] = {}
        self._disabled = False

    @property
    def streams(self) -> List[str]:
        return sorted(self._tokens)

    def poll(self) -> int:
        """Emit every new line of every stream of the job; returns how many were emitted."""
        if self._disabled:
            return 0
        try:
            return sum(self._drain(stream) for stream in self._list_streams())
        except AwsError as e:
            if e.code not in ("AccessDeniedException", "AccessDenied"):
                raise
            # NB: logs are a convenience; a role without logs:GetLogEvents can still follow.
            self._disabled = True
            self._emit(f"(not streaming logs: {e})")
            return 0

    def _list_streams(self) -> List[str]:
        names: List[str] = []
        kwargs: Dict[str, Any] = {"logGroupName": TRAINING_JOB_LOG_GROUP, "logStreamNamePrefix": self._prefix}
        with translate("DescribeLogStreams"):
            try:
                while True:
                    response = self._logs.describe_log_streams(**kwargs)
                    names += [s["logStreamName"] for s in response.get("logStreams", [])]
                    if not response.get("nextToken"):
                        break
                    kwargs["nextToken"] = response["nextToken"]
            except ClientError as e:
                if not is_missing(e):  # the log group appears only once a container starts
                    raise
        for name in names:
            self._tokens.setdefault(name, None)
        return sorted(names)

    def _drain(self, stream: str) -> int:
        token = self._tokens.get(stream)
        label = stream[len(self._prefix) :] or stream
        count = 0
        with translate("GetLogEvents"):
            for _ in range(MAX_PAGES_PER_POLL):
                kwargs: Dict[str, Any] = {
                    "logGroupName": TRAINING_JOB_LOG_GROUP,
                    "logStreamName": stream,
                    "startFromHead": True,
                }
                if token:
                    kwargs["nextToken"] = token
                try:
                    response = self._logs.get_log_events(**kwargs)
                except ClientError as e:
                    if is_missing(e):
                        break
                    raise
                events = response.get("events", [])
                for event in events:
                    self._emit(f"[{label}] {event.get('message', '').rstrip()}")
                count += len(events)
                following = next_log_token(token, response)
                if following is None:
                    break
                token = following
                if not events:  # NB: a fresh token with no lines: nothing more for now.
                    break
        self._tokens[stream] = token
        return count
