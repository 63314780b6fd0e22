"""When and how long to wait before retrying a registry request.

Retried: 408, 429 and 5xx answers, connection resets and timeouts (all raised as
TransientError by the transport). Never retried: 401/403/404 and other 4xx, which are
the caller's to fix. Backoff is exponential with full jitter, capped, and a Retry-After
header (seconds or an HTTP date) is honoured as a floor:
https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from mlbuild.registry.errors import TransientError

T = TypeVar("T")
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or 500 <= status < 600 and status != 501


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - now())


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries, including the first
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # NB: a registry asking for longer is treated as down
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * self.random()
        if retry_after is not None:
            return max(min(retry_after, self.max_retry_after), backoff)
        return backoff

    def run(self, what: str, fn: Callable[[int], T]) -> T:
        """Call fn(attempt) until it does not raise TransientError, or attempts run out."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(attempt)
            except TransientError as e:
                if attempt == self.attempts:
                    raise TransientError(
                        f"{what}: still failing after {self.attempts} tries: {e} "
                        "(the registry or network is unhealthy; try again later).",
                        retry_after=e.retry_after,
                    ) from e
                self.sleep(self.delay(attempt, e.retry_after))
        raise AssertionError("unreachable")


NO_RETRIES = RetryPolicy(attempts=1)
