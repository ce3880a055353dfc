"""Fallback poller step, invoked by the state machine with {"task_id", "attempt"}."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.wiring import poller

logger = Logger()


# No Tracer: the X-Ray SDK's import would double the cold start; the state machine's tracing
# records each invocation.
@logger.inject_lambda_context(correlation_id_path="task_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = poller().poller.poll_task(str(event["task_id"]), int(event.get("attempt", 0)))
    return result.to_dict()
