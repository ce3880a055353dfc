"""Per-task callback tokens `{task_id}.{secret}`, kept only as a SHA-256, compared in constant
time.

Its own small module so that the callback function's cold start does not import task creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token(task_id: str) -> str:
    return f"{task_id}.{secrets.token_urlsafe(24)}"  # 192 random bits


def task_id_of(token: str) -> str:
    return token.split(".", 1)[0]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, expected_hash: str | None) -> bool:
    return expected_hash is not None and hmac.compare_digest(token_hash(token), expected_hash)
