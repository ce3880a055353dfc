"""The embedded AWS: moto configured to run state machines and to hand Lambda invocations to our
handlers, and the template's resources created in it."""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Callable
from typing import Any

from offline.template import ACCOUNT, REGION, Template

__all__ = [
    "ACCOUNT",
    "REGION",
    "configure_moto",
    "join_asynchronous_invocations",
    "provision",
    "store_provider_keys",
]

Invoker = Callable[[str, dict[str, Any]], Any]

# The threads of asynchronous invocations (InvocationType=Event) until each has run its handler.
_asynchronous: set[threading.Thread] = set()
_asynchronous_lock = threading.Lock()


def configure_moto(invoke: Invoker) -> None:
    """State machines really execute, and their Lambda tasks run `invoke(function, event)`."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False

    def dispatch(
        backend: Any,
        function_name: str,
        qualifier: Any,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        event = json.loads(body) if body else {}
        if headers.get("X-Amz-Invocation-Type") == "Event":
            # Asynchronous, as in Lambda: the caller has its 202 at once (moto answers it).
            thread = threading.Thread(
                target=_invoke_quietly, args=(invoke, function_name, event), daemon=True
            )
            with _asynchronous_lock:
                _asynchronous.add(thread)
            thread.start()
            return b""
        try:
            result = invoke(function_name, event)
        except (
            Exception
        ) as exc:  # a handler's error is the invocation's FunctionError, as in Lambda
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc)[-3:],
                }
            ).encode()
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = dispatch  # type: ignore[assignment,method-assign]
    _make_dynamodb_items_atomic()
    _check_dynamodb_key_sizes()
    _share_botocore_loader()
    _share_pynamodb_clients()
    _speed_up_state_machines()


def _invoke_quietly(invoke: Invoker, function_name: str, event: Any) -> None:
    """An asynchronous invocation: its error is Lambda's to log, nobody waits for it."""
    try:
        invoke(function_name, event)
    except Exception:
        logging.getLogger(__name__).exception("asynchronous invocation of %s", function_name)
    finally:
        with _asynchronous_lock:
            _asynchronous.discard(threading.current_thread())


def join_asynchronous_invocations(timeout: float) -> bool:
    """Waits up to `timeout` for the asynchronous invocations under way; whether there were any."""
    with _asynchronous_lock:
        running = list(_asynchronous)
    deadline = time.monotonic() + timeout
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    return bool(running)


def _speed_up_state_machines() -> None:
    """Three costs of moto's interpreter that grow with every execution (with 200 executions at
    once they were nearly half of this process's time): a new botocore client for every Task
    state, a new JSONPath parser for every path, and the definition parsed again each time."""
    import moto.stepfunctions.parser.asl.component.common.path.result_path as result_path
    import moto.stepfunctions.parser.asl.utils.boto_client as boto_client
    import moto.stepfunctions.parser.asl.utils.json_path as json_path
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    if getattr(boto_client, "_veo_relay_shared", False):
        return
    build = boto_client.boto_client_for
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def shared_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        from offline.isolation import tag_state_machine_client

        with lock:
            if (region, service) not in clients:
                # Its calls are the state machine's, made as the state machine's role.
                client = build(region, service, state_credentials)
                clients[region, service] = tag_state_machine_client(client)
            return clients[region, service]

    # Clients are thread-safe, and these all have the same settings: one per region and service.
    boto_client.boto_client_for = shared_client_for
    # A JSONPath parser is built (yacc tables and all) for every path evaluated; an
    # expression, once parsed, is immutable, so each path is parsed once.
    for module in (json_path, result_path):
        module.parse = functools.lru_cache(maxsize=1024)(module.parse)  # type: ignore[attr-defined]
    # Each execution parsed the definition again; the parsed program holds no execution's state
    # (that lives in its Environment), so executions of one definition share it.
    parse_definition = ExecutionWorker._get_evaluation_entrypoint
    programs: dict[str, Any] = {}

    def parsed_once(worker: ExecutionWorker) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        with lock:
            if definition not in programs:
                programs[definition] = parse_definition(worker)
            return programs[definition]

    ExecutionWorker._get_evaluation_entrypoint = parsed_once  # type: ignore[method-assign]
    # The interpreter's modules imported the name itself; those loaded already are rebound too.
    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is build:
            module.boto_client_for = shared_client_for  # type: ignore[attr-defined]
    boto_client._veo_relay_shared = True  # type: ignore[attr-defined]


