"""Copy throughput and memory: the real downloader and video store, beside boto3's upload_file of
the same bytes, each copy in a fresh process (bench.copy_child).

moto runs as a process of its own, so the bytes it holds are not counted in the copy's memory;
the video comes from a local HTTP server in another process (bench.video_server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from typing import Any

import boto3

from bench.procs import aws_env, background, free_port, moto_server
from bench.report import NO_TARGET, Row, SectionResult, verdict
from bench.stats import MIB, median, mib, ratio, size_name

BUCKET = "veo-relay-bench-videos"
MODES = ("relay", "upload_file")
MIN_RATIO = 0.8
MAX_GROWTH_1GIB = 200 * MIB
PART = 8 * MIB  # the video store's multipart chunk: "independent" allows one more in memory
WARM_UP_SIZE = 16 * MIB


def run(quick: bool) -> SectionResult:
    # moto's (and this shared machine's) jitter moves one copy by ±30 %: with 3 samples the
    # 256 MiB ratio ranged 0.68-1.28 between runs. 16 MiB copies take ~0.2 s: many, cheaply.
    runs = {16 * MIB: 1} if quick else {16 * MIB: 21, 256 * MIB: 5, 1024 * MIB: 3}
    results: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    with moto_server() as endpoint:
        env = aws_env(endpoint)
        os.environ.update(env)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        port = free_port()
        with background([sys.executable, "-m", "bench.video_server", str(port)], port):
            origin = f"http://127.0.0.1:{port}"
            # Not counted: moto's first multipart upload pays for loading its own code paths.
            for mode in MODES:
                _child(mode, WARM_UP_SIZE, origin, env)
            for size, count in runs.items():
                for attempt in range(count):
                    # Alternate which goes first, so that neither always finds moto fresher.
                    for mode in MODES if attempt % 2 == 0 else MODES[::-1]:
                        results[size, mode].append(_child(mode, size, origin, env))
    return _report(results, runs)


def _child(mode: str, size: int, origin: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.copy_child", mode, str(size), origin, BUCKET],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{mode} of {size_name(size)} failed:\n{done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def _report(
    results: dict[tuple[int, str], list[dict[str, Any]]], runs: dict[int, int]
) -> SectionResult:
    result = SectionResult("copy")
    growth: dict[int, int] = {}
    for size, count in runs.items():
        relay = median([size / r["seconds"] for r in results[size, "relay"]])
        upload = median([size / r["seconds"] for r in results[size, "upload_file"]])
        result.rows.append(
            Row(
                f"copy throughput, {size_name(size)}"
                + (f", median of {count}" if count > 1 else ""),
                f"{relay / MIB:.0f} MiB/s",
                f"upload_file {upload / MIB:.0f} MiB/s",
                ratio(relay, upload),
                f"≥ {MIN_RATIO}x",
                verdict(relay >= MIN_RATIO * upload),
            )
        )
    for size in runs:
        worst = max(results[size, "relay"], key=lambda r: r["peak"] - r["rss_before"])
        growth[size] = worst["peak"] - worst["rss_before"]
        upload_growth = max(r["peak"] - r["rss_before"] for r in results[size, "upload_file"])
        is_1gib = size == 1024 * MIB
        result.rows.append(
            Row(
                f"peak memory of the copy, {size_name(size)}",
                f"+{mib(growth[size])} (peak {mib(worst['peak'])})",
                f"{mib(worst['rss_before'])} before the copy",
                ratio(worst["peak"], worst["rss_before"]),
                "growth < 200 MiB" if is_1gib else "—",
                verdict(growth[size] < MAX_GROWTH_1GIB) if is_1gib else NO_TARGET,
            )
        )
        samples = ", ".join(f"+{mib(r['peak'] - r['rss_before'])}" for r in results[size, "relay"])
        speeds = ", ".join(f"{size / r['seconds'] / MIB:.0f}" for r in results[size, "relay"])
        uploads = ", ".join(
            f"{size / r['seconds'] / MIB:.0f}" for r in results[size, "upload_file"]
        )
        result.notes.append(
            f"{size_name(size)}: relay growth per run {samples} (upload_file's own at most "
            f"+{mib(upload_growth)}); MiB/s per run: relay {speeds}, upload_file {uploads}."
        )
    large = [s for s in runs if s >= 256 * MIB]
    if len(large) >= 2:
        small, big = min(large), max(large)
        result.rows.append(
            Row(
                f"copy memory growth, {size_name(big)} beside {size_name(small)}",
                f"+{mib(growth[big])}",
                f"+{mib(growth[small])}",
                ratio(growth[big], growth[small]),
                "independent of the size (at most one 8 MiB part more)",
                verdict(growth[big] - growth[small] <= PART),
            )
        )
    result.notes.append(
        "memory growth = the copy process's peak RSS (VmHWM, reset just before the copy) minus "
        "its RSS just before; sizes are compared from 256 MiB up, where the transfer manager's "
        "pipeline (4 parts of 8 MiB in flight plus one being read) is full — a 16 MiB video "
        "never fills it. The peak is the pipeline's fullest instant (a part more or less, as "
        "uploads end), which a longer copy is likelier to reach. Throughput counts the whole "
        "store: download, upload and tagging."
    )
    return result
