"""Per task: state transitions and Lambda invocations of its fallback poller execution, beside the
least the definition allows, and every DynamoDB write the task cost.

The `make run` stack (offline.stack.LocalStack, its default timings) runs in this process, so that
moto's DynamoDB can be watched; one task at a time, so that every write seen is that task's.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from bench.asl import lambda_invocations, minimum_path, transitions
from bench.dynamodb_writes import Write, WriteLog
from bench.procs import free_port
from bench.report import Row, SectionResult, verdict
from offline.stack import LocalStack, Ports
from veo_relay.providers.registry import PROVIDER_NAMES

MAX_WRITES = 5


@dataclass(frozen=True)
class Case:
    name: str
    provider: str
    tags: str
    polls: int  # Lambda invocations of the least run: the poller's hand-off and its last look


CASES = (
    Case("callback on time", "apixo", "", 0),
    Case("callback missing", "apixo", " [sim:no-callback]", 2),
    Case("apimart (no callbacks)", "apimart", "", 2),
)


@dataclass(frozen=True)
class Measured:
    status: str
    execution: str
    transitions: int
    invocations: int
    writes: list[Write]


def run(quick: bool) -> SectionResult:
    runs = 1 if quick else 3
    ports = Ports(
        api=free_port(), aws=free_port(), simulators={p: free_port() for p in PROVIDER_NAMES}
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BASE_URL")}
    env["LOG_LEVEL"] = "WARNING"
    stack = LocalStack(ports, env).start()
    try:
        writes = WriteLog().install()
        template = stack.template
        machine = next(iter(template.of_type("AWS::Serverless::StateMachine")))
        definition = json.loads(
            template.state_machine_definition(machine, template.parameter_defaults())
        )
        arn = template.names[machine]
        measured: dict[str, list[Measured]] = {case.name: [] for case in CASES}
        for attempt in range(runs):
            for case in CASES:
                measured[case.name].append(_one_task(stack, arn, writes, case, attempt))
        # as the stack set it, for every function
        first_wait = stack.functions.environment("PollerFunction").get(
            "POLL_FIRST_WAIT_SECONDS", "?"
        )
    finally:
        stack.stop()
    return _report(definition, measured, runs, first_wait)


def _one_task(stack: LocalStack, arn: str, writes: WriteLog, case: Case, attempt: int) -> Measured:
    writes.take()
    response = requests.post(
        f"{stack.api_url}/v1/videos",
        json={"prompt": f"bench fox {attempt}{case.tags}", "provider": case.provider},
        headers={"X-Local-Principal": "bench"},
        timeout=60,
    )
    if response.status_code != 202:
        raise RuntimeError(f"create refused: {response.status_code} {response.text}")
    task_id = response.json()["id"]
    sfn = boto3.client("stepfunctions")
    execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{task_id}"
    execution = _wait(
        lambda: (
            (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d
        ),
        timeout=120,
    )
    time.sleep(1)  # a late duplicate copy request, if any, is this task's too
    task = requests.get(
        f"{stack.api_url}/v1/videos/{task_id}", headers={"X-Local-Principal": "bench"}, timeout=30
    ).json()
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return Measured(
        task["status"],
        execution["status"],
        transitions(history),
        lambda_invocations(history),
        writes.take(),
    )


def _wait(probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout} s")
        time.sleep(0.2)
    return value


def _report(
    definition: dict[str, Any], measured: dict[str, list[Measured]], runs: int, first_wait: str
) -> SectionResult:
    result = SectionResult("per task")
    for case in CASES:
        runs_of = measured[case.name]
        least_t, least_i = minimum_path(definition, case.polls)
        counts = Counter(f"{m.transitions} / {m.invocations}" for m in runs_of)
        worst = max(runs_of, key=lambda m: (m.transitions, m.invocations))
        ok = all((m.transitions, m.invocations) == (least_t, least_i) for m in runs_of)
        result.rows.append(
            Row(
                f"state transitions / Lambda invocations: {case.name}, {runs} task(s)",
                _tally(counts),
                f"minimum {least_t} / {least_i}",
                f"{worst.transitions / least_t:.2f}x / "
                + (f"{worst.invocations / least_i:.2f}x" if least_i else f"+{worst.invocations}"),
                "= minimum",
                verdict(ok),
            )
        )
        unfinished = [m for m in runs_of if (m.status, m.execution) != ("completed", "SUCCEEDED")]
        if unfinished:
            result.notes.append(
                f"{case.name}: {len(unfinished)} task(s) ended "
                + ", ".join(f"{m.status} / execution {m.execution}" for m in unfinished)
            )
    for case in CASES:
        runs_of = measured[case.name]
        counts = Counter(str(len(m.writes)) for m in runs_of)
        result.rows.append(
            Row(
                f"DynamoDB writes per completed task: {case.name}, {runs} task(s)",
                _tally(counts),
                target=f"≤ {MAX_WRITES}",
                result=verdict(all(len(m.writes) <= MAX_WRITES for m in runs_of)),
            )
        )
        first = runs_of[0].writes
        result.notes.append(
            f"writes of one task, {case.name} ({len(first)}): "
            + "; ".join(f"{n}. {w.describe()}" for n, w in enumerate(first, start=1))
        )
    result.notes.append(
        "writes are counted where moto answers DynamoDB (every table, every caller: PynamoDB, "
        "Powertools, the state machine's own DynamoDB tasks), failed conditional writes "
        "included; `task` is the task's own item, `submit-schedule#…` the provider's submit-slot "
        "item in the same table. Timings are `make run`'s (first poll after "
        f"{first_wait} s)."
    )
    return result


def _tally(counts: Counter[str]) -> str:
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{value} (×{n})" for value, n in counts.most_common())
