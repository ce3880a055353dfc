"""Domain errors to HTTP, in one place, with one body shape: {"error": {"code", "message"}}."""

from __future__ import annotations

from typing import Any

from veo_relay.errors import (
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
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or "body"
    message = first.get("msg", "is invalid")
    if first.get("type") == "extra_forbidden":
        message = "is not a known field"
    elif first.get("type") == "missing":
        message = "is required"
    return 422, f"{field}: {message}"
