"""What keeps the functions apart when they all run in this one process, as Lambda keeps them
apart in sandboxes of their own:

- each invocation sees only its function's environment (its template variables, Globals and
  Lambda's own variables), not the union of all: `os.environ` answers per invocation;
- each AWS call is made as the caller's role (`offline.iam`): the invocation's function, the
  function whose code created the client (calls from s3transfer's threads), or the state machine
  (its interpreter's clients);
- an invocation past its function's Timeout is over: its AWS calls fail from then on, as a
  Lambda sandbox stopped at its timeout makes no more calls;
- each invocation's log lines carry its own function's context: Powertools keeps a logger's
  keys on its formatter, and the layer's child loggers write through the formatter of the first
  function that set up the service's logger (one service name, one process).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from offline.iam import Role, as_aws_answers_missing_keys, authorize

STATE_MACHINE = "state machine"  # the tag of the interpreter's clients


@dataclass
class Invocation:
    function: str
    env: Mapping[str, str]
    role: Role | None
    timeout_seconds: float
    timed_out: bool = False
    # The keys every log line of this invocation carries (function_name, correlation_id, ...).
    log_format: dict[str, Any] | None = None


@dataclass
class Deployment:
    """The functions as deployed: each one's environment and role, and the state machine's."""

    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    state_machine: str | None = None

    @property
    def managed_names(self) -> frozenset[str]:
        return frozenset(name for env in self.environments.values() for name in env)


class FunctionTimedOut(Exception):
    """Lambda's own words for an invocation stopped at its timeout."""

    def __init__(self, function: str, seconds: float) -> None:
        super().__init__(f"{function}: Task timed out after {seconds:.2f} seconds")
        self.function = function


_current: ContextVar[Invocation | None] = ContextVar("veo_relay_invocation", default=None)
_deployment = Deployment()


def deploy(deployment: Deployment) -> None:
    global _deployment
    _deployment = deployment
    _install()


def deployed_roles() -> dict[str, Role]:
    return dict(_deployment.roles)


@contextlib.contextmanager
def running(invocation: Invocation) -> Iterator[None]:
    token = _current.set(invocation)
    try:
        yield
    finally:
        _current.reset(token)


def invocation_of(function: str, timeout_seconds: float = 0.0) -> Invocation:
    return Invocation(
        function=function,
        env=_deployment.environments[function],
        role=_deployment.roles.get(function),
        timeout_seconds=timeout_seconds,
    )


def current_function() -> str | None:
    """The function whose invocation (or `acting_as`) the calling code runs in, if any."""
    invocation = _current.get()
    return invocation.function if invocation is not None else None


def caller_of(client: Any) -> str | None:
    """Whose role a call by `client` made now is made as: a function's or the state machine's
    logical id, or None for the harness's own calls (which no role checks)."""
    role = _role_of(client, _current.get())
    return role.principal if role is not None else None


@contextlib.contextmanager
def acting_as(function: str) -> Iterator[None]:
    """Code run here (a test's own set-up) sees the function's environment and calls AWS as
    its role, as if it were that function's."""
    with running(invocation_of(function)):
        yield


class FunctionEnviron(MutableMapping[str, str]):
    """`os.environ`, as each invocation sees it: inside one, the names any function defines
    are its function's values (or absent); every other name, and every write, is the process's."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self._base = base

    def _own(self) -> tuple[Mapping[str, str], frozenset[str]] | None:
        invocation = _current.get()
        if invocation is None:
            return None
        return invocation.env, _deployment.managed_names

    def __getitem__(self, name: str) -> str:
        own = self._own()
        if own is not None:
            env, managed = own
            if name in env:
                return env[name]
            if name in managed:
                raise KeyError(name)
        return self._base[name]

    def __iter__(self) -> Iterator[str]:
        own = self._own()
        if own is None:
            yield from self._base
            return
        env, managed = own
        yield from env
        yield from (name for name in self._base if name not in env and name not in managed)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, name: str, value: str) -> None:
        self._base[name] = value

    def __delitem__(self, name: str) -> None:
        del self._base[name]

    def copy(self) -> dict[str, str]:
        return dict(self)


_install_lock = threading.Lock()
_installed = False


def _install() -> None:
    """Once per process: the per-invocation environment, and every botocore call checked."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import botocore.client
        import botocore.session
        import botocore.signers

        if not isinstance(os.environ, FunctionEnviron):
            os.environ = FunctionEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003
        checked_call = _checked_calls(botocore.client.BaseClient._make_api_call)
        tagged_client = _tagged_clients(botocore.session.Session.create_client)
        checked_presign = _checked_presigns(botocore.signers.generate_presigned_url)
        botocore.client.BaseClient._make_api_call = checked_call  # type: ignore[method-assign]
        botocore.session.Session.create_client = tagged_client  # type: ignore[method-assign]
        # New clients take it up (it is bound when botocore builds a client class).
        botocore.signers.generate_presigned_url = checked_presign
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        LambdaPowertoolsFormatter.log_format = _PerInvocationLogKeys()  # type: ignore[assignment]
        _installed = True


