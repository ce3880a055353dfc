"""The provider registry (veo_relay.providers.registry): what each spec declares reaches the
settings, the API, the simulators and template.yaml, and importing it costs a cold start nothing
of the adapters'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError

from offline.simulator import PROTOCOLS
from offline.template import Template, load_template
from tests.helpers import ROOT
from veo_relay.api_models import CreateVideoBody
from veo_relay.providers.http import ProviderHttp
from veo_relay.providers.registry import PROVIDER_NAMES, SPECS, spec_of
from veo_relay.providers.spec import ProviderSpec
from veo_relay.settings import ApiSettings, origin_of

# Each provider's settings in template.yaml: the variable's suffix (after <NAME>_) and the
# parameter's (after the capitalised name: ApixoBaseUrl).
TEMPLATE_SETTINGS = {
    "BASE_URL": "BaseUrl",
    "DOWNLOAD_ORIGINS": "DownloadOrigins",
    "RATE_LIMIT": "RateLimit",
    "POLL_FIRST_WAIT_SECONDS": "PollFirstWaitSeconds",
}
SIMULATOR_FUNCTION = "ProviderSimulatorFunction"


def by_name(spec: ProviderSpec) -> str:
    return spec.name


def spec_default(spec: ProviderSpec, setting: str) -> str:
    """The spec's default of one of its settings, as an environment variable would spell it."""
    return {
        "BASE_URL": spec.base_url,
        "DOWNLOAD_ORIGINS": ",".join(spec.download_origins),
        "RATE_LIMIT": spec.rate_limit,
        "POLL_FIRST_WAIT_SECONDS": str(spec.poll_first_wait_seconds),
    }[setting]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


# --- the registry ---------------------------------------------------------------------------------


def test_providers_have_distinct_names_and_are_found_by_them():
    assert len(set(PROVIDER_NAMES)) == len(SPECS) >= 3
    assert [spec_of(name) for name in PROVIDER_NAMES] == list(SPECS)
    with pytest.raises(ValueError, match="unknown provider"):
        spec_of("nope")


def test_importing_the_registry_and_the_settings_loads_no_adapter():
    # Given a fresh interpreter (so this process's imports do not count)
    script = textwrap.dedent(
        """
        import sys
        import veo_relay.settings
        from veo_relay.providers.registry import PROVIDER_NAMES
        adapters = {"veo_relay.providers." + name for name in PROVIDER_NAMES}
        print(sorted(adapters & set(sys.modules)), "requests" in sys.modules)
        """
    )

    # When the registry is read, as settings read it at every cold start
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "layers" / "shared")},
    )

    # Then no adapter module, and not the HTTP transport, has been loaded: the spec's factory
    # loads its adapter when the provider is first used
    assert result.stdout.strip() == "[] False"


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_each_spec_builds_its_own_adapter(spec: ProviderSpec):
    # When the spec's factory builds the adapter
    adapter = spec.build_adapter(
        ProviderHttp("https://provider.example", lambda: "key"), lambda: None
    )

    # Then the adapter speaks for that provider, with the spec's rules and callbacks
    assert adapter.name == spec.name
    assert adapter.capabilities is spec.capabilities
    assert adapter.supports_callbacks is spec.supports_callbacks


# What the API function needs set beside its providers' variables (template.yaml gives it these).
API_ENVIRONMENT = {
    "VIDEO_BUCKET": "videos",
    "PRINCIPALS_TABLE": "principals",
    "SUBMIT_QUEUE_URL": "https://sqs.example/submit",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:poller",
    "PROVIDER_KEYS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys",
    "CALLBACK_TOKEN_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:t",
    "WEBHOOK_MASTER_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:w",
    "PRICE_TABLE": load_template().parameter_defaults()["PriceTable"],
    "EVENT_BUS_NAME": "videos",
}


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_each_providers_settings_default_to_its_spec(spec: ProviderSpec):
    # Given an environment that sets nothing of the provider's
    settings = ApiSettings.from_env({**API_ENVIRONMENT, "TASKS_TABLE": "tasks"})

    # Then its settings are the spec's
    provider = settings.access.providers[spec.name]
    assert provider.base_url == spec.base_url
    assert provider.download_origins == {origin_of(o) for o in spec.download_origins}
    limit = provider.rate_limit
    assert f"{limit.requests}/{limit.window_seconds}" == spec.rate_limit
    assert provider.first_wait_seconds == spec.poll_first_wait_seconds
    # And it is a choice for `provider: "auto"`, in the registry's order
    assert settings.provider_preference == PROVIDER_NAMES


def test_the_api_takes_every_provider_and_auto_and_nothing_else():
    # When a create names each provider, or auto
    for name in (*PROVIDER_NAMES, "auto"):
        assert CreateVideoBody(prompt="a fox", provider=name).provider == name

    # Then any other name is refused, naming the provider field
    with pytest.raises(ValidationError) as refused:
        CreateVideoBody(prompt="a fox", provider="nope")
    assert refused.value.errors()[0]["loc"] == ("provider",)


def test_every_provider_has_a_simulator():
    assert list(PROTOCOLS) == list(PROVIDER_NAMES)
    assert all(protocol.name == name for name, protocol in PROTOCOLS.items())


# --- template.yaml covers every spec --------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_the_template_has_each_providers_parameters_at_its_defaults(template, spec):
    # Given the template's parameters
    parameters = template.body["Parameters"]

    for setting, suffix in TEMPLATE_SETTINGS.items():
        # When the provider's parameter for one of its settings is read
        name = f"{spec.name.capitalize()}{suffix}"
        assert name in parameters, f"template.yaml has no parameter {name}"

        # Then it defaults to the spec's value, so that a stack deployed with the defaults acts
        # as a function with nothing set
        assert str(parameters[name]["Default"]) == spec_default(spec, setting), name


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_every_function_has_each_providers_variables(template, spec):
    # Given the template resolved with its defaults (Simulate false)
    resolved = Template(template.body)
    resolved.names.update({name: name for name in template.resources})
    defaults = template.parameter_defaults()

    for function in template.of_type("AWS::Serverless::Function"):
        # When the function's environment is read
        env = resolved.function_environment(function, defaults)

        # Then it sets each of the provider's variables: the simulator blanks its URLs (its
        # own, which the Globals would give it), every other function has the spec's values
        for setting in TEMPLATE_SETTINGS:
            variable = spec.variable(setting)
            assert variable in env, f"{function} has no {variable}"
            if function != SIMULATOR_FUNCTION:
                assert env[variable] == spec_default(spec, setting), f"{function}: {variable}"


def test_the_provider_choices_and_the_keys_secret_name_every_provider(template):
    parameters = template.body["Parameters"]
    assert parameters["DefaultProvider"]["AllowedValues"] == list(PROVIDER_NAMES)
    assert parameters["DefaultProvider"]["Default"] in PROVIDER_NAMES
    assert parameters["ProviderPreference"]["Default"] == ",".join(PROVIDER_NAMES)
    keys = template.resources["ProviderKeysSecret"]["Properties"]["GenerateSecretString"]
    assert list(json.loads(keys["SecretStringTemplate"])) == list(PROVIDER_NAMES)
