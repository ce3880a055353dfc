"""The sample events in events/: each has the shape its trigger delivers, reaches the function
the template routes it to, and matches what the code reads from it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from offline.template import ROOT, load_template
from tests.helpers import (
    EVENTS,
    FUNCTION_SETTINGS,
    api_event,
    callback_event,
    copy_request_event,
    load_event,
)

API_EVENTS = {
    "api_create_video": ("POST", "/v1/videos"),
    "api_extend_video": ("POST", "/v1/videos/{id}/extend"),
    "api_get_video": ("GET", "/v1/videos/{id}"),
    "api_list_videos": ("GET", "/v1/videos"),
    "api_delete_video": ("DELETE", "/v1/videos/{id}"),
    "api_cancel_video": ("POST", "/v1/videos/{id}/cancel"),
    "api_get_capabilities": ("GET", "/v1/capabilities"),
    "api_get_usage": ("GET", "/v1/usage"),
    "api_get_webhook_secret": ("GET", "/v1/webhook-secret"),
    "api_rotate_webhook_secret": ("POST", "/v1/webhook-secret/rotate"),
    "api_unmatched_route": ("ANY", "$default"),
    "callback_apixo": ("POST", "/v1/callbacks/{provider}/{token}"),
}
QUEUE_EVENTS = {
    "copy_request": "CopyWorkerFunction",
    "submit_request": "SubmitWorkerFunction",
    "stored_video_queue": "VideoConsumerFunction",
    "webhook_video_completed": "WebhookSenderFunction",
}
STREAM_EVENTS = {
    "task_failed_stream": "FailureAnnouncerFunction",
    "task_completed_stream": "SpendSettlerFunction",
}
SCHEDULE_EVENTS = {"balance_reader_schedule": "BalanceReaderFunction"}
# Invoked directly: by the state machine, or (for `sam local invoke -e`) the consumer with the
# EventBridge event or the S3 notification that its queue would carry; and the provider simulator
# (Simulate=true) through its function URL.
DIRECT_EVENTS = {
    "poller_step": "PollerFunction",
    "stored_video_eventbridge": "VideoConsumerFunction",
    "stored_video_s3_notification": "VideoConsumerFunction",
    "provider_simulator_status": "ProviderSimulatorFunction",
}


@pytest.fixture(scope="module")
def template():
    return load_template()


def all_event_files() -> list[Path]:
    return sorted(p for p in EVENTS.glob("*.json") if p.name != "env.json")


@pytest.mark.parametrize("path", all_event_files(), ids=lambda p: p.name)
def test_every_event_file_is_json_with_an_object(path):
    assert isinstance(json.loads(path.read_text()), dict)


def test_every_function_and_trigger_has_a_sample_event(template):
    # Given the template's HTTP routes, queue triggers and directly invoked functions
    routes = {(r.method, r.path) for r in template.routes()}
    triggers = {t.function for t in template.queue_triggers()}
    streams = {t.function for t in template.stream_triggers()}
    schedules = {t.function for t in template.schedule_triggers()}
    functions = set(template.of_type("AWS::Serverless::Function"))

    # Then each route and trigger has its sample, and each function at least one
    assert routes == set(API_EVENTS.values())
    assert triggers == set(QUEUE_EVENTS.values())
    assert streams == set(STREAM_EVENTS.values())
    assert schedules == set(SCHEDULE_EVENTS.values())
    covered = (
        {r.function for r in template.routes()}
        | triggers
        | streams
        | schedules
        | set(DIRECT_EVENTS.values())
    )
    assert covered == functions
    names = (
        set(API_EVENTS)
        | set(QUEUE_EVENTS)
        | set(STREAM_EVENTS)
        | set(SCHEDULE_EVENTS)
        | set(DIRECT_EVENTS)
    )
    assert {p.stem for p in all_event_files()} == names


@pytest.mark.parametrize("name", sorted(API_EVENTS))
def test_http_api_events_are_payload_2_0_for_their_route(name, template):
    # Given an HTTP API sample event
    event = load_event(name)
    method, path = API_EVENTS[name]
    route = next(r for r in template.routes() if (r.method, r.path) == (method, path))

    # Then it is a payload 2.0 event for that route
    assert event["version"] == "2.0"
    route_key = path if path == "$default" else f"{method} {path}"  # API Gateway's catch-all
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route_key
    assert method in ("ANY", event["requestContext"]["http"]["method"])
    assert event["requestContext"]["http"]["path"] == event["rawPath"]
    params = route.match(method, event["rawPath"])
    assert params is not None
    assert (event.get("pathParameters") or {}) == params
    assert event["isBase64Encoded"] is False
    assert all(key == key.lower() for key in event["headers"])

    # And only routes with IAM auth carry an IAM identity, as API Gateway sends it
    authorizer = event["requestContext"].get("authorizer")
    if route.authorized:
        assert authorizer["iam"]["userArn"].startswith("arn:aws:iam::")
        assert authorizer["iam"]["accountId"] == event["requestContext"]["accountId"]
    else:
        assert authorizer is None


@pytest.mark.parametrize("name", ["api_create_video", "api_extend_video"])
def test_request_bodies_are_json_with_a_prompt_and_a_true_content_length(name):
    event = load_event(name)
    body = json.loads(event["body"])
    assert body["prompt"]
    assert event["headers"]["content-type"] == "application/json"
    assert int(event["headers"]["content-length"]) == len(event["body"].encode())


def test_the_list_event_has_its_query_twice_as_api_gateway_sends_it():
    event = load_event("api_list_videos")
    assert event["rawQueryString"] == "limit=20"
    assert event["queryStringParameters"] == {"limit": "20"}


def test_the_callback_event_carries_an_apixo_status_body():
    # Given the callback sample
    event = load_event("callback_apixo")
    body = json.loads(event["body"])

    # Then its body is apixo's documented status shape (resultJson a JSON string)
    assert body["code"] == 200 and body["message"] == "success"
    data = body["data"]
    assert data["state"] == "success"
    assert isinstance(data["resultJson"], str)
    assert json.loads(data["resultJson"])["resultUrls"][0].endswith(".mp4")
    assert data["taskId"]
    # And its token is task id "." secret, as the relay hands out
    token = event["pathParameters"]["token"]
    task_id, _, secret = token.partition(".")
    assert task_id.startswith("vid_") and secret
    assert event["pathParameters"]["provider"] == "apixo"


@pytest.mark.parametrize("name", sorted(QUEUE_EVENTS))
def test_queue_events_are_sqs_batches(name, template):
    # Given an SQS sample event
    event = load_event(name)
    trigger = next(t for t in template.queue_triggers() if t.function == QUEUE_EVENTS[name])

    # Then it is a batch no larger than the trigger's, with the fields Lambda sends
    records = event["Records"]
    assert 1 <= len(records) <= trigger.batch_size
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].startswith("arn:aws:sqs:")
        assert {"messageId", "receiptHandle", "body", "attributes", "md5OfBody"} <= set(record)
        assert hashlib.md5(record["body"].encode()).hexdigest() == record["md5OfBody"]


def test_the_stored_video_events_name_one_manifest_in_their_three_shapes():
    # Given the EventBridge event, the S3 notification and the queue message of one manifest
    bridge = load_event("stored_video_eventbridge")
    notification = load_event("stored_video_s3_notification")["Records"][0]["s3"]
    queued = json.loads(load_event("stored_video_queue")["Records"][0]["body"])

    # Then all three name the same manifest, beside its video, as S3 sends them
    assert queued == bridge
    assert bridge["source"] == "aws.s3" and bridge["detail-type"] == "Object Created"
    key = bridge["detail"]["object"]["key"]
    assert key == notification["object"]["key"]
    assert key.startswith("videos/") and key.endswith(".json")
    assert bridge["detail"]["bucket"]["name"] == notification["bucket"]["name"]


def test_the_webhook_event_is_a_video_event_from_our_bus():
    from veo_relay.webhook_messages import delivery_from_message

    body = load_event("webhook_video_completed")["Records"][0]["body"]
    delivery = delivery_from_message(body)
    assert delivery.event_type == "video.completed" and delivery.attempt == 1
    assert delivery.task_id == json.loads(body)["detail"]["id"]


def test_the_stream_event_passes_the_announcers_filter(template):
    from moto.events.models import EventPattern

    # Given the failure announcer's filter criteria and the sample stream record
    trigger = template.stream_triggers()[0]
    record = load_event("task_failed_stream")["Records"][0]

    # Then the sample passes the filter, and the same record without the failure does not
    patterns = [EventPattern.load(p) for p in trigger.filter_patterns]
    assert any(p.matches_event(record) for p in patterns)
    unchanged = json.loads(json.dumps(record))
    unchanged["dynamodb"]["NewImage"]["status"]["S"] = "in_progress"
    assert not any(p.matches_event(unchanged) for p in patterns)
    already = json.loads(json.dumps(record))
    already["dynamodb"]["OldImage"]["status"]["S"] = "failed"
    assert not any(p.matches_event(already) for p in patterns)


def test_the_scheduled_event_is_what_the_offline_schedule_sends(template):
    from offline.event_sources import scheduled_event

    # Given the reader's schedule and its sample event
    (trigger,) = template.schedule_triggers()
    sample = load_event("balance_reader_schedule")

    # Then the offline stack's event has the sample's shape: EventBridge's Scheduled Event
    sent = scheduled_event(trigger)
    assert set(sent) == set(sample)
    assert (sent["source"], sent["detail-type"]) == ("aws.events", "Scheduled Event")
    assert sample["detail"] == sent["detail"] == {}
    assert sent["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")


def test_the_copy_request_body_is_what_the_copy_queue_carries():
    from veo_relay.queues import CopyRequest, parse_copy_request

    body = load_event("copy_request")["Records"][0]["body"]
    assert parse_copy_request(body) == CopyRequest(
        "vid_0123456789abcdef01234567", "2026-11-21T10:02:04.871Z", deferred=False
    )


def test_the_submit_request_body_is_what_the_submit_queue_carries():
    from veo_relay.queues import parse_submit_request

    ticket, slot_at = parse_submit_request(load_event("submit_request")["Records"][0]["body"])
    assert ticket.task_id == "vid_0123456789abcdef01234567"
    assert ticket.callback_base_url.startswith("https://")
    assert slot_at > 0


def test_a_submit_request_queued_with_a_raw_token_is_still_understood():
    # Given a message queued before tokens were derived (it carries the raw token)
    from veo_relay.queues import parse_submit_request

    body = load_event("submit_request")["Records"][0]["body"]
    old = json.dumps({**json.loads(body), "callback_token": "vid_0123456789abcdef01234567.x"})

    # Then it is read as the same ticket, the token left out
    assert parse_submit_request(old) == parse_submit_request(body)
    assert "callback_token" not in vars(parse_submit_request(old)[0])


def test_the_poller_event_is_what_the_state_machine_passes():
    # Given the PollProvider state's payload in the real definition
    definition = json.loads((ROOT / "statemachine" / "fallback_poller.asl.json").read_text())
    payload = definition["States"]["PollProvider"]["Parameters"]["Payload"]
    passed = {key.removesuffix(".$") for key in payload}

    # Then the sample event has exactly those keys
    event = load_event("poller_step")
    assert set(event) == passed
    assert event["attempt"] == 0


class TestEnvFile:
    @pytest.fixture(scope="class")
    def env_file(self) -> dict[str, dict[str, str]]:
        return json.loads((EVENTS / "env.json").read_text())

    def test_it_is_keyed_by_every_function_logical_id(self, env_file, template):
        assert set(env_file) == set(template.of_type("AWS::Serverless::Function"))

    def test_it_sets_only_variables_the_template_declares(self, env_file, template):
        # sam local invoke --env-vars overrides declared variables only; others are dropped
        declared_globally = set(template.body["Globals"]["Function"]["Environment"]["Variables"])
        for function, variables in env_file.items():
            own = template.resources[function]["Properties"].get("Environment", {})
            declared = declared_globally | set(own.get("Variables", {}))
            assert set(variables) == declared, function
            assert all(isinstance(v, str) for v in variables.values()), function

    def test_each_functions_variables_are_valid_settings(self, env_file):
        for function, variables in env_file.items():
            if function in FUNCTION_SETTINGS:  # the provider simulator reads its own two
                FUNCTION_SETTINGS[function].from_env(variables)  # raises ConfigurationError


class TestLoadEvent:
    def test_overrides_merge_into_nested_objects(self):
        # When an override names part of a nested object
        event = load_event(
            "api_get_video", requestContext={"authorizer": {"iam": {"userArn": "arn:x"}}}
        )

        # Then only that part changes
        assert event["requestContext"]["authorizer"]["iam"]["userArn"] == "arn:x"
        assert event["requestContext"]["authorizer"]["iam"]["accountId"] == "123456789012"
        assert event["requestContext"]["http"]["method"] == "GET"

    def test_a_dict_body_is_serialized(self):
        event = load_event("api_create_video", body={"prompt": "p"})
        assert json.loads(event["body"]) == {"prompt": "p"}

    def test_each_load_is_a_fresh_copy(self):
        load_event("poller_step")["task_id"] = "changed"
        assert load_event("poller_step")["task_id"] != "changed"

    def test_api_event_patches_path_principal_and_query(self):
        event = api_event("api_get_video", path="/v1/videos/vid_x", principal="arn:bob")
        assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/v1/videos/vid_x"
        assert event["pathParameters"] == {"id": "vid_x"}
        assert event["requestContext"]["authorizer"]["iam"]["userArn"] == "arn:bob"
        listed = api_event("api_list_videos", query={"status": "failed"})
        assert listed["queryStringParameters"] == {"status": "failed"}
        assert listed["rawQueryString"] == "status=failed"
        assert "authorizer" not in api_event("api_list_videos", principal=None)["requestContext"]

    def test_callback_and_copy_builders(self):
        event = callback_event("vid_a.secret", {"code": 200})
        assert event["pathParameters"] == {"provider": "apixo", "token": "vid_a.secret"}
        assert event["rawPath"] == "/v1/callbacks/apixo/vid_a.secret"
        batch = copy_request_event("vid_a", "vid_b")
        assert [json.loads(r["body"])["task_id"] for r in batch["Records"]] == ["vid_a", "vid_b"]
        assert len({r["messageId"] for r in batch["Records"]}) == 2
