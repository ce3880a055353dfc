"""Reading `python -X importtime`: which packages dominate an import, and who pulled them in."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    depth: int
    self_us: int
    cumulative_us: int


def profile(command: Sequence[str], module: str, env: Mapping[str, str]) -> list[Entry]:
    """The import tree of `module` (post-order, as the interpreter prints it), startup left out;
    `command` runs the import under `-X importtime`."""
    done = subprocess.run(list(command), env=dict(env), capture_output=True, text=True)
    entries = [e for e in map(_parse, done.stderr.splitlines()) if e is not None]
    end = next(i for i, e in enumerate(entries) if e.name == module and e.depth == 0)
    start = end
    while start > 0 and entries[start - 1].depth > 0:
        start -= 1
    return entries[start : end + 1]


def _parse(line: str) -> Entry | None:
    if not line.startswith("import time:") or "imported package" in line:
        return None
    head, cumulative, name = line.split("|", 2)
    label = name[1:]  # one space after the bar, then two per level
    return Entry(
        name=label.strip(),
        depth=(len(label) - len(label.lstrip(" "))) // 2,
        self_us=int(head.removeprefix("import time:")),
        cumulative_us=int(cumulative),
    )


def summary(entries: list[Entry], top: int = 5) -> str:
    """The heaviest packages (own time of all their modules) and the chain that imported each."""
    by_package: dict[str, int] = defaultdict(int)
    for entry in entries[:-1]:
        by_package[entry.name.split(".")[0]] += entry.self_us
    total = entries[-1].cumulative_us
    heaviest = sorted(by_package.items(), key=lambda item: -item[1])[:top]
    parts = [
        f"{package} {us / 1000:.0f} ms via {' → '.join(_chain(entries, package))}"
        for package, us in heaviest
    ]
    return f"import of {entries[-1].name} {total / 1000:.0f} ms; heaviest packages: " + "; ".join(
        parts
    )


def _chain(entries: list[Entry], package: str) -> list[str]:
    """Our last module (app or veo_relay) → ... → the outermost module of `package` (a module's
    parents follow it in post-order, each one level less deep), the middle elided when long."""
    mine = [i for i, e in enumerate(entries) if e.name.split(".")[0] == package]
    index = min(mine, key=lambda i: entries[i].depth)
    chain = [entries[index].name]
    depth = entries[index].depth
    for entry in entries[index + 1 :]:
        if entry.depth < depth:
            chain.append(entry.name)
            depth = entry.depth
    chain.reverse()
    own = [i for i, name in enumerate(chain) if name == "app" or name.startswith("veo_relay")]
    chain = chain[own[-1] :] if own else chain
    if len(chain) > 4:
        chain = [chain[0], chain[1], "…", chain[-1]]
    return [name if name == "…" else f"`{name}`" for name in chain]
