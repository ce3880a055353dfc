"""Behaviour tags that a prompt can carry, e.g. `a cat [sim:fail=CONTENT_VIOLATION] [sim:delay=5]`.

| tag                        | effect                                                     |
| `[sim:no-callback]`        | never calls back (only polling can finish the task)       |
| `[sim:fail=CODE]`          | the task fails with that provider failure code            |
| `[sim:duplicate-callback]` | sends the same callback three times                       |
| `[sim:delay=S]`            | finishes after S seconds (float)                          |
| `[sim:size=BYTES]`         | the result video has that size: from PLAYABLE_MP4_SIZE,    |
|                            | 1131 bytes, the playable H.264 clip padded; below, an MP4  |
|                            | with no frames; under SMALLEST_MP4_SIZE, 479 bytes, a      |
|                            | cut-off MP4, which the downloader refuses                  |
| `[sim:status-errors=N]`    | the first N status reads of the task answer 500/503       |
| `[sim:upgrade-never]`      | kie: a 1080p upgrade never becomes ready, a 4K task never  |
|                            | finishes (nor calls back)                                  |
| `[sim:4k-fail]`            | kie: the 4K task fails (code 500) and calls back so        |
| `[sim:4k-callback=snake]`  | kie: the 4K callback has the OpenAPI schema's snake_case   |
|                            | shape (data.task_id, result_urls, ...) instead of the      |
|                            | callbacks page's (data.taskId, info.resultUrls, ...)       |

An upgrade (kie's 1080p and 4K) obeys the tags of the task it upgrades: its delay is that task's
`[sim:delay=S]` (else the default), and `[sim:no-callback]`, `[sim:duplicate-callback]` apply to
the 4K callback.

Unknown tags and malformed values are ignored, so a typo degrades to default behaviour.
"""

import re
from dataclasses import dataclass
from typing import Any

_TAG = re.compile(r"\[sim:([a-z0-9-]+)(?:=([^\]\s]*))?\]")
_FAIL_CODE = re.compile(r"[A-Za-z0-9_.:-]+")
# Tags without a value, by the SimTags field they turn on.
_SWITCHES = {
    "no-callback": "no_callback",
    "duplicate-callback": "duplicate_callback",
    "upgrade-never": "upgrade_never",
    "4k-fail": "fail_4k",
}


@dataclass(frozen=True)
class TagGuide:
    """One tag as the local console offers it: `[sim:name]`, or `[sim:name=value]` when `value`
    names what goes after the `=` (`example` is one such value)."""

    name: str
    value: str | None
    example: str | None
    effect: str


# Every tag parse_tags reads (a unit test holds the two together), in the table's order.
GUIDE = (
    TagGuide("no-callback", None, None, "never calls back (only polling can finish the task)"),
    TagGuide("fail", "CODE", "CONTENT_VIOLATION", "the task fails with that provider code"),
    TagGuide("duplicate-callback", None, None, "sends the same callback three times"),
    TagGuide("delay", "S", "5", "finishes after S seconds"),
    TagGuide("size", "BYTES", "300000", "the result video has that size"),
    TagGuide("status-errors", "N", "2", "the first N status reads answer 500/503"),
    TagGuide("upgrade-never", None, None, "kie: a 1080p/4K upgrade never becomes ready"),
    TagGuide("4k-fail", None, None, "kie: the 4K task fails"),
    TagGuide("4k-callback", "snake", "snake", "kie: the 4K callback in snake_case"),
)


@dataclass(frozen=True)
class SimTags:
    no_callback: bool = False
    fail_code: str | None = None
    duplicate_callback: bool = False
    delay_seconds: float | None = None
    size_bytes: int | None = None
    status_errors: int = 0
    upgrade_never: bool = False
    fail_4k: bool = False
    snake_case_4k_callback: bool = False


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
    found: dict[str, Any] = {}  # SimTags field -> value
    for name, value in _TAG.findall(prompt):
        if name in _SWITCHES:
            found[_SWITCHES[name]] = True
        elif name == "fail" and _FAIL_CODE.fullmatch(value):
            found["fail_code"] = value
        elif name == "delay" and (seconds := _non_negative_float(value)) is not None:
            found["delay_seconds"] = seconds
        elif name == "size" and (size := _non_negative_int(value)) is not None:
            found["size_bytes"] = size
        elif name == "status-errors" and (count := _non_negative_int(value)) is not None:
            found["status_errors"] = count
        elif name == "4k-callback" and value in ("snake", "camel"):
            found["snake_case_4k_callback"] = value == "snake"
    return SimTags(**found)
