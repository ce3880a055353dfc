"""Time budgets: a client waiting on the API has its answer before API Gateway gives up on it.

API Gateway's HTTP API waits at most 30 s for a Lambda integration (a hard limit), and its clock
includes a cold start. A create running past it still creates the task and submits it, paid, while
the client gets a 503 and, without an Idempotency-Key, creates another. So a create answers within
API_BUDGET_SECONDS of its start, whatever the provider does:

      30 s  API Gateway's integration timeout (HTTP API; not adjustable)
    - 10 s  the longest Lambda lets a cold start's init phase run (ours imports in about 0.3 s,
            docs/performance.md: the rest is margin for the runtime, the invoke and the answer)
    = 20 s  for the create, from the handler's route to its answer

Within it, a submit the API makes itself gets what is left less AFTER_SUBMIT_SECONDS, kept for the
writes that follow it (the provider's task id, the fallback poller's start, the task read back).
When that is under MIN_INLINE_SUBMIT_SECONDS (a slot to wait for, a slow cold start, slow AWS
calls) the submit queue makes the submit instead, with the full timeouts
(`providers.http.SUBMIT_TIMEOUT`), and the client gets the task `queued`.

The API function's Timeout (30 s, the template's Globals) stays above the budget on purpose: a
request that overruns it anyway (a stalled AWS call) still finishes its writes after API Gateway
gave up, rather than being cut off between two of them. Were the Timeout set lower, the budget
shrinks to what the function has left (`api_deadline`).

A copy has a deadline too (`copy_deadline`): what its function has left less
COPY_CLEANUP_SECONDS, so that a download that is still running then (a server trickling its bytes)
ends while there is time to abort the multipart upload and give the copy's lease back. Killed at
its Timeout instead, the copy would leave both to the bucket's lifecycle rule and the lease's end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

API_GATEWAY_TIMEOUT_SECONDS = 30.0
LAMBDA_INIT_LIMIT_SECONDS = 10.0
API_BUDGET_SECONDS = API_GATEWAY_TIMEOUT_SECONDS - LAMBDA_INIT_LIMIT_SECONDS
# Three AWS calls of a few milliseconds each, with room for the SDK's retries of a throttled one.
AFTER_SUBMIT_SECONDS = 3.0
# A provider answers a submit in a second or two; with less time than this an answer cut off
# after the request was sent (its outcome unknown, never repeated) becomes likely.
MIN_INLINE_SUBMIT_SECONDS = 8.0
# What the function keeps of its own Timeout, should that ever be shorter than the budget.
FUNCTION_TIMEOUT_MARGIN_SECONDS = 1.0
# After a copy's download is cut off: the parts in flight end (8 MiB each, under a second to S3 in
# its region), AbortMultipartUpload, the lease's release and the log lines; with room for the SDK's
# retries of a slow call.
COPY_CLEANUP_SECONDS = 15.0


@dataclass(frozen=True)
class Deadline:
    """A moment on this process's monotonic clock by which an answer is due."""

    at: float

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def earlier(self, seconds: float) -> Deadline:
        return Deadline(self.at - seconds)


def api_deadline(function_remaining_ms: int) -> Deadline:
    """The deadline of a create starting now, in a function with this much of its Timeout left."""
    left = function_remaining_ms / 1000 - FUNCTION_TIMEOUT_MARGIN_SECONDS
    return Deadline.within(min(API_BUDGET_SECONDS, left))


def copy_deadline(function_remaining_ms: int) -> Deadline:
    """The deadline of a copy starting now, in a function with this much of its Timeout left."""
    return Deadline.within(function_remaining_ms / 1000 - COPY_CLEANUP_SECONDS)


def submit_deadline(deadline: Deadline) -> Deadline:
    """By when the provider must have answered, for the caller's `deadline` to be kept."""
    return deadline.earlier(AFTER_SUBMIT_SECONDS)


def provider_has_time(provider_deadline: Deadline | None, wait_seconds: float = 0.0) -> bool:
    """Whether a submit starting `wait_seconds` from now leaves the provider
    MIN_INLINE_SUBMIT_SECONDS before `provider_deadline` (always, without one)."""
    if provider_deadline is None:
        return True
    return provider_deadline.remaining() - max(0.0, wait_seconds) >= MIN_INLINE_SUBMIT_SECONDS


def leaves_time_to_submit(deadline: Deadline | None, wait_seconds: float = 0.0) -> bool:
    """Whether a caller with this `deadline` can make a submit itself, its slot `wait_seconds`
    away, and still answer in time (always, without a deadline)."""
    return provider_has_time(
        submit_deadline(deadline) if deadline is not None else None, wait_seconds
    )
