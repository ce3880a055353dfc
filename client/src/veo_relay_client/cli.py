"""`veo-relay`: the API from a shell. Progress goes to stderr, results to stdout (`--json` for
scripts), and the exit code says what happened (EXIT_CODES)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from veo_relay_client.client import DEFAULT_API_URL, Client
from veo_relay_client.errors import (
    ConnectionFailed,
    DownloadFailed,
    VeoRelayError,
    WaitTimeout,
)
from veo_relay_client.models import Task, Usage

OK, TASK_FAILED, USAGE_ERROR, REFUSED, SERVICE_ERROR, TIMED_OUT, DOWNLOAD_ERROR = range(7)
INTERRUPTED = 130
EXIT_CODES = {
    OK: "done (with --wait: the task completed)",
    TASK_FAILED: "the task failed (its error.code is shown)",
    USAGE_ERROR: "bad arguments, or no AWS credentials or region for a deployed stack",
    REFUSED: "the API refused the request (4xx: invalid, not found, conflict, budget, ...), or "
    "the task has no video to download",
    SERVICE_ERROR: "the service or the provider failed (5xx), or the API could not be reached",
    TIMED_OUT: "--wait gave up after --timeout seconds (the task goes on)",
    DOWNLOAD_ERROR: "the download failed, or its size or SHA-256 did not match",
    INTERRUPTED: "interrupted (Ctrl-C)",
}
MODES = ("fast", "quality", "lite")
RESOLUTIONS = ("720p", "1080p", "4k")
_CLEAR_TO_END = "\x1b[K"  # the rest of a terminal's line


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        client = Client(args.api, principal=args.principal)
    except ValueError as exc:
        print(f"veo-relay: {exc}", file=sys.stderr)
        return USAGE_ERROR
    output = Output(as_json=args.json, quiet=args.quiet)
    try:
        result: int = args.run(client, args, output)
    except KeyboardInterrupt:
        return INTERRUPTED
    except VeoRelayError as exc:
        output.error(exc)
        return _exit_code_of(exc)
    return result


def _exit_code_of(exc: VeoRelayError) -> int:
    if isinstance(exc, WaitTimeout):
        return TIMED_OUT
    if isinstance(exc, DownloadFailed):
        return DOWNLOAD_ERROR
    if isinstance(exc, ConnectionFailed) or (exc.status or 0) >= 500:
        return SERVICE_ERROR
    return REFUSED


# Commands -------------------------------------------------------------------------------------


def _generate(client: Client, args: argparse.Namespace, output: Output) -> int:
    task = client.create(
        args.prompt,
        provider=args.provider,
        mode=args.mode,
        generation_type=args.generation_type,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        image_urls=args.image_url,
        seed=args.seed,
        watermark=args.watermark,
        webhook_url=args.webhook_url,
        idempotency_key=args.idempotency_key,
    )
    return _follow(client, task, args, output)


def _extend(client: Client, args: argparse.Namespace, output: Output) -> int:
    task = client.extend(
        args.id,
        args.prompt,
        mode=args.mode,
        seed=args.seed,
        watermark=args.watermark,
        webhook_url=args.webhook_url,
        idempotency_key=args.idempotency_key,
    )
    return _follow(client, task, args, output)


def _follow(client: Client, task: Task, args: argparse.Namespace, output: Output) -> int:
    """After a create: the task as it is, or (--wait, --output) watched to its end and saved."""
    if not (args.wait or args.output):
        output.task(task)
        return OK
    progress = output.progress()
    progress.update(task)
    try:
        # Reads often enough for the progress to look live; a GET costs nothing.
        task = client.wait(task.id, timeout=args.timeout, max_interval=5, on_update=progress.update)
        if task.status == "completed" and args.output:
            client.download(task.id, args.output, on_progress=progress.bytes)
            progress.saved(task, args.output)
    finally:
        progress.finish()
    output.task(task)
    return OK if task.status == "completed" else TASK_FAILED


def _get(client: Client, args: argparse.Namespace, output: Output) -> int:
    task = client.get(args.id)
    output.task(task)
    return TASK_FAILED if task.status == "failed" else OK


def _list(client: Client, args: argparse.Namespace, output: Output) -> int:
    tasks: list[Task] = []
    for task in client.list(status=args.status, root_id=args.root_id):
        if args.max is not None and len(tasks) >= args.max:
            break
        tasks.append(task)
        if not output.as_json:
            output.line(_summary(task))
    if output.as_json:
        output.json([task.as_dict() for task in tasks])
    return OK


def _download(client: Client, args: argparse.Namespace, output: Output) -> int:
    progress = output.progress()
    try:
        task = client.download(args.id, args.path, on_progress=progress.bytes)
        progress.saved(task, args.path)
    finally:
        progress.finish()
    output.task(task)
    return OK


def _cancel(client: Client, args: argparse.Namespace, output: Output) -> int:
    output.task(client.cancel(args.id))
    return OK


def _delete(client: Client, args: argparse.Namespace, output: Output) -> int:
    client.delete(args.id)
    if output.as_json:
        output.json({"id": args.id, "deleted": True})
    else:
        output.line(f"{args.id} deleted")
    return OK


def _usage(client: Client, args: argparse.Namespace, output: Output) -> int:
    usage = client.usage(args.month)
    if output.as_json:
        output.json(usage.as_dict())
    else:
        output.line(_usage_text(usage))
    return OK


def _capabilities(client: Client, args: argparse.Namespace, output: Output) -> int:
    table = client.capabilities()
    if output.as_json:
        output.json(table)
        return OK
    for name, provider in table["providers"].items():
        output.line(
            f"{name}: modes {', '.join(provider['modes'])}; resolutions "
            f"{', '.join(provider['resolutions'])}; aspect ratios "
            f"{', '.join(provider['aspect_ratios'])}"
        )
    output.line(
        f"default provider: {table['default_provider']}; "
        f"auto tries: {', '.join(table['auto_order'])}"
    )
    return OK


# Output ---------------------------------------------------------------------------------------


class Output:
    """Results on stdout (a line each, or JSON); progress and errors on stderr."""

    def __init__(
        self,
        *,
        as_json: bool,
        quiet: bool,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr

    def line(self, text: str) -> None:
        print(text, file=self._stdout)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2), file=self._stdout)

    def task(self, task: Task) -> None:
        if self.as_json:
            self.json(task.as_dict())
        else:
            self.line(_summary(task))

    def error(self, exc: VeoRelayError) -> None:
        print(f"veo-relay: {exc}", file=self._stderr)
        if self.as_json:
            shown: dict[str, Any] = {
                "error": {"status": exc.status, "code": exc.code, "message": exc.message}
            }
            if isinstance(exc, WaitTimeout):
                shown["task"] = exc.task.as_dict()  # where it stands: it goes on
            self.json(shown)

    def progress(self) -> Progress:
        return Progress(self._stderr, enabled=not self.quiet)


class Progress:
    """Live progress on stderr. On a terminal: the current status, its elapsed time redrawn at
    each read, a new line for each change, and the download as a bar. Elsewhere (a log): a line
    for each change of status, and one once the video is saved."""

    BAR_WIDTH = 30

    def __init__(
        self, stream: TextIO, *, enabled: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._enabled = enabled
        self._clock = clock
        self._started = clock()
        self._seen: tuple[str, int | None] | None = None
        self._terminal = enabled and stream.isatty()
        self._open_line = False  # a line drawn in place, not ended yet
        self._in_bar = False

    def update(self, task: Task) -> None:
        state = (task.status, task.progress)
        changed, self._seen = state != self._seen, state
        shown = f"{task.status} {task.progress}%" if task.progress is not None else task.status
        if task.error is not None:
            shown += f" ({task.error.code}: {task.error.message})"
        text = f"[{self._elapsed()}] {task.id} {shown}"
        if self._terminal:
            self._draw(text, new_line=changed)
        elif changed:
            self._write(text + "\n")

    def bytes(self, done: int, total: int | None) -> None:
        if not self._terminal:
            return
        if total:
            filled = self.BAR_WIDTH * done // total
            bar = "#" * filled + "." * (self.BAR_WIDTH - filled)
            text = f"downloading [{bar}] {100 * done // total:3d}% {_size(done)}/{_size(total)}"
        else:
            text = f"downloading {_size(done)}"
        self._draw(text, new_line=not self._in_bar)
        self._in_bar = True

    def saved(self, task: Task, path: str) -> None:
        self.finish()
        size = _size(task.video.size_bytes) if task.video else "?"
        self._write(f"[{self._elapsed()}] saved {path} ({size}, SHA-256 checked)\n")

    def finish(self) -> None:
        """Ends the line drawn in place, if any, so that what follows starts on its own."""
        if self._open_line:
            self._write("\n")
            self._open_line = False

    def _draw(self, text: str, *, new_line: bool) -> None:
        # A new line below the one drawn before, or this one redrawn over it (and what is left
        # of a longer one cleared).
        self._write(("\n" if new_line and self._open_line else "\r") + text + _CLEAR_TO_END)
        self._open_line = True

    def _elapsed(self) -> str:
        return f"{self._clock() - self._started:5.1f}s"

    def _write(self, text: str) -> None:
        if self._enabled:
            self._stream.write(text)
            self._stream.flush()


def _summary(task: Task) -> str:
    cost = f"${task.cost.usd:.2f}" if task.cost is not None else "-"
    parts = [task.id, task.status, task.provider, task.mode, task.resolution, cost]
    if task.error is not None:
        parts.append(f"{task.error.code}: {task.error.message}")
    prompt = task.prompt if len(task.prompt) <= 60 else f"{task.prompt[:57]}..."
    return "  ".join([*parts, json.dumps(prompt)])


def _usage_text(usage: Usage) -> str:
    budget = "none" if usage.budget_usd is None else f"${usage.budget_usd:.2f}"
    tasks = ", ".join(f"{status} {count}" for status, count in usage.tasks.items())
    return (
        f"{usage.month}: spent ${usage.spent_usd:.2f}, reserved ${usage.reserved_usd:.2f}, "
        f"budget {budget}; tasks: {tasks}"
    )


def _size(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 100_000 else f"{count / 1000:.1f} kB"


# Arguments ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veo-relay",
        description="Generate, extend and download Veo videos through veo-relay.",
        epilog="exit codes:\n"
        + "\n".join(f"  {code:3d}  {meaning}" for code, meaning in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Common options are taken after the command too; there they must not reset the ones given
    # before it, hence SUPPRESS.
    common = argparse.ArgumentParser(add_help=False)
    _common(common, suppress=True)

    def command(name: str, run: Callable[..., int], help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_, description=help_)
        sub.set_defaults(run=run)
        return sub

    generate = command("generate", _generate, "create a video from a prompt")
    generate.add_argument("prompt")
    generate.add_argument("--provider", choices=("apixo", "kie", "apimart", "auto"))
    generate.add_argument("--mode", choices=MODES)
    generate.add_argument("--resolution", choices=RESOLUTIONS)
    generate.add_argument("--aspect-ratio", choices=("16:9", "9:16"))
    generate.add_argument(
        "--generation-type",
        choices=("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO"),
    )
    generate.add_argument("--image-url", action="append", help="an https image URL (repeatable)")
    _creation_options(generate)

    extend = command("extend", _extend, "continue a completed video (on its provider)")
    extend.add_argument("id")
    extend.add_argument("prompt")
    extend.add_argument("--mode", choices=MODES)
    _creation_options(extend)

    command("get", _get, "show a task").add_argument("id")
    listing = command("list", _list, "your tasks, newest first (every page)")
    listing.add_argument(
        "--status", choices=("queued", "in_progress", "storing", "completed", "failed")
    )
    listing.add_argument("--root-id", help="one family: a video and its extensions")
    listing.add_argument("--max", type=int, help="at most this many tasks")
    download = command("download", _download, "save a completed video, SHA-256 checked")
    download.add_argument("id")
    download.add_argument("path")
    command("cancel", _cancel, "cancel a task still queued").add_argument("id")
    command("delete", _delete, "delete a completed or failed video for good").add_argument("id")
    command("usage", _usage, "your spending and tasks in a month").add_argument(
        "--month", help="YYYY-MM (default: this month, UTC)"
    )
    command("capabilities", _capabilities, "what each provider can do")
    return parser


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    value: Any = argparse.SUPPRESS if suppress else None
    flag: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--api",
        default=value,
        help=f"the API's URL (default: $VEO_RELAY_API, else {DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--principal",
        default=value,
        help="the local stack's caller (X-Local-Principal); a deployed stack signs with your AWS "
        "credentials instead",
    )
    parser.add_argument("--json", action="store_true", default=flag, help="JSON on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", default=flag, help="no progress")


def _creation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int)
    parser.add_argument("--watermark")
    parser.add_argument("--webhook-url", help="where a signed webhook goes when the task ends")
    parser.add_argument("--idempotency-key", help="default: a fresh one (retries reuse it)")
    parser.add_argument("--wait", action="store_true", help="follow the task until it ends")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds --wait waits (default 900)"
    )
    parser.add_argument(
        "--output", "-o", help="save the video here once completed (implies --wait)"
    )
