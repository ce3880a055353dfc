"""template.yaml as data: the single source of the tables, queues, routes, functions and the state
machine that the offline stack and the tests create."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# The pseudo parameters as the offline stack answers them.
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "veo-relay-local",
}


class _CfnLoader(yaml.SafeLoader):
    """Reads the short-form intrinsic functions (!Ref, !GetAtt, ...) as their long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    authorized: bool

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.path == "$default":
            return {}  # API Gateway's catch-all: routes() puts it last
        if self.method not in (method, "ANY"):
            return None
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class QueueTrigger:
    function: str
    queue: str
    batch_size: int


@dataclass(frozen=True)
class ScheduleTrigger:
    """A Schedule event: the function, run every `rate_seconds` (EventBridge's rate(...))."""

    function: str
    event: str  # the event's name, which SAM names the rule after
    rate_seconds: int


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """The period of an EventBridge rate expression; a cron expression is not read here."""
    found = _RATE.fullmatch(expression.strip())
    if found is None:
        raise ValueError(f"not a rate expression: {expression!r}")
    return int(found[1]) * _RATE_UNIT_SECONDS[found[2].removesuffix("s")]


@dataclass(frozen=True)
class StreamTrigger:
    """A DynamoDB stream event source: the function, its table and the mapping's settings."""

    function: str
    table: str
    batch_size: int
    maximum_retry_attempts: int
    filter_patterns: tuple[str, ...]  # Lambda event filter patterns (EventBridge syntax)
    on_failure_queue: str | None  # logical id of the on-failure destination


