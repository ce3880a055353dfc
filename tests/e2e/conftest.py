"""End-to-end: the `make run` stack (`python -m offline`) started by the test session on free
ports, and plain HTTP against it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SIMULATED = ("apixo", "kie", "apimart")


@dataclass
class RunningStack:
    api_url: str
    aws_url: str
    simulator_urls: dict[str, str]

    def create(self, principal: str = "e2e-user", **body: Any) -> requests.Response:
        return requests.post(
            f"{self.api_url}/v1/videos",
            json=body,
            headers={"X-Local-Principal": principal},
            timeout=90,
        )

    def extend(self, task_id: str, principal: str = "e2e-user", **body: Any) -> requests.Response:
        return requests.post(
            f"{self.api_url}/v1/videos/{task_id}/extend",
            json=body,
            headers={"X-Local-Principal": principal},
            timeout=30,
        )

    def list(self, principal: str = "e2e-user", **query: Any) -> requests.Response:
        return requests.get(
            f"{self.api_url}/v1/videos",
            params=query,
            headers={"X-Local-Principal": principal},
            timeout=30,
        )

    def get(self, task_id: str, principal: str = "e2e-user") -> requests.Response:
        return requests.get(
            f"{self.api_url}/v1/videos/{task_id}",
            headers={"X-Local-Principal": principal},
            timeout=30,
        )

    def wait_for_status(
        self, task_id: str, statuses: set[str], timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id).json()
            if task["status"] in statuses or time.monotonic() > deadline:
                return task
            time.sleep(0.25)

    def simulator_state(self, provider: str = "apixo") -> dict[str, Any]:
        return requests.get(f"{self.simulator_urls[provider]}/_sim/tasks", timeout=10).json()

    def simulator_task(self, provider_task_id: str, provider: str = "apixo") -> dict[str, Any]:
        tasks = self.simulator_state(provider)["tasks"]
        return next(t for t in tasks if t["task_id"] == provider_task_id)

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.aws_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    yield from _run_stack(
        {
            "POLL_FIRST_WAIT_SECONDS": "3",
            "POLL_INTERVAL_SECONDS": "1",
            "POLL_MAX_INTERVAL_SECONDS": "2",
        }
    )


@pytest.fixture(scope="session")
def burst_stack() -> Iterator[RunningStack]:
    """A stack of its own for the burst: slower fallback polls keep 200 executions cheap, and a
    deadline past the test's own wait, so that a slow machine shows as slow, not as lost tasks."""
    yield from _run_stack(
        {
            "POLL_FIRST_WAIT_SECONDS": "30",
            "POLL_INTERVAL_SECONDS": "10",
            "POLL_MAX_INTERVAL_SECONDS": "20",
            "TASK_DEADLINE_SECONDS": "900",
        }
    )


def _run_stack(settings: dict[str, str]) -> Iterator[RunningStack]:
    ports = {name: _free_port() for name in ("api", "aws", *SIMULATED)}
    env = {
        **os.environ,
        "VEO_RELAY_API_PORT": str(ports["api"]),
        "VEO_RELAY_AWS_PORT": str(ports["aws"]),
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
    running = RunningStack(
        api_url=f"http://127.0.0.1:{ports['api']}",
        aws_url=f"http://127.0.0.1:{ports['aws']}",
        simulator_urls={p: f"http://127.0.0.1:{ports[p]}" for p in SIMULATED},
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


def _wait_until_ready(process: subprocess.Popen[str], running: RunningStack, log: Path) -> None:
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
