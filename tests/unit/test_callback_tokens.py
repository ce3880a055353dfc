"""Callback tokens: derived from the task, its attempt and the provider under a key; any token not
of their exact form is refused before anything is read (the key, the task)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from tests.fakes import FakeCopyQueue, FakeProviders
from veo_relay.callback_tokens import CallbackToken, CallbackTokens, parse_token
from veo_relay.callbacks import CallbackIntake
from veo_relay.errors import InvalidCallback
from veo_relay.settings import PROVIDERS

KEY = b"k" * 64
TASK_ID = "vid_0123456789abcdef01234567"


def tokens(key: bytes = KEY) -> CallbackTokens:
    return CallbackTokens(lambda: key)


def test_a_token_names_its_task_and_attempt_and_carries_a_256_bit_mac():
    # When a token is minted for attempt 3 of a task on apixo
    token = tokens().mint("apixo", TASK_ID, 3)

    # Then it reads {task_id}.{attempt}.{mac}: the MAC is the HMAC-SHA256 of the three, base64url
    task_id, attempt, mac = token.split(".")
    assert (task_id, attempt, len(mac)) == (TASK_ID, "3", 43)
    digest = hmac.new(KEY, f"apixo.{TASK_ID}.3".encode(), hashlib.sha256).digest()
    assert mac == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_a_minted_token_verifies_for_its_provider():
    token = tokens().mint("kie", TASK_ID, 1)
    assert tokens().verify("kie", token) == CallbackToken(TASK_ID, 1, token.split(".")[2])


@pytest.mark.parametrize(
    ("provider", "token"),
    [
        ("kie", tokens().mint("apixo", TASK_ID, 1)),  # another provider's
        ("apixo", tokens().mint("apixo", TASK_ID, 2).replace(".2.", ".1.")),  # another attempt's
        ("apixo", tokens().mint("apixo", TASK_ID, 1).replace(TASK_ID, "vid_" + "0" * 24)),
        ("apixo", tokens(b"another key").mint("apixo", TASK_ID, 1)),
    ],
    ids=["other-provider", "other-attempt", "other-task", "other-key"],
)
def test_a_token_minted_for_something_else_does_not_verify(provider, token):
    assert tokens().verify(provider, token) is None


GOOD = tokens().mint("apixo", TASK_ID, 1)
TASK_PART, ATTEMPT_PART, MAC_PART = GOOD.split(".")
MALFORMED = {
    "dot": ".",
    "empty": "",
    "very-long": GOOD + "A" * 10_000,
    "non-ascii": GOOD[:-1] + "é",
    "non-ascii-digit": f"{TASK_PART}.١.{MAC_PART}",
    "extra-dot": GOOD + ".",
    "extra-part": f"{GOOD}.{MAC_PART}",
    "no-attempt": f"{TASK_PART}.{MAC_PART}",
    "old-form": f"{TASK_PART}.q9Xc2mB7tLw4ZpR1sV8nKe3YhJ6uFd0A",
    "attempt-zero": f"{TASK_PART}.0.{MAC_PART}",
    "attempt-leading-zero": f"{TASK_PART}.01.{MAC_PART}",
    "attempt-too-long": f"{TASK_PART}.1234567.{MAC_PART}",
    "mac-short": GOOD[:-1],
    "mac-padded": GOOD + "=",
    "mac-alphabet": GOOD[:-1] + "+",
    "task-uppercase": GOOD.replace(TASK_PART, TASK_PART.upper()),
    "task-short": GOOD.replace(TASK_PART, TASK_PART[:-1]),
    "task-prefix": GOOD.replace("vid_", "vod_"),
    "newline": GOOD + "\n",
    "space": " " + GOOD,
    "path": f"../{GOOD}",
}


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_token_not_of_the_form_is_refused_without_reading_the_key(token):
    # Given a key reader that counts its reads
    reads: list[int] = []
    counted = CallbackTokens(lambda: reads.append(1) or KEY)  # type: ignore[func-returns-value]

    # When a malformed token is checked
    # Then it is refused by its form alone
    assert parse_token(token) is None
    assert counted.verify("apixo", token) is None
    assert reads == []


class CountingTasks:
    """A task store that fails the test if the callback reads or writes anything."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"the task store was asked to {name}")

        return call


def intake(key_reads: list[int]) -> CallbackIntake:
    """The callback use case, counting reads of the key and refusing any of the task store."""
    return CallbackIntake(
        tasks=CountingTasks(),  # type: ignore[arg-type]
        providers=FakeProviders(),
        provider_names=frozenset(PROVIDERS),
        callback_tokens=CallbackTokens(lambda: key_reads.append(1) or KEY),  # type: ignore[func-returns-value]
        copy_queue=FakeCopyQueue(),
    )


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_callback_with_a_malformed_token_is_refused_before_any_io(token):
    # Given the callback's collaborators, counting every read
    reads: list[int] = []
    rt = intake(reads)

    # When a callback comes with a token not of the form
    with pytest.raises(InvalidCallback):
        rt.accept("apixo", token, b"{}", {})

    # Then neither the key nor the task was read
    assert reads == [] and rt.tasks.calls == []


def test_a_callback_on_an_unknown_providers_path_is_refused_before_any_io():
    reads: list[int] = []
    rt = intake(reads)
    with pytest.raises(InvalidCallback):
        rt.accept("evil", GOOD, b"{}", {})
    assert reads == [] and rt.tasks.calls == []


def test_a_well_formed_token_with_a_bad_mac_is_refused_before_the_task_is_read():
    # Given a token of the right form whose MAC is not this key's
    reads: list[int] = []
    rt = intake(reads)
    forged = f"{TASK_PART}.{ATTEMPT_PART}.{'A' * 43}"

    # When its callback comes
    with pytest.raises(InvalidCallback):
        rt.accept("apixo", forged, b"{}", {})

    # Then the key was read (to check the MAC), the task never
    assert reads == [1] and rt.tasks.calls == []
