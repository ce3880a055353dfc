"""The end-to-end suite's targets (tests/e2e/targets.py), without the network: how each one names
the caller, and how a deployed stack is found from its CloudFormation outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
import requests
from moto import mock_aws

from tests.e2e.targets import DeployedStack, LocalPrincipal, OfflineStack, SigV4
from veo_relay.providers.registry import PROVIDER_NAMES

REGION = "eu-west-1"
API_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com"
SIMULATOR_URL = "https://sim456.lambda-url.eu-west-1.on.aws/"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.Session(
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            aws_session_token="session-token",
            region_name=REGION,
        )


def _deploy(session: boto3.Session, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(
        StackName="veo-relay-rehearsal", TemplateBody=json.dumps(template)
    )


def _prepared(auth: requests.auth.AuthBase, **kwargs: object) -> requests.PreparedRequest:
    request = requests.Request("POST", f"{API_URL}/v1/videos?limit=5", auth=auth, **kwargs)
    return requests.Session().prepare_request(request)


def test_a_deployed_stack_is_found_by_its_outputs(session: boto3.Session) -> None:
    # Given a stack deployed with Simulate=true
    _deploy(
        session,
        {
            "ApiUrl": API_URL,
            "VideoBucketName": "videos-bucket",
            "VideoEventBusName": "veo-relay-bus",
            "ProviderSimulatorUrl": SIMULATOR_URL,
        },
    )

    # When the suite looks it up by name
    target = DeployedStack.named("veo-relay-rehearsal", session)

    # Then it calls the stack's API, its bus, and each provider's simulator under its own prefix
    assert target.deployed
    assert target.api_url == API_URL
    assert target.event_bus_name() == "veo-relay-bus"
    assert target.simulator_urls == {
        p: f"https://sim456.lambda-url.eu-west-1.on.aws/{p}" for p in PROVIDER_NAMES
    }


def test_a_stack_without_the_simulator_is_refused_before_any_test(session: boto3.Session) -> None:
    # Given a stack deployed without Simulate=true (its tests would spend provider credits)
    _deploy(session, {"ApiUrl": API_URL, "VideoEventBusName": "bus"})

    # Then the suite refuses it, saying how to deploy it
    with pytest.raises(RuntimeError, match="Simulate=true"):
        DeployedStack.named("veo-relay-rehearsal", session)


def test_sigv4_signs_for_execute_api_with_the_callers_credentials(session: boto3.Session) -> None:
    # Given a request with a JSON body and an Idempotency-Key
    auth = SigV4(session, REGION)

    # When it is signed
    prepared = _prepared(auth, json={"prompt": "a cat"}, headers={"Idempotency-Key": "k-1"})

    # Then it carries a SigV4 signature for execute-api in the region, over the headers the API
    # reads, and the session token; never a local principal
    authorization = prepared.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert f"/{REGION}/execute-api/aws4_request" in authorization
    assert (
        "SignedHeaders=content-type;host;idempotency-key;x-amz-date;x-amz-security-token"
        in authorization
    )
    assert prepared.headers["X-Amz-Date"].endswith("Z")
    assert prepared.headers["X-Amz-Security-Token"] == "session-token"
    assert "X-Local-Principal" not in prepared.headers
    assert json.loads(prepared.body or b"") == {"prompt": "a cat"}


def test_the_signature_covers_the_body(session: boto3.Session) -> None:
    # Given two requests that differ only in their body, signed in the same second
    auth = SigV4(session, REGION)
    first = _prepared(auth, json={"prompt": "a cat"})
    second = _prepared(auth, json={"prompt": "a dog"})

    # Then their signatures differ (API Gateway would refuse a body swapped in transit)
    assert first.headers["X-Amz-Date"][:13] == second.headers["X-Amz-Date"][:13]
    assert first.headers["Authorization"] != second.headers["Authorization"]


def test_every_principal_is_the_caller_on_a_deployed_stack(session: boto3.Session) -> None:
    _deploy(session, {"ApiUrl": API_URL, "ProviderSimulatorUrl": SIMULATOR_URL})
    target = DeployedStack.named("veo-relay-rehearsal", session)

    alice = _prepared(target.auth("alice"))
    mallory = _prepared(target.auth("mallory"))

    assert "X-Local-Principal" not in alice.headers
    credential = alice.headers["Authorization"].split(",")[0]
    assert credential == mallory.headers["Authorization"].split(",")[0]
    with pytest.raises(pytest.skip.Exception, match="one principal"):
        target.require_principals("the test needs two")


def test_the_offline_stack_names_the_principal_in_its_header() -> None:
    # Given the offline stack
    target = OfflineStack("http://127.0.0.1:3000", "http://127.0.0.1:5000", {})

    # When a test acts as mallory
    prepared = _prepared(target.auth("mallory"))

    # Then the request names mallory in the local header and is not signed
    assert isinstance(target.auth("mallory"), LocalPrincipal)
    assert prepared.headers["X-Local-Principal"] == "mallory"
    assert "Authorization" not in prepared.headers
    target.require_principals("never skipped offline")
