"""Client API: create, read and list video tasks. An adapter between HTTP and veo_relay."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.api_models import CreateVideoBody, ErrorBody, ExtendVideoBody, WebhookSecretBody
from veo_relay.creation import CreateVideo, ExtendVideo
from veo_relay.deadlines import Deadline, api_deadline
from veo_relay.errors import CreatesThrottled, VeoRelayError
from veo_relay.http_errors import error_body, status_for, unexpected_error, validation_message
from veo_relay.json_input import parse_json
from veo_relay.principals import owner_of
from veo_relay.providers.base import GenerationRequest
from veo_relay.queries import TaskList
from veo_relay.raw_requests import refuse_raw_request
from veo_relay.tasks import Task, TaskObject
from veo_relay.usage import parse_month
from veo_relay.wiring import api

logger = Logger()
# The body is parsed (for validation) by the resolver, with the parser every input from outside
# goes through; lambda_handler has refused what it cannot parse already.
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json)


def _errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses for these error statuses, all with the one error body."""
    descriptions = {
        400: "Malformed JSON",
        401: "No caller identity",
        402: "The caller's monthly budget would be passed; the message names budget and spend",
        404: "Unknown, or not the caller's",
        409: "Conflict: Idempotency-Key reused with another body, the parent is not completed, "
        "or the task's state does not allow it",
        413: "Body too large",
        415: "Content-Type is not application/json",
        422: "Invalid input; the message names the field",
        429: "Too many creates this minute; Retry-After says when to try again",
        502: "The provider refused or failed",
        503: "The provider is unavailable",
    }
    return {
        status: {
            "description": descriptions[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
        for status in statuses
    }


# No content: each route's return annotation (TaskObject, TaskList) is its schema, and the
# resolver checks every answer against it.
TASK_ACCEPTED: dict[int, OpenAPIResponse] = {202: {"description": "Accepted: the task object"}}
TASK_FOUND: dict[int, OpenAPIResponse] = {200: {"description": "The task object"}}
VIDEO_DELETED: dict[int, OpenAPIResponse] = {
    204: {"description": "Deleted; no content", "content": {}}
}
TASKS_LISTED: dict[int, OpenAPIResponse] = {200: {"description": "A page of the caller's tasks"}}
WEBHOOK_SECRET: dict[int, OpenAPIResponse] = {
    200: {
        "description": '{"secret": "whsec_..."}: the caller\'s own webhook signing secret',
        "content": {"application/json": {"model": WebhookSecretBody}},
    }
}
CAPABILITIES: dict[int, OpenAPIResponse] = {
    200: {
        "description": '{"providers": {"apixo": {...}, ...}}: modes, generation types, aspect '
        "ratios, resolutions, image limits, seed range, extend rules, callbacks and pacing of "
        "each enabled provider"
    }
}
USAGE: dict[int, OpenAPIResponse] = {
    200: {
        "description": '{"month", "spent_usd", "reserved_usd", "budget_usd", "tasks"}: the '
        "caller's month (UTC): the cost of its ended tasks, what is reserved for those not ended, "
        "its budget (null: none) and its tasks by status"
    }
}
IdempotencyKey = Annotated[
    str | None, Header(alias="idempotency-key", min_length=1, max_length=255)
]


@app.post(
    "/v1/videos",
    summary="Create a generation",
    responses={**TASK_ACCEPTED, **_errors(400, 401, 402, 409, 413, 415, 422, 429, 502, 503)},
)
def create(body: CreateVideoBody, idempotency_key: IdempotencyKey = None) -> Response[TaskObject]:
    command = CreateVideo(
        owner=_principal(),
        provider=body.provider,
        request=GenerationRequest(
            prompt=body.prompt,
            mode=body.mode,
            generation_type=body.generation_type,
            aspect_ratio=body.aspect_ratio,
            resolution=body.resolution,
            image_urls=tuple(body.image_urls),
            seed=body.seed,
            watermark=body.watermark,
        ),
        webhook_url=body.webhook_url,
        idempotency_key=idempotency_key,
    )
    return _accepted(api().creation.create(command, _callback_base_url(), _deadline()))


@app.post(
    "/v1/videos/<task_id>/extend",
    summary="Continue a completed video; the child stays on its parent's provider",
    responses={
        **TASK_ACCEPTED,
        **_errors(400, 401, 402, 404, 409, 413, 415, 422, 429, 502, 503),
    },
)
def extend(
    task_id: str, body: ExtendVideoBody, idempotency_key: IdempotencyKey = None
) -> Response[TaskObject]:
    command = ExtendVideo(
        owner=_principal(),
        parent_id=task_id,
        prompt=body.prompt,
        mode=body.mode,
        seed=body.seed,
        watermark=body.watermark,
        webhook_url=body.webhook_url,
        idempotency_key=idempotency_key,
    )
    return _accepted(api().creation.extend(command, _callback_base_url(), _deadline()))


def _accepted(task: Task) -> Response[TaskObject]:
    logger.set_correlation_id(task.id)
    return Response(
        status_code=202,
        content_type="application/json",
        body=api().queries.public_task(task),
        headers={"Location": f"/v1/videos/{task.id}"},
    )


@app.get(
    "/v1/videos/<task_id>",
    summary="A task, with a presigned download_url once completed",
    responses={**TASK_FOUND, **_errors(401, 404, 422)},
)
def read(task_id: str) -> TaskObject:
    logger.set_correlation_id(task_id)
    return api().queries.get_video(_principal(), task_id)


@app.delete(
    "/v1/videos/<task_id>",
    summary="Delete a completed or failed video: its stored MP4 and manifest; 404 from then on",
    responses={**VIDEO_DELETED, **_errors(401, 404, 409, 422)},
)
def delete(task_id: str) -> Response[None]:
    logger.set_correlation_id(task_id)
    api().lifecycle.delete(_principal(), task_id)
    return Response(status_code=204)


@app.post(
    "/v1/videos/<task_id>/cancel",
    summary="Cancel a task still queued: it ends failed, code cancelled; 409 once submitted",
    responses={**TASK_FOUND, **_errors(401, 404, 409, 422)},
)
def cancel(task_id: str) -> TaskObject:
    logger.set_correlation_id(task_id)
    return api().queries.public_task(api().lifecycle.cancel(_principal(), task_id))


@app.get(
    "/v1/videos",
    summary="The caller's tasks, newest first; root_id lists one family",
    responses={**TASKS_LISTED, **_errors(401, 422)},
)
def list_(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
    root_id: Annotated[str | None, Query(max_length=64)] = None,
) -> TaskList:
    return api().queries.list_videos(_principal(), limit, cursor, status, root_id)


@app.get(
    "/v1/capabilities",
    summary="What each enabled provider can do: the table every request is checked against",
    responses={**CAPABILITIES, **_errors(401, 422)},
)
def capabilities() -> Response[dict[str, Any]]:
    _principal()  # a client route: IAM-authenticated like the others
    return Response(
        status_code=200,
        content_type="application/json",
        body=api().catalog.capabilities(),
        headers={"Cache-Control": "max-age=60"},
    )


@app.get(
    "/v1/usage",
    summary="The caller's spending and tasks in a month",
    responses={**USAGE, **_errors(401, 422)},
)
def usage(
    month: Annotated[str | None, Query(min_length=7, max_length=7)] = None,
) -> Response[dict[str, Any]]:
    owner = _principal()
    return Response(
        status_code=200,
        content_type="application/json",
        body=api().usage.usage(owner, parse_month(month)),
        headers={"Cache-Control": "no-store"},
    )


@app.get(
    "/v1/webhook-secret",
    summary="The secret the caller's webhook receivers verify its deliveries with",
    # 422 as every route has it (the resolver's validation declares one; this is its body).
    responses={**WEBHOOK_SECRET, **_errors(401, 422)},
)
def read_webhook_secret() -> Response[dict[str, Any]]:
    return _webhook_secret(api().webhook_secrets.current(_principal()))


@app.post(
    "/v1/webhook-secret/rotate",
    summary="A new webhook secret; the one it replaces still signs beside it for 24 hours",
    responses={**WEBHOOK_SECRET, **_errors(400, 401, 413, 415, 422)},
)
def rotate_webhook_secret() -> Response[dict[str, Any]]:
    return _webhook_secret(api().webhook_secrets.rotate(_principal()))


def _webhook_secret(secret: str) -> Response[dict[str, Any]]:
    return Response(
        status_code=200,
        content_type="application/json",
        body={"secret": secret},
        headers={"Cache-Control": "no-store"},  # a secret: no cache may keep it
    )


@app.not_found
def no_such_route(exc: Exception) -> Response[dict[str, Any]]:
    return _error(
        404, "not_found", f"no route {app.current_event.http_method} {app.current_event.path}"
    )


Handler = TypeVar("Handler", bound=Callable[..., Response[dict[str, Any]]])


def _handles(exc_class: type[Exception]) -> Callable[[Handler], Handler]:
    """`app.exception_handler`, typed: Powertools' decorator is not, and would hide the handler's
    own signature from the type checker."""
    return cast("Callable[[Handler], Handler]", app.exception_handler(exc_class))


@_handles(VeoRelayError)
def domain_error(exc: VeoRelayError) -> Response[dict[str, Any]]:
    response = _error(status_for(exc), exc.code, str(exc))
    if isinstance(exc, CreatesThrottled):
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
    return response


@_handles(Exception)
def unexpected(exc: Exception) -> Response[dict[str, Any]]:
    logger.exception("unexpected error")
    status, code, message = unexpected_error(exc)
    response = _error(status, code, message)
    if status == 503:
        response.headers["Retry-After"] = "2"
    return response


@_handles(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
    errors = list(exc.errors())
    if errors and tuple(errors[0].get("loc", ()))[:1] == ("response",):
        # The resolver holds each answer to its route's return annotation too: one that is not
        # what docs/openapi.json describes is our fault, not the caller's.
        return unexpected(exc)
    status, message = validation_message(errors)
    return _error(status, "invalid_request", message)


def _error(status: int, code: str, message: str) -> Response[dict[str, Any]]:
    return Response(
        status_code=status, content_type="application/json", body=error_body(code, message)
    )


def _principal() -> str:
    """The owner for the IAM principal API Gateway authenticated (the only identity a deployed
    stack trusts): for a role's session, the role."""
    iam = app.current_event.request_context.authorizer.iam
    return owner_of(iam.user_arn if iam else None)


def _deadline() -> Deadline:
    """When this request's answer is due, well before API Gateway's 30 s (veo_relay.deadlines)."""
    return api_deadline(app.lambda_context.get_remaining_time_in_millis())


def _callback_base_url() -> str:
    configured = api().settings.public_base_url
    return configured or f"https://{app.current_event.request_context.domain_name}"


# The correlation id is the task's id, once the request names or creates one. No Tracer: the
# X-Ray SDK's import would add a third to this function's cold start (`make bench`), which a
# client waits on; Lambda's active tracing still records each invocation.
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refusal = refuse_raw_request(event)
    if refusal is not None:
        status, code, message = refusal
        return {
            "statusCode": status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(error_body(code, message)),
        }
    return app.resolve(event, context)
