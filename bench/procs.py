"""Helper processes: a free port, moto as a server of its own, waiting for a port to answer."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from bench.report import ROOT

LAYER = ROOT / "layers" / "shared"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited early:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.args!r} did not listen on {port} within {timeout} s")


def aws_env(endpoint: str) -> dict[str, str]:
    """Fake credentials and the embedded AWS endpoint: nothing can reach a real account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        POWERTOOLS_TRACE_DISABLED="true",
    )
    return env


@contextlib.contextmanager
def background(
    args: list[str],
    port: int,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`args` in a process of its own until it listens on `port`; its output goes to `log` (kept)
    or to a temp file (deleted)."""
    with contextlib.ExitStack() as cleanup:
        if log is None:
            log = Path(cleanup.enter_context(_temp_log()))
        # A file, not a pipe: nobody reads it while the process runs, and a full pipe would block.
        output = cleanup.enter_context(log.open("wb"))
        process = subprocess.Popen(
            args, cwd=ROOT, env=dict(env or os.environ), stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, process, log, timeout)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def _temp_log() -> Iterator[str]:
    with tempfile.NamedTemporaryFile(prefix="veo-relay-bench-", suffix=".log") as file:
        yield file.name


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in a process of its own; yields its endpoint URL. Its memory is not ours."""
    port = free_port()
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with background(args, port):
        yield f"http://127.0.0.1:{port}"


def with_layer_on_path() -> None:
    """The shared layer importable, as Lambda (and offline.functions) arrange it."""
    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))
