"""Standard Webhooks signatures: the specification's test vector, secrets with and without their
`whsec_` prefix, and secrets that must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from veo_relay.webhook_signing import SECRET_PREFIX, sign, signing_key

# https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standard_webhooks_test_vector():
    # Given the specification's secret, message id, timestamp and body
    # When the body is signed
    signature = sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    # Then the signature is the specification's, byte for byte
    assert signature == VECTOR_SIGNATURE


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_with_the_decoded_key():
    # Given the secret's key bytes decoded independently of the module
    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    expected = hmac.new(
        key, f"{VECTOR_ID}.{VECTOR_TIMESTAMP}.".encode() + VECTOR_BODY, hashlib.sha256
    ).digest()

    # When the module signs the same message
    scheme, _, encoded = sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY).partition(
        ","
    )

    # Then it is version 1 and the base64 of that HMAC
    assert scheme == "v1"
    assert base64.b64decode(encoded) == expected
    assert signing_key(VECTOR_SECRET) == key


@pytest.mark.parametrize(
    "secret",
    [
        VECTOR_SECRET.removeprefix(SECRET_PREFIX),
        f"  {VECTOR_SECRET}\n",
        f"\t{VECTOR_SECRET.removeprefix(SECRET_PREFIX)} ",
    ],
    ids=["no-prefix", "prefix-and-whitespace", "no-prefix-and-whitespace"],
)
def test_a_secret_without_its_prefix_or_with_whitespace_signs_the_same(secret):
    # Given the vector's secret written differently
    # When it signs the vector
    signature = sign(secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    # Then the signature is unchanged
    assert signature == VECTOR_SIGNATURE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", "msg_other"),
        ("timestamp", VECTOR_TIMESTAMP + 1),
        ("body", b'{"test": 2432232315}'),
        ("secret", "whsec_" + base64.b64encode(b"another secret of 24 byt").decode()),
    ],
)
def test_changing_any_signed_part_changes_the_signature(field, value):
    # Given the vector with one part changed
    parts = {
        "secret": VECTOR_SECRET,
        "message_id": VECTOR_ID,
        "timestamp": VECTOR_TIMESTAMP,
        "body": VECTOR_BODY,
    }
    parts[field] = value

    # When it is signed
    signature = sign(parts["secret"], parts["message_id"], parts["timestamp"], parts["body"])

    # Then the signature no longer matches the vector's
    assert signature.startswith("v1,")
    assert signature != VECTOR_SIGNATURE


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "whsec_!!!!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # one character short: bad padding
        "whsec_MfKQ9r8G KYqrTwjUPD8ILPZIo2LaLaSw",  # a space inside
        "whsec_whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # prefix twice
        "whsec_" + base64.b64encode(b"fifteen bytes!!").decode(),  # 15 bytes: too short
        "whsec_AAAA",
    ],
    ids=[
        "empty",
        "prefix-only",
        "not-base64",
        "bad-padding",
        "inner-space",
        "double-prefix",
        "15-bytes",
        "3-bytes",
    ],
)
def test_bad_or_short_secrets_are_refused(secret):
    # Given a secret that is not whsec_ + base64 of at least 16 bytes
    # When it is used to sign, Then it is refused with a ValueError that says what a secret is
    with pytest.raises(ValueError, match="webhook secret"):
        sign(secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    with pytest.raises(ValueError, match="webhook secret"):
        signing_key(secret)


def test_a_sixteen_byte_secret_is_the_shortest_accepted():
    # Given a secret of exactly 16 key bytes
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()

    # When its key is read, Then it is those 16 bytes
    assert signing_key(secret) == b"0123456789abcdef"


def test_a_generated_32_character_alphanumeric_secret_is_a_valid_key():
    # Given a value shaped like Secrets Manager's (PasswordLength 32, no punctuation), which
    # receivers prefix with whsec_
    value = "Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4f"

    # When it signs, with or without the prefix, Then both agree (24 key bytes)
    assert len(signing_key(value)) == 24
    assert sign(value, "msg_1", 1, b"{}") == sign("whsec_" + value, "msg_1", 1, b"{}")
