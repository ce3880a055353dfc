"""The capability table: what each provider offers, the checks that read it, and the public view
of it (GET /v1/capabilities), which cannot disagree with the checks."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from tests.fakes import make_task
from veo_relay.catalog import ProviderCatalog
from veo_relay.errors import InvalidRequest
from veo_relay.providers.base import GenerationRequest
from veo_relay.providers.capabilities import (
    ASPECT_RATIOS,
    GENERATION_TYPES,
    MODES,
    RESOLUTIONS,
    Capabilities,
)
from veo_relay.providers.registry import SPECS, spec_of
from veo_relay.rules import check_extension, check_generation
from veo_relay.settings import ProviderSettings, RateLimit
from veo_relay.tasks import TaskStatus

IMG = "https://img.example.com/frame.png"


def generation(**fields: object) -> GenerationRequest:
    values: dict[str, object] = {
        "prompt": "a fox",
        "mode": "fast",
        "generation_type": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
        **fields,
    }
    return GenerationRequest(**values)  # type: ignore[arg-type]


def refused(provider: str, request: GenerationRequest) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as raised:
        check_generation(provider, spec_of(provider).capabilities, request)
    return raised.value


# ------------------------------------------------------------------------------ the table


@pytest.mark.parametrize(
    "provider, resolutions, modes",
    [
        ("apixo", ("720p",), ("fast", "quality")),
        ("kie", ("720p", "1080p", "4k"), ("fast", "quality", "lite")),
        ("apimart", ("720p", "1080p", "4k"), ("fast", "quality")),
    ],
)
def test_each_provider_offers_what_its_docs_document(provider, resolutions, modes):
    capabilities = spec_of(provider).capabilities
    assert capabilities.resolutions == resolutions
    assert capabilities.modes == modes


def test_kie_makes_1080p_and_4k_by_upgrading_and_apimart_by_its_request_field():
    kie, apimart = spec_of("kie").capabilities, spec_of("apimart").capabilities
    assert kie.upgrades_to("1080p") and kie.upgrades_to("4k") and not kie.upgrades_to("720p")
    assert not any(apimart.upgrades_to(r) for r in RESOLUTIONS)


def test_a_table_naming_a_value_the_relay_does_not_know_is_refused():
    with pytest.raises(ValueError, match="does not know"):
        Capabilities(resolutions=("720p", "8k"))


# ----------------------------------------------------------------------- generation checks


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_apixo_refuses_any_resolution_but_720p_naming_the_field(resolution):
    exc = refused("apixo", generation(resolution=resolution))
    assert exc.field == "resolution"
    assert "apixo offers 720p" in str(exc)


def test_lite_is_refused_where_it_is_not_offered_naming_mode():
    for provider in ("apixo", "apimart"):
        assert refused(provider, generation(mode="lite")).field == "mode"


def test_kie_lite_has_no_4k_and_no_reference_video():
    assert refused("kie", generation(mode="lite", resolution="4k")).field == "resolution"
    reference = generation(mode="lite", generation_type="REFERENCE_2_VIDEO", image_urls=(IMG,))
    assert refused("kie", reference).field == "mode"
    # Lite at 1080p is offered
    check_generation(
        "kie", spec_of("kie").capabilities, generation(mode="lite", resolution="1080p")
    )


@pytest.mark.parametrize("provider", ["kie", "apimart"])
@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_1080p_and_4k_pass_where_offered(provider, resolution):
    check_generation(provider, spec_of(provider).capabilities, generation(resolution=resolution))


# ------------------------------------------------------------------------ extension checks


def test_kie_cannot_extend_a_lite_or_an_upgraded_video_naming_id():
    kie = spec_of("kie").capabilities
    for parent in (
        make_task(TaskStatus.COMPLETED, provider="kie", mode="lite"),
        make_task(TaskStatus.COMPLETED, provider="kie", resolution="1080p"),
        make_task(TaskStatus.COMPLETED, provider="kie", resolution="4k"),
    ):
        with pytest.raises(InvalidRequest) as raised:
            check_extension(kie, parent, "fast")
        assert raised.value.field == "id"


def test_an_extension_cannot_ask_for_lite_naming_mode():
    parent = make_task(TaskStatus.COMPLETED, provider="kie")
    with pytest.raises(InvalidRequest) as raised:
        check_extension(spec_of("kie").capabilities, parent, "lite")
    assert raised.value.field == "mode"


def test_apimart_extends_a_1080p_video():
    parent = make_task(TaskStatus.COMPLETED, provider="apimart", resolution="1080p")
    check_extension(spec_of("apimart").capabilities, parent, "fast")


# ------------------------------------------------------------------------- the public view


class SpecProviders:
    """The adapters' view of capabilities, as the real ones have them (their specs')."""

    def get(self, name: str):
        spec = spec_of(name)
        return type(
            "Adapter",
            (),
            {"capabilities": spec.capabilities, "supports_callbacks": spec.supports_callbacks},
        )()


def catalog() -> ProviderCatalog:
    settings = {
        spec.name: ProviderSettings(
            name=spec.name,
            base_url=spec.base_url,
            api_key=None,
            download_origins=frozenset(spec.download_origins),
            rate_limit=RateLimit(20, 10),
            first_wait_seconds=spec.poll_first_wait_seconds,
        )
        for spec in SPECS
    }
    return ProviderCatalog(
        providers=SpecProviders(),  # type: ignore[arg-type]
        provider_settings=settings,
        provider_preference=("apixo", "kie", "apimart"),
        default_provider="apixo",
    )


def test_the_public_table_lists_every_enabled_provider_with_callbacks_and_pacing():
    table = catalog().capabilities()
    assert set(table["providers"]) == {"apixo", "kie", "apimart"}
    kie = table["providers"]["kie"]
    assert kie["callbacks"] is True and table["providers"]["apimart"]["callbacks"] is False
    assert kie["pacing"] == {"requests": 20, "per_seconds": 10}
    assert kie["seed"] == {"min": 10000, "max": 99999}
    assert table["providers"]["apimart"]["seed"] is None
    assert kie["resolutions"]["4k"] == {"modes": ["fast", "quality"], "made_by": "upgrade"}
    assert kie["extend"]["parent_modes"] == ["fast", "quality"]
    assert kie["extend"]["parent_resolutions"] == ["720p"]
    assert kie["generation_types"]["REFERENCE_2_VIDEO"] == {
        "images": {"min": 1, "max": 3},
        "modes": ["fast"],
        "aspect_ratios": ["16:9"],
    }
    assert table["auto_order"] == ["apixo", "kie", "apimart"]


@pytest.mark.parametrize("provider", [spec.name for spec in SPECS])
def test_the_public_table_and_the_checks_agree_on_every_combination(provider):
    # Given a provider's public entry
    entry = catalog().capabilities()["providers"][provider]
    capabilities = spec_of(provider).capabilities

    # Then every combination of mode, type, ratio and resolution passes the checks exactly when
    # the entry says it is offered
    for mode, kind, ratio, resolution in itertools.product(
        MODES, GENERATION_TYPES, ASPECT_RATIOS, RESOLUTIONS
    ):
        offered = (
            mode in entry["modes"]
            and kind in entry["generation_types"]
            and mode in entry["generation_types"][kind]["modes"]
            and ratio in entry["generation_types"][kind]["aspect_ratios"]
            and resolution in entry["resolutions"]
            and mode in entry["resolutions"][resolution]["modes"]
        )
        images = (IMG,) * entry["generation_types"].get(kind, {"images": {"min": 0}})["images"][
            "min"
        ]
        request = generation(
            mode=mode,
            generation_type=kind,
            aspect_ratio=ratio,
            resolution=resolution,
            image_urls=images,
        )
        try:
            check_generation(provider, capabilities, request)
            passed = True
        except InvalidRequest:
            passed = False
        assert passed == offered, (mode, kind, ratio, resolution)


def test_a_provider_offering_more_shows_it_in_its_entry():
    relaxed = replace(spec_of("apixo").capabilities, resolutions=("720p", "1080p"))
    entry = relaxed.to_public(calls_back=True, rate_limit=(1, 1))
    assert set(entry["resolutions"]) == {"720p", "1080p"}


def test_an_upgraded_resolution_the_provider_does_not_offer_is_refused():
    with pytest.raises(ValueError, match="upgraded resolution"):
        Capabilities(resolutions=("720p",), upgraded_resolutions=("4k",))
