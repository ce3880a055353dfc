"""Percentiles and the units the report prints."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

MIB = 1024 * 1024


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): a value that was really observed."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / MIB:.1f} MiB"


def size_name(n_bytes: int) -> str:
    if n_bytes >= 1024**3 and n_bytes % 1024**3 == 0:
        return f"{n_bytes // 1024**3} GiB"
    if n_bytes >= MIB and n_bytes % MIB == 0:
        return f"{n_bytes // MIB} MiB"
    return f"{n_bytes // 1024} KiB"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"
