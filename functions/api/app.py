"""Client API: create, read and list video tasks. An adapter between HTTP and veo_relay."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from veo_relay.api_models import CreateVideoBody, ExtendVideoBody
from veo_relay.creation import CreateVideo, ExtendVideo, create_video, extend_video
from veo_relay.errors import Unauthenticated, VeoRelayError
from veo_relay.http_errors import error_body, status_for, validation_message
from veo_relay.providers.base import GenerationRequest
from veo_relay.queries import get_video, list_videos, public_task
from veo_relay.runtime import get_runtime
from veo_relay.tasks import Task

logger = Logger()
app = APIGatewayHttpResolver(enable_validation=True)


@app.post("/v1/videos")
def create(body: CreateVideoBody) -> Response[dict[str, Any]]:
    runtime = get_runtime()
    command = CreateVideo(
        owner=_principal(),
        provider=body.provider,
        request=GenerationRequest(
            prompt=body.prompt,
            mode=body.mode,
            generation_type=body.generation_type,
            aspect_ratio=body.aspect_ratio,
            image_urls=tuple(body.image_urls),
            seed=body.seed,
            watermark=body.watermark,
        ),
    )
    return _accepted(create_video(runtime, command, _callback_base_url()))


@app.post("/v1/videos/<task_id>/extend")
def extend(task_id: str, body: ExtendVideoBody) -> Response[dict[str, Any]]:
    command = ExtendVideo(
        owner=_principal(),
        parent_id=task_id,
        prompt=body.prompt,
        mode=body.mode,
        seed=body.seed,
        watermark=body.watermark,
    )
    return _accepted(extend_video(get_runtime(), command, _callback_base_url()))


def _accepted(task: Task) -> Response[dict[str, Any]]:
    return Response(
        status_code=202,
        content_type="application/json",
        body=public_task(get_runtime(), task),
        headers={"Location": f"/v1/videos/{task.id}"},
    )


@app.get("/v1/videos/<task_id>")
def read(task_id: str) -> dict[str, Any]:
    return get_video(get_runtime(), _principal(), task_id)


@app.get("/v1/videos")
def list_(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
    root_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    return list_videos(get_runtime(), _principal(), limit, cursor, status, root_id)


@app.exception_handler(VeoRelayError)
def domain_error(exc: VeoRelayError) -> Response[dict[str, Any]]:
    return _error(status_for(exc), exc.code, str(exc))


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
    status, message = validation_message(list(exc.errors()))
    return _error(status, "invalid_request", message)


def _error(status: int, code: str, message: str) -> Response[dict[str, Any]]:
    return Response(
        status_code=status, content_type="application/json", body=error_body(code, message)
    )


def _principal() -> str:
    """The IAM principal API Gateway authenticated; the only identity a deployed stack trusts."""
    iam = app.current_event.request_context.authorizer.iam
    principal = iam.user_arn if iam else None
    if not principal:
        raise Unauthenticated("the request carries no IAM identity")
    return principal


def _callback_base_url() -> str:
    configured = get_runtime().settings.public_base_url
    return configured or f"https://{app.current_event.request_context.domain_name}"


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
