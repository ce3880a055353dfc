"""template.yaml against what AWS requires or advises of it, read as data and, where SAM decides
the outcome, as SAM translates it. Each test derives the resources it checks from the template, so
a resource added later is held to the same rule."""

from __future__ import annotations

import re
from typing import Any

import pytest

from offline.template import Template, load_template
from tests.helpers import forbid_sockets


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_sockets(monkeypatch)


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def named(value: Any) -> str | None:
    """The logical id a Ref or a GetAtt names, else None."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            return str(arg[0])
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def holds(template: Template, condition: str, **parameters: Any) -> bool:
    """Whether the template's `condition` holds for `parameters` (the others at their defaults)."""
    values = {**template.parameter_defaults(), **parameters}

    def evaluate(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        ((key, arg),) = value.items()
        if key == "Ref":
            return values[arg]
        if key == "Condition":
            return evaluate(template.body["Conditions"][arg])
        if key == "Fn::Equals":
            left, right = (evaluate(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not evaluate(arg[0])
        if key == "Fn::And":
            return all(evaluate(a) for a in arg)
        if key == "Fn::Or":
            return any(evaluate(a) for a in arg)
        raise AssertionError(f"cannot evaluate {key} in condition {condition}")

    return bool(evaluate(template.body["Conditions"][condition]))


# --- queue policies ---------------------------------------------------------------------------


def test_each_queue_policy_covers_one_queue_with_its_own_statements(template):
    # Given every SQS queue policy of the template
    policies = template.of_type("AWS::SQS::QueuePolicy")
    assert policies
    covered: list[str | None] = []

    for name, spec in policies.items():
        # When its queues and statements are read
        props = spec["Properties"]
        queues = [named(q) for q in props["Queues"]]
        resources = [
            named(resource)
            for statement in props["PolicyDocument"]["Statement"]
            for resource in as_list(statement["Resource"])
        ]

        # Then it lists exactly one queue (a QueuePolicy sets one document on every queue it
        # lists), and each statement's Resource is that queue
        assert len(queues) == 1, f"{name} covers {queues}"
        assert set(resources) == set(queues), f"{name}: statements about {resources}"
        (queue,) = queues
        assert template.resources[str(queue)]["Type"] == "AWS::SQS::Queue"
        covered.append(queue)

    # And no queue has two policies (the second would replace the first)
    assert len(covered) == len(set(covered))


# --- queues that trigger functions --------------------------------------------------------------


def test_queues_that_trigger_functions_allow_at_least_five_receives(template):
    # Given every queue that is an SQS event source of a function
    triggers = template.queue_triggers()
    assert triggers

    for trigger in triggers:
        # When its redrive policy is read
        redrive = template.resources[trigger.queue]["Properties"]["RedrivePolicy"]

        # Then a message is received at least 5 times before it is dead-lettered, as AWS advises
        # for a Lambda event source: a receive the function's throttling returns counts too
        assert int(redrive["maxReceiveCount"]) >= 5, f"{trigger.queue} -> {trigger.function}"


# --- logs -----------------------------------------------------------------------------------------


def test_named_log_groups_are_unique_to_their_stack(template):
    # Given every log group the template names itself
    named_groups = {
        name: spec["Properties"]["LogGroupName"]
        for name, spec in template.of_type("AWS::Logs::LogGroup").items()
        if "LogGroupName" in spec["Properties"]
    }
    assert named_groups

    for name, log_group_name in named_groups.items():
        # When the variables of its name are read
        assert isinstance(log_group_name, dict) and "Fn::Sub" in log_group_name, name
        variables = {
            v.split(".")[0] for v in re.findall(r"\$\{([^}!]+)\}", log_group_name["Fn::Sub"])
        }

        # Then one of them is the stack's name or a resource of the stack, so two stacks (say two
        # of the same Environment) never claim the same group; parameters alone do not
        unique = {v for v in variables if v == "AWS::StackName" or v in template.resources}
        assert unique, f"{name}: {log_group_name['Fn::Sub']} is named only after {variables}"


def test_state_machine_logs_go_to_a_vended_logs_group(template):
    # Given the log groups the state machines log to
    for spec in template.of_type("AWS::Serverless::StateMachine").values():
        for destination in spec["Properties"]["Logging"]["Destinations"]:
            group = named(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])

            # When its name is read
            name = template.resources[str(group)]["Properties"]["LogGroupName"]["Fn::Sub"]

            # Then it keeps the /aws/vendedlogs/ prefix, under which the log delivery's resource
            # policy stays small however many groups there are
            assert name.startswith("/aws/vendedlogs/states/"), name


# --- alarms -----------------------------------------------------------------------------------


def test_every_alarm_notifies_the_alarm_topic(template):
    # Given the template's alarms and its SNS topic for them
    alarms = template.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    assert set(template.of_type("AWS::SNS::Topic")) == {"AlarmTopic"}

    for name, spec in alarms.items():
        # When its actions are read
        props = spec["Properties"]
        on_alarm = {named(action) for action in props.get("AlarmActions", [])}
        on_ok = {named(action) for action in props.get("OKActions", [])}

        # Then it notifies the topic when it fires and when it clears
        assert "AlarmTopic" in on_alarm, f"{name} notifies no one"
        assert "AlarmTopic" in on_ok, f"{name} never says it cleared"


def test_the_alarm_topic_is_an_output(template):
    # Given the stack's outputs
    outputs = [named(output["Value"]) for output in template.body["Outputs"].values()]

    # Then the alarm topic's ARN (its Ref) is one of them, for subscribing other endpoints
    assert "AlarmTopic" in outputs


def test_an_alarm_email_is_subscribed_only_when_given(template):
    # Given the subscriptions to the alarm topic
    subscriptions = [
        spec
        for spec in template.of_type("AWS::SNS::Subscription").values()
        if named(spec["Properties"]["TopicArn"]) == "AlarmTopic"
    ]
    (subscription,) = subscriptions
    props = subscription["Properties"]
    assert props["Protocol"] == "email"
    assert named(props["Endpoint"]) == "AlarmEmail"

    # When the stack is deployed with AlarmEmail at its default (empty), or set
    condition = subscription["Condition"]

    # Then the email subscription exists only when an address was given
    assert template.parameter_defaults()["AlarmEmail"] == ""
    assert not holds(template, condition)
    assert holds(template, condition, AlarmEmail="ops@example.com")
