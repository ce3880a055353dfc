"""template.yaml against what AWS requires or advises of it, read as data and, where SAM decides
the outcome, as SAM translates it. Each test derives the resources it checks from the template, so
a resource added later is held to the same rule."""

from __future__ import annotations

import copy
import fnmatch
import re
from typing import Any

import pytest

from offline.template import ROOT, Template, load_template
from veo_relay.providers.registry import PROVIDER_NAMES
from veo_relay.tasks import manifest_key_for


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """The template as SAM translates it for CloudFormation (as `sam validate` does: local code
    paths stand in as S3 URIs)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    body = copy.deepcopy(load_template().body)
    for spec in body["Resources"].values():
        props = spec.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://bucket/{props[key]}"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.Session(region_name="us-east-1"),
    )
    return translator.translate(
        sam_template=body, parameter_values={}, get_managed_policy_map=lambda: {}
    )


def named(value: Any) -> str | None:
    """The logical id a Ref or a GetAtt names, else None."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            return str(arg[0])
    return None


def mentions(value: Any, logical_id: str) -> bool:
    """Whether `value` refers to `logical_id` anywhere inside it (a Ref, a GetAtt, a Sub)."""
    if isinstance(value, dict):
        if named(value) == logical_id:
            return True
        sub = value.get("Fn::Sub")
        if isinstance(sub, str) and re.search(r"\$\{" + re.escape(logical_id) + r"[.}]", sub):
            return True
        return any(mentions(v, logical_id) for v in value.values())
    if isinstance(value, list):
        return any(mentions(v, logical_id) for v in value)
    return False


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def of_type(cfn: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The resources of a translated (CloudFormation) template of one type."""
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == resource_type}


def parameter_value(template: Template, value: Any) -> Any:
    """A literal, or the default of the parameter it names."""
    name = named(value)
    if name in template.body["Parameters"]:
        return template.parameter_defaults()[name]
    return value


def holds(template: Template, condition: str, **parameters: Any) -> bool:
    """Whether the template's `condition` holds for `parameters` (the others at their defaults)."""
    return template.holds(condition, parameters)


# --- queue policies -------------------------------------------------------------------------------


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


# --- queues that trigger functions ----------------------------------------------------------------


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


# --- alarms ---------------------------------------------------------------------------------------


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


# --- event rules ----------------------------------------------------------------------------------


def rule_targets(template: Template) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, target)
        for name, spec in template.of_type("AWS::Events::Rule").items()
        for target in spec["Properties"]["Targets"]
    ]


def test_every_rule_target_has_a_dead_letter_queue_and_a_retry_policy(template):
    # Given every target of every EventBridge rule
    targets = rule_targets(template)
    assert targets

    for rule, target in targets:
        # When its delivery settings are read
        dead_letter = named(target.get("DeadLetterConfig", {}).get("Arn"))
        retry = target.get("RetryPolicy", {})

        # Then an event it could not deliver goes to an SQS queue of the stack...
        assert dead_letter, f"{rule}: {target['Id']} has no dead-letter queue"
        assert template.resources[dead_letter]["Type"] == "AWS::SQS::Queue"
        assert dead_letter != named(target["Arn"])
        # ...after retries bounded within EventBridge's limits
        assert 0 <= int(retry["MaximumRetryAttempts"]) <= 185, rule
        assert 60 <= int(retry["MaximumEventAgeInSeconds"]) <= 86400, rule


