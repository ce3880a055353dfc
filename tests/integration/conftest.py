"""The integration stack: moto with the template's resources, the real handlers, the real state
machine definition, the apixo simulator and a local HTTP API that receives its callbacks.

The resources are provisioned from template.yaml once per session and moto's state is kept as
provisioning left it (`ProvisionedMoto`); each test starts from a fresh copy of that state, so it
sees the stack as freshly provisioned, in a fraction of the time provisioning takes. After each
test nothing of it runs on: callbacks not yet sent are dropped, executions stopped, invocations
waited for; then moto is reset and the functions' caches cleared.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import threading
import time
import types
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import moto
import pytest

from offline import isolation
from offline.api_gateway import LocalHttpApi
from offline.aws import (
    REGION,
    configure_moto,
    join_asynchronous_invocations,
    provision,
    store_provider_keys,
)
from offline.event_sources import QueuePollers
from offline.functions import LocalFunctions
from offline.simulator import ProviderSimulator
from offline.template import Template, load_template
from tests.helpers import (
    ALICE,
    FUNCTION_WIRING,
    api_event,
    copy_request_event,
    response_json,
    wait_until,
)
from veo_relay.providers.registry import PROVIDER_NAMES, SPECS

SIM_API_KEY = "sim-test-key"
SIM_KEYS = dict.fromkeys(PROVIDER_NAMES, SIM_API_KEY)
# Providers other than apixo are never reached from these tests unless a test asks for their
# simulator (the `apimart` and `kie` fixtures): a closed loopback port.
UNREACHABLE = "http://127.0.0.1:9"

# Seconds, so that a state machine run takes a few seconds of wall time.
TEST_TIMINGS = {
    "POLL_FIRST_WAIT_SECONDS": "1",
    "POLL_INTERVAL_SECONDS": "1",
    "POLL_MAX_INTERVAL_SECONDS": "2",
}
# How long a test's teardown waits for what it left running (a callback being answered, an
# invocation past its timeout) before the next test's stack is made.
QUIESCE_SECONDS = 10.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "stack_env(**variables): environment variables for the integration stack's functions",
    )


@dataclass
class Stack:
    template: Template
    functions: LocalFunctions
    session: boto3.Session
    simulator: ProviderSimulator
    api: LocalHttpApi
    # Every simulator this test's functions call (the kie and apimart fixtures add theirs).
    simulators: list[ProviderSimulator] = field(default_factory=list, repr=False)
    _pollers: QueuePollers | None = field(default=None, repr=False)
    _usage_before: Counter[Any] = field(default_factory=lambda: Counter(_usage()), repr=False)

    # resources, as provisioned from template.yaml

    @property
    def table(self) -> str:
        return self.template.names["TasksTable"]

    @property
    def bucket(self) -> str:
        return self.template.names["VideoBucket"]

    @property
    def copy_queue_url(self) -> str:
        return self.template.names["CopyQueue"]

    @property
    def state_machine_arn(self) -> str:
        return self.template.names["FallbackPoller"]

    def client(self, service: str) -> Any:
        return self.session.client(service)

    # functions

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.functions.invoke(function, event)

    def runtime(self, function: str) -> Any:
        """The function's own wiring (its settings, adapters and role), as its code sees it."""
        with isolation.acting_as(function):
            wired = FUNCTION_WIRING[function]()
            # Its clients are made here, as the function's: those a test reaches for are then
            # the function's on every thread (s3transfer's too), as in an invocation.
            for adapter in vars(wired).values():
                client = getattr(adapter, "_s3", None)
                if client is not None:
                    client.made()
            return wired

    def set_env(self, **variables: str) -> None:
        """Local settings every function sees from its next invocation on."""
        self.functions.set_local_env(**variables)

    def iam_usage(self) -> list[dict[str, Any]]:
        """Every IAM decision the offline stack made since this stack was built."""
        from offline.iam import USAGE

        return [
            {"principal": p, "action": a, "resource": r, "allowed": ok, "calls": n}
            for (p, a, r, ok), n in (USAGE - self._usage_before).items()
        ]

    def put_callback_keys(self, **keys: str) -> None:
        """The callback keys secret (kie's webhook HMAC key)."""
        self.client("secretsmanager").put_secret_value(
            SecretId=self.template.names["CallbackKeysSecret"], SecretString=json.dumps(keys)
        )

    def put_provider_keys(self, **keys: str) -> None:
        """The provider keys secret, as `aws secretsmanager put-secret-value` would set it."""
        store_provider_keys(self.template, self.session, {**SIM_KEYS, **keys})

    def create_video(self, body: dict[str, Any] | str, principal: str = ALICE) -> dict[str, Any]:
        """POST /v1/videos through the API handler; returns the response (statusCode, ...)."""
        if isinstance(body, str):
            event = api_event("api_create_video", principal=principal, raw_body=body)
        else:
            event = api_event("api_create_video", principal=principal, body=body)
        return self.invoke("ApiFunction", event)

    def create_task(self, prompt: str, principal: str = ALICE, **fields: Any) -> dict[str, Any]:
        """A created task's public object (asserts the 202)."""
        response = self.create_video({"prompt": prompt, **fields}, principal)
        assert response["statusCode"] == 202, response
        return response_json(response)

    def copy(self, *task_ids: str) -> dict[str, Any]:
        """The copy worker on each task's request: the callback's (holding the lease it took)
        when the task was called back, else the poller's."""
        leases = {}
        for task_id in task_ids:
            item = self.item(task_id) or {}
            if item.get("status", {}).get("S") == "storing" and "callback_received_at" in item:
                leases[task_id] = item["updated_at"]["S"]
        return self.invoke("CopyWorkerFunction", copy_request_event(*task_ids, leases=leases))

    # state

    def item(self, task_id: str) -> dict[str, Any] | None:
        """The raw DynamoDB item (consistent read), in the low-level attribute-value form."""
        found = self.client("dynamodb").get_item(
            TableName=self.table, Key={"id": {"S": task_id}}, ConsistentRead=True
        )
        return found.get("Item")

    def task_items(self) -> list[dict[str, Any]]:
        """Every task in the table (other records, such as submit schedules, left out)."""
        items = self.client("dynamodb").scan(TableName=self.table, ConsistentRead=True)["Items"]
        return [i for i in items if i["id"]["S"].startswith("vid_")]

    def status(self, task_id: str) -> str | None:
        item = self.item(task_id)
        return item["status"]["S"] if item else None

    def wait_for_status(self, task_id: str, *statuses: str, timeout: float = 15.0) -> str:
        return wait_until(
            lambda: (s := self.status(task_id)) in statuses and s,
            timeout=timeout,
            what=lambda: (
                f"task {task_id} to be {' or '.join(statuses)} (it is {self.status(task_id)})"
            ),
        )

    def copy_messages(self, wait: float = 0.0) -> list[dict[str, Any]]:
        """Receives every visible copy request (they stay in flight, so each is seen once)."""
        sqs = self.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            received = sqs.receive_message(
                QueueUrl=self.copy_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=int(wait) if not messages else 0,
            ).get("Messages", [])
            if not received:
                return messages
            messages.extend(received)

    @staticmethod
    def bodies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in messages]

    def sim_task_for(self, task_id: str) -> Any:
        provider_task_id = self.item(task_id)["provider_task_id"]["S"]  # type: ignore[index]
        return self.simulator.task(provider_task_id)

    # the state machine

    def execution_arn(self, task_id: str) -> str:
        name = self.state_machine_arn.split(":")[-1]
        return f"arn:aws:states:{REGION}:123456789012:execution:{name}:{task_id}"

    def wait_for_execution(self, execution_arn: str, timeout: float = 20.0) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        return wait_until(
            lambda: (
                (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING"
                and d
            ),
            timeout=timeout,
            interval=0.1,
            what=f"execution {execution_arn} to end",
        )

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.client("stepfunctions").get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]

    def start_queue_pollers(self) -> None:
        """Lambda's SQS event source mapping for the copy worker, as the offline stack runs it."""
        self._pollers = QueuePollers(
            self.template, self.functions, self.client("sqs"), pollers_per_queue=1
        )
        self._pollers.start()

    def stop(self) -> None:
        """Leaves nothing of this test running: no poller, no callback to come (the simulators
        are shared by every test, and one sent late would reach the next test's functions, with
        settings that are not theirs), no execution, no invocation under way."""
        if self._pollers is not None:
            self._pollers.stop()
        for simulator in self.simulators:
            simulator.cancel_callbacks(timeout=QUIESCE_SECONDS)
        # An invocation may start an execution, and an execution invokes: until neither runs.
        deadline = time.monotonic() + QUIESCE_SECONDS
        while time.monotonic() < deadline:
            stopped = self._stop_executions()
            # Let an execution thread inside a Lambda task finish it while AWS is still mocked.
            _join_execution_threads(timeout=5)
            invoking = self.functions.wait_idle(timeout=max(0.0, deadline - time.monotonic()))
            if not (stopped or invoking or join_asynchronous_invocations(timeout=5)):
                return
        warnings.warn(
            f"the test left executions or invocations running after {QUIESCE_SECONDS:.0f} s",
            stacklevel=1,
        )

    def _stop_executions(self) -> bool:
        sfn = self.client("stepfunctions")
        running = sfn.list_executions(
            stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
        )["executions"]
        for execution in running:
            _stop_execution(sfn, execution["executionArn"])
        return bool(running)


