"""The template's functions, run in this process the way Lambda would run them: each with its
own environment and role (`offline.isolation`), each invocation stopped at its Timeout."""

from __future__ import annotations

import contextvars
import importlib.util
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from offline import isolation
from offline.iam import roles_from_template
from offline.template import ROOT, Template


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class LocalFunctions:
    """Loads each function's `app.py` (the shared layer on the path, as Lambda would: see
    offline/__init__.py) and invokes its handler by logical id, function name or ARN.

    As in Lambda, an invocation has its execution environment to itself: concurrent invocations
    of a function each run in a copy of its module of their own (its Powertools resolver holds
    the current event), made when every copy is busy and reused once its invocation is over."""

    def __init__(self, template: Template) -> None:
        # The idle execution environments of each function, and how many were made.
        self._idle: dict[str, list[ModuleType]] = {}
        self._made: dict[str, int] = {}
        self._physical_names: dict[str, str] = {}  # logical id -> FunctionName, once provisioned
        self._lock = threading.Lock()
        self._specs = _specs_of(template)
        # Each invocation's thread until its handler returns (past its Timeout too).
        self._running: set[threading.Thread] = set()

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def deploy(
        self, template: Template, parameters: dict[str, Any], local_env: Mapping[str, str]
    ) -> None:
        """Each function's environment (the template's variables, then the local choices in
        `local_env`, which every function sees), role and settings (Timeout, MemorySize), from
        the provisioned `template`."""
        specs = _specs_of(template)
        with self._lock:
            for name, spec in specs.items():
                if self._specs.get(name, spec)[:2] != spec[:2]:
                    self._idle.pop(name, None)  # other code: its environments are new ones
        self._specs = specs
        self._parameters = parameters
        self._local_env = dict(local_env)
        self._physical_names = {name: template.names.get(name, name) for name in self._specs}
        self._environments = {
            name: {**template.function_environment(name, parameters), **self._lambda_env(name)}
            for name in self._specs
        }
        state_machines = list(template.of_type("AWS::Serverless::StateMachine"))
        self._deployment = isolation.Deployment(
            environments={},
            roles=roles_from_template(template),
            state_machine=state_machines[0] if len(state_machines) == 1 else None,
        )
        self._apply()

    def redeploy(self, template: Template) -> None:
        """The same local choices, with another version of the template (a changed role,
        variable or timeout), as `sam deploy` of that version would."""
        self.deploy(template, self._parameters, self._local_env)

    def set_local_env(self, **variables: str) -> None:
        """Changes local choices (e.g. a provider's base URL) for every function; each builds
        its settings again on its next invocation, as after a configuration change in AWS."""
        self._local_env.update(variables)
        self._apply()

    def environment(self, name: str) -> dict[str, str]:
        return dict(self._deployment.environments[self.logical_id(name)])

    def _apply(self) -> None:
        from veo_relay import wiring

        # A local choice reaches the functions that have the variable, or all of them when no
        # function's template has it (an offline-only knob): no function gains another's.
        declared = {name for env in self._environments.values() for name in env}
        self._deployment.environments = {
            name: {
                **env,
                **{k: v for k, v in self._local_env.items() if k in env or k not in declared},
            }
            for name, env in self._environments.items()
        }
        isolation.deploy(self._deployment)
        wiring.clear()

    def _lambda_env(self, name: str) -> dict[str, str]:
        """The variables Lambda itself sets in every function's environment."""
        _, handler, memory, _ = self._specs[name]
        return {
            "AWS_LAMBDA_FUNCTION_NAME": self._physical_names.get(name, name),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "_HANDLER": handler,
        }

    def handler(self, name: str) -> Callable[[dict[str, Any], Any], Any]:
        """The handler of one of the function's environments (made, if it has none yet)."""
        environment = self._take_environment(name)
        self._give_back(name, environment)
        return self._handler_of(name, environment)

    def _take_environment(self, name: str) -> ModuleType:
        with self._lock:
            idle = self._idle.setdefault(name, [])
            if idle:
                return idle.pop()
            self._made[name] = number = self._made.get(name, 0) + 1
        code_uri, handler, _, _ = self._specs[name]
        module_name = handler.rsplit(".", 1)[0]
        path = ROOT / code_uri / f"{module_name}.py"
        spec = importlib.util.spec_from_file_location(f"veo_relay_fn_{name}_{number}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def _give_back(self, name: str, environment: ModuleType) -> None:
        with self._lock:
            self._idle[name].append(environment)

    def _handler_of(
        self, name: str, environment: ModuleType
    ) -> Callable[[dict[str, Any], Any], Any]:
        function_name = self._specs[name][1].rsplit(".", 1)[1]
        return getattr(environment, function_name)  # type: ignore[no-any-return]

    def invoke(self, name_or_arn: str, event: dict[str, Any]) -> Any:
        """The handler's result, or its exception; `FunctionTimedOut` once the function's
        Timeout is up (the handler's thread may run on, but it can no longer call AWS)."""
        name = self.logical_id(name_or_arn)
        _, _, memory, timeout = self._specs[name]
        invocation = isolation.invocation_of(name, timeout)
        context = LocalContext(
            function_name=name,
            memory_limit_in_mb=memory,
            timeout_seconds=timeout,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        )
        outcome: dict[str, Any] = {}

        def run() -> None:
            with isolation.running(invocation):
                # A new environment imports its module here, under the function's own settings.
                environment = self._take_environment(name)
                try:
                    outcome["result"] = self._handler_of(name, environment)(event, context)
                except BaseException as exc:  # handed to the caller, as Lambda reports it
                    outcome["error"] = exc
                finally:
                    # Only once the handler has returned (past a Timeout too): no two
                    # invocations share an environment's state.
                    self._give_back(name, environment)
                    with self._lock:
                        self._running.discard(worker)

        worker = threading.Thread(
            target=contextvars.copy_context().run, args=(run,), name=f"{name}-invocation"
        )
        worker.daemon = True
        with self._lock:
            self._running.add(worker)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            invocation.timed_out = True
            raise isolation.FunctionTimedOut(name, timeout)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def wait_idle(self, timeout: float) -> bool:
        """Waits up to `timeout` for every invocation under way to end (one past its Timeout
        too); whether any was under way. A test's invocations cannot run on into the next's."""
        with self._lock:
            running = list(self._running)
        deadline = time.monotonic() + timeout
        for worker in running:
            worker.join(max(0.0, deadline - time.monotonic()))
        return bool(running)

    def logical_id(self, name_or_arn: str) -> str:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        name = {v: k for k, v in self._physical_names.items()}.get(name, name)
        if name not in self._specs:
            raise KeyError(f"no function {name_or_arn!r} in template.yaml")
        return name


def _specs_of(template: Template) -> dict[str, tuple[str, str, int, int]]:
    """Each function's code location, handler, memory size and timeout (Globals applied)."""
    globals_ = template.body["Globals"]["Function"]
    specs = {}
    for name, spec in template.of_type("AWS::Serverless::Function").items():
        props = spec["Properties"]
        specs[name] = (
            props["CodeUri"],
            props["Handler"],
            int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            int(props.get("Timeout", globals_.get("Timeout", 3))),
        )
    return specs