def _share_pynamodb_clients() -> None:
    """A PynamoDB connection builds its client on first use. In Lambda one thread does; here a
    burst of 200 requests on 200 threads all found it missing and each built its own, at once.
    The first builds it under a lock and the others wait for it and reuse it."""
    from pynamodb.connection.base import Connection

    if getattr(Connection, "_veo_relay_shared", False):
        return
    build = Connection.client.fget
    lock = threading.Lock()

    def client(self: Any) -> Any:
        if self._client is None:
            with lock:
                return build(self)  # type: ignore[misc]
        return build(self)  # type: ignore[misc]

    Connection.client = property(client)  # type: ignore[method-assign,assignment]
    Connection._veo_relay_shared = True  # type: ignore[attr-defined]


def _share_botocore_loader() -> None:
    """PynamoDB makes a botocore session per connection and thread, each loading the service
    models from disk again. A Lambda instance runs one thread; this process runs every function on
    a thread per request, and 200 concurrent creates spent most of their time parsing models.
    With one loader (its caches are read-only) they are read once."""
    import botocore.loaders
    import botocore.session
    import pynamodb.connection.base

    if getattr(pynamodb.connection.base, "_veo_relay_shared_loader", False):
        return
    loader = botocore.loaders.create_loader()

    def get_session() -> botocore.session.Session:
        session = botocore.session.get_session()
        session.register_component("data_loader", loader)
        return session

    pynamodb.connection.base.get_session = get_session
    pynamodb.connection.base._veo_relay_shared_loader = True  # type: ignore[attr-defined]


def _make_dynamodb_items_atomic() -> None:
    """DynamoDB applies each conditional write atomically; moto's backend takes no lock, so two
    threads could both pass one condition. Serialising its writes restores what the code relies
    on (one claim, one lease, one idempotency record). The handlers' writes are serialised too:
    UpdateItem's handler copies the item before the backend's update, which a concurrent write
    to the same item breaks ("dictionary changed size during iteration")."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoDBBackend, "_veo_relay_atomic", False):
        return
    lock = threading.RLock()
    writes = ("put_item", "update_item", "delete_item", "transact_write_items")
    # Reads too: a handler turning an item into its answer while another thread's write changes
    # it fails the same way, where DynamoDB answers a read with the item before or after a write.
    reads = ("get_item", "query", "scan", "batch_get_item", "transact_get_items")
    for owner in (DynamoDBBackend, DynamoHandler):
        for name in writes + reads:
            original = getattr(owner, name)

            def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                with lock:
                    return _original(self, *args, **kwargs)

            setattr(owner, name, locked)
    DynamoDBBackend._veo_relay_atomic = True  # type: ignore[attr-defined]


def _check_dynamodb_key_sizes() -> None:
    """DynamoDB refuses a key whose partition value is over 2,048 bytes (a sort key's over 1,024)
    with a ValidationException, on every request that names one; moto checks only the items
    PutItem writes. Its reads and updates check the key too, so that a test sees what AWS does."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_veo_relay_key_sizes", False):
        return
    for name in ("get_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def checked(
            self: Any, table_name: str, key: Any, *args: Any, _original: Any = original, **kw: Any
        ) -> Any:
            self.get_table(table_name)._validate_key_sizes(key)
            return _original(self, table_name, key, *args, **kw)

        setattr(DynamoDBBackend, name, checked)
    DynamoDBBackend._veo_relay_key_sizes = True  # type: ignore[attr-defined]


def provision(template: Template, session: Any, parameters: dict[str, Any]) -> None:
    """Creates every resource the offline stack needs, named after its logical id, and records
    each one's Ref and attributes in `template` so that intrinsics resolve to them."""
    template.names.update({name: name for name in template.of_type("AWS::Serverless::HttpApi")})
    role = _role(session)
    for name, spec in template.of_type("AWS::DynamoDB::Table").items():
        table = _table(session.client("dynamodb"), name, spec["Properties"])
        template.names[name] = name
        template.attributes[(name, "Arn")] = table["TableArn"]
        if "LatestStreamArn" in table:
            template.attributes[(name, "StreamArn")] = table["LatestStreamArn"]
    for name, spec in template.of_type("AWS::S3::Bucket").items():
        bucket = f"veo-relay-local-{name.lower()}"
        s3 = session.client("s3")
        s3.create_bucket(Bucket=bucket)
        notifications = spec["Properties"].get("NotificationConfiguration", {})
        if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        template.names[name] = bucket
        template.attributes[(name, "Arn")] = f"arn:aws:s3:::{bucket}"
    _queues(template, session.client("sqs"))
    _event_rules(template, session.client("events"), parameters)
    for name, spec in template.of_type("AWS::SecretsManager::Secret").items():
        secret = session.client("secretsmanager").create_secret(
            Name=name, SecretString=_generated_secret(spec["Properties"]["GenerateSecretString"])
        )
        template.names[name] = secret["ARN"]
    lambda_client = session.client("lambda")
    for name, spec in template.of_type("AWS::Serverless::Function").items():
        # A function the template names (one that refers to itself by name) has that name.
        physical = template.resolve(spec["Properties"].get("FunctionName", name), parameters)
        created = lambda_client.create_function(
            FunctionName=physical,
            Runtime="python3.13",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": _placeholder_zip()},
        )
        template.names[name] = physical
        template.attributes[(name, "Arn")] = created["FunctionArn"]
    sfn = session.client("stepfunctions")
    for name, spec in template.of_type("AWS::Serverless::StateMachine").items():
        created = sfn.create_state_machine(
            name=name,
            definition=template.state_machine_definition(name, parameters),
            roleArn=role,
            type=spec["Properties"].get("Type", "STANDARD"),
        )
        template.names[name] = created["stateMachineArn"]
        template.attributes[(name, "Name")] = name


