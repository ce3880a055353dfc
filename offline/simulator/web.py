"""Small request/response/route types shared by the HTTP server and the protocol modules."""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_BEARER = re.compile(r"Bearer\s+(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes

    def bearer_token(self) -> str | None:
        match = _BEARER.fullmatch(self.headers.get("authorization", "").strip())
        return match.group(1) if match else None

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            parsed = json.loads(self.body or b"null")
        except (UnicodeDecodeError, ValueError):
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def fingerprint(self) -> str:
        """Identifies "the same create request": same route and the same JSON body."""
        parsed = self.json_object()
        canonical = json.dumps(parsed, sort_keys=True) if parsed is not None else repr(self.body)
        return hashlib.sha256(f"{self.method} {self.path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class SimResponse:
    status: int
    body: dict[str, Any]
    created_task_id: str | None = None

    @property
    def envelope_code(self) -> int | None:
        code = self.body.get("code")
        return code if isinstance(code, int) else None


Handler = Callable[[SimRequest, re.Match[str]], SimResponse]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    creates_task: bool = False  # recorded as a submission for introspection


def route(method: str, path_regex: str, handler: Handler, *, creates_task: bool = False) -> Route:
    return Route(method, re.compile(path_regex), handler, creates_task)
