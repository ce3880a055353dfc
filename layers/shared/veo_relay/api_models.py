"""The client API's request bodies; validation failures name the field at fault."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from veo_relay.providers.registry import PROVIDER_NAMES
from veo_relay.tasks import AspectRatio, GenerationType, Mode, Resolution

# The shape only; the domain vets each as a URL the provider will fetch (rules.check_image_url).
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://[^\s/?#@]+[^\s]*$", max_length=2048)]
# Checked further by the domain (https, no private address; loopback only under `make run`).
WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048)]

if TYPE_CHECKING:
    ProviderChoice = str
else:
    # A Literal of the registry's names and "auto": a type checker cannot see through it, and
    # pydantic validates and documents it as if it were written out.
    ProviderChoice = Literal[(*PROVIDER_NAMES, "auto")]


class CreateVideoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, StringConstraints(min_length=1, max_length=10000)]
    provider: ProviderChoice | None = None
    mode: Mode = "fast"
    generation_type: GenerationType = "TEXT_2_VIDEO"
    aspect_ratio: AspectRatio = "16:9"
    # Which of these (and which modes) a provider offers: GET /v1/capabilities.
    resolution: Resolution = "720p"
    image_urls: Annotated[list[HttpsUrl], Field(max_length=3)] = []
    seed: Annotated[StrictInt, Field(ge=0, le=4294967295)] | None = None
    watermark: Annotated[str, StringConstraints(max_length=100)] | None = None
    webhook_url: WebhookUrl | None = None


class ExtendVideoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, StringConstraints(min_length=1, max_length=10000)]
    mode: Mode | None = None  # None: the parent's mode
    seed: Annotated[StrictInt, Field(ge=0, le=4294967295)] | None = None
    watermark: Annotated[str, StringConstraints(max_length=100)] | None = None
    webhook_url: WebhookUrl | None = None


class WebhookSecretBody(BaseModel):
    """The caller's own webhook signing secret."""

    secret: str = Field(description="whsec_ and base64: the key your receiver verifies with")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx body."""

    error: ErrorDetail
