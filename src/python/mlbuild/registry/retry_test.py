from __future__ import annotations

import pytest

from mlbuild.registry.errors import TransientError
from mlbuild.registry.retry import RetryPolicy, is_retryable_status, parse_retry_after


@pytest.mark.parametrize(
    "status, retry",
    [
        (408, True),
        (429, True),
        (500, True),
        (503, True),
        (501, False),
        (401, False),
        (403, False),
        (404, False),
        (400, False),
    ],
)
def test_retryable(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry


def test_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0


def test_backoff_is_exponential_capped_and_floors_at_retry_after() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5, random=lambda: 1.0)
    assert [policy.delay(n, None) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert policy.delay(1, 9.0) == 9.0
    assert policy.delay(1, 1000.0) == policy.max_retry_after


def test_run_retries_transient_then_gives_up() -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, random=lambda: 0.0, sleep=slept.append)
    calls = []

    def fail(n: int) -> None:
        calls.append(n)
        raise TransientError("boom", retry_after=2.0)

    with pytest.raises(TransientError, match="still failing after 3 tries"):
        policy.run("thing", fail)
    assert calls == [1, 2, 3] and slept == [2.0, 2.0]


def test_run_does_not_retry_other_errors() -> None:
    calls = []

    def fail(n: int) -> None:
        calls.append(n)
        raise ValueError("no")

    with pytest.raises(ValueError):
        RetryPolicy(sleep=lambda s: None).run("thing", fail)
    assert calls == [1]
