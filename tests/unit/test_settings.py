"""Each function's settings: the only readers of the environment, and their validation."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from offline.template import load_template
from veo_relay import wiring
from veo_relay.errors import ConfigurationError
from veo_relay.providers.registry import SPECS
from veo_relay.settings import (
    ApiSettings,
    BalanceReaderSettings,
    CallbackSettings,
    CopyWorkerSettings,
    FailureAnnouncerSettings,
    PollerSettings,
    RateLimit,
    SpendSettlerSettings,
    SubmitWorkerSettings,
    VideoConsumerSettings,
    WebhookSenderSettings,
    origin_of,
)

MINIMAL = {"TASKS_TABLE": "tasks", "VIDEO_BUCKET": "videos"}
# What template.yaml gives the functions beyond MINIMAL, each to those that use it.
DEPLOYED = {
    "PRINCIPALS_TABLE": "principals",
    "SUBMIT_QUEUE_URL": "https://sqs.example/submit",
    "COPY_QUEUE_URL": "https://sqs.example/copy",
    "WEBHOOK_QUEUE_URL": "https://sqs.example/webhooks",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:poller",
    "PROVIDER_KEYS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keys",
    "CALLBACK_TOKEN_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:t",
    "WEBHOOK_MASTER_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:w",
    "EVENT_BUS_NAME": "videos",
    "PRICE_TABLE": load_template().parameter_defaults()["PriceTable"],
}
MODELS = (
    ApiSettings,
    CallbackSettings,
    SubmitWorkerSettings,
    CopyWorkerSettings,
    PollerSettings,
    VideoConsumerSettings,
    FailureAnnouncerSettings,
    SpendSettlerSettings,
    WebhookSenderSettings,
    BalanceReaderSettings,
)


def settings(**env: str) -> Any:
    """What the functions read from one environment, each value from the function using it."""
    full = {**MINIMAL, **DEPLOYED, **env}
    api, copy = ApiSettings.from_env(full), CopyWorkerSettings.from_env(full)
    poller = PollerSettings.from_env(full)
    return SimpleNamespace(
        tasks_table=api.tasks_table,
        default_provider=api.default_provider,
        providers=api.access.providers,
        public_base_url=api.public_base_url,
        presign_expires_seconds=api.presign_expires_seconds,
        poll=poller.poll,
        trust_provider_origin=copy.download.trust_provider_origin,
        download_max_bytes=copy.download.max_bytes,
        callback_quiet_seconds=copy.callback_quiet_seconds,
    )


def config_error(**env: str) -> str:
    """The refusals of the functions that read a variable of `env` (the others start)."""
    messages = []
    for model in MODELS:
        try:
            model.from_env({**DEPLOYED, **env})
        except ConfigurationError as exc:
            messages.append(str(exc))
    assert messages, "every function started"
    return " | ".join(messages)


class TestRequired:
    @pytest.mark.parametrize("name", ["TASKS_TABLE", "VIDEO_BUCKET"])
    def test_a_missing_required_variable_is_named(self, name):
        # Given an environment without it
        env = {k: v for k, v in MINIMAL.items() if k != name}

        # Then reading fails, naming the variable
        assert name in config_error(**env)

    @pytest.mark.parametrize("blank", ["", "   "])
    def test_a_blank_required_variable_counts_as_missing(self, blank):
        assert "TASKS_TABLE" in config_error(**{**MINIMAL, "TASKS_TABLE": blank})

    def test_values_are_stripped(self):
        assert settings(TASKS_TABLE="  tasks \n").tasks_table == "tasks"


class TestDefaults:
    def test_a_minimal_environment_gets_the_documented_defaults(self):
        # Given only the required variables
        s = settings()

        # Then everything else has its default
        assert s.default_provider == "apixo"
        assert s.providers["apixo"].base_url == "https://api.apixo.ai"
        assert s.providers["apixo"].api_key is None
        assert s.providers["apixo"].download_origins == {
            "https://r2.apixo.ai:443",
            "https://cdn.apixo.ai:443",
        }
        assert {
            name: s.providers[name].first_wait_seconds for name in ("apixo", "kie", "apimart")
        } == {
            "apixo": 90,
            "kie": 90,
            "apimart": 120,
        }
        assert (
            s.poll.interval_seconds,
            s.poll.max_interval_seconds,
            s.poll.deadline_seconds,
        ) == (15, 180, 2700)
        assert s.public_base_url is None
        assert s.trust_provider_origin is False
        assert s.download_max_bytes == 4 * 1024**3
        assert s.presign_expires_seconds == 3600

    def test_the_template_defaults_agree_with_the_code_defaults(self):
        # Given the template's parameter defaults for apixo and the poller
        from offline.template import load_template

        parameters = load_template().parameter_defaults()
        s = settings()

        # Then a function deployed with them behaves as one with nothing set
        assert parameters["ApixoBaseUrl"] == s.providers["apixo"].base_url
        assert {origin_of(o) for o in parameters["ApixoDownloadOrigins"].split(",")} == set(
            s.providers["apixo"].download_origins
        )
        for name in ("Apixo", "Kie", "Apimart"):
            first_wait = s.providers[name.lower()].first_wait_seconds
            assert parameters[f"{name}PollFirstWaitSeconds"] == first_wait
        assert parameters["PollIntervalSeconds"] == s.poll.interval_seconds
        assert parameters["PollMaxIntervalSeconds"] == s.poll.max_interval_seconds
        assert parameters["TaskDeadlineSeconds"] == s.poll.deadline_seconds


class TestIntegers:
    @pytest.mark.parametrize("raw", ["abc", "1.5", "10s", "0x10"])
    def test_a_non_integer_is_refused_with_its_name_and_value(self, raw):
        message = config_error(**MINIMAL, POLL_INTERVAL_SECONDS=raw)
        assert "POLL_INTERVAL_SECONDS" in message and repr(raw) in message

    @pytest.mark.parametrize(
        ("name", "raw"),
        [
            ("POLL_INTERVAL_SECONDS", "0"),
            ("POLL_MAX_INTERVAL_SECONDS", "0"),
            ("TASK_DEADLINE_SECONDS", "0"),
            ("POLL_FIRST_WAIT_SECONDS", "-1"),
            ("DOWNLOAD_MAX_BYTES", "0"),
            ("PRESIGN_EXPIRES_SECONDS", "-5"),
        ],
    )
    def test_a_value_below_its_minimum_is_refused(self, name, raw):
        assert name in config_error(**MINIMAL, **{name: raw})

    def test_a_quiet_time_longer_than_an_sqs_delay_allows_is_refused(self):
        # The first callback within it queues a copy for its end, with one second's margin
        assert settings(CALLBACK_QUIET_SECONDS="899").callback_quiet_seconds == 899
        message = config_error(**MINIMAL, CALLBACK_QUIET_SECONDS="900")
        assert "CALLBACK_QUIET_SECONDS must be at most 899" in message

    def test_a_video_retention_is_whole_days_from_zero_which_keeps_everything(self):
        env = {**MINIMAL, **DEPLOYED}
        assert CopyWorkerSettings.from_env(env).video_retention_days == 0
        assert (
            CopyWorkerSettings.from_env({**env, "VIDEO_RETENTION_DAYS": "30"}).video_retention_days
            == 30
        )
        assert "VIDEO_RETENTION_DAYS" in config_error(**MINIMAL, VIDEO_RETENTION_DAYS="-1")

    def test_a_first_wait_of_zero_is_allowed(self):
        assert settings(POLL_FIRST_WAIT_SECONDS="0").providers["kie"].first_wait_seconds == 0

    def test_a_providers_own_first_wait_wins_over_the_one_for_all(self):
        # Given a first wait for all providers and one for kie
        s = settings(POLL_FIRST_WAIT_SECONDS="4", KIE_POLL_FIRST_WAIT_SECONDS="7")

        # Then kie uses its own, the others the one for all
        assert s.providers["kie"].first_wait_seconds == 7
        assert s.providers["apixo"].first_wait_seconds == 4

    def test_integers_are_read(self):
        s = settings(
            POLL_FIRST_WAIT_SECONDS="4",
            POLL_INTERVAL_SECONDS="2",
            POLL_MAX_INTERVAL_SECONDS="5",
            TASK_DEADLINE_SECONDS="300",
        )
        assert (s.providers["apixo"].first_wait_seconds, s.poll.interval_seconds) == (4, 2)
        assert (s.poll.max_interval_seconds, s.poll.deadline_seconds) == (5, 300)

    def test_the_maximum_interval_may_not_be_below_the_interval(self):
        message = config_error(
            **MINIMAL, POLL_INTERVAL_SECONDS="30", POLL_MAX_INTERVAL_SECONDS="10"
        )
        assert "POLL_MAX_INTERVAL_SECONDS" in message


class TestUrls:
    @pytest.mark.parametrize(
        "raw", ["api.apixo.ai", "ftp://api.apixo.ai", "https://", "file:///etc/passwd", "//x.y"]
    )
    def test_a_base_url_that_is_not_http_is_refused(self, raw):
        message = config_error(**MINIMAL, APIXO_BASE_URL=raw)
        assert "APIXO_BASE_URL" in message

    @pytest.mark.parametrize("raw", ["not a url", "mailto:x@y.z"])
    def test_a_public_base_url_that_is_not_http_is_refused(self, raw):
        assert "PUBLIC_BASE_URL" in config_error(**MINIMAL, PUBLIC_BASE_URL=raw)

    def test_the_base_url_loses_its_trailing_slash(self):
        # Given an origin written with a trailing slash
        s = settings(APIXO_BASE_URL="http://127.0.0.1:8701/")

        # Then documented paths can be appended to it as they are
        assert s.providers["apixo"].base_url == "http://127.0.0.1:8701"

    def test_the_public_base_url_is_kept(self):
        assert settings(PUBLIC_BASE_URL="https://relay.example").public_base_url == (
            "https://relay.example"
        )


class TestOrigins:
    def test_download_origins_are_normalized(self):
        # Given origins written loosely: case, explicit default ports, spaces, empty items
        s = settings(
            APIXO_DOWNLOAD_ORIGINS=" https://CDN.Apixo.AI , https://r2.apixo.ai:443,,"
            "http://127.0.0.1:8701/files/ ,https://[::1]:9000"
        )

        # Then each is scheme://host:port, lower-case, with the port filled in
        assert s.providers["apixo"].download_origins == {
            "https://cdn.apixo.ai:443",
            "https://r2.apixo.ai:443",
            "http://127.0.0.1:8701",
            "https://[::1]:9000",
        }

    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("https://cdn.apixo.ai/output/a.mp4", "https://cdn.apixo.ai:443"),
            ("http://Example.COM/x", "http://example.com:80"),
            ("http://127.0.0.1:8701", "http://127.0.0.1:8701"),
            ("https://[2001:DB8::1]/v.mp4", "https://[2001:db8::1]:443"),
        ],
    )
    def test_origin_of(self, url, origin):
        assert origin_of(url) == origin

    @pytest.mark.parametrize("url", ["ftp://x.y/z", "cdn.apixo.ai", "https:///path", ""])
    def test_origin_of_refuses_what_is_not_an_http_url(self, url):
        with pytest.raises(ValueError):
            origin_of(url)

    def test_a_bad_download_origin_is_refused(self):
        with pytest.raises((ConfigurationError, ValueError)):
            settings(APIXO_DOWNLOAD_ORIGINS="https://cdn.apixo.ai,ftp://files.apixo.ai")


class TestChoices:
    @pytest.mark.parametrize(("raw", "value"), [("true", True), ("1", True), ("YES", True)])
    def test_true_booleans(self, raw, value):
        assert settings(TRUST_PROVIDER_ORIGIN=raw).trust_provider_origin is value

    @pytest.mark.parametrize("raw", ["false", "0", "No"])
    def test_false_booleans(self, raw):
        assert settings(TRUST_PROVIDER_ORIGIN=raw).trust_provider_origin is False

    def test_a_boolean_that_is_neither_is_refused(self):
        assert "TRUST_PROVIDER_ORIGIN" in config_error(**MINIMAL, TRUST_PROVIDER_ORIGIN="maybe")

    def test_an_unknown_default_provider_is_refused(self):
        message = config_error(**MINIMAL, DEFAULT_PROVIDER="sora")
        assert "DEFAULT_PROVIDER" in message and "'sora'" in message

    def test_the_api_key_is_read_per_provider(self):
        assert settings(APIXO_API_KEY="k-123").providers["apixo"].api_key == "k-123"


def test_a_functions_settings_are_read_once_from_the_process_environment(monkeypatch):
    # Given a process environment
    for name, value in {**MINIMAL, **DEPLOYED, "TASKS_TABLE": "from-env"}.items():
        monkeypatch.setenv(name, value)
    wiring.clear()
    try:
        first = wiring.poller()

        # When the environment changes afterwards
        monkeypatch.setenv("TASKS_TABLE", "changed")

        # Then the settings read at start stay
        assert wiring.poller() is first
        assert first.settings.tasks_table == "from-env"
    finally:
        wiring.clear()


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        (ApiSettings, "SUBMIT_QUEUE_URL"),
        (ApiSettings, "STATE_MACHINE_ARN"),
        (ApiSettings, "CALLBACK_TOKEN_KEY_SECRET_ARN"),
        (CallbackSettings, "COPY_QUEUE_URL"),
        (SubmitWorkerSettings, "STATE_MACHINE_ARN"),
        (CopyWorkerSettings, "PROVIDER_KEYS_SECRET_ARN"),
        (BalanceReaderSettings, "PROVIDER_KEYS_SECRET_ARN"),
        (PollerSettings, "COPY_QUEUE_URL"),
        (VideoConsumerSettings, "EVENT_BUS_NAME"),
        (FailureAnnouncerSettings, "EVENT_BUS_NAME"),
        (WebhookSenderSettings, "WEBHOOK_QUEUE_URL"),
        (WebhookSenderSettings, "WEBHOOK_MASTER_KEY_SECRET_ARN"),
    ],
)
def test_a_function_without_a_variable_it_uses_does_not_start(model, variable):
    # Given the deployed environment without one variable the function uses
    env: Mapping[str, str] = {k: v for k, v in {**MINIMAL, **DEPLOYED}.items() if k != variable}

    # When its settings are read (its cold start), Then they are refused, naming the variable
    with pytest.raises(ConfigurationError, match=variable):
        model.from_env(env)


def test_the_provider_keys_secret_may_be_replaced_by_every_providers_own_key():
    env = {k: v for k, v in {**MINIMAL, **DEPLOYED}.items() if k != "PROVIDER_KEYS_SECRET_ARN"}
    keys = {spec.variable("API_KEY"): spec.name for spec in SPECS}
    assert CopyWorkerSettings.from_env({**env, **keys}).access.keys_secret_arn is None
    with pytest.raises(ConfigurationError, match="KIE_API_KEY"):
        CopyWorkerSettings.from_env({**env, "APIXO_API_KEY": "a"})


class TestRateLimitSlack:
    @pytest.mark.parametrize(
        ("requests", "window", "tolerance"),
        [(20, 10, 0.55), (10000, 60, 6.0), (60, 10, 0.92), (5, 10, 0.5), (7, 3, 0.51)],
    )
    def test_a_submit_may_be_late_by_the_slack_its_windows_keep(self, requests, window, tolerance):
        # Given a provider's limit
        limit = RateLimit(requests, window)

        # Then a submit may go late by the slots a window has to spare, at least half a second
        assert limit.late_tolerance == pytest.approx(tolerance, abs=0.01)

    @pytest.mark.parametrize(
        ("requests", "window"),
        [(20, 10), (10000, 60), (60, 10), (7, 3), (5, 10), (2, 1), (1, 60), (1, 1)],
    )
    def test_late_submits_within_the_tolerance_never_crowd_a_window_past_the_limit(
        self, requests, window
    ):
        # Given every scheduled slot of a long stretch, each submit sent as late as allowed or not
        # late at all, alternately (the worst mix: late ones catch up with punctual ones)
        limit = RateLimit(requests, window)
        slots = [i * limit.slot_spacing for i in range(3 * requests)]
        sent = sorted(s + (limit.late_tolerance if i % 2 else 0) for i, s in enumerate(slots))

        # Then no window of the provider's length ever holds more than its limit
        busiest = max(
            bisect.bisect_left(sent, start + window) - index for index, start in enumerate(sent)
        )
        assert busiest <= requests


class TestDownloadThroughputFloor:
    def test_the_default_floor_reaches_the_download_policy(self):
        # Given no download settings / When the policy is built
        copy = CopyWorkerSettings.from_env({**MINIMAL, **DEPLOYED})
        floor = wiring.download_policy(
            copy.download, copy.access.providers["apixo"]
        ).throughput_floor
        # Then a trickle is judged: 64 KiB/s over 10 s windows after 10 s
        assert floor is not None
        assert (floor.bytes_per_second, floor.window_seconds, floor.grace_seconds) == (
            64 * 1024,
            10,
            10,
        )

    def test_a_zero_rate_turns_the_floor_off(self):
        env = {**MINIMAL, **DEPLOYED, "DOWNLOAD_MIN_BYTES_PER_SECOND": "0"}
        copy = CopyWorkerSettings.from_env(env)
        policy = wiring.download_policy(copy.download, copy.access.providers["kie"])
        assert policy.throughput_floor is None

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("DOWNLOAD_MIN_BYTES_PER_SECOND", "-1"),
            ("DOWNLOAD_THROUGHPUT_WINDOW_SECONDS", "0"),
            ("DOWNLOAD_THROUGHPUT_GRACE_SECONDS", "soon"),
        ],
    )
    def test_a_bad_value_is_named(self, name, value):
        assert name in config_error(**MINIMAL, **{name: value})
