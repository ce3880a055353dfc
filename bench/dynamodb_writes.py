"""Every DynamoDB write request the embedded AWS serves, on every table, whoever sends it.

Counted where moto answers the API (its DynamoHandler), not in our clients: PynamoDB's own
botocore sessions, Powertools and the state machine's DynamoDB integration are all seen, and a
new write path is counted without changing this module. A write whose condition fails is counted
too (DynamoDB bills it) and marked as such.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

WRITE_ACTIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
)
_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Write:
    action: str  # PutItem, UpdateItem, ...
    table: str
    key: str  # "task" for a task item, else the item's id (e.g. submit-schedule#apixo)
    detail: str  # for an update: what it sets, removes or adds
    ok: bool

    def describe(self) -> str:
        text = f"{self.action} {self.table}[{self.key}]"
        text += f" {self.detail}" if self.detail else ""
        return text + ("" if self.ok else " (condition failed)")


class WriteLog:
    def __init__(self) -> None:
        self._writes: list[Write] = []
        self._lock = threading.Lock()

    def install(self) -> WriteLog:
        from moto.dynamodb.responses import DynamoHandler

        for action in WRITE_ACTIONS:
            setattr(DynamoHandler, action, self._wrap(action, getattr(DynamoHandler, action)))
        return self

    def take(self) -> list[Write]:
        """The writes since the last take."""
        with self._lock:
            taken, self._writes = self._writes, []
        return taken

    def _wrap(self, action: str, original: Any) -> Any:
        log = self

        def counted(handler: Any) -> Any:
            body = dict(getattr(handler, "body", None) or {})
            try:
                response = original(handler)
            except BaseException:
                log._add(action, body, ok=False)
                raise
            log._add(action, body, ok=True)
            return response

        return counted

    def _add(self, action: str, body: dict[str, Any], ok: bool) -> None:
        name = "".join(part.title() for part in action.split("_"))
        write = Write(name, _table(body), _key(body), _detail(action, body), ok)
        with self._lock:
            self._writes.append(write)


def _table(body: dict[str, Any]) -> str:
    if "TableName" in body:
        return str(body["TableName"])
    tables = {
        next(iter(op.values())).get("TableName", "?")
        for op in body.get("TransactItems", [])
        if isinstance(op, dict) and op
    } | set(body.get("RequestItems", {}))
    return ",".join(sorted(tables)) or "?"


def _key(body: dict[str, Any]) -> str:
    if "TransactItems" in body:
        return f"{len(body['TransactItems'])} items"
    if "RequestItems" in body:
        return f"{sum(len(v) for v in body['RequestItems'].values())} items"
    item = body.get("Key") or body.get("Item") or {}
    first: Any = next(iter(item.values()), {}) if item else {}
    value = str(next(iter(first.values()), "?")) if isinstance(first, dict) and first else "?"
    return "task" if value.startswith("vid_") else value


def _detail(action: str, body: dict[str, Any]) -> str:
    """`SET status=storing, updated_at` from an UpdateExpression and its names and values."""
    if action != "update_item" or "UpdateExpression" not in body:
        return ""
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    expression = re.sub(
        r"#\w+", lambda m: names.get(m.group(0), m.group(0)), body["UpdateExpression"]
    )
    parts = _CLAUSE.split(expression)[1:]
    described = []
    for verb, clause in zip(parts[::2], parts[1::2], strict=True):
        targets = []
        for assignment in _split_top_level(clause):
            target, _, value = assignment.partition("=")
            attribute = target.split()[0] if target.split() else target
            shown = values.get(value.strip(), {}).get("S") if attribute == "status" else None
            targets.append(f"status={shown}" if shown else attribute)
        described.append(f"{verb.upper()} {', '.join(targets)}")
    return " ".join(described)


def _split_top_level(clause: str) -> list[str]:
    """Comma-separated actions, commas inside function calls (list_append(a, b)) kept."""
    pieces, depth, current = [], 0, ""
    for char in clause:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            pieces.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        pieces.append(current.strip())
    return pieces
