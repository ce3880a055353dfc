"""veo-relay's Python client: `Client(api_url)` for the API, `verify_webhook` for deliveries,
and an exception per error code (veo_relay_client.errors)."""

from veo_relay_client import errors
from veo_relay_client.client import DEFAULT_API_URL, Client
from veo_relay_client.errors import *  # noqa: F403 (every error class is the package's API)
from veo_relay_client.models import Cost, Task, TaskError, TaskPage, Usage, Video
from veo_relay_client.webhooks import verify_webhook

__all__ = ["DEFAULT_API_URL", "Client", "Cost", "Task", "TaskError", "TaskPage", "Usage", "Video"]
__all__ += ["errors", "verify_webhook"]
__all__ += errors.__all__
