"""End-to-end: by default the `make run` stack (`python -m offline`) started by the test session on
free ports, and plain HTTP against it; with VEO_RELAY_STACK=<name> (`make test-deployed`) the
deployed stack of that name, over SigV4 (tests/e2e/targets.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from offline.template import ACCOUNT
from tests.e2e.targets import SIMULATED, DeployedStack, OfflineStack, RunningStack

ROOT = Path(__file__).resolve().parents[2]
# The principal of the budget's end-to-end test, and its monthly budget: seven apixo fast videos.
BUDGETED = "e2e-budget"
BUDGETED_ARN = f"arn:aws:iam::{ACCOUNT}:user/{BUDGETED}"
BUDGET_USD = 1.40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    if deployed := os.environ.get("VEO_RELAY_STACK"):
        yield DeployedStack.named(deployed)
        return
    yield from _run_stack(
        {
            "POLL_FIRST_WAIT_SECONDS": "3",
            "POLL_INTERVAL_SECONDS": "1",
            "POLL_MAX_INTERVAL_SECONDS": "2",
            # The fuzzing alone may create more than a minute's quota (integration tests it).
            "CREATES_PER_MINUTE": "0",
            # One principal with a budget of its own (tests/e2e/test_money.py).
            "BUDGET_OVERRIDES_USD": json.dumps({BUDGETED_ARN: BUDGET_USD}),
            # The balance reader's five minutes, made seconds (test_balances.py watches it).
            "VEO_RELAY_SCHEDULE_SECONDS": "2",
        }
    )


@pytest.fixture(scope="module")
def burst_stack() -> Iterator[RunningStack]:
    """A stack of its own for the burst, stopped after it, with as little as possible between a
    submit's slot and kie's receipt of it (one made late by load may crowd kie's window):
    - its fallback polls first look after the last of the 200 submits (about 110 s at kie's
      20 per 10 s): polling queued tasks would load the very process that paces the submits, and
      callbacks complete every task before;
    - keys are read from Secrets Manager once, as a deployed stack's 300 s cache does, not on
      every second's submit (the local 1 s made the key reads of most submits late by 0.4 s).
    A deadline past the test's own wait, so that a slow machine shows as slow, not as lost
    tasks."""
    if os.environ.get("VEO_RELAY_STACK"):
        pytest.skip(
            "the burst asserts on the simulator's whole kie history and its 20/10 s window; a "
            "deployed simulator keeps history across runs and one window per Lambda instance"
        )
    yield from _run_stack(
        {
            "POLL_FIRST_WAIT_SECONDS": "180",
            "POLL_INTERVAL_SECONDS": "10",
            "POLL_MAX_INTERVAL_SECONDS": "20",
            "TASK_DEADLINE_SECONDS": "900",
            "SECRETS_CACHE_SECONDS": "300",
            "CREATES_PER_MINUTE": "0",
        }
    )


@pytest.fixture(scope="module")
def paced_stack() -> Iterator[RunningStack]:
    """A stack of its own whose apimart takes one new task in ten minutes: a create after the
    first waits `queued` for its slot (the submit queue's), long enough to be cancelled."""
    if os.environ.get("VEO_RELAY_STACK"):
        pytest.skip("a deployed stack's submit pacing is its parameters', not the test's")
    yield from _run_stack({"APIMART_RATE_LIMIT": "1/600", "POLL_FIRST_WAIT_SECONDS": "3"})


@pytest.fixture(scope="session")
def simulated_stack() -> Iterator[RunningStack]:
    """The stack as deployed with Simulate=true: the providers are the simulator *function*
    behind its function URL (a deployed stack under test has it already)."""
    if deployed := os.environ.get("VEO_RELAY_STACK"):
        yield DeployedStack.named(deployed)
        return
    yield from _run_stack({"POLL_FIRST_WAIT_SECONDS": "3"}, simulate=True)


def _run_stack(settings: dict[str, str], simulate: bool = False) -> Iterator[OfflineStack]:
    ports = {name: _free_port() for name in ("api", "aws", "function_url", *SIMULATED)}
    env = {
        **os.environ,
        "VEO_RELAY_API_PORT": str(ports["api"]),
        "VEO_RELAY_AWS_PORT": str(ports["aws"]),
        "VEO_RELAY_SIMULATOR_FUNCTION_PORT": str(ports["function_url"]),
        "VEO_RELAY_SIMULATE": "true" if simulate else "false",
        **{f"VEO_RELAY_{p.upper()}_SIM_PORT": str(ports[p]) for p in SIMULATED},
        **settings,
    }
    for provider in SIMULATED:
        env.pop(f"{provider.upper()}_BASE_URL", None)
    # A file, not a pipe: nobody reads the stack's logs while it runs, and a full pipe would
    # block it.
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, after the process)
        mode="w+", prefix="veo-relay-e2e-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "offline"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = OfflineStack(
        api_url=f"http://127.0.0.1:{ports['api']}",
        aws_url=f"http://127.0.0.1:{ports['aws']}",
        simulator_urls={
            p: f"http://127.0.0.1:{ports['function_url']}/{p}"
            if simulate
            else f"http://127.0.0.1:{ports[p]}"
            for p in SIMULATED
        },
        log_path=Path(log.name),
    )
    try:
        _wait_until_ready(process, running, Path(log.name))
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        if os.environ.get("VEO_RELAY_E2E_KEEP_LOG"):  # to read what the stack said, after
            print(f"\nthe stack's log: {log.name}")
        else:
            Path(log.name).unlink()


def _wait_until_ready(process: subprocess.Popen[str], running: OfflineStack, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`python -m offline` exited early:\n{log.read_text()}")
        try:
            # The first request also loads the API function (a cold start): give it time.
            requests.get(f"{running.api_url}/v1/videos", timeout=10)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("the offline stack did not start within 60 s")
