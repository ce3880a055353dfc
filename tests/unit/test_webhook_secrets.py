"""Each principal's own webhook signing secret (veo_relay.webhook_secrets): how it is derived, how
a rotation keeps the old one signing for 24 hours, and that no principal's secret verifies
another's deliveries. The principals table is moto's, made from the template's definition; the
clock is the test's."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from offline.template import load_template
from tests.helpers import ALICE, BOB
from veo_relay.errors import ConfigurationError
from veo_relay.webhook_secrets import (
    ROTATION_OVERLAP_SECONDS,
    SecretGenerations,
    WebhookSecrets,
    derive_secret,
)
from veo_relay.webhook_signing import signatures, signing_key

# As the runtime reads it from Secrets Manager: the bytes of 64 generated letters and digits.
MASTER = b"Q7hLx2VbN9cRt4KwZp8YsFm3JdG6uEa1Hk5TqWn0XoBi2CyUe7MrSv4Pl9AjDg6O"
DAY = ROTATION_OVERLAP_SECONDS


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    definition = load_template().resources["PrincipalsTable"]["Properties"]
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.create_table(
            TableName="PrincipalsTable",
            KeySchema=definition["KeySchema"],
            AttributeDefinitions=definition["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secrets(table: Any, clock: Clock) -> WebhookSecrets:
    return WebhookSecrets("PrincipalsTable", lambda: MASTER, clock)


def verifies(secret: str, header: str, msg_id: str, timestamp: int, body: bytes) -> bool:
    """A receiver's check, as the README shows it: one of the header's v1 signatures matches."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    sent = [s.split(",", 1)[1] for s in header.split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in sent)


# --- derivation ----------------------------------------------------------------------------------


def test_a_secret_is_whsec_and_the_hmac_of_owner_and_generation_under_the_master_key():
    # Given the master key and an owner
    # When generation 3 of its secret is derived
    secret = derive_secret(MASTER, ALICE, 3)

    # Then it is whsec_ + base64 of HMAC-SHA256(the master key's bytes, "owner\ngeneration"), a
    # Standard Webhooks secret of 32 bytes
    digest = hmac.new(MASTER, f"{ALICE}\n3".encode(), hashlib.sha256).digest()
    assert secret == "whsec_" + base64.b64encode(digest).decode()
    assert len(signing_key(secret)) == 32


def test_a_master_key_shorter_than_32_bytes_derives_nothing():
    # Given a master key of 31 bytes
    # When a secret is derived from it
    # Then it is refused as misconfigured, not used as a weak key
    with pytest.raises(ConfigurationError, match="master key must hold at least 32 bytes"):
        derive_secret(MASTER[:31], ALICE, 1)
    assert derive_secret(MASTER[:32], ALICE, 1).startswith("whsec_")


def test_every_owner_generation_and_master_has_its_own_secret():
    derived = {
        derive_secret(MASTER, ALICE, 1),
        derive_secret(MASTER, ALICE, 2),
        derive_secret(MASTER, BOB, 1),
        derive_secret(b"another master key of 32 bytes!!", ALICE, 1),
    }
    assert len(derived) == 4


# --- first use and rotation ----------------------------------------------------------------------


def test_an_owner_that_never_rotated_has_its_first_secret_and_nothing_is_written(secrets, table):
    # When a principal first asks for its secret, and the sender signs for it
    shown = secrets.current(ALICE)
    signing = secrets.signing(ALICE)

    # Then both are generation 1, and the table holds nothing (a first use writes nothing)
    assert shown == derive_secret(MASTER, ALICE, 1)
    assert signing == [shown]
    assert table.scan()["Items"] == []


def test_a_rotation_keeps_the_old_secret_signing_for_24_hours_then_drops_it(secrets, clock):
    # Given a principal's first secret
    old = secrets.current(ALICE)

    # When it rotates
    new = secrets.rotate(ALICE)

    # Then it is shown the new secret, generation 2
    assert new == derive_secret(MASTER, ALICE, 2) != old
    assert secrets.current(ALICE) == new
    # And both sign, the new one first, until 24 hours have passed
    assert secrets.signing(ALICE) == [new, old]
    clock.now += DAY - 1
    assert secrets.signing(ALICE) == [new, old]
    # And from then on only the new one does
    clock.now += 1
    assert secrets.signing(ALICE) == [new]


