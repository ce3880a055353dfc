"""Each function, and the state machine, calls AWS as its own role, as in AWS.

The roles come from the template as SAM transforms it (policy templates expanded, the managed
policies SAM attaches included), resolved against the provisioned resources. Every call a
function's boto3 client (PynamoDB's and Powertools' included) makes is turned into the IAM
action and resource ARN that AWS authorizes, and evaluated against the caller's role with moto's
IAM policy evaluator. A call the role does not allow fails as AWS fails it (AccessDenied, naming
the role, the action and the resource) and is logged loudly. Where AWS answers differently for
lack of a permission (HeadObject/GetObject on a missing key without s3:ListBucket is a 403, not a
404), the answer is AWS's.

Every decision is recorded (`USAGE`), for the least-privilege report.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from offline.template import ACCOUNT, REGION, Template

log = logging.getLogger("offline.iam")

# (principal, action, resource, allowed) -> calls, across this process's life.
USAGE: Counter[tuple[str, str, str, bool]] = Counter()
_usage_lock = threading.Lock()


@dataclass(frozen=True)
class Role:
    """A function's or the state machine's execution role: its policy documents, resolved."""

    principal: str  # logical id of the function or state machine
    name: str
    documents: tuple[dict[str, Any], ...]  # inline policies, from the template
    managed: tuple[dict[str, Any], ...]  # the AWS managed policies SAM attaches

    @property
    def session_arn(self) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.name}/{self.principal}"

    @cached_property
    def _policies(self) -> tuple[Any, ...]:
        from moto.iam.access_control import IAMPolicy

        return tuple(IAMPolicy(json.dumps(d)) for d in (*self.documents, *self.managed))

    def allows(self, action: str, resource: str) -> bool:
        """IAM's rule for one identity's policies: an explicit Deny wins, else any Allow."""
        return _decide(self._policies, action, resource)

    def statements(self) -> Iterator[dict[str, Any]]:
        """The inline policies' statements (what the template grants of its own accord)."""
        for document in self.documents:
            statements = document["Statement"]
            yield from statements if isinstance(statements, list) else [statements]


def _decide(policies: tuple[Any, ...], action: str, resource: str) -> bool:
    from moto.iam.access_control import PermissionResult

    allowed = False
    for policy in policies:
        result = policy.is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        allowed = allowed or result == PermissionResult.PERMITTED
    return allowed


def roles_from_template(template: Template) -> dict[str, Role]:
    """The execution role of each function and state machine, by the resource's logical id.
    Intrinsics resolve against `template`'s provisioned names, so call after provisioning."""
    transformed = _transformed(json.dumps(template.body, sort_keys=True))
    resources = transformed["Resources"]
    roles = {}
    for name, resource in resources.items():
        role_ref = resource.get("Properties", {}).get("Role") or resource.get("Properties", {}).get(
            "RoleArn"
        )
        if resource["Type"] not in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"):
            continue
        role_id = role_ref["Fn::GetAtt"][0]
        props = resources[role_id]["Properties"]
        parameters = template.parameter_defaults()
        documents = tuple(
            template.resolve(policy["PolicyDocument"], parameters)
            for policy in props.get("Policies", [])
        )
        managed = tuple(
            _managed_policy(str(template.resolve(arn, parameters)))
            for arn in props.get("ManagedPolicyArns", [])
        )
        roles[name] = Role(name, role_id, documents, managed)
    return roles


@lru_cache(maxsize=4)
def _transformed(body: str) -> dict[str, Any]:
    """The template as SAM deploys it (local code locations replaced, as `sam validate` does)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = json.loads(body)
    for resource in document["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://local/code.zip"
        if "DefinitionUri" in props:
            del props["DefinitionUri"]
            props["Definition"] = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    return translator.translate(  # type: ignore[no-any-return]
        document, parameter_values={}, get_managed_policy_map=_managed_policy_arns
    )


def _managed_policy_arns() -> dict[str, str]:
    """SAM's managed-policy map, from moto's copy of the AWS managed policies."""
    return {name: f"arn:aws:iam::aws:policy/{name}" for name in _managed_policy_data()}


@lru_cache(maxsize=1)
def _managed_policy_data() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)  # type: ignore[no-any-return]


def _managed_policy(arn: str) -> dict[str, Any]:
    name = arn.rsplit("/", 1)[-1]
    return copy.deepcopy(_managed_policy_data()[name]["Document"])


# --------------------------------------------------------------------- what AWS authorizes


class UnmappedCall(Exception):
    """A call this module cannot translate into IAM terms: map it, rather than let it through."""


def authorizations(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs AWS authorizes for one API call."""
    rule = _RULES.get(service)
    pairs = rule(operation, params) if rule else None
    if pairs is None:
        raise UnmappedCall(
            f"offline IAM: no authorization rule for {service}:{operation}"
            "; add one to offline/iam.py"
        )
    return pairs


