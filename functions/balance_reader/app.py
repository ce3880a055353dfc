"""Balance reader, run on a schedule: each provider's balance where it has a balance route, as
the ProviderBalance metric (veo_relay.balances)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.wiring import balance_reader

logger = Logger()


# No Tracer: the X-Ray SDK's import would double the cold start; Lambda's active tracing still
# records each invocation. A provider that could not be read fails the invocation (after the
# others were read), so the function's Errors metric shows it.
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return balance_reader().reader.read_all().to_dict()