def test_rotating_again_within_24_hours_drops_the_oldest_at_once(secrets, clock):
    # Given a principal that rotated an hour ago (generations 2 and 1 sign)
    first = secrets.current(ALICE)
    second = secrets.rotate(ALICE)
    clock.now += 3600

    # When it rotates again (say its first secret leaked)
    third = secrets.rotate(ALICE)

    # Then the new one and the one it replaced sign, for 24 hours from now; the first no more
    assert third == derive_secret(MASTER, ALICE, 3)
    assert secrets.signing(ALICE) == [third, second]
    assert first not in secrets.signing(ALICE)
    clock.now += DAY - 1
    assert secrets.signing(ALICE) == [third, second]
    clock.now += 1
    assert secrets.signing(ALICE) == [third]


def test_a_rotation_is_one_conditional_write_of_the_generation(secrets, table, clock):
    # When a principal rotates twice
    secrets.rotate(ALICE)
    secrets.rotate(ALICE)

    # Then its record holds only the current generation and the previous one's end (no secret)
    (item,) = table.scan()["Items"]
    assert item == {
        "owner": ALICE,
        "webhook_secret_generation": 3,
        "webhook_previous_signs_until": int(clock.now + DAY),
    }


def test_concurrent_rotations_of_one_principal_are_one(secrets, monkeypatch):
    # Given a rotation that read generation 1 while another one moved the principal to 2
    secrets.rotate(ALICE)
    stale = iter([SecretGenerations(current=1, previous_signs_until=None)])
    real = secrets._generations
    monkeypatch.setattr(secrets, "_generations", lambda owner: next(stale, None) or real(owner))

    # When it writes, Then its condition fails and it returns the secret the other one made
    assert secrets.rotate(ALICE) == derive_secret(MASTER, ALICE, 2)
    assert secrets.current(ALICE) == derive_secret(MASTER, ALICE, 2)


def test_one_principals_rotation_leaves_the_others_alone(secrets):
    bob = secrets.current(BOB)
    secrets.rotate(ALICE)
    assert secrets.current(BOB) == bob
    assert secrets.signing(BOB) == [bob]


# --- what a receiver can verify ------------------------------------------------------------------


def test_during_a_rotation_a_delivery_verifies_with_either_secret(secrets):
    # Given a principal within 24 hours of a rotation
    old = secrets.current(ALICE)
    new = secrets.rotate(ALICE)

    # When a delivery is signed for it
    body = b'{"type": "video.completed"}'
    header = signatures(secrets.signing(ALICE), "msg_1", 1_795_000_000, body)

    # Then its header carries two v1 signatures, and a receiver holding either secret accepts it
    assert len(header.split(" ")) == 2
    assert verifies(new, header, "msg_1", 1_795_000_000, body)
    assert verifies(old, header, "msg_1", 1_795_000_000, body)


def test_a_principals_secret_does_not_verify_another_principals_deliveries(secrets):
    # Given two principals, one of which rotated (so that each holds all it was ever shown)
    alice_shown = [secrets.current(ALICE), secrets.rotate(ALICE)]
    bob = secrets.current(BOB)

    # When a delivery is signed for Bob's receiver, and one for Alice's
    body = b'{"type": "video.completed"}'
    to_bob = signatures(secrets.signing(BOB), "msg_b", 1_795_000_000, body)
    to_alice = signatures(secrets.signing(ALICE), "msg_a", 1_795_000_000, body)

    # Then none of Alice's secrets verifies Bob's delivery, nor Bob's hers: neither can forge one
    assert verifies(bob, to_bob, "msg_b", 1_795_000_000, body)
    assert not any(verifies(s, to_bob, "msg_b", 1_795_000_000, body) for s in alice_shown)
    assert not verifies(bob, to_alice, "msg_a", 1_795_000_000, body)
    # And the master key, which no receiver holds, verifies neither
    assert not verifies(
        "whsec_" + base64.b64encode(MASTER).decode(), to_bob, "msg_b", 1_795_000_000, body
    )