def _usage() -> Counter[Any]:
    from offline.iam import USAGE

    return USAGE


def _stop_execution(sfn: Any, execution_arn: str) -> None:
    # moto fails to stop an execution whose worker thread has not set itself up yet: retry.
    for _ in range(50):
        try:
            sfn.stop_execution(executionArn=execution_arn)
            return
        except AttributeError:
            time.sleep(0.02)
    sfn.stop_execution(executionArn=execution_arn)


def _join_execution_threads(timeout: float) -> None:
    from moto.stepfunctions.parser.utils import TMP_THREADS

    current = threading.current_thread()
    for thread in list(TMP_THREADS):
        if thread is not current:
            thread.join(timeout=timeout)
    TMP_THREADS.clear()


FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint override: nothing can reach a real AWS account."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_aws(monkeypatch)


def _mock_aws() -> Any:
    from moto.core.config import default_user_config

    return moto.mock_aws(
        config={
            "stepfunctions": {"execute_state_machine": True},
            "lambda": {"use_docker": False},
            # Keep boto3's default session (and its loaded service models) between tests:
            # reloading them for every test costs more than the test itself.
            "core": {**default_user_config["core"], "reset_boto3_session": False},
        }
    )


class ProvisionedMoto:
    """moto's state as provisioning left it (every backend: tables, buckets, queues, secrets,
    the state machine, ...), kept aside; `install` puts a fresh copy of it in place of whatever
    moto holds, as if the stack had just been provisioned."""

    def __init__(self) -> None:
        from moto.core.base_backend import BackendDict

        live = [
            ((backends, account, region), backend)
            for backends in BackendDict._instances
            for account, regions in backends.items()
            for region, backend in regions.items()
        ]
        self._places = [place for place, _ in live]
        # A copy: stopping the mock resets the live backends in place.
        self._backends = _copy_state([backend for _, backend in live])
        self._locks = _locks_in(self._backends)

    def install(self) -> None:
        """Into a started mock (which reset every backend as it started)."""
        fresh = _copy_state(self._backends, self._locks)
        for (backends, account, region), backend in zip(self._places, fresh, strict=True):
            backends[account][region] = backend


