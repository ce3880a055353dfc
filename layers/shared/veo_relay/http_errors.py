"""Domain errors to HTTP, in one place, with one body shape: {"error": {"code", "message"}}."""

from __future__ import annotations

from typing import Any

from veo_relay.errors import (
    BudgetExceeded,
    CreatesThrottled,
    InvalidCallback,
    InvalidRequest,
    ProviderError,
    TaskConflict,
    TaskNotFound,
    Unauthenticated,
    VeoRelayError,
)

_PROVIDER_STATUS = {"provider_unavailable": 503, "rate_limited": 503}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def status_for(exc: VeoRelayError) -> int:
    if isinstance(exc, InvalidRequest):
        return 422
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, TaskNotFound):
        return 404
    if isinstance(exc, TaskConflict):
        return 409
    if isinstance(exc, BudgetExceeded):
        return 402
    if isinstance(exc, CreatesThrottled):
        return 429
    if isinstance(exc, InvalidCallback):
        return 401
    if isinstance(exc, ProviderError):
        return _PROVIDER_STATUS.get(exc.code, 502)
    return 500


def validation_message(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """Pydantic's errors as one message naming the field; malformed JSON is a 400."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return 400, "body: is not valid JSON"
    field = _field_name(first.get("loc", ()))
    message = first.get("msg", "is invalid")
    if first.get("type") == "extra_forbidden":
        message = "is not a known field"
    elif first.get("type") == "missing":
        message = "is required"
    return 422, f"{field}: {message}"


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    """("body", "image_urls", 0) -> "image_urls[0]", as the domain's own rules name it."""
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part not in ("body", "query", "path"):
            name += f".{part}" if name else str(part)
    return name or "body"


_THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


def unexpected_error(exc: Exception) -> tuple[int, str, str]:
    """An error no domain rule expected (an AWS fault): 503 when AWS throttled us, so the caller
    retries; 500 otherwise. Never the exception's text: it may name internals."""
    code = getattr(exc, "cause_response_code", None)  # PynamoDB's
    response = getattr(exc, "response", None)  # botocore's ClientError
    if code is None and isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
    if code in _THROTTLING_CODES:
        return 503, "service_unavailable", "the service is busy; retry shortly"
    return 500, "internal_error", "an unexpected error occurred; it has been logged"