@dataclass
class Template:
    """Resources and settings of template.yaml; `resolve` turns intrinsics into local values."""

    body: dict[str, Any]
    names: dict[str, str] = field(default_factory=dict)  # Ref of each resource, once provisioned
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)  # GetAtt values

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def parameter_defaults(self) -> dict[str, Any]:
        return {k: v.get("Default") for k, v in self.body.get("Parameters", {}).items()}

    def holds(self, condition: str, parameters: dict[str, Any]) -> bool:
        """Whether the template's `condition` holds for `parameters` (others at their defaults)."""
        values = {**self.parameter_defaults(), **parameters}

        def evaluate(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            ((key, arg),) = value.items()
            if key == "Ref":
                return values[arg]
            if key == "Condition":
                return evaluate(self.body["Conditions"][arg])
            if key == "Fn::Equals":
                left, right = (evaluate(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not evaluate(arg[0])
            if key == "Fn::And":
                return all(evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(evaluate(a) for a in arg)
            raise ValueError(f"cannot evaluate {key} in condition {condition}")

        return bool(evaluate(self.body["Conditions"][condition]))

    def deployed_with(self, parameters: dict[str, Any]) -> Template:
        """The template as CloudFormation would create it for `parameters`: without the resources
        whose Condition does not hold."""
        resources = {
            name: spec
            for name, spec in self.resources.items()
            if "Condition" not in spec or self.holds(spec["Condition"], parameters)
        }
        return Template({**self.body, "Resources": resources})

    def routes(self) -> list[Route]:
        api = self.of_type("AWS::Serverless::HttpApi")
        default_auth = {
            name: spec["Properties"].get("Auth", {}).get("DefaultAuthorizer")
            for name, spec in api.items()
        }
        routes = []
        for name, spec in self.of_type("AWS::Serverless::Function").items():
            for event in spec["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                props = event["Properties"]
                api_id = props["ApiId"]["Ref"]
                authorizer = props.get("Auth", {}).get("Authorizer", default_auth[api_id])
                routes.append(
                    Route(props["Method"].upper(), props["Path"], name, authorizer == "AWS_IAM")
                )
        # As in API Gateway: the catch-all is tried only when no other route matches.
        return sorted(routes, key=lambda route: route.path == "$default")

    def queue_triggers(self) -> list[QueueTrigger]:
        triggers = []
        for name, spec in self.of_type("AWS::Serverless::Function").items():
            for event in spec["Properties"].get("Events", {}).values():
                if event["Type"] == "SQS":
                    props = event["Properties"]
                    queue = props["Queue"]["Fn::GetAtt"][0]
                    triggers.append(QueueTrigger(name, queue, int(props.get("BatchSize", 10))))
        return triggers

    def schedule_triggers(self) -> list[ScheduleTrigger]:
        return [
            ScheduleTrigger(name, event_name, rate_seconds(event["Properties"]["Schedule"]))
            for name, spec in self.of_type("AWS::Serverless::Function").items()
            for event_name, event in spec["Properties"].get("Events", {}).items()
            if event["Type"] == "Schedule"
        ]

    def stream_triggers(self) -> list[StreamTrigger]:
        triggers = []
        for name, spec in self.of_type("AWS::Serverless::Function").items():
            for event in spec["Properties"].get("Events", {}).values():
                if event["Type"] != "DynamoDB":
                    continue
                props = event["Properties"]
                filters = props.get("FilterCriteria", {}).get("Filters", [])
                destination = props.get("DestinationConfig", {}).get("OnFailure", {})
                triggers.append(
                    StreamTrigger(
                        function=name,
                        table=props["Stream"]["Fn::GetAtt"][0],
                        batch_size=int(props.get("BatchSize", 100)),
                        maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                        filter_patterns=tuple(f["Pattern"] for f in filters),
                        on_failure_queue=(
                            destination["Destination"]["Fn::GetAtt"][0] if destination else None
                        ),
                    )
                )
        return triggers

    def function_environment(self, function: str, overrides: dict[str, Any]) -> dict[str, str]:
        """Globals plus the function's own variables, resolved, parameters taken from `overrides`
        or their defaults."""
        variables = dict(self.body["Globals"]["Function"]["Environment"]["Variables"])
        own = self.resources[function]["Properties"].get("Environment", {}).get("Variables", {})
        variables.update(own)
        return {k: str(self.resolve(v, overrides)) for k, v in variables.items()}

    def resolve(self, value: Any, parameters: dict[str, Any]) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            intrinsic = _INTRINSIC_FUNCTIONS.get(key)
            if intrinsic is not None:
                return intrinsic(self, arg, parameters)
        if isinstance(value, list):
            return [self.resolve(item, parameters) for item in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, parameters) for k, v in value.items()}
        return value

    def _ref(self, name: str, parameters: dict[str, Any]) -> Any:
        if name in parameters:
            value = parameters[name]
            kind = self.body.get("Parameters", {}).get(name, {}).get("Type")
            if kind == "CommaDelimitedList" and isinstance(value, str):
                return [item.strip() for item in value.split(",")]
            return value
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        return self.names[name]

    def _get_att(self, arg: list[str], parameters: dict[str, Any]) -> Any:
        return self.attributes[(arg[0], arg[1])]

    def _if(self, arg: list[Any], parameters: dict[str, Any]) -> Any:
        condition, if_true, if_false = arg
        chosen = if_true if self.holds(condition, parameters) else if_false
        return self.resolve(chosen, parameters)

    def _join(self, arg: list[Any], parameters: dict[str, Any]) -> str:
        separator, items = arg
        return separator.join(str(i) for i in self.resolve(items, parameters))

    def _sub(self, arg: str | list[Any], parameters: dict[str, Any]) -> str:
        text, variables = arg if isinstance(arg, list) else (arg, {})
        values = {k: self.resolve(v, parameters) for k, v in variables.items()}
        return re.sub(
            r"\$\{([^}]+)\}",
            lambda m: str(
                values[m.group(1)]
                if m.group(1) in values
                else self._sub_var(m.group(1), parameters)
            ),
            text,
        )

    def _sub_var(self, name: str, parameters: dict[str, Any]) -> Any:
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.attributes[(resource, attribute)]
        return self.resolve({"Ref": name}, parameters)

    def state_machine_definition(self, name: str, parameters: dict[str, Any]) -> str:
        props = self.resources[name]["Properties"]
        text = (ROOT / props["DefinitionUri"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            text = text.replace("${" + key + "}", str(self.resolve(value, parameters)))
        json.loads(text)  # a definition that is not JSON after substitution is a template bug
        return text


# The intrinsic functions the template uses, by their key in a one-key mapping.
_INTRINSIC_FUNCTIONS: dict[str, Callable[[Template, Any, dict[str, Any]], Any]] = {
    "Ref": Template._ref,
    "Fn::GetAtt": Template._get_att,
    "Fn::If": Template._if,
    "Fn::Join": Template._join,
    "Fn::Sub": Template._sub,
}


@lru_cache(maxsize=1)
def _template_body() -> str:
    return TEMPLATE_PATH.read_text()


def load_template() -> Template:
    return Template(yaml.load(_template_body(), Loader=_CfnLoader))