def test_eventbridge_may_send_to_a_queue_only_from_the_rules_that_use_it(template):
    # Given the queues the rules deliver to, as targets or as dead-letter queues
    users: dict[str, set[str]] = {}
    for rule, target in rule_targets(template):
        for queue in (named(target["Arn"]), named(target.get("DeadLetterConfig", {}).get("Arn"))):
            if queue:
                users.setdefault(queue, set()).add(rule)
    policies = {
        named(spec["Properties"]["Queues"][0]): spec["Properties"]["PolicyDocument"]["Statement"]
        for spec in template.of_type("AWS::SQS::QueuePolicy").values()
    }

    for queue, rules in users.items():
        # When the queue's policy is read
        statements = [
            s
            for s in policies.get(queue, [])
            if s["Principal"] == {"Service": "events.amazonaws.com"}
            and s["Action"] == "sqs:SendMessage"
            and s["Effect"] == "Allow"
        ]
        sources = {
            named(arn)
            for s in statements
            for arn in as_list(s["Condition"]["ArnEquals"]["aws:SourceArn"])
        }

        # Then EventBridge may send to it, on behalf of exactly those rules
        assert statements, f"EventBridge may not send to {queue}"
        assert sources == rules, f"{queue}: allowed for {sources}, used by {rules}"


def test_each_rule_has_a_failed_invocations_alarm(template):
    # Given the rules, and the alarms on EventBridge's FailedInvocations metric
    rules = template.of_type("AWS::Events::Rule")
    alarms = [
        spec["Properties"]
        for spec in template.of_type("AWS::CloudWatch::Alarm").values()
        if spec["Properties"].get("Namespace") == "AWS/Events"
        and spec["Properties"].get("MetricName") == "FailedInvocations"
    ]

    for rule, spec in rules.items():
        # When the alarms whose RuleName dimension is that rule are found
        watching = []
        for alarm in alarms:
            dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
            if mentions(dimensions.get("RuleName"), rule):
                watching.append(dimensions)

        # Then there is one, with the rule's bus as EventBusName when the bus is not the default
        # one (the metric of a custom bus's rule carries both dimensions)
        assert len(watching) == 1, f"{len(watching)} alarms watch {rule}"
        (dimensions,) = watching
        bus = spec["Properties"].get("EventBusName")
        if bus is None:
            assert set(dimensions) == {"RuleName"}, rule
        else:
            assert set(dimensions) == {"EventBusName", "RuleName"}, rule
            assert dimensions["EventBusName"] == bus
            # Ref of a custom bus's rule is "bus|rule", not the rule's name
            assert named(dimensions["RuleName"]) is None, rule


def dead_letter_queues(template: Template) -> set[str]:
    """Queues that hold what failed elsewhere: redrive targets, rule targets' dead-letter
    queues, and event source mappings' on-failure destinations."""
    queues: set[str | None] = set()
    for spec in template.of_type("AWS::SQS::Queue").values():
        redrive = spec["Properties"].get("RedrivePolicy")
        if redrive:
            queues.add(named(redrive["deadLetterTargetArn"]))
    for _, target in rule_targets(template):
        queues.add(named(target.get("DeadLetterConfig", {}).get("Arn")))
    for trigger in template.stream_triggers():
        queues.add(trigger.on_failure_queue)
    return {q for q in queues if q}


def test_every_dead_letter_queue_keeps_messages_14_days_encrypted_and_alarmed(template):
    # Given every dead-letter queue of the template
    queues = dead_letter_queues(template)
    assert "EventDeliveryDeadLetterQueue" in queues
    alarms = [spec["Properties"] for spec in template.of_type("AWS::CloudWatch::Alarm").values()]

    for queue in queues:
        # When its settings and the alarms on its depth are read
        props = template.resources[queue]["Properties"]
        watching = [
            alarm
            for alarm in alarms
            if alarm.get("Namespace") == "AWS/SQS"
            and alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
            in alarm.get("Dimensions", [])
        ]

        # Then it keeps a message as long as SQS allows, encrypted at rest...
        assert int(props["MessageRetentionPeriod"]) == 1209600, queue
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, queue
        # ...and one alarm fires as soon as a message is in it
        assert len(watching) == 1, f"{len(watching)} alarms watch {queue}"
        (alarm,) = watching
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Threshold"] == 0


# --- throttling and concurrency -------------------------------------------------------------------


