"""`ProviderSimulator`: one provider's protocol on its own origin, plus introspection for tests."""

import importlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from types import TracebackType
from typing import Any, Self

from offline.servers import LocalHTTPServer
from veo_relay.providers.registry import PROVIDER_NAMES

from .callbacks import CallbackPlan, CallbackSender
from .engine import TaskEngine
from .http_server import AppHooks, make_server
from .mp4 import mp4_bytes_sha256
from .protocol import ProviderProtocol
from .ratelimit import RateLimit
from .scheduler import Scheduler
from .tasks import (
    Phase,
    SimTask,
    SubmitAttempt,
    TaskSnapshot,
    TaskStore,
    UpgradeResolution,
    VideoFile,
)
from .web import SimRequest, SimResponse

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "sim-key"
DEFAULT_DELAY_SECONDS = 2.0
DEFAULT_VIDEO_SIZE = 256 * 1024
DEFAULT_CALLBACK_RETRY_DELAYS = (0.5, 1.0, 2.0)
DEFAULT_CALLBACK_TIMEOUT_SECONDS = 5.0
_SHUTDOWN_POLL_SECONDS = 0.05  # how soon stop() takes effect (the stdlib default is 0.5 s)


def _protocol_of(provider: str) -> type[ProviderProtocol]:
    """The protocol of one of veo_relay's providers: the ProviderProtocol named after it in its
    own module, offline/simulator/<provider>.py."""
    module = importlib.import_module(f"{__package__}.{provider}")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ProviderProtocol)
        and getattr(value, "name", None) == provider
    ]
    if len(found) != 1:
        raise LookupError(f"{module.__file__} must define one ProviderProtocol named {provider!r}")
    return found[0]


# A simulator for every provider of the registry.
PROTOCOLS = {name: _protocol_of(name) for name in PROVIDER_NAMES}


