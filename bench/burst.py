"""End to end: a burst of creates at once against `make run` (`python -m offline`, its default
settings, on free ports), followed until every task has ended or ten minutes have passed."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import requests

from bench.procs import background, free_port
from bench.report import Row, SectionResult, verdict
from bench.stats import percentile
from veo_relay.providers.registry import PROVIDER_NAMES as SIMULATED

TIMEOUT = 600.0
HEADERS = {"X-Local-Principal": "bench"}
ENDED = ("completed", "failed")


def run(quick: bool) -> SectionResult:
    count = 20 if quick else 200
    ports = {name: free_port() for name in ("api", "aws", *SIMULATED)}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env.update(
        VEO_RELAY_API_PORT=str(ports["api"]),
        VEO_RELAY_AWS_PORT=str(ports["aws"]),
        **{f"VEO_RELAY_{p.upper()}_SIM_PORT": str(ports[p]) for p in SIMULATED},
    )
    api, aws = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['aws']}"
    log = (
        Path(tempfile.gettempdir()) / "veo-relay-bench-e2e.log"
    )  # kept: read it when tasks are lost
    with background([sys.executable, "-m", "offline"], ports["api"], env, timeout=120, log=log):
        started = time.monotonic()
        creates = _burst(api, count)
        ids = [body["id"] for status, body, _ in creates if status == 202]
        tasks, ended_at = _follow(api, ids, started)
        videos = _video_objects(aws)
    result = _report(count, creates, tasks, videos, ended_at - started)
    result.notes.append(_log_summary(log))
    return result


def _log_summary(log: Path) -> str:
    """What the stack's functions said most often (message and outcome), and the exceptions and
    warnings it logged."""
    said: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        exception = re.match(r"([A-Za-z_.]+(?:Error|Exception)):", line)
        if exception:
            problems[exception.group(1)] += 1
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "message" not in record:
            continue
        outcome = f" → {record['outcome']}" if "outcome" in record else ""
        said[f"{record['message']}{outcome}"] += 1
        if record.get("level") in ("WARNING", "ERROR"):
            problems[f"{record['level']} {record['message']}"] += 1
    text = f"the stack's log ({log}): " + ", ".join(
        f"{message} ×{n}" for message, n in said.most_common(6)
    )
    if problems:
        text += "; problems logged: " + ", ".join(f"{p} ×{n}" for p, n in problems.most_common(5))
    return text


def _burst(api: str, count: int) -> list[tuple[int | None, Any, float]]:
    """`count` creates released together; (status, body, seconds) each."""
    gate = threading.Barrier(count)

    def create(index: int) -> tuple[int | None, Any, float]:
        gate.wait()
        started = time.monotonic()
        try:
            response = requests.post(
                f"{api}/v1/videos",
                json={"prompt": f"burst fox {index}"},
                headers=HEADERS,
                timeout=120,
            )
            return response.status_code, response.json(), time.monotonic() - started
        except (requests.RequestException, ValueError) as exc:
            return None, repr(exc), time.monotonic() - started

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(create, range(count)))


def _follow(api: str, ids: list[str], started: float) -> tuple[dict[str, dict[str, Any]], float]:
    """Each task's last view, and when the last one ended (or when we gave up)."""
    tasks: dict[str, dict[str, Any]] = {}
    open_ids = list(ids)
    with ThreadPoolExecutor(max_workers=16) as pool:
        while open_ids and time.monotonic() - started < TIMEOUT:
            time.sleep(2)
            for task in pool.map(_get, [(api, i) for i in open_ids]):
                tasks[task["id"]] = task
            open_ids = [
                i for i in open_ids if tasks[i].get("status") not in ("completed", "failed")
            ]
    return tasks, time.monotonic()


def _get(args: tuple[str, str]) -> dict[str, Any]:
    api, task_id = args
    try:
        response = requests.get(f"{api}/v1/videos/{task_id}", headers=HEADERS, timeout=30)
        task = response.json()
    except (requests.RequestException, ValueError) as exc:
        return {"id": task_id, "status": f"unreadable: {exc!r:.100}"}
    if not isinstance(task, dict) or task.get("id") != task_id:
        return {"id": task_id, "status": f"unreadable: {response.status_code} {task!r:.100}"}
    return task


def _video_objects(aws: str) -> Counter[str]:
    """How many `.mp4` objects each task id has, across every bucket (manifests not counted)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=aws,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    found: Counter[str] = Counter()
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".mp4"):
                    found[item["Key"].rsplit("/", 1)[-1].removesuffix(".mp4")] += 1
    return found


def _report(
    count: int,
    creates: list[tuple[int | None, Any, float]],
    tasks: dict[str, dict[str, Any]],
    videos: Counter[str],
    wall: float,
) -> SectionResult:
    result = SectionResult("end to end")
    completed = [t for t in tasks.values() if t.get("status") == "completed"]
    with_one_video = [t for t in completed if videos[t["id"]] == 1]
    lost = count - len(with_one_video)
    mp4s = sum(videos.values())
    ok = lost == 0 and mp4s == count
    result.rows.append(
        Row(
            f"end to end: {count} creates at once through `make run`",
            f"{len(completed)}/{count} completed, {lost} lost, {mp4s} .mp4 objects, "
            f"{wall:.0f} s until the last ended",
            target="every task completed, one video object each",
            result=verdict(ok),
        )
    )
    statuses = Counter(str(status) for status, _, _ in creates)
    created_as = Counter(body.get("status") for status, body, _ in creates if status == 202)
    latencies = [seconds for _, _, seconds in creates]
    result.notes.append(
        f"create answers {dict(statuses)}, tasks created {dict(created_as)}; "
        f"create latency p50 {percentile(latencies, 50):.2f} s, "
        f"max {max(latencies):.2f} s (all {count} sent at once, one thread each); "
        f"task states at the end {dict(Counter(str(t.get('status')) for t in tasks.values()))}."
    )
    errors = Counter((t.get("error") or {}).get("code") for t in tasks.values() if t.get("error"))
    if errors:
        example = next(t["error"]["message"] for t in tasks.values() if t.get("error"))
        result.notes.append(f"failed tasks' error codes {dict(errors)}, e.g. “{example:.200}”")
    refused = [body for status, body, _ in creates if status != 202]
    if refused:
        result.notes.append(f"{len(refused)} creates were not accepted, e.g. {refused[0]!r:.300}")
    extra = {task_id: n for task_id, n in videos.items() if n != 1 or task_id not in tasks}
    if extra:
        result.notes.append(f".mp4 objects not one per task: {dict(list(extra.items())[:5])}")
    return result
