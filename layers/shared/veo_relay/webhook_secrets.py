"""Each principal's own webhook signing secret: a receiver can verify its owner's deliveries, and
no one can sign a delivery to another principal's receiver.

The secrets are derived, never stored: generation `n` of an owner's secret is
`whsec_` + base64(HMAC-SHA256(master key, f"{owner}\\n{n}")), the master key being the bytes of
the WebhookSecretsMasterKey secret, which only the API (to show a secret) and the webhook sender
(to sign) may read, and which no receiver was ever given. The principals table holds, per owner,
only which generation is current and until when the one before it still signs. An owner without
that record (one that never rotated) is on generation 1: a first use writes nothing, so concurrent
first uses agree and the sender, which only reads, signs with what the owner was shown.

Rotation moves an owner from generation n to n + 1; n still signs beside n + 1 for 24 hours, so
that a receiver can switch without refusing a delivery. Rotating again within those 24 hours
drops n at once: deliveries are signed by the current secret and the one it replaced, never more
(after a leak, rotating twice ends the leaked secret at once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.models import Model

from veo_relay.errors import ConfigurationError
from veo_relay.webhook_signing import SECRET_PREFIX

ROTATION_OVERLAP_SECONDS = 24 * 3600


# HMAC-SHA256's own key size: a shorter master key would be the weakest part of every secret.
MASTER_KEY_MIN_BYTES = 32


def derive_secret(master_key: bytes, owner: str, generation: int) -> str:
    """Generation `generation` of `owner`'s secret (an owner never holds a newline: it is an
    IAM ARN, so owner and generation cannot run into each other)."""
    if len(master_key) < MASTER_KEY_MIN_BYTES:
        raise ConfigurationError(
            f"the webhook master key must hold at least {MASTER_KEY_MIN_BYTES} bytes"
        )
    message = f"{owner}\n{generation}".encode()
    digest = hmac.new(master_key, message, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(digest).decode()


class PrincipalRecord(Model):
    class Meta:
        table_name = "unbound"  # bound to the principals table by WebhookSecrets

    owner = UnicodeAttribute(hash_key=True)
    webhook_secret_generation = NumberAttribute(null=True)  # absent: generation 1
    # Epoch seconds until which the generation before the current one still signs.
    webhook_previous_signs_until = NumberAttribute(null=True)


@dataclass(frozen=True)
class SecretGenerations:
    current: int
    previous_signs_until: float | None  # None: the previous generation signs no more


class WebhookSecrets:
    def __init__(
        self,
        table_name: str,
        master_key: Callable[[], bytes],
        clock: Callable[[], float] = time.time,
    ) -> None:
        PrincipalRecord.Meta.table_name = table_name
        PrincipalRecord._connection = None  # a previous binding's connection names another table
        self._master_key = master_key
        self._clock = clock

    def current(self, owner: str) -> str:
        """The secret `owner`'s receivers verify with (the one its deliveries are signed with)."""
        return derive_secret(self._master_key(), owner, self._generations(owner).current)

    def signing(self, owner: str) -> list[str]:
        """What signs a delivery to `owner`'s receivers: the current secret and, for 24 hours
        after a rotation, the one it replaced."""
        generations = self._generations(owner)
        master = self._master_key()
        secrets = [derive_secret(master, owner, generations.current)]
        until = generations.previous_signs_until
        if until is not None and self._clock() < until:
            secrets.append(derive_secret(master, owner, generations.current - 1))
        return secrets

    def rotate(self, owner: str) -> str:
        """Moves `owner` to a new secret and returns it. A rotation that loses the race to a
        concurrent one of the same owner returns the secret that one made: concurrent rotations
        are one."""
        current = self._generations(owner).current
        generation = PrincipalRecord.webhook_secret_generation
        condition = generation == current
        if current == 1:
            condition = generation.does_not_exist() | condition
        record = PrincipalRecord(owner)
        try:
            record.update(
                actions=[
                    generation.set(current + 1),
                    PrincipalRecord.webhook_previous_signs_until.set(
                        self._clock() + ROTATION_OVERLAP_SECONDS
                    ),
                ],
                condition=condition,
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return self.current(owner)
        return derive_secret(self._master_key(), owner, current + 1)

    def _generations(self, owner: str) -> SecretGenerations:
        try:
            record = PrincipalRecord.get(owner, consistent_read=True)
        except DoesNotExist:
            return SecretGenerations(current=1, previous_signs_until=None)
        generation = record.webhook_secret_generation
        until = record.webhook_previous_signs_until
        return SecretGenerations(
            current=int(generation) if generation is not None else 1,
            previous_signs_until=float(until) if until is not None else None,
        )