def _dynamodb(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    def table(name: str) -> str:
        return (
            name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        )

    if operation in ("TransactWriteItems", "TransactGetItems"):
        actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
        actions.update(ConditionCheck="ConditionCheckItem", Get="GetItem")
        return [
            (f"dynamodb:{actions[kind]}", table(item[kind]["TableName"]))
            for item in params["TransactItems"]
            for kind in item
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", table(name)) for name in params["RequestItems"]]
    if operation in ("DescribeStream", "GetShardIterator"):
        return [(f"dynamodb:{operation}", params["StreamArn"])]
    if "TableName" not in params:
        return None
    resource = table(params["TableName"])
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", resource)]


_S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "DeleteObject": "s3:DeleteObject",
}
_S3_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}


def _s3(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    if operation in _S3_OBJECT_ACTIONS:
        return [(_S3_OBJECT_ACTIONS[operation], f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
    if operation in _S3_BUCKET_ACTIONS:
        return [(_S3_BUCKET_ACTIONS[operation], f"arn:aws:s3:::{params['Bucket']}")]
    return None


# A batch is authorized as its single-message action.
_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    if "QueueUrl" in params:
        name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
    elif "QueueName" in params:
        name = params["QueueName"]
    else:
        return None
    action = _SQS_ACTIONS.get(operation, operation)
    return [(f"sqs:{action}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]


def _states(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    for key in ("stateMachineArn", "executionArn"):
        if key in params:
            return [(f"states:{operation}", params[key])]
    return None


def _secretsmanager(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    if "SecretId" not in params:
        return None
    secret = params["SecretId"]
    if not secret.startswith("arn:"):  # AWS matches policies against the ARN, not the name
        secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}"
    return [(f"secretsmanager:{operation}", secret)]


def _events(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    if operation != "PutEvents":
        return None
    buses = {entry.get("EventBusName") or "default" for entry in params["Entries"]}
    return [
        (
            "events:PutEvents",
            bus if bus.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}",
        )
        for bus in sorted(buses)
    ]


def _lambda(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    if operation != "Invoke":
        return None
    function = params["FunctionName"]
    if not function.startswith("arn:"):
        function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    return [("lambda:InvokeFunction", function)]


def _sns(operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
    return [(f"sns:{operation}", params["TopicArn"])] if "TopicArn" in params else None


_RULES: dict[str, Callable[[str, dict[str, Any]], list[tuple[str, str]] | None]] = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sqs": _sqs,
    "states": _states,
    "secretsmanager": _secretsmanager,
    "events": _events,
    "lambda": _lambda,
    "sns": _sns,
}


# ------------------------------------------------------------------------------ enforcement


def access_denied(service: str, operation: str, role: Role, action: str, resource: str) -> Any:
    from botocore.exceptions import ClientError

    code, status = {
        "s3": ("AccessDenied", 403),
        "sqs": ("AccessDenied", 403),
        "dynamodb": ("AccessDeniedException", 400),
    }.get(service, ("AccessDeniedException", 403))
    message = (
        f"User: {role.session_arn} is not authorized to perform: {action} on resource: "
        f"{resource} because no identity-based policy allows the {action} action"
    )
    if operation == "HeadObject":  # a HEAD response has no body: S3 says only 403 Forbidden
        code = "403"
    log.error(
        "offline IAM: %s denied %s on %s (%s:%s)",
        role.principal,
        action,
        resource,
        service,
        operation,
    )
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


def authorize(role: Role, service: str, operation: str, params: dict[str, Any]) -> None:
    """Raises AWS's AccessDenied unless `role` allows every action the call needs."""
    for action, resource in authorizations(service, operation, params):
        allowed = role.allows(action, resource)
        with _usage_lock:
            USAGE[role.principal, action, resource, allowed] += 1
        if not allowed:
            raise access_denied(service, operation, role, action, resource)


def as_aws_answers_missing_keys(
    role: Role, service: str, operation: str, params: dict[str, Any], exc: Exception
) -> Exception:
    """S3 answers a read of a missing key with 404 only to a caller allowed s3:ListBucket on
    the bucket; to any other caller, with 403 Access Denied."""
    from botocore.exceptions import ClientError

    if service != "s3" or operation not in ("HeadObject", "GetObject", "GetObjectTagging"):
        return exc
    if not isinstance(exc, ClientError):
        return exc
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status != 404 and error.get("Code") not in ("NoSuchKey", "404", "NotFound"):
        return exc
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    allowed = role.allows("s3:ListBucket", bucket)
    with _usage_lock:
        USAGE[role.principal, "s3:ListBucket", bucket, allowed] += 1
    if allowed:
        return exc
    return access_denied(service, operation, role, "s3:ListBucket", bucket)  # type: ignore[no-any-return]


USAGE_FILE_VARIABLE = "VEO_RELAY_IAM_USAGE"


def write_usage(roles: dict[str, Role]) -> None:
    """Appends this process's decisions and the roles' grants to the file named by
    VEO_RELAY_IAM_USAGE, if set (`make least-privilege` sets it for the test run)."""
    import os

    path = os.environ.get(USAGE_FILE_VARIABLE)
    if not path:
        return
    with _usage_lock:
        used = [
            {"principal": p, "action": a, "resource": r, "allowed": ok, "calls": n}
            for (p, a, r, ok), n in sorted(USAGE.items())
        ]
    grants = [
        {"principal": role.principal, "action": action, "resource": resource}
        for role in roles.values()
        for statement in role.statements()
        if statement.get("Effect") == "Allow"
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    ]
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"used": used, "granted": grants}) + "\n")


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
