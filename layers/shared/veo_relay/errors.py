"""Typed domain errors. The API maps them to HTTP in one place (veo_relay.http_errors)."""

from __future__ import annotations


class VeoRelayError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "internal_error"


class ConfigurationError(VeoRelayError):
    code = "configuration_error"


class Unauthenticated(VeoRelayError):
    """No caller identity; API Gateway's IAM auth normally refuses such a request first."""

    code = "unauthorized"


class InvalidRequest(VeoRelayError):
    """Bad input; the message names the field at fault."""

    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TaskNotFound(VeoRelayError):
    code = "not_found"

    def __init__(self, task_id: str) -> None:
        # An id as long as a caller likes is not echoed whole.
        shown = task_id if len(task_id) <= 64 else f"{task_id[:28]}..."
        super().__init__(f"video task {shown!r} not found")
        self.task_id = task_id


class TaskConflict(VeoRelayError):
    code = "conflict"


class BudgetExceeded(VeoRelayError):
    """A create or extend whose price would take its principal's month past the budget."""

    code = "budget_exceeded"


class CreatesThrottled(VeoRelayError):
    """More creates this minute than the principal's CREATES_PER_MINUTE."""

    code = "throttled"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class InvalidCallback(VeoRelayError):
    """A callback we cannot attribute to a task: wrong provider, token or body."""

    code = "invalid_callback"


class ProviderError(VeoRelayError):
    """A provider refused or failed; `code` is one of the shared taxonomy's codes.

    `raw_code` and `raw_message` keep what the provider said, for audit. `retryable` says whether
    asking again later may succeed; `created_nothing` that the refusal of a submit proves no task
    (and no charge) exists at the provider, so submitting elsewhere or later cannot pay twice.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        raw_code: str | None = None,
        raw_message: str | None = None,
        retryable: bool = False,
        created_nothing: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.raw_code = raw_code
        self.raw_message = raw_message
        self.retryable = retryable
        self.created_nothing = created_nothing
