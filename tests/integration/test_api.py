"""The client API handler against moto: create, read and list video tasks."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.helpers import ALICE, BOB, api_event, header, load_event, response_json
from tests.openapi_schemas import assert_described

TASK_FIELDS = {
    "id",
    "status",
    "provider",
    "provider_task_id",
    "mode",
    "generation_type",
    "aspect_ratio",
    "prompt",
    "parent_id",
    "root_id",
    "created_at",
    "updated_at",
    "completed_at",
    "video",
    "error",
}

# The background poller would otherwise read the provider while these tests look at the task.
pytestmark = pytest.mark.stack_env(APIXO_POLL_FIRST_WAIT_SECONDS=600)


def get(stack, task_id: str, principal: str = ALICE) -> dict:
    return stack.invoke(
        "ApiFunction", api_event("api_get_video", path=f"/v1/videos/{task_id}", principal=principal)
    )


def list_(stack, principal: str = ALICE, **query: str) -> dict:
    return stack.invoke(
        "ApiFunction", api_event("api_list_videos", principal=principal, query=query)
    )


def _extend_event(task_id: str) -> dict:
    event = api_event(
        "api_extend_video", path=f"/v1/videos/{task_id}/extend", body={"prompt": "more"}
    )
    event["pathParameters"] = {"id": task_id}
    return event


def _dynamodb_calls(stack, function: str) -> int:
    """How many DynamoDB calls `function` made (the offline stack's IAM decisions)."""
    return sum(
        r["calls"]
        for r in stack.iam_usage()
        if r["principal"] == function and r["action"].startswith("dynamodb:")
    )


def assert_error(response: dict, status: int, code: str, field: str | None = None) -> dict:
    assert response["statusCode"] == status, response
    body = response_json(response)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    if field is not None:
        assert body["error"]["message"].startswith(f"{field}:"), body
    return body["error"]


class TestCreate:
    def test_the_sample_event_creates_a_task_submitted_in_callback_mode(self, stack):
        # Given the sample create event, exactly as `sam local invoke -e` would send it
        event = load_event("api_create_video")

        # When the API function handles it
        response = stack.invoke("ApiFunction", event)

        # Then it answers 202 with the task object and its Location
        assert response["statusCode"] == 202, response
        task = response_json(response)
        assert set(task) >= TASK_FIELDS
        # (storing already if the simulator's callback came before the answer was read back)
        assert task["status"] in ("in_progress", "storing")
        assert task["provider"] == "apixo"
        assert task["prompt"] == json.loads(event["body"])["prompt"]
        assert (task["mode"], task["generation_type"], task["aspect_ratio"]) == (
            "fast",
            "TEXT_2_VIDEO",
            "16:9",
        )
        assert task["root_id"] == task["id"] and task["parent_id"] is None
        assert task["video"] is None and task["error"] is None and task["completed_at"] is None
        assert header(response, "Location") == f"/v1/videos/{task['id']}"

        # And the task is in DynamoDB, owned by the IAM principal, and no token
        item = stack.item(task["id"])
        assert item["owner"]["S"] == event["requestContext"]["authorizer"]["iam"]["userArn"]
        assert item["status"]["S"] in ("in_progress", "storing")
        assert item["provider_task_id"]["S"] == task["provider_task_id"]

        # And the provider got a callback-mode request whose URL carries that token
        sim_task = stack.simulator.task(task["provider_task_id"])
        prefix = f"{stack.api.url}/v1/callbacks/apixo/"
        assert sim_task.callback_url.startswith(prefix)
        token = sim_task.callback_url.removeprefix(prefix)
        # (derived from the task and its first submit attempt; nothing of it is stored)
        assert token.startswith(f"{task['id']}.1.")
        assert item["submit_attempt"]["N"] == "1"
        assert token.rsplit(".", 1)[1] not in json.dumps(item)

        # And the fallback poller runs, as an execution named after the task
        execution = stack.client("stepfunctions").describe_execution(
            executionArn=stack.execution_arn(task["id"])
        )
        assert execution["name"] == task["id"]
        assert execution["status"] == "RUNNING"
        execution_input = json.loads(execution["input"])
        failed_expires_at = int(execution_input.pop("failed_expires_at"))
        assert execution_input == {
            "task_id": task["id"],
            "first_wait_seconds": 600,
            "copy_lease_seconds": 360,
            "poll": {"attempt": 0},
        }
        # (a task the state machine itself closes expires like any failed task: ~90 days on)
        assert 89 * 86400 < failed_expires_at - time.time() < 92 * 86400

    def test_every_option_reaches_the_provider(self, stack, monkeypatch):
        # Given a record of what the apixo adapter posts
        from veo_relay.providers.http import ProviderHttp

        sent_bodies: list[dict] = []
        real_post = ProviderHttp.post

        def recording_post(self, path, body, deadline=None):
            sent_bodies.append(body)
            return real_post(self, path, body, deadline)

        monkeypatch.setattr(ProviderHttp, "post", recording_post)
        # And a request that sets every optional field
        body = {
            "prompt": "two frames",
            "provider": "auto",
            "mode": "quality",
            "generation_type": "FIRST_AND_LAST_FRAMES_2_VIDEO",
            "aspect_ratio": "9:16",
            "image_urls": ["https://img.example.com/a.png", "https://img.example.com/b.png"],
            "seed": 42,
            "watermark": "veo-relay",
        }

        # When it is created
        task = stack.create_task(**body)

        # Then the task and the provider's input both carry them
        assert task["mode"] == "quality" and task["aspect_ratio"] == "9:16"
        assert task["generation_type"] == "FIRST_AND_LAST_FRAMES_2_VIDEO"
        [sent] = sent_bodies
        assert sent["request_type"] == "callback"
        assert sent["callback_url"] == stack.simulator.task(task["provider_task_id"]).callback_url
        assert sent["input"] == {
            "mode": "quality",
            "prompt": "two frames",
            "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
            "aspect_ratio": "9:16",
            "image_urls": body["image_urls"],
            "seed": 42,
            "watermark": "veo-relay",
        }

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"mode": "fast"}, "prompt"),
            ({"prompt": ""}, "prompt"),
            ({"prompt": "x" * 10001}, "prompt"),
            ({"prompt": "a cat", "aspect_ratio": "4:3"}, "aspect_ratio"),
            ({"prompt": "a cat", "mode": "slow"}, "mode"),
            ({"prompt": "a cat", "provider": "sora"}, "provider"),
            ({"prompt": "a cat", "seed": "abc"}, "seed"),
            ({"prompt": "a cat", "seed": -1}, "seed"),
            (
                {
                    "prompt": "a cat",
                    "generation_type": "REFERENCE_2_VIDEO",
                    "mode": "quality",
                    "image_urls": ["https://img.example.com/ref.png"],
                },
                "mode",
            ),
            (
                {
                    "prompt": "a cat",
                    "generation_type": "FIRST_AND_LAST_FRAMES_2_VIDEO",
                    "image_urls": ["http://img.example.com/first.png"],
                },
                "image_urls[0]",
            ),
            ({"prompt": "a cat", "image_urls": ["https://img.example.com/a.png"]}, "image_urls"),
            ({"prompt": "a cat", "colour": "red"}, "colour"),
        ],
        ids=[
            "missing-prompt",
            "empty-prompt",
            "long-prompt",
            "bad-aspect-ratio",
            "bad-mode",
            "unknown-provider",
            "seed-not-int",
            "negative-seed",
            "reference-in-quality-mode",
            "http-image-url",
            "images-for-text",
            "unknown-field",
        ],
    )
    def test_invalid_bodies_are_422_naming_the_field(self, stack, body, field):
        # Given a body that breaks one rule
        submitted_before = len(stack.simulator.submissions())

        # When it is posted
        response = stack.create_video(body)

        # Then the answer is 422, names the field, and nothing was created anywhere
        assert_error(response, 422, "invalid_request", field)
        assert stack.task_items() == []
        assert len(stack.simulator.submissions()) == submitted_before

    @pytest.mark.parametrize("raw", ['{"prompt": ', "not json", "{'prompt': 'a'}"])
    def test_malformed_json_is_400(self, stack, raw):
        # Given a body that is not JSON
        submitted_before = len(stack.simulator.submissions())

        # When it is posted
        response = stack.create_video(raw)

        # Then the answer is 400 with the error shape, and nothing reached the provider
        error = assert_error(response, 400, "invalid_request")
        assert "JSON" in error["message"]
        assert len(stack.simulator.submissions()) == submitted_before

    @pytest.mark.parametrize(
        "raw",
        [
            "[" * 1000 + "]" * 1000,
            '{"prompt": "a cat", "image_urls": ' + "[" * 1000 + "]" * 1000 + "}",
            '{"prompt": ' * 1000 + '"a"' + "}" * 1000,
        ],
        ids=["arrays", "in-a-field", "objects"],
    )
    @pytest.mark.parametrize("path", ["/v1/videos", "/v1/videos/vid_x/extend"])
    def test_a_body_nested_too_deeply_is_400(self, stack, raw, path):
        # Given a 2 KB body nested 1,000 deep (Python's json raises RecursionError on it)
        event = api_event("api_create_video", path=path, raw_body=raw)

        # When it is posted
        response = stack.invoke("ApiFunction", event)

        # Then it is a 400 in the one error body, saying so, and nothing was created
        error = assert_error(response, 400, "invalid_request", "body")
        assert error["message"] == "body: is nested too deeply (more than 32 levels)"
        assert stack.task_items() == []

    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            ('{"prompt": "a cat", "seed": 1e999}', "seed"),
            ('{"prompt": "a cat", "seed": -1e999}', "seed"),
            ('{"prompt": "a cat", "seed": ' + "9" * 5000 + "}", "seed"),
            ('{"prompt": "a cat", "seed": -' + "9" * 5000 + "}", "seed"),
            ('{"prompt": "a cat", "seed": 1' + "0" * 400 + "}", "seed"),
            ('{"prompt": ' + "9" * 5000 + "}", "prompt"),
            ('{"prompt": "a cat", "watermark": ' + "1" * 5000 + ".5e99999}", "watermark"),
        ],
        ids=["1e999", "-1e999", "5000-digits", "-5000-digits", "400-digits", "prompt", "float"],
    )
    def test_a_huge_number_is_422_naming_its_field(self, stack, raw, field):
        # When a body with a number far out of any range is posted
        response = stack.create_video(raw)

        # Then it is refused naming the field, and nothing was created
        assert_error(response, 422, "invalid_request", field)
        assert stack.task_items() == []

    @pytest.mark.parametrize(
        "url",
        [
            "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "https://2852039166/",
            "https://0xA9.254.169.254/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::1]/a.png",
            "https://localhost/a.png",
            "https://10.1.2.3/a.png",
            "https://user:pw@img.example.com/a.png",
            "https://img.example.com/a\u0000.png",
            "https://img.example.com/a\r\nX-Injected: 1",
        ],
    )
    def test_an_image_url_inside_a_network_is_422_naming_its_index(self, stack, url):
        # Given a reference video whose second image URL points inside a network
        submitted_before = len(stack.simulator.submissions())
        body = {
            "prompt": "a cat",
            "generation_type": "REFERENCE_2_VIDEO",
            "image_urls": ["https://img.example.com/a.png", url],
        }

        # When it is posted
        response = stack.create_video(body)

        # Then it is refused naming the URL by its index, and the provider never saw it
        assert_error(response, 422, "invalid_request", "image_urls[1]")
        assert stack.task_items() == []
        assert len(stack.simulator.submissions()) == submitted_before

    def test_a_provider_refusal_fails_the_task_and_answers_5xx(self, stack):
        # Given a provider that refuses the key in the provider keys secret
        stack.put_provider_keys(apixo="wrong-key")

        # When a video is created
        response = stack.create_video({"prompt": "a cat"})

        # Then the caller learns that the provider failed, and the task is recorded as failed
        error = assert_error(response, 502, "unauthorized")
        assert "401" in error["message"]
        items = stack.task_items()
        assert [i["status"]["S"] for i in items] == ["failed"]
        # And the provider's own words are on the record, for audit, but never shown
        assert items[0]["error"]["M"]["provider_message"]["S"] == "Invalid or missing API Key"
        assert "Invalid or missing" not in error["message"]
        task = response_json(get(stack, items[0]["id"]["S"]))
        assert "Invalid or missing" not in json.dumps(task)
        assert items[0]["error"]["M"]["code"]["S"] == "unauthorized"
        # And no fallback poller was started for it
        assert (
            stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)[
                "executions"
            ]
            == []
        )


