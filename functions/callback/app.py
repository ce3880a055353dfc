"""Provider callbacks: answered within milliseconds; the copy happens behind the queue."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.callback_tokens import parse_token
from veo_relay.errors import VeoRelayError
from veo_relay.http_errors import error_body, status_for
from veo_relay.wiring import callback

logger = Logger()


# No Tracer here: the X-Ray SDK's import would double this function's cold start, and a provider
# waits on its answer; Lambda's active tracing still records each invocation.
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params = event.get("pathParameters") or {}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    token = params.get("token", "")
    # The task id only from a token of the right form: anything else a caller sends stays out.
    parsed = parse_token(token)
    logger.set_correlation_id(parsed.task_id if parsed else None)
    try:
        outcome = callback().intake.accept(params.get("provider", ""), token, raw, headers)
    except VeoRelayError as exc:
        logger.warning("callback refused", extra={"code": exc.code})
        return _response(status_for(exc), error_body(exc.code, str(exc)))
    return _response(200, {"status": outcome.value})


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
