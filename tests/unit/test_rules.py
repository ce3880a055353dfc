"""Rules a create request must satisfy before any credit is spent; each names its field."""

from __future__ import annotations

import pytest

from veo_relay.errors import InvalidRequest
from veo_relay.providers.base import GenerationRequest
from veo_relay.providers.capabilities import Capabilities
from veo_relay.rules import check_generation

APIXO_RULES = Capabilities()  # REFERENCE_2_VIDEO: fast and 16:9 only (providers.md §1.3)
IMG = "https://img.example.com/"


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


def violation(req: GenerationRequest, rules: Capabilities = APIXO_RULES) -> InvalidRequest:
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
            "image_urls[0]",
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
    relaxed = Capabilities(
        reference_modes=("fast", "quality"), reference_aspect_ratios=("16:9", "9:16")
    )

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
    rules = Capabilities(seed_range=None)

    # Then a seed is refused, naming the field, and no seed passes
    assert violation(request(seed=7), rules).field == "seed"
    check_generation("noseed", rules, request())


def test_the_message_tells_the_count_expected():
    error = violation(request(generation_type="REFERENCE_2_VIDEO"))
    assert "1 to 3" in str(error) and "got 0" in str(error)


# The provider fetches each image URL: one pointing inside a network is SSRF through the
# provider, on our credits.
REFUSED_IMAGE_URLS = [
    "https://169.254.169.254/latest/meta-data/",
    "https://2852039166/",  # 169.254.169.254 as one decimal number
    "https://0xA9.254.169.254/",  # hex first octet
    "https://0xa9fea9fe/",
    "https://0251.254.169.254/",  # octal first octet
    "https://169.254.43518/",  # two-part form
    "https://127.1/",
    "https://127.0.0.1/a.png",
    "https://0.0.0.0/",
    "https://10.0.0.7/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "https://[::ffff:7f00:1]/",
    "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://[ff02::1]/",
    "https://[fe80::1%25eth0]/",
    "https://localhost/a.png",
    "https://LocalHost/a.png",
    "https://img.localhost/a.png",
    "https://metadata/computeMetadata/v1/",  # a single label: only an internal name
    "https://user:secret@img.example.com/a.png",
    "https://img.example.com@169.254.169.254/",
    "https://img.example.com/a\x00.png",
    "https://img.example.com/a\r\nHost: evil/",
    "https://img.example.com/a\tb.png",
    "https://img.example.com/a b.png",
    "https://img.example.com/\x7f",
    "https://img.example.com\\@evil.example/",
    "https://img.exa\u00e9mple.com/",
    "https://img.example.com:0/a.png",
    "https://img.example.com:99999/a.png",
    "https://",
    "https:///a.png",
    "https://[::1/",
    "http://img.example.com/a.png",
    "HTTP://img.example.com/a.png",
    "ftp://img.example.com/a.png",
    "//img.example.com/a.png",
    "img.example.com/a.png",
    "https://img.example.com/" + "a" * 2048,
]


@pytest.mark.parametrize("url", REFUSED_IMAGE_URLS)
def test_an_image_url_pointing_inside_a_network_or_malformed_is_refused_by_index(url):
    # Given a valid first frame and a hostile last one
    req = request(
        generation_type="FIRST_AND_LAST_FRAMES_2_VIDEO", image_urls=[IMG + "first.png", url]
    )

    # When the request is checked
    error = violation(req)

    # Then the second URL is refused, by its index
    assert error.field == "image_urls[1]"
    assert str(error).startswith("image_urls[1]: ")


@pytest.mark.parametrize(
    "url",
    [
        "https://img.example.com/a.png",
        "https://img.example.com:8443/frames/a.png?size=large&v=2",
        "https://8.8.8.8/a.png",
        "https://[2606:4700:4700::1111]/a.png",
        "https://cdn.xn--bcher-kva.example/a.png",
        "https://img.example.com/a%20b.png",
    ],
)
def test_a_public_https_image_url_passes(url):
    check_generation(
        "apixo", APIXO_RULES, request(generation_type="REFERENCE_2_VIDEO", image_urls=[url])
    )
