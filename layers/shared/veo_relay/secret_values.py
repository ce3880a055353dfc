"""Keys kept in Secrets Manager, read through one function's cache on every use: a new value is
seen within the cache's age, without a deploy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider


class SecretValues:
    def __init__(self, max_age_seconds: int) -> None:
        self._max_age = max_age_seconds
        self._provider: SecretsProvider | None = None

    def key(self, arn: str) -> bytes:
        """A secret whose whole value is a key (an HMAC key)."""
        return str(self._secrets().get(arn, max_age=self._max_age)).encode()

    def entry(self, arn: str, name: str) -> str | None:
        """One entry of a JSON secret ({"apixo": "...", ...}), or None when it has none."""
        entries: Any = self._secrets().get(arn, transform="json", max_age=self._max_age)
        value = entries.get(name) if isinstance(entries, dict) else None
        return value or None

    def _secrets(self) -> SecretsProvider:
        # The function's own provider and cache (not Powertools' process-wide default), made at
        # first use: a function that reads no secret never loads the client.
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider()
        return self._provider
