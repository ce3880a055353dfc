"""template.yaml's balance reader: its schedule, its role and environment, and an alarm for each
provider with a balance route (veo_relay.providers.specs: balance_unit) under its threshold."""

from __future__ import annotations

import pytest

from offline.template import Template, load_template
from tests.unit.test_template import holds, named, of_type, translated  # noqa: F401 (a fixture)
from veo_relay.providers.registry import SPECS

READER = "BalanceReaderFunction"
WITH_BALANCE = [spec for spec in SPECS if spec.balance_unit is not None]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def balance_alarms(template: Template) -> dict[str, tuple[str, dict]]:
    """Each ProviderBalance alarm by the provider it watches: its logical id and resource."""
    found = {}
    for name, spec in template.of_type("AWS::CloudWatch::Alarm").items():
        props = spec["Properties"]
        if props.get("MetricName") == "ProviderBalance":
            dimensions = {d["Name"]: d["Value"] for d in props["Dimensions"]}
            found[dimensions["provider"]] = (name, spec)
    return found


def test_the_reader_runs_every_five_minutes_and_is_not_retried(template, translated):  # noqa: F811
    # Given the reader's schedule, as the template and as SAM's rule
    (trigger,) = [t for t in template.schedule_triggers() if t.function == READER]
    rules = [
        spec["Properties"]
        for spec in of_type(translated, "AWS::Events::Rule").values()
        if any(named(t["Arn"]) == READER for t in spec["Properties"]["Targets"])
    ]

    # Then it runs every five minutes, and a failed run waits for the next one
    assert trigger.rate_seconds == 300
    assert [rule["ScheduleExpression"] for rule in rules] == ["rate(5 minutes)"]
    props = template.resources[READER]["Properties"]
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_the_reader_may_only_read_the_provider_keys(template):
    # Given the reader's own environment and policies
    props = template.resources[READER]["Properties"]

    # Then it has the keys secret's ARN and may read that secret, and nothing else
    assert {k: named(v) for k, v in props["Environment"]["Variables"].items()} == {
        "PROVIDER_KEYS_SECRET_ARN": "ProviderKeysSecret"
    }
    assert props["Policies"] == [
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "ProviderKeysSecret"}}}
    ]


def test_every_function_logs_to_its_own_group_with_the_stacks_retention(template):
    # Given the functions and the log groups named after a function
    groups = {
        spec["Properties"]["LogGroupName"]["Fn::Sub"]: spec
        for spec in template.of_type("AWS::Logs::LogGroup").values()
        if isinstance(spec["Properties"].get("LogGroupName"), dict)
    }

    for function, spec in template.of_type("AWS::Serverless::Function").items():
        # Then each has its group, kept RetentionInDays, made only when the function is
        group = groups.get(f"/aws/lambda/${{{function}}}")
        assert group is not None, f"{function} has no log group"
        assert named(group["Properties"]["RetentionInDays"]) == "RetentionInDays"
        assert group.get("Condition") == spec.get("Condition"), function


def test_each_provider_with_a_balance_route_has_one_alarm_and_no_other_has_one(template):
    alarms = balance_alarms(template)
    assert set(alarms) == {spec.name for spec in WITH_BALANCE}
    assert "apimart" not in alarms


@pytest.mark.parametrize("spec", WITH_BALANCE, ids=lambda spec: spec.name)
def test_a_balance_alarm_fires_below_its_threshold_or_without_readings(template, spec):
    # Given the provider's balance alarm
    name, alarm = balance_alarms(template)[spec.name]
    props = alarm["Properties"]
    threshold = f"{spec.name.capitalize()}BalanceAlarmThreshold"

    # Then it watches the metric as the functions emit it (their namespace and service)...
    variables = template.body["Globals"]["Function"]["Environment"]["Variables"]
    assert props["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    dimensions = {d["Name"]: d["Value"] for d in props["Dimensions"]}
    assert dimensions == {"provider": spec.name, "service": variables["POWERTOOLS_SERVICE_NAME"]}
    # ...fires on the lowest reading below the provider's own threshold parameter...
    assert named(props["Threshold"]) == threshold
    assert (props["Statistic"], props["ComparisonOperator"]) == ("Minimum", "LessThanThreshold")
    # ...and on no reading at all over a period of three runs: a balance nobody can read may be
    # running out
    assert props["TreatMissingData"] == "breaching"
    assert props["Period"] * props["EvaluationPeriods"] == 3 * 300
    # ...with its unit told, and exists unless its threshold is 0
    assert spec.balance_unit in ("USD", "credits")
    unit_words = {"USD": "dollars", "credits": "credits"}[spec.balance_unit]
    assert unit_words in template.body["Parameters"][threshold]["Description"]
    assert holds(template, alarm["Condition"])
    assert not holds(template, alarm["Condition"], **{threshold: "0"})
    assert name == f"{spec.name.capitalize()}BalanceAlarm"
