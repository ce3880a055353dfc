"""The callback token: only its hash is stored, and matching it is exact."""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers import forbid_sockets
from veo_relay.callback_tokens import token_hash, token_matches


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_sockets(monkeypatch)


TOKEN = "vid_0123456789abcdef01234567.q9Xc2mB7tLw4ZpR1sV8nKe3YhJ6uFd0A"


def test_the_hash_is_the_tokens_sha256_in_hex():
    assert token_hash(TOKEN) == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert token_hash(TOKEN) != TOKEN and TOKEN not in token_hash(TOKEN)


def test_the_token_matches_its_own_hash():
    assert token_matches(TOKEN, token_hash(TOKEN))


@pytest.mark.parametrize(
    "other",
    [
        TOKEN[:-1],
        TOKEN + "x",
        TOKEN.upper(),
        TOKEN.split(".")[0],
        "",
        " " + TOKEN,
    ],
    ids=["shorter", "longer", "case", "task-id-only", "empty", "padded"],
)
def test_any_other_token_does_not_match(other):
    assert not token_matches(other, token_hash(TOKEN))


def test_nothing_matches_a_missing_hash():
    # Given a task that never got a token (e.g. created before tokens existed)
    # Then no token matches it, not even an empty one
    assert not token_matches(TOKEN, None)
    assert not token_matches("", None)


def test_a_raw_token_stored_by_mistake_does_not_match():
    # The stored value is the hash; a token compared against itself must not pass
    assert not token_matches(TOKEN, TOKEN)
