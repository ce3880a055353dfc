"""One error taxonomy for every provider: HTTP statuses and failure codes map to our codes."""

from __future__ import annotations

from veo_relay.errors import ProviderError

# Refusals at submit time whose status proves that no task was created.
_HTTP_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    402: "insufficient_credits",
    403: "unauthorized",
    404: "task_not_found",
    422: "invalid_request",
    429: "rate_limited",
    455: "provider_unavailable",
    500: "provider_error",
    501: "generation_failed",
    502: "provider_unavailable",
    503: "provider_unavailable",
    504: "provider_unavailable",
}
_RETRYABLE = frozenset({429, 455, 500, 502, 503, 504})

_CONTENT_MARKERS = ("CONTENT", "NSFW", "SENSITIVE", "PROHIBITED", "SAFETY", "POLICY")


def error_for_status(
    status: int, raw_message: str | None, raw_code: str | None = None
) -> ProviderError:
    code = _HTTP_STATUS_CODES.get(status, "provider_error" if status >= 500 else "invalid_request")
    return ProviderError(
        code,
        f"provider answered {status}: {raw_message or 'no message'}",
        raw_code=raw_code or str(status),
        raw_message=raw_message,
        retryable=status in _RETRYABLE,
    )


def code_for_failure(raw_code: str | None) -> str:
    """Maps a provider's task failure code (an opaque string) to ours."""
    normalized = (raw_code or "").upper()
    if any(marker in normalized for marker in _CONTENT_MARKERS):
        return "content_violation"
    if "TIMEOUT" in normalized:
        return "timeout"
    if "CREDIT" in normalized or "BALANCE" in normalized:
        return "insufficient_credits"
    if "TASKID" in normalized or "NOT_FOUND" in normalized:
        return "task_not_found"
    return "generation_failed"