class TestRead:
    def test_the_owner_reads_the_task(self, stack):
        # Given a task created by alice
        created = stack.create_task("a cat")

        # When alice reads it with the sample event, its id patched in
        response = get(stack, created["id"])

        # Then she gets 200 and the same task object
        assert response["statusCode"] == 200, response
        task = response_json(response)
        assert set(task) >= TASK_FIELDS
        assert {k: task[k] for k in ("id", "prompt", "provider_task_id", "created_at")} == {
            k: created[k] for k in ("id", "prompt", "provider_task_id", "created_at")
        }

    def test_another_principal_gets_404(self, stack):
        # Given a task created by alice
        created = stack.create_task("a cat")

        # When bob asks for it
        response = get(stack, created["id"], principal=BOB)

        # Then it does not exist for him
        assert_error(response, 404, "not_found")

    def test_an_unknown_id_is_404(self, stack):
        assert_error(get(stack, "vid_000000000000000000000000"), 404, "not_found")

    @pytest.mark.parametrize(
        "task_id",
        [
            "vid_" + "a" * 2996,
            "x" * 3000,
            "vid_0123456789ABCDEF01234567",
            "vid_0123456789abcdef0123",
        ],
        ids=["3000-chars", "3000-chars-no-prefix", "upper-case", "short"],
    )
    def test_an_id_not_of_the_services_form_is_404_before_any_read(self, stack, task_id):
        # Given an id no task can have: 3,000 characters (DynamoDB refuses a key over 2,048
        # bytes with a ValidationException, as the offline stack does), or not of the form
        # vid_ and 24 lower-case hex digits
        before = _dynamodb_calls(stack, "ApiFunction")

        # When she asks for it, and to extend it
        read = get(stack, task_id)
        extended = stack.invoke("ApiFunction", _extend_event(task_id))

        # Then both are the one 404 error body, without a read of the table
        for response in (read, extended):
            error = assert_error(response, 404, "not_found")
            assert len(error["message"]) < 100
        assert _dynamodb_calls(stack, "ApiFunction") == before

    def test_the_offline_table_refuses_a_key_over_2048_bytes_as_dynamodb_does(self, stack):
        # Given a read of the task table by an id of 2,049 bytes
        from botocore.exceptions import ClientError

        # When it is sent to the offline stack's DynamoDB
        with pytest.raises(ClientError) as refused:
            stack.item("v" * 2049)

        # Then it is refused as AWS refuses it, and 2,048 bytes are not
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert stack.item("v" * 2048) is None

    def test_a_request_without_iam_identity_is_401(self, stack):
        # Given an event without the IAM authorizer context
        event = api_event("api_list_videos", principal=None)

        # When the API handles it
        response = stack.invoke("ApiFunction", event)

        # Then it is refused as unauthenticated
        assert_error(response, 401, "unauthorized")


