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
    # kie: "system is under maintenance".
    455: "provider_unavailable",
    500: "provider_error",
    # kie: "generation failed" / "extension failed".
    501: "generation_failed",
    502: "provider_unavailable",
    503: "provider_unavailable",
    504: "provider_unavailable",
    # kie: "the requested feature is currently disabled". Not worth retrying soon, but a refusal
    # of the whole feature rather than of this request, so the provider is what is unavailable.
    505: "provider_unavailable",
}
_RETRYABLE = frozenset({429, 455, 500, 502, 503, 504})
# A refusal with one of these proves that the submit created nothing; a 500, 501, 502 or 504 may
# have come after the provider created the task, so its outcome is unknown.
_CREATED_NOTHING = frozenset({400, 401, 402, 403, 404, 422, 429, 455, 503, 505})
# Input refusals whose message can say more than the status does (apixo answers "Insufficient
# credits" and TASKID_ERROR with a 400; kie a missing record with a 422).
_REFINED_BY_MESSAGE = frozenset({400, 422})

_CONTENT_MARKERS = ("CONTENT", "NSFW", "SENSITIVE", "PROHIBITED", "SAFETY", "POLICY")

# Phrases in a provider's free-text message, lower case. Checked after the code's own markers.
_REFUSAL_MESSAGE_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "task_not_found",
        (
            "taskid_error",
            "taskid not found",
            "task not found",
            "record is null",
            "recordinfo is null",
            "records within 14 days",
        ),
    ),
    ("insufficient_credits", ("insufficient credit", "insufficient balance")),
    (
        "content_violation",
        (
            "content polic",
            "usage polic",
            "content violat",
            "violates content",
            "content violates",
            "flagged",
            "nsfw",
            "sensitive content",
            "prohibited",
            "safety guideline",
        ),
    ),
)
# A task's failure may also say it timed out; a refusal never maps to "timeout", which means an
# unknown outcome (the submit itself timed out).
_FAILURE_MESSAGE_MARKERS = (
    *_REFUSAL_MESSAGE_MARKERS,
    ("timeout", ("timeout", "timed out")),
)

# Numeric failure codes (kie's errorCode) that say more than "it failed".
_NUMERIC_FAILURE_CODES = {
    402: "insufficient_credits",
    404: "task_not_found",
    408: "timeout",  # kie: no upstream result for more than 10 minutes
}


# What a client is told of each code. Never the provider's own words: they are whatever answered
# (a gateway's page, an internal body behind a redirect) and stay on the record for audit only.
_DESCRIPTIONS = {
    "invalid_request": "the provider refused the request as invalid",
    "unauthorized": "the provider refused our credentials",
    "insufficient_credits": "the provider account has insufficient credits",
    "task_not_found": "the provider does not know the task",
    "rate_limited": "the provider is rate limiting requests; retry later",
    "provider_unavailable": "the provider is unavailable; retry later",
    "provider_error": "the provider failed",
    "generation_failed": "the provider could not generate the video",
    "content_violation": "the provider refused the content under its content policy",
    "timeout": "the provider did not finish in time",
}


def describe(code: str) -> str:
    """The client-visible message for one of the taxonomy's codes."""
    return _DESCRIPTIONS.get(code, "the provider failed")


def error_for_status(
    status: int, raw_message: str | None, raw_code: str | None = None, *, code: str | None = None
) -> ProviderError:
    """A provider's refusal as a ProviderError. `code` overrides the taxonomy's choice; without it,
    a 400 or 422 whose message is specific (a missing task, no credits, a content refusal) maps
    to that, and otherwise the status decides."""
    if code is None and status in _REFINED_BY_MESSAGE:
        code = _code_in_message(raw_message, _REFUSAL_MESSAGE_MARKERS)
    if code is None:
        code = _HTTP_STATUS_CODES.get(
            status, "provider_error" if status >= 500 else "invalid_request"
        )
    return ProviderError(
        code,
        f"provider answered {status}: {describe(code)}",
        raw_code=raw_code or str(status),
        raw_message=raw_message,
        retryable=status in _RETRYABLE,
        created_nothing=status in _CREATED_NOTHING,
    )


def code_for_failure(raw_code: str | None, raw_message: str | None = None) -> str:
    """Maps a provider's task failure code (an opaque string, or kie's number) to ours; when the
    code says nothing specific, the message may."""
    normalized = (raw_code or "").strip().upper()
    if any(marker in normalized for marker in _CONTENT_MARKERS):
        return "content_violation"
    if "TIMEOUT" in normalized:
        return "timeout"
    if "CREDIT" in normalized or "BALANCE" in normalized:
        return "insufficient_credits"
    if "TASKID" in normalized or "NOT_FOUND" in normalized:
        return "task_not_found"
    if normalized.isdigit() and int(normalized) in _NUMERIC_FAILURE_CODES:
        return _NUMERIC_FAILURE_CODES[int(normalized)]
    return _code_in_message(raw_message, _FAILURE_MESSAGE_MARKERS) or "generation_failed"


def _code_in_message(
    raw_message: str | None, markers: tuple[tuple[str, tuple[str, ...]], ...]
) -> str | None:
    text = raw_message.lower() if isinstance(raw_message, str) else ""
    for code, phrases in markers:
        if any(phrase in text for phrase in phrases):
            return code
    return None
