"""One exception per error code the API answers, and the client's own (a wait's timeout, a
download's checksum). Each carries the HTTP status (None for the client's own), the code and
the message."""

from __future__ import annotations

from typing import Any


class VeoRelayError(Exception):
    """Base of every error this client raises."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        if code is not None:
            self.code = code
        self.retry_after = retry_after  # seconds, from the answer's Retry-After

    def __str__(self) -> str:
        where = f"{self.status} " if self.status is not None else ""
        return f"{where}{self.code}: {self.message}"


# 4xx: the request, as sent, will not succeed.
class InvalidRequest(VeoRelayError):
    """400/422: malformed or invalid input; the message names the field at fault."""

    code = "invalid_request"


class Unauthorized(VeoRelayError):
    code = "unauthorized"


class Forbidden(VeoRelayError):
    """403: API Gateway's IAM auth refused the signature or the principal."""

    code = "forbidden"


class BudgetExceeded(VeoRelayError):
    """402: the month's budget would be passed; the message names the budget and the spend."""

    code = "budget_exceeded"


class NotFound(VeoRelayError):
    """404: unknown, or not the caller's."""

    code = "not_found"


class Conflict(VeoRelayError):
    """409: an Idempotency-Key reused with another body, or the task's state forbids it."""

    code = "conflict"


class PayloadTooLarge(VeoRelayError):
    code = "payload_too_large"


class UnsupportedMediaType(VeoRelayError):
    code = "unsupported_media_type"


class Throttled(VeoRelayError):
    """429: too many creates this minute (or API Gateway's own limit); see `retry_after`."""

    code = "throttled"


# 5xx: ours or the provider's trouble.
class InternalError(VeoRelayError):
    code = "internal_error"


class ServiceUnavailable(VeoRelayError):
    """503 from the service itself (AWS throttled it, or an answer took over 30 s)."""

    code = "service_unavailable"


class ProviderError(VeoRelayError):
    """502/503: the provider refused or failed; the base of each provider code's own class."""

    code = "provider_error"


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


class ProviderRateLimited(ProviderError):
    code = "rate_limited"


class InsufficientCredits(ProviderError):
    code = "insufficient_credits"


class ContentViolation(ProviderError):
    code = "content_violation"


class GenerationFailed(ProviderError):
    code = "generation_failed"


class ProviderTimeout(ProviderError):
    code = "timeout"


class ProviderTaskNotFound(ProviderError):
    code = "task_not_found"


# The client's own.
class ConnectionFailed(VeoRelayError):
    """The API could not be reached (or did not answer in time), after the retries."""

    code = "connection_error"


class WaitTimeout(VeoRelayError):
    """wait() gave up; `task` is the last state seen."""

    code = "wait_timeout"

    def __init__(self, message: str, task: Any) -> None:
        super().__init__(message)
        self.task = task


class TaskNotCompleted(VeoRelayError):
    """download() of a task that has no stored video (yet, or ever)."""

    code = "not_completed"


class DownloadFailed(VeoRelayError):
    """The video's download was refused (an expired URL, say) or broke off."""

    code = "download_failed"


class ChecksumMismatch(DownloadFailed):
    """The downloaded bytes are not the stored video's (size or SHA-256); no file is left."""

    code = "checksum_mismatch"


class WebhookVerificationError(VeoRelayError):
    """A webhook delivery whose signature, timestamp or headers do not hold."""

    code = "invalid_webhook"


__all__ = [
    "BudgetExceeded",
    "ChecksumMismatch",
    "Conflict",
    "ConnectionFailed",
    "ContentViolation",
    "DownloadFailed",
    "Forbidden",
    "GenerationFailed",
    "InsufficientCredits",
    "InternalError",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTaskNotFound",
    "ProviderTimeout",
    "ProviderUnavailable",
    "ServiceUnavailable",
    "TaskNotCompleted",
    "Throttled",
    "Unauthorized",
    "UnsupportedMediaType",
    "VeoRelayError",
    "WaitTimeout",
    "WebhookVerificationError",
    "error_for",
]

_CLIENT_ERRORS: dict[str, type[VeoRelayError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        Forbidden,
        BudgetExceeded,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Throttled,
    )
}
_SERVER_ERRORS: dict[str, type[VeoRelayError]] = {
    cls.code: cls
    for cls in (
        InternalError,
        ServiceUnavailable,
        ProviderError,
        ProviderUnavailable,
        ProviderRateLimited,
        InsufficientCredits,
        ContentViolation,
        GenerationFailed,
        ProviderTimeout,
        ProviderTaskNotFound,
    )
}
# API Gateway's own answers carry {"message": ...}, no code.
_CODE_OF_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "payload_too_large",
    429: "throttled",
    500: "internal_error",
    502: "provider_error",
    503: "service_unavailable",
}


def error_for(status: int, body: Any, retry_after: float | None = None) -> VeoRelayError:
    """The exception for an error answer. A 5xx's code is the provider's taxonomy (a 502
    `unauthorized` is the provider refusing our key, not the caller being refused)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code, message = str(detail.get("code", "")), str(detail.get("message", ""))
    else:
        code = _CODE_OF_STATUS.get(status, "error")
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        message = message or f"HTTP {status}"
    table = _CLIENT_ERRORS if status < 500 else _SERVER_ERRORS
    cls = table.get(code, VeoRelayError if status < 500 else _fallback_server_error(status))
    return cls(message, status=status, code=code, retry_after=retry_after)


def _fallback_server_error(status: int) -> type[VeoRelayError]:
    return ProviderError if status == 502 else InternalError if status == 500 else VeoRelayError