class ProviderSimulator:
    def __init__(
        self,
        protocol_class: type[ProviderProtocol],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | Callable[[], str] = DEFAULT_API_KEY,
        default_delay: float = DEFAULT_DELAY_SECONDS,
        default_size: int = DEFAULT_VIDEO_SIZE,
        rate_limit: RateLimit | None = None,
        max_concurrent_tasks: int | None = None,
        callback_retry_delays: Sequence[float] = DEFAULT_CALLBACK_RETRY_DELAYS,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT_SECONDS,
        public_base_url: str | None = None,
        store: TaskStore | None = None,
        schedule_callback: Callable[[SimTask, CallbackPlan], None] | None = None,
    ) -> None:
        """`rate_limit`/`max_concurrent_tasks` default to the provider's documented limits
        (apixo 10000 requests/min + 1000 unfinished tasks, kie 20 creations/10 s, apimart
        60 creations/10 s).

        `public_base_url` overrides the origin written into result URLs (e.g. when clients reach
        the simulator through another host name); by default it is http://{host}:{bound port}.

        `api_key` may be a callable, read on each request (a key kept in a secret). `store` and
        `schedule_callback` replace the in-memory tasks and the timer thread that calls back
        where no process outlives a request (the simulator's Lambda function).
        """
        self.provider = protocol_class.name
        self._host = host
        self._port = port
        self._api_key = api_key
        self._public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._store = store if store is not None else TaskStore()
        self._scheduler = Scheduler(name=f"sim-{self.provider}-scheduler")
        self._callback_sender = CallbackSender(self._store, callback_retry_delays, callback_timeout)
        engine = TaskEngine(
            provider=self.provider,
            store=self._store,
            schedule_callback=schedule_callback or self._call_back_when_finished,
            default_delay=default_delay,
            default_size=default_size,
            origin=lambda: self.base_url,
        )
        self._protocol = protocol_class(
            engine, rate_limit=rate_limit, max_concurrent_tasks=max_concurrent_tasks
        )
        self._routes = self._protocol.routes()
        self._server: LocalHTTPServer | None = None

    @classmethod
    def for_provider(cls, provider: str, **options: Any) -> Self:
        """`provider` is a name of veo_relay's registry; options are those of the constructor."""
        if provider not in PROTOCOLS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(PROTOCOLS)}")
        return cls(PROTOCOLS[provider], **options)

    # lifecycle

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self.provider} simulator already started")
        hooks = AppHooks(
            handle=self.handle,
            find_video=self.find_video,
            introspect=self.introspect,
            control_balance=self.control_balance,
        )
        self._server = make_server(self._host, self._port, hooks)
        self._scheduler.start()
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name=f"sim-{self.provider}-http",
            daemon=True,
        ).start()
        log.info("%s simulator listening on %s", self.provider, self.base_url)
        return self

    def stop(self) -> None:
        """Stops serving and calling back; a stopped simulator cannot be started again."""
        if self._server is None:
            return
        self._callback_sender.stop()
        self._scheduler.stop()
        self._server.shutdown()
        self._server.server_close()

    def cancel_callbacks(self, timeout: float = 10.0) -> None:
        """Sends no callback scheduled or under way (nor its retries) from now on, and waits up to
        `timeout` for one being answered: a test's callbacks cannot reach the next test's stack."""
        self._scheduler.cancel_pending()
        self._callback_sender.cancel(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.provider} simulator is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The origin clients use as the provider's base URL, e.g. http://127.0.0.1:8101."""
        if self._public_base_url:
            return self._public_base_url
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        return f"http://{host}:{self.port}"

    # introspection for tests

    def tasks(self) -> list[TaskSnapshot]:
        """Every task created so far, oldest first."""
        return self._store.snapshots()

    def task(self, task_id: str) -> TaskSnapshot:
        for snapshot in self._store.snapshots():
            if snapshot.task_id == task_id:
                return snapshot
        raise KeyError(task_id)

    def upgrade_task(self, task_id: str, resolution: UpgradeResolution) -> TaskSnapshot:
        """The task that upgrades `task_id` (kie's get-1080p-video / get-4k-video) to
        `resolution`; KeyError while there is none."""
        original = self.task(task_id)
        upgrade_id = original.task_id_4k if resolution == "4k" else original.task_id_1080p
        if upgrade_id is None:
            raise KeyError(f"{task_id} has no {resolution} upgrade")
        return self.task(upgrade_id)

    def submissions(self) -> list[SubmitAttempt]:
        """Every create request (generate/extend), accepted or rejected, oldest first."""
        return self._store.submissions()

    def set_balance(self, amount: float) -> None:
        """What the provider's balance route answers from now on, in its unit; LookupError for
        a provider without one (apimart)."""
        if self._protocol.default_balance is None:
            raise LookupError(f"the {self.provider} simulator has no balance route")
        if isinstance(amount, bool) or not math.isfinite(amount):
            raise ValueError(f"a balance is a finite number, not {amount!r}")
        self._store.set_balance(float(amount))

    def control_balance(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """POST /_sim/balance with {"balance": N}: the status and body of the answer."""
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            parsed = None
        amount = parsed.get("balance") if isinstance(parsed, dict) else None
        if not isinstance(amount, int | float):
            return 400, {"error": 'expected {"balance": <number>}'}
        try:
            self.set_balance(amount)
        except LookupError as exc:
            return 404, {"error": str(exc)}
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 200, {"provider": self.provider, "balance": self._protocol.balance()}

    def video_sha256(self, task_id: str) -> str:
        """SHA-256 of the task's result video, without downloading it."""
        video = self.task(task_id).video
        return mp4_bytes_sha256(video.size, video.seed, video.resolution)

    def wait_for(
        self, condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05
    ) -> None:
        """Polls `condition()` (a no-argument callable) until it is truthy or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.provider} simulator: condition not met in {timeout}s")
            time.sleep(interval)

    # request handling

    def handle(self, request: SimRequest) -> SimResponse:
        """One provider API request (not a file download nor introspection)."""
        try:
            return self._dispatch(request)
        except Exception:  # a simulator bug must look like a provider 500, not a hung request
            log.exception("%s simulator failed on %s", self.provider, request.path)
            return self._protocol.server_error()

    def _dispatch(self, request: SimRequest) -> SimResponse:
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match and route.method == request.method:
                break
        else:
            return self._protocol.not_found()
        expected = self._api_key() if callable(self._api_key) else self._api_key
        # An empty expected key is a client sending none (no Authorization header at all).
        if (request.bearer_token() or "") != expected:
            response = self._protocol.unauthorized()
        else:
            response = self._protocol.admit_request() or route.handler(request, match)
        if route.creates_task:
            self._store.note_submission(
                SubmitAttempt(
                    fingerprint=request.fingerprint,
                    prompt=self._protocol.prompt_of(request.json_object() or {}),
                    http_status=response.status,
                    response_code=response.envelope_code,
                    task_id=response.created_task_id,
                    received_at=time.time(),
                )
            )
        return response

    def find_video(self, name: str) -> VideoFile | None:
        """The video served as `name`, once its task has succeeded."""
        found = self._store.file(name)
        if found is None:
            return None
        video, task = found
        return video if task.phase() == Phase.SUCCEEDED else None

    def deliver_callback(self, task_id: str, url: str, builder: str, max_attempts: int) -> None:
        """Sends a callback scheduled by a `schedule_callback` hook, now and in this thread;
        `builder` names the protocol's method that builds the body."""
        task = self._store.get(task_id)
        if task is None:
            raise KeyError(task_id)
        plan = CallbackPlan(url, getattr(self._protocol, builder), max_attempts)
        self._callback_sender.deliver(task, plan)

    def _call_back_when_finished(self, task: SimTask, plan: CallbackPlan) -> None:
        self._scheduler.call_at(
            task.finishes_monotonic, lambda: self._callback_sender.send(task, plan)
        )

    def introspect(self) -> dict[str, Any]:
        """The body of GET /_sim/tasks."""
        return {
            "provider": self.provider,
            "tasks": [snapshot.to_json() for snapshot in self.tasks()],
            "submissions": [asdict(submission) for submission in self.submissions()],
        }


def start_simulators(
    ports: Mapping[str, int], api_keys: Mapping[str, str], **options: Any
) -> dict[str, ProviderSimulator]:
    """Starts one simulator per provider named in `ports` (port 0 = any free port).

    `options` go to every constructor (host, default_delay, ...). If one fails to start, the
    ones already running are stopped before the error propagates.
    """
    started: dict[str, ProviderSimulator] = {}
    try:
        for provider, port in ports.items():
            simulator = ProviderSimulator.for_provider(
                provider, port=port, api_key=api_keys[provider], **options
            )
            started[provider] = simulator.start()
    except BaseException:
        for simulator in started.values():
            simulator.stop()
        raise
    return started
