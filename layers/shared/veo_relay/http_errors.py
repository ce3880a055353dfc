"""Domain errors to HTTP, in one place, with one body shape: {"error": {"code", "message"}}."""

from __future__ import annotations

import base64
import binascii
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
from veo_relay.json_input import MalformedJson, parse_json

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


# Far above any valid body (a 10,000-character prompt, three image URLs); API Gateway's own
# limit is 10 MB.
MAX_BODY_BYTES = 64 * 1024


def refuse_raw_request(event: dict[str, Any]) -> tuple[int, str, str] | None:
    """What is wrong with a request before the resolver parses it (size, media type, encoding,
    JSON that is invalid or nested too deeply), if anything: (status, code, message)."""
    body = event.get("body") or ""
    if not body:
        return None
    try:
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    except (binascii.Error, UnicodeEncodeError):
        return 400, "invalid_request", "body: is not valid base64"
    if len(raw) > MAX_BODY_BYTES:
        return 413, "payload_too_large", f"body: larger than {MAX_BODY_BYTES} bytes"
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type != "application/json":
        return 415, "unsupported_media_type", "Content-Type: must be application/json"
    try:
        parse_json(raw)  # what the resolver's own parse (the same parser) would refuse
    except MalformedJson as exc:
        return 400, "invalid_request", f"body: {exc.reason}"
    return None


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