# Locks and conditions cannot be copied; a copy of the state gets new ones, unheld.
_LOCK_FACTORIES: dict[type, Any] = {
    type(threading.Lock()): threading.Lock,
    type(threading.RLock()): threading.RLock,
    threading.Condition: threading.Condition,
}


def _copy_state(state: list[Any], locks: list[Any] | None = None) -> list[Any]:
    memo = {id(lock): _LOCK_FACTORIES[type(lock)]() for lock in locks or _locks_in(state)}
    return copy.deepcopy(state, memo)


def _locks_in(root: Any) -> list[Any]:
    """Every lock or condition reachable from `root`'s objects (not through classes, modules or
    functions, which a copy shares)."""
    atomic = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, str, bytes)
    found, seen, pending = [], set(), [root]
    while pending:
        obj = pending.pop()
        if id(obj) in seen or isinstance(obj, atomic):
            continue
        seen.add(id(obj))
        if type(obj) in _LOCK_FACTORIES:
            found.append(obj)
        else:
            pending.extend(gc.get_referents(obj))
    return found


@dataclass(frozen=True)
class Provisioned:
    """The session's stack, as provisioned once: the template with every resource's name and
    attributes, and moto's state."""

    template: Template
    parameters: dict[str, Any]
    moto: ProvisionedMoto

    def template_copy(self) -> Template:
        """A test's own copy, which it may change without changing another's."""
        template = self.template
        return Template(
            copy.deepcopy(template.body), dict(template.names), dict(template.attributes)
        )


@pytest.fixture(scope="session")
def session_template() -> Template:
    """template.yaml, parsed once (YAML parsing takes longer than most tests)."""
    return load_template()


@pytest.fixture(scope="session")
def local_functions(session_template: Template) -> LocalFunctions:
    """The template's handlers, loaded once (as a warm Lambda keeps them)."""
    return LocalFunctions(session_template)


@pytest.fixture(scope="session")
def simulator() -> Iterator[ProviderSimulator]:
    """The apixo simulator; shared, since every test uses its own tasks."""
    sim = ProviderSimulator.for_provider("apixo", port=0, api_key=SIM_API_KEY, default_delay=0.2)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def http_api(session_template: Template, local_functions: LocalFunctions) -> Iterator[LocalHttpApi]:
    """The template's routes on a free loopback port: the simulator's callbacks come in here."""
    api = LocalHttpApi(session_template.routes(), local_functions, "127.0.0.1", 0)
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def boto_session() -> boto3.Session:
    return boto3.Session(region_name=REGION)


