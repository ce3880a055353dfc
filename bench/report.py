"""Rows, sections and the markdown report with the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MET, MISSED, NO_TARGET = "met", "**missed**", "—"


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    result: str = NO_TARGET


@dataclass
class SectionResult:
    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "rows": [asdict(r) for r in self.rows], "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SectionResult:
        return cls(data["name"], [Row(**r) for r in data["rows"]], list(data["notes"]))


def verdict(ok: bool) -> str:
    return MET if ok else MISSED


def render(sections: list[SectionResult], machine: dict[str, str], mode: str) -> str:
    header = ("figure", "value", "baseline beside it", "ratio", "target", "result")
    lines = [
        "# Performance",
        "",
        f"`make bench` ({mode}), {machine['date']}. Each figure was measured beside its baseline",
        "in the same run (the machine is shared and noisy: compare ratios between runs, not",
        "values). A missed target stays missed here; targets are never loosened.",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine.items()),
        "",
        "## Figures",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    for section in sections:
        for row in section.rows:
            cells = (row.figure, row.value, row.baseline, row.ratio, row.target, row.result)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    notes = [(s.name, n) for s in sections for n in s.notes]
    if notes:
        lines += ["", "## Notes", ""]
        for name, note in notes:
            lines.append(f"- **{name}**: {note}")
    return "\n".join(lines) + "\n"


def table_only(markdown: str) -> str:
    """The report's table (what `make bench` prints), without the surrounding prose."""
    return "\n".join(line for line in markdown.splitlines() if line.startswith("|"))


def machine_info() -> dict[str, str]:
    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    meminfo = _read("/proc/meminfo")
    mem_kib = next((int(line.split()[1]) for line in meminfo.splitlines() if "MemTotal" in line), 0)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": model,
        "cores": f"{os.cpu_count()} ({usable} usable by this process)",
        "memory": f"{mem_kib / 1024**2:.1f} GiB",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "Python": sys.version.split()[0] + f" ({sys.executable})",
        "OS": _os_name(),
        "commit": _commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _os_name() -> str:
    release = _read("/etc/os-release")
    pretty = next(
        (
            line.split("=", 1)[1].strip('"')
            for line in release.splitlines()
            if "PRETTY_NAME" in line
        ),
        "",
    )
    return f"{pretty or platform.system()}, kernel {platform.release()}"


def _commit() -> str:
    """HEAD, and whether the working tree had uncommitted changes (it is shared while we run)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
