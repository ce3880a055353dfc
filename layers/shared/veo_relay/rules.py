"""Rules a request must satisfy before any credit is spent, read from the provider's capability
table (veo_relay.providers.capabilities). Each violation names its field."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from veo_relay.errors import InvalidRequest
from veo_relay.providers.base import GenerationRequest
from veo_relay.providers.capabilities import Capabilities
from veo_relay.safe_urls import RefusedUrl, check_address, parse_url
from veo_relay.tasks import Task


def check_generation(provider: str, capabilities: Capabilities, request: GenerationRequest) -> None:
    caps = capabilities
    check_prompt_and_seed(provider, caps, request.prompt, request.seed, request.watermark)
    _check_offered("mode", request.mode, caps.modes, provider)
    _check_offered("aspect_ratio", request.aspect_ratio, caps.aspect_ratios, provider)
    _check_offered("generation_type", request.generation_type, tuple(caps.image_counts), provider)
    _check_offered("resolution", request.resolution, caps.resolutions, provider)
    if request.resolution not in caps.resolutions_for(request.mode):
        raise InvalidRequest(
            "resolution",
            f"{provider} offers {request.resolution} in "
            f"{_listed(m for m in caps.modes if request.resolution in caps.resolutions_for(m))} "
            f"mode only, not {request.mode}",
        )
    low, high = caps.image_counts[request.generation_type]
    count = len(request.image_urls)
    if not low <= count <= high:
        expected = "no images" if high == 0 else f"{low} to {high} images"
        raise InvalidRequest(
            "image_urls", f"{request.generation_type} takes {expected}, got {count}"
        )
    for index, url in enumerate(request.image_urls):
        check_image_url(f"image_urls[{index}]", url)
    if request.generation_type == "REFERENCE_2_VIDEO":
        if request.mode not in caps.reference_modes:
            raise InvalidRequest(
                "mode",
                f"REFERENCE_2_VIDEO is available in {_listed(caps.reference_modes)} mode only "
                f"on {provider}",
            )
        if request.aspect_ratio not in caps.reference_aspect_ratios:
            raise InvalidRequest(
                "aspect_ratio",
                f"REFERENCE_2_VIDEO requires {_listed(caps.reference_aspect_ratios)} on {provider}",
            )


def check_extension(capabilities: Capabilities, parent: Task, mode: str) -> None:
    """Whether `parent` can be continued in `mode` on its provider (the prompt and seed: see
    check_prompt_and_seed)."""
    caps, provider = capabilities, parent.provider
    if parent.parent_id is not None and not caps.extends_extensions:
        raise InvalidRequest(
            "id", f"{provider} can extend a generated video only, not an extension"
        )
    if parent.mode in caps.unextendable_modes:
        raise InvalidRequest("id", f"{provider} cannot extend a video made in {parent.mode} mode")
    if parent.resolution not in caps.extendable_resolutions:
        raise InvalidRequest(
            "id",
            f"{provider} cannot extend a video upgraded to {parent.resolution}; only "
            f"{_listed(caps.extendable_resolutions)} videos can be extended",
        )
    if caps.extension_keeps_mode and mode != parent.mode:
        raise InvalidRequest(
            "mode",
            f"{provider} extends a video with its own model; the parent was made in "
            f"{parent.mode} mode",
        )
    _check_offered("mode", mode, caps.extension_modes, provider, what="extensions in ")


def _check_offered(
    field: str, value: str, offered: tuple[str, ...], provider: str, what: str = ""
) -> None:
    """`what`: what is offered, when not the field's values themselves ("extensions in ")."""
    if value not in offered:
        raise InvalidRequest(field, f"{provider} offers {what}{_listed(offered)}, not {value}")


def _listed(values: Iterable[str]) -> str:
    names = list(values)
    if not names:
        return "nothing"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


MAX_IMAGE_URL_LENGTH = 2048


def check_image_url(field: str, url: str) -> None:
    """The provider fetches the image, so it is vetted as we would vet a URL we fetch ourselves
    (safe_urls): an https URL with a valid host, no userinfo, and no address literal or name that
    points inside a network (the provider's own metadata service, say). A name that resolves to
    such an address is the provider's to refuse: resolving here proves nothing about its DNS."""
    if len(url) > MAX_IMAGE_URL_LENGTH:
        raise InvalidRequest(field, f"must be at most {MAX_IMAGE_URL_LENGTH} characters")
    try:
        parsed = parse_url(url)
    except RefusedUrl as exc:
        raise InvalidRequest(field, f"is not an acceptable URL: {exc}") from None
    if parsed.scheme != "https":
        raise InvalidRequest(field, "must be an https URL")
    if parsed.host == "localhost" or parsed.host.endswith(".localhost"):
        raise InvalidRequest(field, "must not name localhost")
    if not _is_address(parsed.host):
        if "." not in parsed.host:  # a single label resolves only inside some network
            raise InvalidRequest(field, "must name a public host (a dotted domain name)")
        return
    problem = check_address(parsed.host)
    if problem is not None:
        raise InvalidRequest(field, f"must not point inside a network: {problem}")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_prompt_and_seed(
    provider: str, caps: Capabilities, prompt: str, seed: int | None, watermark: str | None
) -> None:
    if watermark and not caps.accepts_watermark:
        raise InvalidRequest("watermark", f"{provider} has no watermark parameter; leave it out")
    if not prompt.strip():
        raise InvalidRequest("prompt", "must not be blank")
    if len(prompt) > caps.max_prompt_length:
        raise InvalidRequest(
            "prompt", f"{provider} takes at most {caps.max_prompt_length} characters"
        )
    if seed is None:
        return
    if caps.seed_range is None:
        raise InvalidRequest("seed", f"{provider} has no seed parameter; leave it out")
    low, high = caps.seed_range
    if not low <= seed <= high:
        raise InvalidRequest("seed", f"{provider} takes seeds from {low} to {high}, got {seed}")
