"""The Python client and the `veo-relay` command against the running stack (the session's
`make run` stack, or a deployed one over SigV4): what the README's "Try it" shows, end to end."""

from __future__ import annotations

import hashlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.targets import RunningStack
from veo_relay_client import Client, verify_webhook
from veo_relay_client.errors import NotFound

PRINCIPAL = "e2e-client"  # offline; a deployed stack's principal is the caller's credentials
VEO_RELAY = str(Path(sys.executable).with_name("veo-relay"))  # the installed console script


def cli(stack: RunningStack, *argv: str) -> subprocess.CompletedProcess[str]:
    identity = [] if stack.deployed else ["--principal", PRINCIPAL]
    return subprocess.run(
        [VEO_RELAY, *argv, "--api", stack.api_url, *identity],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def client(stack: RunningStack) -> Client:
    return Client(stack.api_url, principal=None if stack.deployed else PRINCIPAL)


def test_the_cli_generates_waits_and_saves_the_video_it_stored(
    stack: RunningStack, tmp_path: Path
) -> None:
    # Given the README's example, for a script
    output = tmp_path / "fox.mp4"
    # When a video is generated, waited for and saved
    run = cli(
        stack,
        "generate",
        "a red fox in snow",
        "--provider",
        "kie",
        "--resolution",
        "1080p",
        "--wait",
        "--output",
        str(output),
        "--json",
    )
    # Then it exits 0 with the completed task, whose SHA-256 is the saved file's
    assert run.returncode == 0, run.stderr
    task = json.loads(run.stdout)
    assert (task["status"], task["provider"], task["resolution"]) == ("completed", "kie", "1080p")
    assert hashlib.sha256(output.read_bytes()).hexdigest() == task["video"]["sha256"]
    assert "completed" in run.stderr and f"saved {output}" in run.stderr  # the live progress

    # And the task is listed, counted in the month's usage, and the providers are described
    listed = cli(stack, "list", "--json", "--max", "20")
    assert listed.returncode == 0, listed.stderr
    assert task["id"] in [t["id"] for t in json.loads(listed.stdout)]
    usage = cli(stack, "usage", "--json")
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout)["tasks"]["completed"] >= 1
    capabilities = cli(stack, "capabilities", "--json")
    assert capabilities.returncode == 0, capabilities.stderr
    assert "kie" in json.loads(capabilities.stdout)["providers"]


def test_the_cli_says_a_failed_task_and_an_unknown_one_by_its_exit_code(
    stack: RunningStack,
) -> None:
    failed = cli(stack, "generate", "a storm [sim:fail=CONTENT_VIOLATION]", "--wait", "--json")
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["error"]["code"] == "content_violation"
    unknown = cli(stack, "get", "vid_" + "0" * 24)
    assert unknown.returncode == 3
    assert "not_found" in unknown.stderr


def test_the_client_creates_once_per_key_waits_and_downloads_the_checked_video(
    client: Client, tmp_path: Path
) -> None:
    # Given a create sent twice under one Idempotency-Key (a retry after a lost answer)
    key = f"e2e-client-{time.time_ns()}"
    task = client.create("a paper boat in the rain", idempotency_key=key)
    again = client.create("a paper boat in the rain", idempotency_key=key)
    # Then it is one task
    assert again.id == task.id
    # When it is waited for and downloaded
    done = client.wait(task.id, timeout=60, interval=0.5)
    path = tmp_path / "boat.mp4"
    client.download(task.id, path)
    # Then the file is the stored video, and the family lists it
    assert done.status == "completed" and done.video is not None
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.video.sha256
    assert path.stat().st_size == done.video.size_bytes
    assert [t.id for t in client.list(root_id=task.id)] == [task.id]
    with pytest.raises(NotFound):
        client.get("vid_" + "f" * 24)


class Receiver:
    """The caller's webhook endpoint: verifies each delivery and hands it to a queue."""

    def __init__(self, secret: str) -> None:
        self.deliveries: queue.Queue[dict[str, Any]] = queue.Queue()
        deliveries = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                deliveries.put(verify_webhook(secret, dict(self.headers.items()), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/veo"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(stack: RunningStack, client: Client) -> Iterator[Receiver]:
    stack.require_principals("the receiver listens on this machine's loopback")
    running = Receiver(client.webhook_secret())
    yield running
    running.close()


def test_a_verified_webhook_ends_the_clients_wait(client: Client, receiver: Receiver) -> None:
    # Given a task whose webhook goes to the caller's receiver
    task = client.create("a kite over the dunes", webhook_url=receiver.url)
    started = time.monotonic()
    # When it is waited for with a poll interval far longer than the task takes
    done = client.wait(task.id, timeout=60, interval=40, notifications=receiver.deliveries)
    # Then the verified delivery ended the wait, long before the next poll
    assert done.status == "completed"
    assert time.monotonic() - started < 20
