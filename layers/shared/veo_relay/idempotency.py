"""Idempotency-Key on creates, through Powertools idempotency (DynamoDB persistence).

A repeat with the same key and body returns the task the first request created and submits
nothing; the same key with another body, or while the first request is still running, is a
conflict. Keys are scoped to the caller, so two principals never share one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.errors import TaskConflict
from veo_relay.tasks import Task

# Longer than any client's retry window; Powertools checks expiry itself (TTL deletion lags).
KEY_LIFETIME_SECONDS = 24 * 3600


class IdempotentCreates:
    def __init__(self, table_name: str) -> None:
        self._config = IdempotencyConfig(
            event_key_jmespath="[principal, key]",
            payload_validation_jmespath="body",
            expires_after_seconds=KEY_LIFETIME_SECONDS,
            hash_function="sha256",
        )
        self._create_once = idempotent_function(
            _create,
            data_keyword_argument="request",
            persistence_store=DynamoDBPersistenceLayer(table_name=table_name),
            config=self._config,
        )

    def register(self, context: LambdaContext) -> None:
        """Lets a request cut off by the Lambda timeout free its key when its time is up."""
        self._config.register_lambda_context(context)

    def create(
        self, principal: str, key: str, body: dict[str, Any], create: Callable[[], Task]
    ) -> str:
        """The id of the task created for this key, creating it only the first time."""
        request = {"principal": principal, "key": key, "body": body}
        try:
            result = self._create_once(request=request, create=create)
        except IdempotencyValidationError:
            raise TaskConflict(
                "Idempotency-Key: already used with a different body; use a new key"
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise TaskConflict(
                "Idempotency-Key: a request with this key is still being processed; retry shortly"
            ) from None
        return str(result["task_id"])


def _create(request: dict[str, Any], create: Callable[[], Task]) -> dict[str, str]:
    return {"task_id": create().id}
