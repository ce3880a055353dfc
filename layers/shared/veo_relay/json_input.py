"""The one parser for JSON from outside (client bodies, cursors, provider bodies and callbacks).

Python's json recurses once per level, so a 2 KB body nested 1,000 deep raises RecursionError
(not ValueError) wherever it is parsed; and an integer of more than 4,300 digits raises a bare
ValueError. Here both are a MalformedJson, a JSONDecodeError, so every caller that already
handles invalid JSON (Powertools' validation included) handles these too.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Far deeper than any body we accept or any provider sends (four or five levels).
MAX_DEPTH = 32
# An integer longer than this is read as a float (infinite past 308 digits), which no integer
# field accepts: validation then names the field, and no digit-limit error can occur.
MAX_INTEGER_DIGITS = 100

# The characters that open or close a level or a string, or escape the next one.
_SPECIAL = re.compile(r'[\[\]{}"\\]')


class MalformedJson(json.JSONDecodeError):
    """`reason` completes "body: ..." (or a cursor's field name)."""

    def __init__(self, reason: str, doc: str = "", pos: int = 0) -> None:
        super().__init__(reason, doc, pos)
        self.reason = reason


def parse_json(raw: str | bytes) -> Any:
    """Strict JSON (no NaN or Infinity) of at most MAX_DEPTH levels, as UTF-8 when bytes."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise MalformedJson("is not valid UTF-8 JSON") from None
    _check_depth(text)
    try:
        return json.loads(text, parse_int=_integer, parse_constant=_refuse_constant)
    except MalformedJson:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedJson("is not valid JSON", exc.doc, exc.pos) from None
    except (ValueError, RecursionError):  # defence in depth: the checks above prevent both
        raise MalformedJson("is not valid JSON") from None


def _check_depth(text: str) -> None:
    """One pass, no recursion and no backtracking: brackets inside strings are not levels."""
    depth = 0
    in_string = False
    escaped = -1  # the position of the character a backslash escapes
    for match in _SPECIAL.finditer(text):
        char, position = match.group(), match.start()
        if in_string:
            if position == escaped:
                continue
            if char == "\\":
                escaped = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedJson(
                    f"is nested too deeply (more than {MAX_DEPTH} levels)", text, position
                )
        elif char in "]}":
            depth -= 1


def _integer(digits: str) -> int | float:
    return int(digits) if len(digits) <= MAX_INTEGER_DIGITS else float(digits)


def _refuse_constant(name: str) -> Any:
    raise MalformedJson(f"is not valid JSON ({name} is not a JSON number)")
