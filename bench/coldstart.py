"""Cold start: importing each function's handler module in a fresh interpreter, beside
`python -c "import boto3"` timed in the same loop."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench import importtime
from bench.procs import LAYER, REGION
from bench.report import MISSED, NO_TARGET, ROOT, Row, SectionResult, verdict
from bench.stats import median, ms, ratio

FUNCTIONS = ROOT / "functions"
BASELINE = "baseline"
# Times the boto3 import each handler may take at most; the others are reported only.
TARGETS = {"callback": 1.5, "poller": 1.5, "api": 2.0}
# Packages worth knowing about when they load at import rather than at first use.
HEAVY = ("boto3", "botocore", "pynamodb", "pydantic", "requests", "aws_xray_sdk")


def run(quick: bool) -> SectionResult:
    runs = 3 if quick else 10
    names = sorted(path.parent.name for path in FUNCTIONS.glob("*/app.py"))
    env = {
        **os.environ,
        "PYTHONPATH": str(LAYER),
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "veo-relay",
    }
    commands = {BASELINE: (ROOT, "boto3")}
    commands.update({name: (FUNCTIONS / name, "app") for name in names})
    samples: dict[str, list[float]] = {name: [] for name in commands}
    errors: dict[str, str] = {}
    # Round 0 warms up (writes the .pyc files, fills the page cache) and is not counted; in every
    # round the order is shuffled so that no command always runs right after another.
    for round_ in range(runs + 1):
        order = list(commands)
        random.Random(round_).shuffle(order)
        for name in order:
            cwd, module = commands[name]
            seconds, error = _time_import(cwd, module, env)
            if error:
                errors[name] = error
            elif round_:
                samples[name].append(seconds)

    result = SectionResult("cold start")
    if BASELINE in errors or not samples[BASELINE]:
        result.notes.append(f"`import boto3` failed: {errors.get(BASELINE)}")
        return result
    base = median(samples[BASELINE])
    result.rows.append(
        Row(f"cold start: `import boto3` (baseline), median of {runs}", ms(base), ms(base), "1.00x")
    )
    for name in names:
        target = TARGETS.get(name)
        if name in errors:
            result.rows.append(Row(f"cold start: {name}", "import failed", ms(base), result=MISSED))
            result.notes.append(f"`{name}`: importing its app.py failed: {errors[name]}")
            continue
        value = median(samples[name])
        ok = target is None or value <= target * base
        result.rows.append(
            Row(
                f"cold start: {name}, median of {runs}",
                ms(value),
                ms(base),
                ratio(value, base),
                f"≤ {target}x" if target else "—",
                verdict(ok) if target else NO_TARGET,
            )
        )
        if not ok:
            entries = importtime.profile(FUNCTIONS / name, "app", env)
            result.notes.append(f"{name} misses its target; {importtime.summary(entries)}.")
    result.notes.append(
        "import only, as the figure asks: a package a handler leaves to its first invocation "
        "(the Runtime builds clients lazily) is paid there instead. Loaded by the import: "
        + "; ".join(f"{name}: {_heavy_loaded(FUNCTIONS / name, env)}" for name in names)
        + "."
    )
    return result


def _heavy_loaded(cwd: Path, env: dict[str, str]) -> str:
    code = "import sys, app; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    loaded = set(done.stdout.split())
    return ", ".join(p for p in HEAVY if p in loaded) or "none of " + "/".join(HEAVY[:3])


def _time_import(cwd: Path, module: str, env: dict[str, str]) -> tuple[float, str | None]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        return seconds, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
    return seconds, None
