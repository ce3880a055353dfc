"""Refusing what API Gateway passes on before the resolver reads it: too large, not JSON, not
valid base64, nested too deeply."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from veo_relay.json_input import MalformedJson, parse_json

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