@pytest.fixture(scope="session")
def provisioned(boto_session: boto3.Session, local_functions: LocalFunctions) -> Provisioned:
    """Every resource of template.yaml created in moto, once; the provider keys stored."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    template = load_template()
    parameters = template.parameter_defaults()
    original_invoke = LambdaSimpleBackend.invoke
    with pytest.MonkeyPatch.context() as monkeypatch:
        _fake_aws(monkeypatch)
        mock = _mock_aws()
        mock.start()
        try:
            configure_moto(local_functions.invoke)
            provision(template, boto_session, parameters)
            store_provider_keys(template, boto_session, SIM_KEYS)
            state = ProvisionedMoto()
        finally:
            mock.stop()
            LambdaSimpleBackend.invoke = original_invoke  # type: ignore[method-assign]
    return Provisioned(template, parameters, state)


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    boto_session: boto3.Session,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    provisioned: Provisioned,
    local_functions: LocalFunctions,
    simulator: ProviderSimulator,
    http_api: LocalHttpApi,
) -> Iterator[Stack]:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from veo_relay import wiring

    marker = request.node.get_closest_marker("stack_env")
    extra_env = {k: str(v) for k, v in (marker.kwargs if marker else {}).items()}

    with contextlib.ExitStack() as cleanup:
        # Callbacks run in reverse: caches and moto last, executions first.
        wiring.clear()
        cleanup.callback(wiring.clear)
        original_invoke = LambdaSimpleBackend.invoke
        cleanup.callback(setattr, LambdaSimpleBackend, "invoke", original_invoke)

        mock = _mock_aws()
        mock.start()
        cleanup.callback(mock.stop)
        provisioned.moto.install()

        template = provisioned.template_copy()
        configure_moto(local_functions.invoke)
        session = boto_session
        parameters = dict(provisioned.parameters)
        env: dict[str, str] = dict(TEST_TIMINGS)
        env.update({spec.variable("BASE_URL"): UNREACHABLE for spec in SPECS})
        env.update(
            APIXO_BASE_URL=simulator.base_url,
            TRUST_PROVIDER_ORIGIN="true",
            PUBLIC_BASE_URL=http_api.url,
            POWERTOOLS_LOG_LEVEL="WARNING",
            POWERTOOLS_TRACE_DISABLED="true",
            # Every read of a secret reaches Secrets Manager: a key a test puts is seen at once.
            SECRETS_CACHE_SECONDS="0",
        )
        env.update(extra_env)
        # The template's per-provider first waits are minutes; here the one for all applies.
        for spec in SPECS:
            env.setdefault(spec.variable("POLL_FIRST_WAIT_SECONDS"), env["POLL_FIRST_WAIT_SECONDS"])
        local_functions.deploy(template, parameters, env)

        built = Stack(template, local_functions, session, simulator, http_api, [simulator])
        cleanup.callback(built.stop)
        yield built


@pytest.fixture(scope="session")
def other_simulators() -> Iterator[dict[str, ProviderSimulator]]:
    """Every other provider's simulator, started only for the tests that ask for one of them."""
    started = {
        name: ProviderSimulator.for_provider(
            name, port=0, api_key=SIM_API_KEY, default_delay=0.2
        ).start()
        for name in PROVIDER_NAMES
        if name != "apixo"
    }
    yield started
    for sim in started.values():
        sim.stop()


def _point_provider_at(name: str, sim: ProviderSimulator, stack: Stack) -> ProviderSimulator:
    stack.set_env(**{f"{name.upper()}_BASE_URL": sim.base_url})
    stack.simulators.append(sim)
    return sim


@pytest.fixture
def apimart(
    stack: Stack,
    other_simulators: dict[str, ProviderSimulator],
    monkeypatch: pytest.MonkeyPatch,
) -> ProviderSimulator:
    """The stack with APIMART_BASE_URL/APIMART_API_KEY pointing at the apimart simulator (which
    has no callbacks for veo3.1); request it together with `stack`."""
    return _point_provider_at("apimart", other_simulators["apimart"], stack)


@pytest.fixture
def kie(
    stack: Stack,
    other_simulators: dict[str, ProviderSimulator],
    monkeypatch: pytest.MonkeyPatch,
) -> ProviderSimulator:
    """The stack with KIE_BASE_URL/KIE_API_KEY pointing at the kie simulator."""
    return _point_provider_at("kie", other_simulators["kie"], stack)
