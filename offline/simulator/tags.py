"""Behaviour tags that a prompt can carry, e.g. `a cat [sim:fail=CONTENT_VIOLATION] [sim:delay=5]`.

| tag                        | effect                                                     |
| `[sim:no-callback]`        | never calls back (only polling can finish the task)       |
| `[sim:fail=CODE]`          | the task fails with that provider failure code            |
| `[sim:duplicate-callback]` | sends the same callback three times                       |
| `[sim:delay=S]`            | finishes after S seconds (float)                          |
| `[sim:size=BYTES]`         | the result video has that size (under SMALLEST_MP4_SIZE,   |
|                            | 479 bytes, a cut-off MP4, which the downloader refuses)    |
| `[sim:status-errors=N]`    | the first N status reads of the task answer 500/503       |

Unknown tags and malformed values are ignored, so a typo degrades to default behaviour.
"""

import re
from dataclasses import dataclass, replace

_TAG = re.compile(r"\[sim:([a-z-]+)(?:=([^\]\s]*))?\]")
_FAIL_CODE = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclass(frozen=True)
class SimTags:
    no_callback: bool = False
    fail_code: str | None = None
    duplicate_callback: bool = False
    delay_seconds: float | None = None
    size_bytes: int | None = None
    status_errors: int = 0


def _non_negative_float(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def _non_negative_int(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def parse_tags(prompt: str) -> SimTags:
    """Read every `[sim:...]` tag in `prompt`; later tags win over earlier ones."""
    tags = SimTags()
    for name, value in _TAG.findall(prompt):
        if name == "no-callback":
            tags = replace(tags, no_callback=True)
        elif name == "duplicate-callback":
            tags = replace(tags, duplicate_callback=True)
        elif name == "fail" and _FAIL_CODE.fullmatch(value):
            tags = replace(tags, fail_code=value)
        elif name == "delay" and (seconds := _non_negative_float(value)) is not None:
            tags = replace(tags, delay_seconds=seconds)
        elif name == "size" and (size := _non_negative_int(value)) is not None:
            tags = replace(tags, size_bytes=size)
        elif name == "status-errors" and (count := _non_negative_int(value)) is not None:
            tags = replace(tags, status_errors=count)
    return tags