class TestList:
    def _create(self, stack, principal: str, *prompts: str) -> list[str]:
        ids = []
        for prompt in prompts:
            ids.append(stack.create_task(prompt, principal=principal)["id"])
            time.sleep(0.002)  # distinct created_at (milliseconds)
        return ids

    def test_pages_through_the_callers_tasks_newest_first(self, stack):
        # Given three tasks by alice and one by bob
        alice = self._create(stack, ALICE, "one", "two", "three")
        self._create(stack, BOB, "bob's")

        # When alice lists two at a time
        first = list_(stack, limit="2")
        assert first["statusCode"] == 200, first
        page1 = response_json(first)
        second = list_(stack, limit="2", cursor=page1["next_cursor"])
        page2 = response_json(second)

        # Then she sees exactly her own tasks, newest first, and the last page has no cursor
        assert set(page1) == {"items", "next_cursor"}
        assert [t["id"] for t in page1["items"]] == [alice[2], alice[1]]
        assert isinstance(page1["next_cursor"], str)
        assert [t["id"] for t in page2["items"]] == [alice[0]]
        assert page2["next_cursor"] is None
        assert all(set(t) >= TASK_FIELDS for t in page1["items"] + page2["items"])

    def test_the_sample_event_lists_with_the_default_limit(self, stack):
        # Given two tasks by alice
        alice = self._create(stack, ALICE, "one", "two")

        # When the sample list event is handled unchanged
        response = stack.invoke("ApiFunction", load_event("api_list_videos"))

        # Then both come back on one page
        body = response_json(response)
        assert response["statusCode"] == 200
        assert [t["id"] for t in body["items"]] == alice[::-1]
        assert body["next_cursor"] is None

    def test_filters_by_status(self, stack):
        # Given two open tasks and one that the provider failed
        open_ids = self._create(stack, ALICE, "one [sim:no-callback]", "two [sim:no-callback]")
        failed = stack.create_task("three [sim:fail=CONTENT_VIOLATION] [sim:no-callback]")
        sim_id = failed["provider_task_id"]
        stack.simulator.wait_for(lambda: stack.simulator.task(sim_id).state == "failed")
        stack.copy(failed["id"])
        assert stack.status(failed["id"]) == "failed"

        # When alice lists by status, one at a time
        failed_page = response_json(list_(stack, status="failed", limit="1"))
        open_page = response_json(list_(stack, status="in_progress", limit="5"))

        # Then each status shows only its own tasks
        assert [t["id"] for t in failed_page["items"]] == [failed["id"]]
        assert failed_page["items"][0]["error"]["code"] == "content_violation"
        assert [t["id"] for t in open_page["items"]] == open_ids[::-1]
        assert open_page["next_cursor"] is None

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"limit": "0"}, "limit"),
            ({"limit": "101"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"status": "done"}, "status"),
            ({"cursor": "not-a-cursor!"}, "cursor"),
        ],
    )
    def test_bad_queries_are_422_naming_the_parameter(self, stack, query, field):
        assert_error(list_(stack, **query), 422, "invalid_request", field)

    @pytest.mark.parametrize(
        "key",
        [
            # each value exactly {"S": str}: DynamoDB answers anything else with a
            # ValidationException (a 500), though moto takes it
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": {"N": "1"}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1", "N": "1"}, "created_at": {"S": "t"}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": {"S": ["t"]}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": {"S": 5}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": {"S": ""}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": {"S": None}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": {"SS": ["t"]}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": {}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}, "created_at": "t"},
            {"owner": {"S": ALICE}, "id": {"S": "v" * 1025}, "created_at": {"S": "t"}},
            {"owner": {"S": ALICE}, "id": {"S": "\ud800"}, "created_at": {"S": "t"}},
            {"owner": {"S": ALICE}, "id": {"S": "vid_1"}},
            {"owner": {"S": ALICE}, "id": {"S": "v"}, "created_at": {"S": "t"}, "x": {"S": "y"}},
            {"owner": {"S": BOB}, "id": {"S": "vid_1"}, "created_at": {"S": "t"}},
            {"owner": {"S": ALICE, "B": "eA=="}, "id": {"S": "vid_1"}, "created_at": {"S": "t"}},
            [],
            "a string",
            12,
            None,
        ],
        ids=[
            "number-value",
            "two-types",
            "list-string",
            "number-string",
            "empty-string",
            "null-string",
            "string-set",
            "no-type",
            "bare-string",
            "oversized",
            "lone-surrogate",
            "missing-key",
            "extra-key",
            "another-owner",
            "owner-two-types",
            "list",
            "string",
            "number",
            "null",
        ],
    )
    def test_a_malformed_cursor_is_422_naming_it(self, stack, key):
        # Given a task of Alice's, so that a query with the cursor would run
        stack.create_task("a cursor owner")
        cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()

        # When she lists with a cursor no listing of hers returned
        response = list_(stack, cursor=cursor)

        # Then it is refused naming the cursor (never handed to DynamoDB)
        assert_error(response, 422, "invalid_request", "cursor")

    @pytest.mark.parametrize(
        "raw",
        [b"[" * 1000 + b"]" * 1000, b'{"a": ' * 1000 + b"1" + b"}" * 1000, b"\xff\xfe{}"],
        ids=["deep-arrays", "deep-objects", "not-utf8"],
    )
    def test_a_cursor_that_is_not_a_small_json_object_is_422(self, stack, raw):
        cursor = base64.urlsafe_b64encode(raw).decode()
        assert_error(list_(stack, cursor=cursor), 422, "invalid_request", "cursor")


