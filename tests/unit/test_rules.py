"""Rules a create request must satisfy before any credit is spent; each names its field."""

from __future__ import annotations

import pytest

from tests.helpers import forbid_sockets
from veo_relay.errors import InvalidRequest
from veo_relay.providers.base import GenerationRequest, ProviderRules
from veo_relay.rules import check_generation

APIXO_RULES = ProviderRules()  # REFERENCE_2_VIDEO: fast and 16:9 only (providers.md §1.3)
IMG = "https://img.example.com/"


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_sockets(monkeypatch)


def request(**fields: object) -> GenerationRequest:
    values: dict[str, object] = {
        "prompt": "a fox",
        "mode": "fast",
        "generation_type": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
    }
    values.update(fields)
    if "image_urls" in values:
        values["image_urls"] = tuple(values["image_urls"])  # type: ignore[arg-type]
    return GenerationRequest(**values)  # type: ignore[arg-type]


def violation(req: GenerationRequest, rules: ProviderRules = APIXO_RULES) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        check_generation("apixo", rules, req)
    return raised.value


@pytest.mark.parametrize(
    "req",
    [
        request(),
        request(mode="quality", aspect_ratio="9:16", seed=0, watermark="wm"),
        request(seed=4294967295),
        request(generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO", image_urls=[IMG + "a.png"]),
        request(
            generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO",
            mode="quality",
            aspect_ratio="9:16",
            image_urls=[IMG + "a.png", IMG + "b.png"],
        ),
        request(generation_type="REFERENCE_2_VIDEO", image_urls=[IMG + "a.png"]),
        request(generation_type="REFERENCE_2_VIDEO", image_urls=[IMG + "1", IMG + "2", IMG + "3"]),
        request(prompt="x" * 10000),
    ],
    ids=[
        "text",
        "text-options",
        "max-seed",
        "one-frame",
        "two-frames",
        "one-ref",
        "three-refs",
        "long",
    ],
)
def test_valid_requests_pass(req):
    check_generation("apixo", APIXO_RULES, req)


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (request(prompt="   "), "prompt"),
        (request(prompt="x" * 10001), "prompt"),
        (request(seed=-1), "seed"),
        (request(seed=4294967296), "seed"),
        (request(image_urls=[IMG + "a.png"]), "image_urls"),
        (request(generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO"), "image_urls"),
        (
            request(
                generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO",
                image_urls=[IMG + "1", IMG + "2", IMG + "3"],
            ),
            "image_urls",
        ),
        (request(generation_type="REFERENCE_2_VIDEO"), "image_urls"),
        (
            request(
                generation_type="REFERENCE_2_VIDEO", image_urls=[IMG + str(i) for i in range(4)]
            ),
            "image_urls",
        ),
        (
            request(
                generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO",
                image_urls=["http://img.example.com/a.png"],
            ),
            "image_urls",
        ),
        (
            request(generation_type="REFERENCE_2_VIDEO", mode="quality", image_urls=[IMG + "a"]),
            "mode",
        ),
        (
            request(
                generation_type="REFERENCE_2_VIDEO", aspect_ratio="9:16", image_urls=[IMG + "a"]
            ),
            "aspect_ratio",
        ),
    ],
    ids=[
        "blank-prompt",
        "long-prompt",
        "negative-seed",
        "huge-seed",
        "images-for-text",
        "no-frames",
        "three-frames",
        "no-references",
        "four-references",
        "http-image",
        "reference-quality",
        "reference-portrait",
    ],
)
def test_each_violation_names_its_field(req, field):
    # When a request breaks one rule
    error = violation(req)

    # Then the error names the field at fault, in its message too
    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    assert error.code == "invalid_request"


def test_a_provider_without_the_reference_restrictions_accepts_them():
    # Given a provider whose REFERENCE_2_VIDEO takes any mode and ratio
    relaxed = ProviderRules(reference_requires_fast=False, reference_requires_16_9=False)

    # Then quality and 9:16 pass
    check_generation(
        "relaxed",
        relaxed,
        request(
            generation_type="REFERENCE_2_VIDEO",
            mode="quality",
            aspect_ratio="9:16",
            image_urls=[IMG + "a"],
        ),
    )


def test_a_provider_without_seeds_refuses_one_by_name():
    # Given a provider whose API has no seed field
    rules = ProviderRules(accepts_seed=False)

    # Then a seed is refused, naming the field, and no seed passes
    assert violation(request(seed=7), rules).field == "seed"
    check_generation("noseed", rules, request())


def test_the_message_tells_the_count_expected():
    error = violation(request(generation_type="REFERENCE_2_VIDEO"))
    assert "1 to 3" in str(error) and "got 0" in str(error)