def _checked_calls(make_api_call: Callable[..., Any]) -> Callable[..., Any]:
    """botocore's `_make_api_call`, made as the caller's role and refused past the timeout."""

    def checked_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        invocation = _current.get()
        if invocation is not None and invocation.timed_out:
            raise FunctionTimedOut(invocation.function, invocation.timeout_seconds)
        role = _role_of(client, invocation)
        if role is None:
            return make_api_call(client, operation, params)
        service = client.meta.service_model.signing_name
        authorize(role, service, operation, params)
        try:
            return make_api_call(client, operation, params)
        except Exception as exc:
            answer = as_aws_answers_missing_keys(role, service, operation, params, exc)
            if answer is exc:
                raise
            raise answer from None

    return checked_call


def _tagged_clients(create_client: Callable[..., Any]) -> Callable[..., Any]:
    """botocore's `create_client`, tagging each client with the function whose code made it."""

    def tagged_client(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = create_client(session, *args, **kwargs)
        invocation = _current.get()
        if invocation is not None:
            client._veo_relay_caller = invocation.function
        return client

    return tagged_client


def _checked_presigns(presign: Callable[..., Any]) -> Callable[..., Any]:
    """botocore's `generate_presigned_url`, checked against the signer's role."""

    def checked_presign(client: Any, ClientMethod: str, Params: Any = None, **kw: Any) -> Any:
        # AWS checks a presigned URL's permission when it is used, with the signer's role;
        # nobody here can tell then whose it was, so it is checked when it is signed.
        role = _role_of(client, _current.get())
        if role is not None:
            operation = client.meta.method_to_api_mapping[ClientMethod]
            authorize(role, client.meta.service_model.signing_name, operation, Params or {})
        return presign(client, ClientMethod, Params, **kw)

    return checked_presign


class _PerInvocationLogKeys:
    """A formatter's `log_format` (the keys each line carries): inside an invocation, one dict for
    all formatters, so that the function's own and the layer's child loggers agree; outside any,
    the formatter's own."""

    def __get__(self, formatter: Any, owner: Any = None) -> Any:
        if formatter is None:
            return self
        state = formatter.__dict__
        if "_veo_relay_log_format" not in state:  # a formatter made before this was installed
            state["_veo_relay_log_format"] = state.pop("log_format", {})
        invocation = _current.get()
        if invocation is None:
            return state["_veo_relay_log_format"]
        if invocation.log_format is None:
            invocation.log_format = dict(state["_veo_relay_log_format"])
        return invocation.log_format

    def __set__(self, formatter: Any, value: dict[str, Any]) -> None:
        invocation = _current.get()
        if invocation is None or "_veo_relay_log_format" not in formatter.__dict__:
            formatter.__dict__["_veo_relay_log_format"] = value
        if invocation is not None:
            invocation.log_format = value


def tag_state_machine_client(client: Any) -> Any:
    client._veo_relay_caller = STATE_MACHINE
    return client


def _role_of(client: Any, invocation: Invocation | None) -> Role | None:
    if invocation is not None:
        return invocation.role
    caller = getattr(client, "_veo_relay_caller", None)
    if caller == STATE_MACHINE:
        caller = _deployment.state_machine
    return _deployment.roles.get(caller) if caller else None
