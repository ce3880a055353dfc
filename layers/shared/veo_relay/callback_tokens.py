"""Callback tokens `{task_id}.{attempt}.{mac}`, derived when a URL is handed out or checked, never
stored or queued.

`mac` is HMAC-SHA256 of the provider, the task id and the submit attempt under the callback token
key (a Secrets Manager secret), base64url without padding. Each submit attempt of a task has its
own number (TaskStore.claim_submit counts them), so a URL handed to one provider works neither for
the next one `auto` offers the task to, nor on another provider's path.

Its own small module so that the callback function's cold start does not import task creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

# Exactly the shapes minted: a task id (tasks.new_task_id, idempotency.binding_for), an attempt
# without leading zeros, 43 base64url characters (256 bits). ASCII only: \d would take other
# scripts' digits.
_FORM = re.compile(r"(vid_[0-9a-f]{24})\.([1-9][0-9]{0,5})\.([A-Za-z0-9_-]{43})", re.ASCII)
MAX_TOKEN_LENGTH = 4 + 24 + 1 + 6 + 1 + 43


@dataclass(frozen=True)
class CallbackToken:
    task_id: str
    attempt: int
    mac: str


def parse_token(token: str) -> CallbackToken | None:
    """The token's parts when it has the form of one, else None; no I/O, no key."""
    match = _FORM.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        return None
    task_id, attempt, mac = match.groups()
    return CallbackToken(task_id, int(attempt), mac)


class CallbackTokens:
    """Mints and checks tokens under the key, which `key` reads (through the secrets cache)."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    def mint(self, provider: str, task_id: str, attempt: int) -> str:
        return f"{task_id}.{attempt}.{self._mac(provider, task_id, attempt)}"

    def verify(self, provider: str, token: str) -> CallbackToken | None:
        """The token, when it is one this key minted for `provider`; the form is checked first,
        so that a malformed token costs no read of the key."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        expected = self._mac(provider, parsed.task_id, parsed.attempt)
        return parsed if hmac.compare_digest(expected, parsed.mac) else None

    def _mac(self, provider: str, task_id: str, attempt: int) -> str:
        message = f"{provider}.{task_id}.{attempt}".encode()
        digest = hmac.new(self._key(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