class TestOwner:
    ROLE = "arn:aws:sts::123456789012:assumed-role/Renderer"

    def test_two_sessions_of_one_role_see_the_same_tasks(self, stack):
        # Given a task created by one session of a role
        created = stack.create_task("a fox", principal=f"{self.ROLE}/alice-laptop")

        # When another session of the same role (another session name) reads and lists
        other_session = f"{self.ROLE}/botocore-session-1732190000"
        read = get(stack, created["id"], principal=other_session)
        listed = response_json(list_(stack, principal=other_session))

        # Then it sees the task: the owner is the role, not the session
        assert read["statusCode"] == 200, read
        assert response_json(read)["id"] == created["id"]
        assert [t["id"] for t in listed["items"]] == [created["id"]]
        assert stack.item(created["id"])["owner"]["S"] == "arn:aws:iam::123456789012:role/Renderer"

        # And another role of the same account, whatever its session is called, does not
        other_role = "arn:aws:sts::123456789012:assumed-role/Reviewer/alice-laptop"
        assert_error(get(stack, created["id"], principal=other_role), 404, "not_found")
        assert response_json(list_(stack, principal=other_role))["items"] == []

    def test_an_identity_that_is_no_principals_arn_is_401(self, stack):
        # Given a caller ARN that names no IAM principal (here a group)
        event = api_event("api_list_videos", principal="arn:aws:iam::123456789012:group/admins")

        # When the API handles it
        response = stack.invoke("ApiFunction", event)

        # Then it is refused as unauthenticated
        assert_error(response, 401, "unauthorized")


