"""Every provider the relay can use: settings, the API's `provider` choices, the offline stack,
its simulators and the test fixtures are derived from this list. Its order is the default order
`provider: "auto"` tries them in. Adding a provider: README, "Adding a provider"."""

from __future__ import annotations

from veo_relay.providers.spec import ProviderSpec
from veo_relay.providers.specs import apimart, apixo, kie

SPECS: tuple[ProviderSpec, ...] = (apixo.SPEC, kie.SPEC, apimart.SPEC)
PROVIDER_NAMES = tuple(spec.name for spec in SPECS)
_BY_NAME = {spec.name: spec for spec in SPECS}
if len(_BY_NAME) != len(SPECS):
    raise ValueError(f"two providers share a name: {PROVIDER_NAMES}")


def spec_of(name: str) -> ProviderSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}; expected one of {PROVIDER_NAMES}") from None
