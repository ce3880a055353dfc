"""kie.ai's envelope and records, shared by its adapter (veo_relay.providers.kie) and its
upgrades (veo_relay.providers.kie_upgrades): `{code, msg, data}` bodies whose `code` carries the
outcome even in an HTTP 200, and record-info's `successFlag` records (reference/providers.md §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from veo_relay.errors import ProviderError
from veo_relay.json_input import parse_json
from veo_relay.providers.base import ProviderState, ProviderStatus, TaskKind
from veo_relay.providers.http import json_body
from veo_relay.providers.taxonomy import code_for_failure, describe, error_for_status
from veo_relay.tasks import TaskError


def envelope_body(response: requests.Response) -> dict[str, Any]:
    """The body when both the HTTP status and the body `code` are 200; otherwise the refusal.

    kie reports errors as HTTP 200 with the code in the body; a real non-200 status still
    happens (a 404 route, a gateway error, Cloudflare's bare-text 403 "error code: 1010").
    """
    if response.status_code != 200:
        try:
            body: dict[str, Any] | None = json_body(response)
        except ProviderError:
            body = None
        if body is not None:
            raise error_for_status(response.status_code, text_value(body.get("msg")), _code(body))
        text = response.text.strip()[:200]
        if response.status_code == 403 and text.lower().startswith("error code"):
            text = f"Cloudflare refused the request ({text})"
        raise error_for_status(response.status_code, text or None)
    body = json_body(response)
    code = int_value(body.get("code"))
    if code == 200:
        return body
    if code is None:
        raise ProviderError("provider_error", "kie answered without an envelope code")
    raise error_for_status(code, text_value(body.get("msg")))


def status_from_record(data: Mapping[str, Any], kind: TaskKind) -> ProviderStatus:
    flag = int_value(data.get("successFlag"))
    if flag == 1:
        return ProviderStatus(ProviderState.SUCCEEDED, video_urls=_result_urls(data, kind))
    if flag in (2, 3):
        # errorCode is documented as int or null; live answers also send the string "null".
        raw_code = _error_code(data.get("errorCode"))
        message = text_value(data.get("errorMessage"))
        code = code_for_failure(raw_code, message)
        error = TaskError(
            code=code,
            message=describe(code),
            provider_code=raw_code,
            provider_message=message,
        )
        return ProviderStatus(ProviderState.FAILED, error=error)
    # 0: generating. kie has no separate pending state.
    return ProviderStatus(ProviderState.RUNNING)


def _result_urls(data: Mapping[str, Any], kind: TaskKind) -> tuple[str, ...]:
    response = data.get("response")
    response = response if isinstance(response, dict) else {}
    if kind is TaskKind.EXTEND:
        # Undocumented, but third-party clients read it for extend tasks: the stitched full video
        # (original + extension). The full video is what an extension's task must hold, as with
        # apimart's remix (whole video by default); resultUrls stays the fallback.
        full = url_list(response.get("fullResultUrls"))
        if full:
            return full
    # originUrls (the pre-crop render when not 16:9) is never the result.
    urls = url_list(response.get("resultUrls"))
    if not urls:
        # The quickstart's stale pattern put them at data.resultUrls (as a JSON string).
        urls = url_list(data.get("resultUrls"))
    if not urls:
        raise ProviderError("provider_error", "kie reported success without response.resultUrls")
    return urls


def url_list(value: Any) -> tuple[str, ...]:
    """An array of URLs, or the same array as a JSON string (the callback schema's type), or a
    bare URL."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = parse_json(text)
            except ValueError:
                return ()
        else:
            value = [text] if text.startswith(("https://", "http://")) else []
    if not isinstance(value, list):
        return ()
    return tuple(url for url in value if isinstance(url, str) and url)


def _error_code(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return None if text.lower() in ("", "null", "none") else text


def _code(body: Mapping[str, Any]) -> str | None:
    code = body.get("code")
    return None if code is None else str(code)


def int_value(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def text_value(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
