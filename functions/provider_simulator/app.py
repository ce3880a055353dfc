"""The provider simulator (apixo, kie.ai, apimart) behind its function URL, deployed only with
Simulate=true so that a rehearsal spends no provider credits. An adapter: the protocols are
offline/simulator's, packaged with this handler by its Makefile."""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3

from offline.simulator.deployed import FunctionUrlSimulators, ProviderKeys


@functools.cache
def _simulators() -> FunctionUrlSimulators:
    # Built at the first invocation, when the function's environment is certainly set.
    lambda_client = boto3.client("lambda")
    return FunctionUrlSimulators(
        table=boto3.resource("dynamodb").Table(os.environ["SIMULATOR_TABLE"]),
        api_keys=ProviderKeys(
            boto3.client("secretsmanager"), os.environ["PROVIDER_KEYS_SECRET_ARN"]
        ),
        invoke_async=lambda payload: _invoke_async(lambda_client, payload),
    )


def _invoke_async(lambda_client: Any, payload: str) -> None:
    lambda_client.invoke(
        FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"], InvocationType="Event", Payload=payload
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _simulators().handle(event)
