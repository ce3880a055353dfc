"""End-to-end: the `make run` stack (`python -m offline`) started by the test session on free
ports, and plain HTTP against it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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


@dataclass
class RunningStack:
    api_url: str
    aws_url: str
    apixo_url: str

    def create(self, principal: str = "e2e-user", **body: Any) -> requests.Response:
        return requests.post(
            f"{self.api_url}/v1/videos",
            json=body,
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

    def simulator_task(self, provider_task_id: str) -> dict[str, Any]:
        tasks = requests.get(f"{self.apixo_url}/_sim/tasks", timeout=10).json()["tasks"]
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
    ports = {name: _free_port() for name in ("api", "aws", "apixo")}
    env = {
        **os.environ,
        "VEO_RELAY_API_PORT": str(ports["api"]),
        "VEO_RELAY_AWS_PORT": str(ports["aws"]),
        "VEO_RELAY_APIXO_SIM_PORT": str(ports["apixo"]),
        "POLL_FIRST_WAIT_SECONDS": "3",
        "POLL_INTERVAL_SECONDS": "1",
        "POLL_MAX_INTERVAL_SECONDS": "2",
    }
    env.pop("APIXO_BASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "offline"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningStack(
        api_url=f"http://127.0.0.1:{ports['api']}",
        aws_url=f"http://127.0.0.1:{ports['aws']}",
        apixo_url=f"http://127.0.0.1:{ports['apixo']}",
    )
    try:
        _wait_until_ready(process, running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_ready(process: subprocess.Popen[str], running: RunningStack) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"`python -m offline` exited early:\n{output}")
        try:
            requests.get(f"{running.api_url}/v1/videos", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("the offline stack did not start within 60 s")
