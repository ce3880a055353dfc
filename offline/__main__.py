"""`make run`: the whole of veo-relay offline, in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import threading

from offline.api_gateway import DEFAULT_PRINCIPAL
from offline.iam import write_usage
from offline.isolation import deployed_roles
from offline.stack import LocalStack, Ports


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    # Every function shares this process's clients; a burst overflows their pools, harmlessly.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    stack = LocalStack(Ports.from_env(os.environ), os.environ).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    simulators = "\n".join(
        [f"  {name} simulator:  {sim.base_url}" for name, sim in stack.simulators.items()]
        + [f"  simulator function: {u.url}<provider>" for u in stack.function_urls.values()]
    )
    schedules = "\n".join(
        f"  schedule:         {t.function} every {stack.schedule_seconds or t.rate_seconds:g} s"
        " (VEO_RELAY_SCHEDULE_SECONDS)"
        for t in stack.template.schedule_triggers()
    )
    print(
        f"""veo-relay is running offline.
  HTTP API:         {stack.api_url}
  console:          {stack.api_url}/console/  (open it in a browser)
  embedded AWS:     {stack.aws_url}  (any access key, region us-east-1)
{simulators}
  videos bucket:    s3://{stack.template.names["VideoBucket"]}  (videos/<root_id>/<id>.mp4 + .json)
  event bus:        {stack.template.names["VideoEventBus"]}  (Video Completed / Video Failed)
{schedules}
  webhook secret:   {stack.webhook_secret(DEFAULT_PRINCIPAL)}
                    ({DEFAULT_PRINCIPAL}'s; each principal has its own: GET /v1/webhook-secret)

Try it:
  curl -s -X POST {stack.api_url}/v1/videos -H 'Content-Type: application/json' \\
       -d '{{"prompt": "a red fox running through fresh snow"}}'
  curl -s {stack.api_url}/v1/videos/<id>
  (add "webhook_url": "http://127.0.0.1:<port>/..." to be called when it ends)

Ctrl-C stops everything.""",
        flush=True,
    )
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        write_usage(deployed_roles())


if __name__ == "__main__":
    main()