def _table(dynamodb: Any, name: str, props: dict[str, Any]) -> dict[str, Any]:
    keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
    arguments = {k: props[k] for k in keys if k in props}
    if "StreamSpecification" in props:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    created = dynamodb.create_table(TableName=name, **arguments)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return created  # type: ignore[no-any-return]


def _queues(template: Template, sqs: Any) -> None:
    queues = template.of_type("AWS::SQS::Queue")
    # Dead-letter queues first: the others' redrive policies name them.
    ordered = sorted(queues, key=lambda n: "RedrivePolicy" in queues[n]["Properties"])
    for name in ordered:
        props = queues[name]["Properties"]
        attributes = {
            k: str(props[k]) for k in ("VisibilityTimeout", "MessageRetentionPeriod") if k in props
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(template.resolve(props["RedrivePolicy"], {}))
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        template.names[name] = url
        template.attributes[(name, "QueueName")] = name
        template.attributes[(name, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def _event_rules(template: Template, events: Any, parameters: dict[str, Any]) -> None:
    """Event buses, then their rules with their targets (queues, created before)."""
    for name, spec in template.of_type("AWS::Events::EventBus").items():
        bus = str(
            template.resolve(
                spec["Properties"]["Name"], {**parameters, "AWS::StackName": "veo-relay-local"}
            )
        )
        created = events.create_event_bus(Name=bus)
        template.names[name] = bus
        template.attributes[(name, "Arn")] = created["EventBusArn"]
    for name, spec in template.of_type("AWS::Events::Rule").items():
        props = template.resolve(spec["Properties"], parameters)
        bus = props.get("EventBusName", "default")
        created = events.put_rule(
            Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"])
        )
        # moto stores a target's dead-letter queue and retry policy; it delivers at once and so
        # never uses them.
        delivery = ("Id", "Arn", "DeadLetterConfig", "RetryPolicy")
        events.put_targets(
            Rule=name,
            EventBusName=bus,
            Targets=[{k: t[k] for k in delivery if k in t} for t in props["Targets"]],
        )
        template.names[name] = name
        template.attributes[(name, "Arn")] = created["RuleArn"]


def store_provider_keys(template: Template, session: Any, keys: dict[str, str]) -> None:
    """The provider keys, where a deployed stack keeps them: in the keys secret, read by the
    functions through their role and the secrets cache."""
    session.client("secretsmanager").put_secret_value(
        SecretId=template.names["ProviderKeysSecret"], SecretString=json.dumps(keys)
    )


def _generated_secret(spec: dict[str, Any]) -> str:
    """A generated secret as Secrets Manager would make it: the template's JSON with the key
    added, or a random string of letters and digits (ExcludePunctuation)."""
    length = int(spec.get("PasswordLength", 32))
    value = base64.b64encode(os.urandom(length)).decode()
    value = "".join(c for c in value if c.isalnum())[:length]
    if "SecretStringTemplate" not in spec:
        return value
    document = json.loads(spec["SecretStringTemplate"])
    document[spec.get("GenerateStringKey", "password")] = value
    return json.dumps(document)


def _role(session: Any) -> str:
    iam = session.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return iam.create_role(RoleName="veo-relay-local", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]


def _placeholder_zip() -> bytes:
    # moto needs code to create a function; the real handlers are dispatched to by configure_moto.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "app.py", "def lambda_handler(event, context):\n    raise NotImplementedError\n"
        )
    return buffer.getvalue()