class TestDescribed:
    """Each task answer is what docs/openapi.json describes, and nothing more."""

    def test_a_create_the_reads_and_the_listing_in_every_outcome(self, stack):
        # Given a task still with the provider, one the provider failed and one stored
        created = stack.create_video({"prompt": "one [sim:no-callback]"})
        failed = stack.create_task("two [sim:fail=CONTENT_VIOLATION] [sim:no-callback]")
        stored = stack.create_task("three [sim:no-callback]")
        failed_sim, stored_sim = failed["provider_task_id"], stored["provider_task_id"]
        stack.simulator.wait_for(lambda: stack.simulator.task(failed_sim).state == "failed")
        stack.simulator.wait_for(lambda: stack.simulator.task(stored_sim).state == "succeeded")
        assert stack.copy(failed["id"], stored["id"]) == {"batchItemFailures": []}

        # When alice reads each of them and lists them
        reads = [get(stack, task["id"]) for task in (response_json(created), failed, stored)]
        listing = list_(stack)

        # Then the create's answer, each read's and the listing's are the described objects
        assert created["statusCode"] == 202, created
        assert_described(response_json(created), "TaskObject")
        for read in reads:
            assert read["statusCode"] == 200, read
            assert_described(response_json(read), "TaskObject")
        statuses = [response_json(read)["status"] for read in reads]
        assert statuses == ["in_progress", "failed", "completed"]
        assert listing["statusCode"] == 200, listing
        assert_described(response_json(listing), "TaskList")
        assert len(response_json(listing)["items"]) == 3
