"""Where the end-to-end suite runs: the offline stack (`python -m offline`, started by the session)
or, with VEO_RELAY_STACK=<name>, a stack deployed with Simulate=true, called over SigV4 with the
caller's own credentials. Tests name a principal; only offline can a test act as more than one."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from requests.auth import AuthBase

from veo_relay.providers.registry import PROVIDER_NAMES as SIMULATED

# Request headers the signature covers besides host and x-amz-date: the ones the API reads. Not
# the hop-by-hop ones requests adds (Connection, Accept-Encoding), which a proxy may rewrite.
_SIGNED_HEADERS = ("content-type", "idempotency-key")


class LocalPrincipal(AuthBase):
    """The offline stack's stand-in for an IAM caller (the X-Local-Principal header)."""

    def __init__(self, principal: str) -> None:
        self.principal = principal

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Local-Principal"] = self.principal
        return request


class SigV4(AuthBase):
    """Signs each request for API Gateway's IAM auth (service execute-api) as boto3 would."""

    def __init__(self, session: boto3.Session, region: str) -> None:
        self._session = session
        self._region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        credentials = self._session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials to sign with (see `aws configure`)")
        headers = {k: v for k, v in request.headers.items() if k.lower() in _SIGNED_HEADERS}
        signed = AWSRequest(
            method=request.method, url=request.url, data=request.body or b"", headers=headers
        )
        SigV4Auth(credentials, "execute-api", self._region).add_auth(signed)
        request.headers.update(
            {k: v for k, v in signed.headers.items() if k.lower() not in _SIGNED_HEADERS}
        )
        return request


class RunningStack(ABC):
    """One target of the suite: its API, its bucket's S3, and the simulator's introspection."""

    deployed: bool

    def __init__(self, api_url: str, simulator_urls: Mapping[str, str]) -> None:
        self.api_url = api_url.rstrip("/")
        self.simulator_urls = dict(simulator_urls)

    @abstractmethod
    def auth(self, principal: str = "e2e-user") -> AuthBase: ...

    @abstractmethod
    def aws(self, service: str) -> Any:
        """A boto3 client for the stack's own AWS (moto offline, the caller's account deployed)."""

    @abstractmethod
    def event_bus_name(self) -> str: ...

    def require_principals(self, reason: str) -> None:
        """Skips a test that needs a second principal where only the caller's identity exists."""
        if self.deployed:
            pytest.skip(f"a deployed stack knows one principal, the caller's: {reason}")

    def request(
        self, method: str, path: str, principal: str = "e2e-user", **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.request(
            method, f"{self.api_url}{path}", auth=self.auth(principal), **kwargs
        )

    def create(self, principal: str = "e2e-user", **body: Any) -> requests.Response:
        return self.request("POST", "/v1/videos", principal, json=body, timeout=90)

    def extend(self, task_id: str, principal: str = "e2e-user", **body: Any) -> requests.Response:
        return self.request("POST", f"/v1/videos/{task_id}/extend", principal, json=body)

    def list(self, principal: str = "e2e-user", **query: Any) -> requests.Response:
        return self.request("GET", "/v1/videos", principal, params=query)

    def get(self, task_id: str, principal: str = "e2e-user") -> requests.Response:
        return self.request("GET", f"/v1/videos/{task_id}", principal)

    def wait_for_status(
        self, task_id: str, statuses: set[str], timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id).json()
            if task["status"] in statuses or time.monotonic() > deadline:
                return task  # type: ignore[no-any-return]
            time.sleep(0.25)

    def simulator_state(self, provider: str = "apixo") -> dict[str, Any]:
        response = requests.get(f"{self.simulator_urls[provider]}/_sim/tasks", timeout=30)
        return response.json()  # type: ignore[no-any-return]

    def simulator_task(self, provider_task_id: str, provider: str = "apixo") -> dict[str, Any]:
        tasks = self.simulator_state(provider)["tasks"]
        return next(t for t in tasks if t["task_id"] == provider_task_id)

    def s3(self) -> Any:
        return self.aws("s3")


class OfflineStack(RunningStack):
    deployed = False

    def __init__(
        self,
        api_url: str,
        aws_url: str,
        simulator_urls: Mapping[str, str],
        log_path: Path | None = None,
    ) -> None:
        super().__init__(api_url, simulator_urls)
        self.aws_url = aws_url
        self.log_path = log_path  # what `python -m offline` prints (its banner first)

    def auth(self, principal: str = "e2e-user") -> AuthBase:
        return LocalPrincipal(principal)

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def event_bus_name(self) -> str:
        buses = self.aws("events").list_event_buses()["EventBuses"]
        return next(b["Name"] for b in buses if b["Name"] != "default")


class DeployedStack(RunningStack):
    """A stack in the caller's account, found by its CloudFormation outputs."""

    deployed = True

    def __init__(self, outputs: Mapping[str, str], session: boto3.Session) -> None:
        simulator = outputs.get("ProviderSimulatorUrl")
        if not simulator:
            raise RuntimeError(
                "the stack has no ProviderSimulatorUrl output: deploy it with "
                "--parameter-overrides Simulate=true (the suite spends no provider credits)"
            )
        super().__init__(outputs["ApiUrl"], {p: f"{simulator.rstrip('/')}/{p}" for p in SIMULATED})
        self.outputs = dict(outputs)
        self._session = session
        if session.region_name is None:
            raise RuntimeError("no AWS region (set AWS_REGION or AWS_DEFAULT_REGION)")
        self._region: str = session.region_name

    @classmethod
    def named(cls, stack_name: str, session: boto3.Session | None = None) -> DeployedStack:
        session = session or boto3.Session()
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return cls(outputs, session)

    def auth(self, principal: str = "e2e-user") -> AuthBase:
        # Every principal is the caller: identity comes from the signature, never from a header.
        return SigV4(self._session, self._region)

    def aws(self, service: str) -> Any:
        return self._session.client(service)

    def event_bus_name(self) -> str:
        return self.outputs["VideoEventBusName"]