def test_the_public_callback_route_has_its_own_lower_throttle(template, translated):
    # Given the HTTP API's public routes (the provider callbacks, authorized by a token in the URL)
    (api,) = template.of_type("AWS::Serverless::HttpApi").values()
    props = api["Properties"]
    public = [route for route in template.routes() if not route.authorized]
    assert [(r.method, r.path) for r in public] == [("POST", "/v1/callbacks/{provider}/{token}")]
    default = props["DefaultRouteSettings"]

    for route in public:
        # When its route settings are read, by its route key ("METHOD /path")
        key = f"{route.method} {route.path}"
        own = props["RouteSettings"][key]

        # Then its burst and rate limits are below the stage's default
        assert own["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]
        assert own["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
        assert own["ThrottlingRateLimit"] <= own["ThrottlingBurstLimit"]
        # And SAM puts them on the stage, under a key that is a route of the API it defines
        (stage,) = of_type(translated, "AWS::ApiGatewayV2::Stage").values()
        assert stage["Properties"]["RouteSettings"][key] == own
        (cfn_api,) = of_type(translated, "AWS::ApiGatewayV2::Api").values()
        assert route.method.lower() in cfn_api["Properties"]["Body"]["paths"][route.path]


def test_every_sqs_event_source_caps_its_concurrency(template, translated):
    # Given every SQS event source of the template's functions
    events = [
        (name, event["Properties"])
        for name, spec in template.of_type("AWS::Serverless::Function").items()
        for event in spec["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert len(events) == len(template.queue_triggers()) >= 4

    for function, props in events:
        # When its maximum concurrency is read (a parameter's default, if it names one)
        value = props["ScalingConfig"]["MaximumConcurrency"]
        parameter = template.body["Parameters"].get(named(value) or "")

        # Then it is within what Lambda accepts (2 to 1000), and so is any value the parameter
        # allows, so that a burst of messages cannot take all the account's concurrency
        assert 2 <= int(parameter_value(template, value)) <= 1000, function
        if parameter is not None:
            assert parameter["Type"] == "Number"
            assert int(parameter["MinValue"]) >= 2 and int(parameter["MaxValue"]) <= 1000

    # And SAM passes it to every SQS event source mapping
    mappings = [
        m["Properties"]
        for m in of_type(translated, "AWS::Lambda::EventSourceMapping").values()
        if template.resources.get(str(named(m["Properties"]["EventSourceArn"])), {}).get("Type")
        == "AWS::SQS::Queue"
    ]
    assert len(mappings) == len(events)
    assert all("MaximumConcurrency" in m["ScalingConfig"] for m in mappings)


def test_no_function_reserves_concurrency_unless_asked(template):
    # Given every function, and the functions' globals
    functions = template.of_type("AWS::Serverless::Function")
    assert "ReservedConcurrentExecutions" not in template.body["Globals"]["Function"]
    # (the API function can have concurrency kept for it, so that other functions never starve it)
    assert "ReservedConcurrentExecutions" in functions["ApiFunction"]["Properties"]

    for name, spec in functions.items():
        reserved = spec["Properties"].get("ReservedConcurrentExecutions")
        if reserved is None:
            continue
        # When a function reserves concurrency
        condition, value, otherwise = reserved["Fn::If"]
        parameter = named(value)

        # Then only when a parameter asks for it: by default (0) nothing is reserved, since
        # Lambda refuses a reservation that leaves fewer than 100 unreserved and a new account's
        # quota can be 10
        assert otherwise == {"Ref": "AWS::NoValue"}, name
        assert template.parameter_defaults()[parameter] == 0, name
        assert not holds(template, condition), name
        assert holds(template, condition, **{parameter: 50}), name


# --- recursive loops ------------------------------------------------------------------------------


def queues_sent_to(template: Template, function: dict[str, Any]) -> set[str]:
    """The queues a function's policies let it send to: SAM's SQSSendMessagePolicy names the
    queue, an inline statement allowing sqs:SendMessage names it in its Resource."""
    queues = set(template.of_type("AWS::SQS::Queue"))
    found: set[str] = set()
    for policy in function["Properties"].get("Policies", []):
        if not isinstance(policy, dict):
            continue
        if "SQSSendMessagePolicy" in policy:
            found.add(str(named(policy["SQSSendMessagePolicy"]["QueueName"])))
        for statement in policy.get("Statement", []):
            actions = [a.lower() for a in as_list(statement.get("Action", []))]
            if statement.get("Effect") != "Allow" or not any(
                fnmatch.fnmatchcase("sqs:sendmessage", a) for a in actions
            ):
                continue
            for queue in queues:
                if mentions(statement.get("Resource"), queue):
                    found.add(queue)
    return found & queues


def test_functions_that_feed_their_own_trigger_queue_allow_recursive_loops(template, translated):
    # Given every function, the queues it may send to and the queues that trigger it
    triggers: dict[str, set[str]] = {}
    for trigger in template.queue_triggers():
        triggers.setdefault(trigger.function, set()).add(trigger.queue)
    looping = []

    for name, spec in template.of_type("AWS::Serverless::Function").items():
        # When it can send to a queue that triggers itself (a retry or a later slot, queued again)
        loop = queues_sent_to(template, spec) & triggers.get(name, set())
        setting = spec["Properties"].get("RecursiveLoop")

        # Then it lets Lambda run that loop past the ~16 invocations after which recursive loop
        # detection would stop it; and no other function turns the detection off
        if loop:
            looping.append(name)
            assert setting == "Allow", f"{name} queues to {loop}, which triggers it"
            # (and SAM passes it on to the Lambda function)
            assert translated["Resources"][name]["Properties"]["RecursiveLoop"] == "Allow"
        else:
            assert setting in (None, "Terminate"), f"{name} has no loop to allow"
    assert looping


# --- the provider simulator (Simulate=true) -------------------------------------------------------

SIMULATOR_URL = "https://abc123.lambda-url.us-east-1.on.aws/"


def simulator_resources(template: Template) -> set[str]:
    """The simulator's own resources, and every resource that refers to one of them."""
    own = {name for name in template.resources if name.startswith("ProviderSimulator")}
    return own | {
        name
        for name, spec in template.resources.items()
        if any(mentions(spec.get("Properties", {}), resource) for resource in own)
    }


def test_simulate_is_off_unless_asked(template):
    parameter = template.body["Parameters"]["Simulate"]
    assert parameter["Default"] == "false"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    assert not holds(template, "Simulated")
    assert holds(template, "Simulated", Simulate="true")


def test_every_simulator_resource_exists_only_with_simulate(template, translated):
    # Given the simulator's resources, those SAM generates for its function included
    resources = simulator_resources(template)
    assert {"ProviderSimulatorFunction", "ProviderSimulatorTable"} <= resources
    generated = {name for name in translated["Resources"] if name.startswith("ProviderSimulator")}
    assert {"ProviderSimulatorFunctionUrl", "ProviderSimulatorFunctionRole"} <= generated

    # Then each one is created only under the Simulated condition, and so is its output
    for name in resources:
        assert template.resources[name].get("Condition") == "Simulated", name
    for name in generated:
        assert translated["Resources"][name].get("Condition") == "Simulated", name
    assert template.body["Outputs"]["ProviderSimulatorUrl"]["Condition"] == "Simulated"
    # and nothing else refers to them but through that condition (the Globals' !If)
    unconditional = [
        name
        for name, spec in template.resources.items()
        if name not in resources and mentions(spec, "ProviderSimulatorFunctionUrl")
    ]
    assert unconditional == []


def test_the_simulator_is_a_public_function_url_answering_payload_2_0(template):
    props = template.resources["ProviderSimulatorFunction"]["Properties"]
    assert props["FunctionUrlConfig"] == {"AuthType": "NONE"}
    assert template.body["Outputs"]["ProviderSimulatorUrl"]["Value"] == {
        "Fn::GetAtt": ["ProviderSimulatorFunctionUrl", "FunctionUrl"]
    }
    # its code is offline/simulator's, packaged beside the handler by its own Makefile
    assert props["CodeUri"] == "functions/provider_simulator/"
    metadata = template.resources["ProviderSimulatorFunction"]["Metadata"]
    assert metadata["ProjectRootDirectory"] == "offline"
    assert (ROOT / metadata["ContextPath"] / "Makefile").is_file()


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_providers_point_at_the_simulator_only_with_simulate(template, provider):
    # Given the template resolved as the offline stack resolves it, with the simulator's URL
    resolved = copy.deepcopy(template)
    resolved.attributes[("ProviderSimulatorFunctionUrl", "FunctionUrl")] = SIMULATOR_URL
    resolved.names.update({name: name for name in template.resources})
    prefix = provider.upper()
    defaults = template.parameter_defaults()

    # When every function's environment is read with Simulate false, then true
    for function in template.of_type("AWS::Serverless::Function"):
        if function == "ProviderSimulatorFunction":
            continue
        off = resolved.function_environment(function, {**defaults, "Simulate": "false"})
        on = resolved.function_environment(function, {**defaults, "Simulate": "true"})

        # Then off, the provider is the real one; on, it is the simulator under the provider's
        # prefix, and the simulator's origin is allowed for its downloads
        assert off[f"{prefix}_BASE_URL"] == defaults[f"{provider.capitalize()}BaseUrl"]
        assert SIMULATOR_URL not in off[f"{prefix}_DOWNLOAD_ORIGINS"]
        assert on[f"{prefix}_BASE_URL"] == f"{SIMULATOR_URL}{provider}"
        origins = on[f"{prefix}_DOWNLOAD_ORIGINS"].split(",")
        assert origins[0] == SIMULATOR_URL
        assert origins[1:] == off[f"{prefix}_DOWNLOAD_ORIGINS"].split(","), function


def test_the_simulator_does_not_depend_on_its_own_url(template):
    # Globals give every function the simulator's URL; the simulator's own variables replace them
    own = template.resources["ProviderSimulatorFunction"]["Properties"]["Environment"]
    globals_ = template.body["Globals"]["Function"]["Environment"]["Variables"]
    referring = {k for k, v in globals_.items() if mentions(v, "ProviderSimulatorFunctionUrl")}
    assert referring
    assert {k: own["Variables"].get(k) for k in referring} == dict.fromkeys(referring, "")


def test_the_simulator_may_touch_only_its_table_itself_and_the_provider_keys(template):
    props = template.resources["ProviderSimulatorFunction"]["Properties"]
    statements = [s for p in props["Policies"] for s in p.get("Statement", [])]
    grants = {
        action: statement["Resource"]
        for statement in statements
        for action in as_list(statement["Action"])
    }
    assert grants == {
        "dynamodb:GetItem": {"Fn::GetAtt": ["ProviderSimulatorTable", "Arn"]},
        "dynamodb:PutItem": {"Fn::GetAtt": ["ProviderSimulatorTable", "Arn"]},
        "dynamodb:UpdateItem": {"Fn::GetAtt": ["ProviderSimulatorTable", "Arn"]},
        "dynamodb:Scan": {"Fn::GetAtt": ["ProviderSimulatorTable", "Arn"]},
        "lambda:InvokeFunction": grants["lambda:InvokeFunction"],
    }
    # (itself: the ARN ends in the function's own name)
    own_name = props["FunctionName"]["Fn::Sub"]
    assert grants["lambda:InvokeFunction"]["Fn::Sub"].endswith(f":function:{own_name}")
    templates = [p for p in props["Policies"] if "Statement" not in p]
    assert templates == [
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "ProviderKeysSecret"}}}
    ]


def test_the_offline_stack_creates_the_simulator_only_with_simulate(template):
    off = template.deployed_with({"Simulate": "false"})
    on = template.deployed_with({"Simulate": "true"})
    assert not simulator_resources(template) & set(off.resources)
    assert simulator_resources(template) <= set(on.resources)
    assert set(off.resources) | simulator_resources(template) == set(on.resources)


# --- the webhook master key -----------------------------------------------------------------------

# Before each principal had a secret of its own, receivers verified with `whsec_` + this secret's
# value: it must not be what the principals' secrets are derived from.
FORMER_SHARED_SIGNING_SECRET = "WebhookSigningSecret"


def test_principals_webhook_secrets_derive_from_a_new_key_that_no_receiver_was_given(template):
    # Given the functions that derive principals' webhook secrets (they name the master key)
    functions = template.of_type("AWS::Serverless::Function")
    readers = {
        name: spec["Properties"]["Environment"]["Variables"]["WEBHOOK_MASTER_KEY_SECRET_ARN"]
        for name, spec in functions.items()
        if "WEBHOOK_MASTER_KEY_SECRET_ARN"
        in spec["Properties"].get("Environment", {}).get("Variables", {})
    }

    # Then they are the API (which shows a secret) and the webhook sender (which signs), and
    # both name one secret, a generated one of at least 64 letters and digits
    assert set(readers) == {"ApiFunction", "WebhookSenderFunction"}
    (master_key,) = {named(value) for value in readers.values()}
    spec = template.resources[master_key]
    assert spec["Type"] == "AWS::SecretsManager::Secret"
    generated = spec["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 64 and generated["ExcludePunctuation"] is True
    assert "SecretStringTemplate" not in generated  # the whole value is the key
    # And it is not the former shared signing secret, which is gone from the stack, so that
    # CloudFormation generates a new value (the old one's holders can derive nothing)
    assert master_key != FORMER_SHARED_SIGNING_SECRET
    assert FORMER_SHARED_SIGNING_SECRET not in template.resources
    assert not mentions(template.body["Resources"], FORMER_SHARED_SIGNING_SECRET)
    assert not mentions(template.body.get("Outputs", {}), FORMER_SHARED_SIGNING_SECRET)


def test_only_the_api_and_the_webhook_sender_may_read_the_webhook_master_key(template):
    # Given the functions granted GetSecretValue on the webhook master key
    granted = {
        name
        for name, spec in template.of_type("AWS::Serverless::Function").items()
        for policy in spec["Properties"].get("Policies", [])
        if named(policy.get("AWSSecretsManagerGetSecretValuePolicy", {}).get("SecretArn"))
        == "WebhookSecretsMasterKey"
    }

    # Then they are exactly the two that derive secrets, and no statement grants it otherwise
    assert granted == {"ApiFunction", "WebhookSenderFunction"}
    for name, spec in template.of_type("AWS::Serverless::Function").items():
        statements = [
            s for p in spec["Properties"].get("Policies", []) for s in p.get("Statement", [])
        ]
        assert not mentions(statements, "WebhookSecretsMasterKey"), name


# --- video retention ------------------------------------------------------------------------------


def test_a_video_retention_expires_every_video_and_manifest_and_their_records_alike(template):
    # Given the bucket's lifecycle rules and the copy worker's setting
    rules = template.resources["VideoBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    conditional = [r["Fn::If"] for r in rules if isinstance(r, dict) and "Fn::If" in r]
    ((condition, rule, otherwise),) = conditional
    copy_env = template.resources["CopyWorkerFunction"]["Properties"]["Environment"]["Variables"]

    # Then the expiration exists only with VideoRetentionDays above 0 (the default keeps all)
    assert template.parameter_defaults()["VideoRetentionDays"] == 0
    assert not holds(template, condition)
    assert holds(template, condition, VideoRetentionDays=30)
    assert otherwise == {"Ref": "AWS::NoValue"}
    # And it covers every key the videos and their manifests are written under, after N days
    assert rule["Status"] == "Enabled" and rule["Prefix"] == "videos/"
    assert named(rule["ExpirationInDays"]) == "VideoRetentionDays"
    video_key = "videos/vid_root/vid_child.mp4"
    assert video_key.startswith(rule["Prefix"])
    assert manifest_key_for(video_key).startswith(rule["Prefix"])
    # And the copy worker gives a completed task's record the same number of days
    assert named(copy_env["VIDEO_RETENTION_DAYS"]) == "VideoRetentionDays"
