"""The whole system offline: embedded AWS, provider simulators, the functions, their event
sources and the HTTP API, all from template.yaml, in one process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from offline.aws import REGION, configure_moto, provision, store_provider_keys
from offline.template import Template, load_template
from veo_relay.providers.registry import PROVIDER_NAMES, SPECS, spec_of


def _simulator_ports() -> dict[str, int]:
    """8701, 8702, ...: one for each provider's simulator, in the registry's order."""
    return {name: 8701 + index for index, name in enumerate(PROVIDER_NAMES)}


@dataclass(frozen=True)
class Ports:
    api: int = 3000
    aws: int = 5000
    simulator_function: int = 8700  # the simulator function's URL, with VEO_RELAY_SIMULATE=true
    simulators: Mapping[str, int] = field(default_factory=_simulator_ports)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        defaults = cls()
        return cls(
            api=int(env.get("VEO_RELAY_API_PORT", defaults.api)),
            aws=int(env.get("VEO_RELAY_AWS_PORT", defaults.aws)),
            simulator_function=int(
                env.get("VEO_RELAY_SIMULATOR_FUNCTION_PORT", defaults.simulator_function)
            ),
            simulators={
                name: int(env.get(f"VEO_RELAY_{name.upper()}_SIM_PORT", port))
                for name, port in defaults.simulators.items()
            },
        )


# Local timings: the fallback poller's waits are seconds, not minutes.
LOCAL_DEFAULTS = {
    "POLL_FIRST_WAIT_SECONDS": "4",
    "POLL_INTERVAL_SECONDS": "2",
    "POLL_MAX_INTERVAL_SECONDS": "5",
    "TASK_DEADLINE_SECONDS": "300",
    # Webhooks to a receiver on this machine, retried after seconds rather than hours.
    "WEBHOOK_ALLOW_LOOPBACK": "true",
    "WEBHOOK_RETRY_SECONDS": "1,2,4",
    # A key put into the local secret is seen within a second.
    "SECRETS_CACHE_SECONDS": "1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "VeoRelayLocal",
}


class LocalStack:
    def __init__(self, ports: Ports, env: Mapping[str, str], host: str = "127.0.0.1") -> None:
        self.ports = ports
        self.host = host
        self._env = env
        # VEO_RELAY_SIMULATE=true deploys as `Simulate=true` would: the providers are the
        # simulator *function*, behind a local function URL, instead of in-process simulators.
        self.simulate = env.get("VEO_RELAY_SIMULATE", "").lower() == "true"
        self.parameters = {
            **load_template().parameter_defaults(),
            "Simulate": "true" if self.simulate else "false",
        }
        self.template: Template = load_template().deployed_with(self.parameters)
        # VEO_RELAY_SCHEDULE_SECONDS: every scheduled function's period (the template's rates are
        # minutes); unset, each runs at its own rate, a second after the start.
        schedule = env.get("VEO_RELAY_SCHEDULE_SECONDS", "").strip()
        self.schedule_seconds = float(schedule) if schedule else None
        self.simulators: dict[str, Any] = {}
        self.functions: Any = None  # LocalFunctions, once started
        self.function_urls: dict[str, Any] = {}
        self._stoppables: list[Any] = []

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.ports.api}"

    @property
    def aws_url(self) -> str:
        return f"http://{self.host}:{self.ports.aws}"

    def webhook_secret(self, principal: str) -> str:
        """The `whsec_` secret `principal`'s receivers verify its deliveries with: what its
        GET /v1/webhook-secret answers (the API function's own code, role and settings)."""
        from offline import isolation
        from offline.api_gateway import principal_arn
        from veo_relay import wiring
        from veo_relay.principals import owner_of

        with isolation.acting_as("ApiFunction"):
            return wiring.api().webhook_secrets.current(owner_of(principal_arn(principal)))

    def start(self) -> LocalStack:
        import boto3
        from moto.server import ThreadedMotoServer

        from offline.api_gateway import LocalHttpApi
        from offline.event_sources import QueuePollers, Schedules, StreamPollers
        from offline.functions import LocalFunctions
        from offline.metrics import EmfSink

        os.environ.update(self._aws_environment())
        functions = self.functions = LocalFunctions(self.template)
        configure_moto(functions.invoke)
        moto = ThreadedMotoServer(ip_address=self.host, port=self.ports.aws, verbose=False)
        moto.start()
        self._stoppables.append(moto)

        session = boto3.Session(region_name=REGION)
        parameters = self.parameters
        provision(self.template, session, parameters)
        self.function_urls = self._start_function_urls(functions)
        self.simulators = {} if self.simulate else self._start_simulators()
        store_provider_keys(self.template, session, self._provider_keys())
        functions.deploy(self.template, parameters, self._local_environment())

        pollers = QueuePollers(self.template, functions, session.client("sqs"))
        pollers.start()
        self._stoppables.append(pollers)
        streams = StreamPollers(self.template, functions, session)
        streams.start()
        self._stoppables.append(streams)
        emf = EmfSink(session).start()
        self._stoppables.append(emf)
        schedules = Schedules(self.template, functions, period_seconds=self.schedule_seconds)
        schedules.start()
        self._stoppables.append(schedules)
        api = LocalHttpApi(self.template.routes(), functions, self.host, self.ports.api)
        api.start()
        self._stoppables.append(api)
        return self

    def stop(self) -> None:
        for part in reversed(self._stoppables):
            part.stop()
        for simulator in self.simulators.values():
            simulator.stop()
        for url in self.function_urls.values():
            url.stop()

    def _start_function_urls(self, functions: Any) -> dict[str, Any]:
        """A local URL for each function with a FunctionUrlConfig (the simulator's, the only one),
        given to intrinsics as its Url resource's FunctionUrl."""
        from offline.function_urls import LocalFunctionUrl

        started = {}
        for name, spec in self.template.of_type("AWS::Serverless::Function").items():
            if "FunctionUrlConfig" in spec["Properties"]:
                url = LocalFunctionUrl(
                    name, functions.invoke, self.host, self.ports.simulator_function
                ).start()
                self.template.attributes[(f"{name}Url", "FunctionUrl")] = url.url
                started[name] = url
        return started

    def _start_simulators(self) -> dict[str, Any]:
        """A simulator for each provider whose *_BASE_URL the developer did not point elsewhere."""
        from offline.simulator import start_simulators

        simulated = [s.name for s in SPECS if not self._env.get(s.variable("BASE_URL"))]
        return start_simulators(
            {p: self.ports.simulators[p] for p in simulated},
            {p: f"sim-{p}-key" for p in simulated},
            host=self.host,
        )

    def _provider_keys(self) -> dict[str, str]:
        """The simulators' keys, or the developer's *_API_KEY for a provider pointed elsewhere,
        kept in the local Secrets Manager as a deployed stack keeps them."""
        return {
            s.name: self._env.get(s.variable("API_KEY"))
            or (f"sim-{s.name}-key" if s.name in self.simulators or self.simulate else "")
            for s in SPECS
        }

    def _aws_environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": self._env.get("AWS_ACCESS_KEY_ID", "local"),
            "AWS_SECRET_ACCESS_KEY": self._env.get("AWS_SECRET_ACCESS_KEY", "local"),
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_PORT": str(self.ports.aws),
        }

    def _local_environment(self) -> dict[str, str]:
        """What every function sees beyond its template variables: providers at the simulators
        unless a *_BASE_URL is set, local timings, and the developer's own settings of any
        variable a function has (which win over every default)."""
        env: dict[str, str] = dict(LOCAL_DEFAULTS)
        for provider, simulator in self.simulators.items():
            env[spec_of(provider).variable("BASE_URL")] = simulator.base_url
        env.update(
            PUBLIC_BASE_URL=self.api_url,
            TRUST_PROVIDER_ORIGIN="true",
            POWERTOOLS_LOG_LEVEL=self._env.get("LOG_LEVEL", "INFO"),
        )
        parameters = self.parameters
        known = set(env)
        for function in self.template.of_type("AWS::Serverless::Function"):
            known.update(self.template.function_environment(function, parameters))
        env.update(
            {k: v for k, v in self._env.items() if k in known and k not in ("PUBLIC_BASE_URL",)}
        )
        # The template's per-provider first waits are minutes; locally they follow the one setting.
        for spec in SPECS:
            name = spec.variable("POLL_FIRST_WAIT_SECONDS")
            env[name] = self._env.get(name, env["POLL_FIRST_WAIT_SECONDS"])
        return env
