"""Cold start: importing each function's handler module as Lambda does, in a fresh interpreter,
beside `import boto3` with bytecode (the runtime's own boto3 is compiled) timed in the same loop.

Both import from the build of bench.artifacts: the shared layer built by its Makefile's recipe for
this machine (bytecode included, as `sam build` ships it), read-only, on the path where Lambda
mounts it, and the function's directory before it; no site-packages, no bytecode written.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from bench import artifacts, importtime
from bench.procs import REGION
from bench.report import MISSED, NO_TARGET, Row, SectionResult, verdict
from bench.stats import median, ms, ratio

BASELINE = "baseline"
# Times the boto3 import each handler may take at most.
TARGETS = {
    "api": 2.0,
    "callback": 1.5,
    "poller": 1.5,
    "copy_worker": 1.5,
    "submit_worker": 1.5,
    "webhook_sender": 1.5,
    "failure_announcer": 1.5,
    "video_consumer": 1.5,
    "balance_reader": 1.5,
}
# Packages worth knowing about when they load at import rather than at first use.
HEAVY = ("boto3", "botocore", "pynamodb", "pydantic", "requests", "aws_xray_sdk", "s3transfer")


def run(quick: bool) -> SectionResult:
    names = artifacts.function_names()
    with tempfile.TemporaryDirectory(prefix="veo-relay-bench-build-") as work:
        built = artifacts.build(Path(work), names)
        artifacts.make_read_only(Path(work))
        try:
            return _measure(built, names, quick)
        finally:
            artifacts.make_writable(Path(work))


def _measure(built: artifacts.Built, names: list[str], quick: bool) -> SectionResult:
    runs = 3 if quick else 10
    # What the handlers read at import (veo_relay.wiring builds the rest at the first invocation).
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "veo-relay",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    commands = {BASELINE: ("boto3", [built.layer])}
    commands.update({name: ("app", [built.functions[name], built.layer]) for name in names})
    files_before = built.files()
    samples: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    errors: dict[str, str] = {}
    # Round 0 warms up (fills the page cache) and is not counted; in every round the order is
    # shuffled so that no command always runs right after another.
    for round_ in range(runs + 1):
        order = list(commands)
        random.Random(round_).shuffle(order)
        for name in order:
            module, paths = commands[name]
            seconds, cpu_seconds, error = _time_import(artifacts.import_command(module, paths), env)
            if error:
                errors[name] = error
            elif round_:
                samples[name].append(seconds)
                cpu[name].append(cpu_seconds)

    result = SectionResult("cold start")
    if BASELINE in errors or not samples[BASELINE]:
        result.notes.append(f"`import boto3` failed: {errors.get(BASELINE)}")
        return result
    base = median(samples[BASELINE])
    result.rows.append(
        Row(
            f"cold start: `import boto3` (baseline), from the built layer with bytecode, "
            f"median of {runs}",
            ms(base),
            ms(base),
            "1.00x",
        )
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
            _, paths = commands[name]
            entries = importtime.profile(
                artifacts.import_command("app", paths, "-X", "importtime"), "app", env
            )
            result.notes.append(f"{name} misses its target; {importtime.summary(entries)}.")
    base_cpu = median(cpu[BASELINE])
    result.notes.append(
        f"CPU time (user + sys) of the same runs, medians, less disturbed by the other work on a "
        f"shared machine than the wall time above: `import boto3` {ms(base_cpu)}; "
        + "; ".join(f"{name} {ratio(median(cpu[name]), base_cpu)}" for name in names if cpu[name])
        + "."
    )
    written = built.files() - files_before
    result.notes.append(
        "each import ran as Lambda's does: in a fresh interpreter (`python -I -S -B`, no "
        "site-packages) whose path is the function's built directory, then the layer's `python/` "
        "(Lambda's /opt/python) built by `make -C layers/shared build-host` (the recipe `sam "
        f"build` runs, for this machine's platform and Python), read-only; the layer: "
        f"{artifacts.bytecode(built.layer).describe()}; "
        + (f"files written during the run: {len(written)}" if written else "nothing was written")
        + "."
    )
    result.notes.append(
        "import only, as the figure asks: a package a handler leaves to its first invocation "
        "(veo_relay.wiring builds clients lazily) is paid there instead. Loaded by the import: "
        + "; ".join(f"{name}: {_heavy_loaded(commands[name][1], env)}" for name in names)
        + "."
    )
    return result


def _heavy_loaded(paths: list[Path], env: dict[str, str]) -> str:
    command = artifacts.import_command(
        "app", paths, then="print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    loaded = set(done.stdout.split())
    return ", ".join(p for p in HEAVY if p in loaded) or "none of " + "/".join(HEAVY[:3])


def _time_import(command: list[str], env: dict[str, str]) -> tuple[float, float, str | None]:
    """Wall time, and the CPU time of the interpreter (the only child running meanwhile)."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - started
    cpu_seconds = _children_cpu() - cpu_before
    if done.returncode:
        error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        return seconds, cpu_seconds, error
    return seconds, cpu_seconds, None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
