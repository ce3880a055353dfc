"""Field checks shared by the protocols. They raise `InvalidInput`; each protocol turns that into
its own error envelope."""

from collections.abc import Collection, Mapping
from typing import Any, TypeVar, cast

Choice = TypeVar("Choice", bound=str)

MAX_PROMPT_LENGTH = 10_000


class InvalidInput(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def prompt(body: Mapping[str, Any], key: str, label: str) -> str:
    value = body.get(key)
    if value is None or value == "":
        raise InvalidInput(f"Missing required field: {label}")
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{label} must be a non-empty string")
    if len(value) > MAX_PROMPT_LENGTH:
        raise InvalidInput(f"{label} must be at most {MAX_PROMPT_LENGTH} characters")
    return value


def choice(
    body: Mapping[str, Any], key: str, label: str, allowed: Collection[Choice], default: Choice
) -> Choice:
    value = body.get(key, default)
    if value not in allowed:
        raise InvalidInput(f"{label} must be one of {', '.join(allowed)}")
    return cast(Choice, value)


def optional_text(body: Mapping[str, Any], key: str, label: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{label} must be a string")
    return value


def optional_url(body: Mapping[str, Any], key: str, label: str) -> str | None:
    value = optional_text(body, key, label)
    if value is not None and not value.startswith(("http://", "https://")):
        raise InvalidInput(f"{label} must be an http(s) URL")
    return value


def optional_integer(
    body: Mapping[str, Any],
    key: str,
    label: str,
    *,
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{label} must be an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidInput(f"{label} must be between {low} and {high}")
    return value


def optional_boolean(body: Mapping[str, Any], key: str, label: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f"{label} must be a boolean")
    return value


def url_list(body: Mapping[str, Any], key: str, label: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item.startswith(("http://", "https://")) for item in value
    ):
        raise InvalidInput(f"{label} must be an array of http(s) URLs")
    return value


def count_between(items: list[str], label: str, low: int, high: int, context: str) -> None:
    if not low <= len(items) <= high:
        raise InvalidInput(f"{label} must hold {low} to {high} URLs for {context}")
