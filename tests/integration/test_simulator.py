"""The offline provider simulator speaks each provider's protocol over real HTTP.

Each test starts its own simulator(s) on free ports with sub-second delays; a tiny local HTTP
server stands in for veo-relay's callback endpoint.
"""

import hashlib
import json
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from offline.simulator import (
    ProviderSimulator,
    RateLimit,
    mp4_bytes_sha256,
    start_simulators,
)

API_KEY = "sim-key"
FAST = 0.2  # default task delay in these tests, seconds
PROVIDERS = ("apixo", "kie", "apimart")
CALLBACK_PROVIDERS = ("apixo", "kie")


# --- a callback receiver -------------------------------------------------------------------------


class CallbackReceiver:
    """Records every POST; answers with the planned statuses in turn, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.planned_statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(json.loads(body))
                    status = receiver.planned_statuses.pop(0) if receiver.planned_statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        serve.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/callback/token-1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    callback_receiver = CallbackReceiver()
    yield callback_receiver
    callback_receiver.stop()


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., ProviderSimulator]]:
    started: list[ProviderSimulator] = []

    def start(provider: str, **options: Any) -> ProviderSimulator:
        options = {"default_delay": FAST, "callback_retry_delays": (0.05,), **options}
        simulator = ProviderSimulator.for_provider(provider, api_key=API_KEY, **options)
        started.append(simulator.start())
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


# --- thin protocol clients, so scenarios can run against every provider --------------------------


class ProviderClient:
    """Drives one simulator through its own wire protocol; `state()` normalises the answer to
    pending / processing / running (kie has no pending) / success / failed / error."""

    def __init__(self, simulator: ProviderSimulator, api_key: str = API_KEY) -> None:
        self.base = simulator.base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.base + path, json=body, headers=self.headers, timeout=5)

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.base + path, params=params, headers=self.headers, timeout=5)


class ApixoClient(ProviderClient):
    def __init__(self, simulator: ProviderSimulator, api_key: str = API_KEY) -> None:
        super().__init__(simulator, api_key)
        self._extend_ids: set[str] = set()

    def create(self, prompt: str, callback_url: str | None = None) -> requests.Response:
        return self.post("/api/v1/generateTask/veo-3-1", _apixo_body(prompt, callback_url))

    def extend(
        self, parent_id: str, prompt: str, callback_url: str | None = None
    ) -> requests.Response:
        body = _apixo_body(prompt, callback_url, taskId=parent_id)
        response = self.post("/api/v1/generateTask/veo-3-1-extend", body)
        if response.status_code == 200:
            self._extend_ids.add(self.created_id(response))
        return response

    def created_id(self, response: requests.Response) -> str:
        return response.json()["data"]["taskId"]

    def poll(self, task_id: str) -> requests.Response:
        model = "veo-3-1-extend" if task_id in self._extend_ids else "veo-3-1"
        return self.get(f"/api/v1/statusTask/{model}", taskId=task_id)

    def state(self, response: requests.Response) -> str:
        return response.json()["data"]["state"] if response.status_code == 200 else "error"

    def video_urls(self, response: requests.Response) -> list[str]:
        return json.loads(response.json()["data"]["resultJson"])["resultUrls"]

    def created(self, response: requests.Response) -> bool:
        return response.status_code == 200


class KieClient(ProviderClient):
    def create(self, prompt: str, callback_url: str | None = None) -> requests.Response:
        return self.post(
            "/api/v1/veo/generate", _without_none(prompt=prompt, callBackUrl=callback_url)
        )

    def extend(
        self, parent_id: str, prompt: str, callback_url: str | None = None
    ) -> requests.Response:
        body = _without_none(taskId=parent_id, prompt=prompt, callBackUrl=callback_url)
        return self.post("/api/v1/veo/extend", body)

    def created_id(self, response: requests.Response) -> str:
        return response.json()["data"]["taskId"]

    def poll(self, task_id: str) -> requests.Response:
        return self.get("/api/v1/veo/record-info", taskId=task_id)

    def state(self, response: requests.Response) -> str:
        body = response.json()
        if body["code"] != 200:
            return "error"
        return {0: "running", 1: "success", 2: "failed", 3: "failed"}[body["data"]["successFlag"]]

    def video_urls(self, response: requests.Response) -> list[str]:
        return response.json()["data"]["response"]["resultUrls"]

    def created(self, response: requests.Response) -> bool:
        return response.json()["code"] == 200


class ApimartClient(ProviderClient):
    def create(self, prompt: str, callback_url: str | None = None) -> requests.Response:
        return self.post("/v1/videos/generations", {"model": "veo3.1-fast", "prompt": prompt})

    def extend(
        self, parent_id: str, prompt: str, callback_url: str | None = None
    ) -> requests.Response:
        return self.post(
            f"/v1/videos/{parent_id}/remix", {"model": "veo3.1-fast", "prompt": prompt}
        )

    def created_id(self, response: requests.Response) -> str:
        return response.json()["data"][0]["task_id"]

    def poll(self, task_id: str) -> requests.Response:
        return self.get(f"/v1/tasks/{task_id}", language="en")

    def state(self, response: requests.Response) -> str:
        if response.status_code != 200:
            return "error"
        status = response.json()["data"]["status"]
        return {"completed": "success"}.get(status, status)

    def video_urls(self, response: requests.Response) -> list[str]:
        return [
            url for video in response.json()["data"]["result"]["videos"] for url in video["url"]
        ]

    def created(self, response: requests.Response) -> bool:
        return response.status_code == 200


CLIENTS: dict[str, type[ApixoClient | KieClient | ApimartClient]] = {
    "apixo": ApixoClient,
    "kie": KieClient,
    "apimart": ApimartClient,
}


def _apixo_body(prompt: str, callback_url: str | None, **input_fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"input": {"mode": "fast", "prompt": prompt, **input_fields}}
    if callback_url:
        body |= {"request_type": "callback", "callback_url": callback_url}
    return body


def _without_none(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def wait_until_finished(client: Any, task_id: str, timeout: float = 5.0) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = client.poll(task_id)
        if client.state(response) in ("success", "failed"):
            return response
        assert time.monotonic() < deadline, f"{task_id} did not finish in {timeout}s"
        time.sleep(0.05)


def top_level_boxes(data: bytes) -> list[tuple[bytes, int]]:
    """(type, size) of each top-level ISO-BMFF box; asserts they tile the data exactly."""
    boxes, offset = [], 0
    while offset < len(data):
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        boxes.append((box_type, size))
        offset += size
    assert offset == len(data)
    return boxes


# --- every provider ------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_task_goes_from_waiting_to_a_downloadable_mp4(provider, start_simulator):
    # Given a simulator whose tasks take 1 s (pending for the first 0.3 s) and a 300 kB video
    simulator = start_simulator(provider, default_delay=1.0)
    client = CLIENTS[provider](simulator)
    size = 300_000

    # When a task is submitted and polled until it finishes
    created = client.create(f"a red fox in snow [sim:size={size}]")
    task_id = client.created_id(created)
    first_state = client.state(client.poll(task_id))
    time.sleep(0.5)
    middle_state = client.state(client.poll(task_id))
    final = wait_until_finished(client, task_id)

    # Then it was waiting, then working, then succeeded with a result URL on the simulator origin
    assert first_state == ("running" if provider == "kie" else "pending")
    assert middle_state == ("running" if provider == "kie" else "processing")
    assert client.state(final) == "success"
    (video_url,) = client.video_urls(final)
    assert video_url.startswith(f"{simulator.base_url}/files/")

    # And the URL serves a valid MP4 of exactly that size, with the bytes the helper predicts
    download = requests.get(video_url, timeout=5)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "video/mp4"
    assert int(download.headers["Content-Length"]) == size == len(download.content)
    assert download.content[4:12] == b"ftypisom"
    layout = [box for box, _ in top_level_boxes(download.content)]
    assert layout == [b"ftyp", b"moov", b"free", b"mdat"]  # the playable clip, padded
    assert hashlib.sha256(download.content).hexdigest() == mp4_bytes_sha256(size, task_id)
    assert simulator.video_sha256(task_id) == mp4_bytes_sha256(size, task_id)

    # And HEAD gives the size without a body
    head = requests.head(video_url, timeout=5)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(size)
    assert head.content == b""


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_result_video_is_not_served_before_the_task_succeeds(provider, start_simulator):
    # Given a task that is still running
    simulator = start_simulator(provider, default_delay=5)
    client = CLIENTS[provider](simulator)
    task_id = client.created_id(client.create("a slow render"))

    # When its would-be file is fetched
    response = requests.get(f"{simulator.base_url}/files/{task_id}.mp4", timeout=5)

    # Then there is nothing there yet
    assert response.status_code == 404


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_wrong_api_key_gets_the_providers_401_and_creates_nothing(provider, start_simulator):
    # Given a client with the wrong key
    simulator = start_simulator(provider)
    client = CLIENTS[provider](simulator, api_key="not-the-key")

    # When it submits a task
    response = client.create("a cat")

    # Then it is refused in the provider's own shape, and no task exists
    if provider == "apixo":
        assert response.status_code == 401 and response.json()["code"] == 401
        assert "message" in response.json()
    elif provider == "kie":
        assert response.status_code == 200
        assert response.json()["code"] == 401 and "msg" in response.json()
    else:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == 401
    assert simulator.tasks() == []
    assert simulator.submissions()[0].task_id is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_creating_beyond_the_rate_limit_is_refused(provider, start_simulator):
    # Given a simulator that admits two creations per window
    simulator = start_simulator(provider, rate_limit=RateLimit(max_requests=2, window_seconds=0.5))
    client = CLIENTS[provider](simulator)

    # When three tasks are submitted at once
    responses = [client.create(f"clip {n}") for n in range(3)]

    # Then the third gets the provider's 429 and nothing is created for it
    assert [client.created(response) for response in responses] == [True, True, False]
    refused = responses[2]
    if provider == "kie":
        assert refused.status_code == 200 and refused.json()["code"] == 429
    else:
        assert refused.status_code == 429
    assert len(simulator.tasks()) == 2

    # And once the window has slid past, submitting works again
    time.sleep(0.6)
    assert client.created(client.create("clip 3"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_fail_tag_fails_the_task_with_that_code(provider, start_simulator):
    # Given a simulator
    simulator = start_simulator(provider)
    client = CLIENTS[provider](simulator)

    # When a task asks to fail with CONTENT_VIOLATION
    task_id = client.created_id(client.create("a cat [sim:fail=CONTENT_VIOLATION]"))
    final = wait_until_finished(client, task_id)

    # Then polling reports the failure in the provider's terms
    assert client.state(final) == "failed"
    data = final.json()["data"]
    if provider == "apixo":
        assert final.json()["code"] == 200
        assert data["failCode"] == "CONTENT_VIOLATION" and data["failMsg"]
        assert "resultJson" not in data
    elif provider == "kie":
        assert data["successFlag"] == 2 and data["errorCode"] == 400
        assert "CONTENT_VIOLATION" in data["errorMessage"] and data["response"] is None
    else:
        assert data["error"]["code"] == "CONTENT_VIOLATION" and "result" not in data
    assert simulator.task(task_id).outcome == "failed"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_errors_tag_makes_the_first_reads_fail(provider, start_simulator):
    # Given a long-running task whose first two status reads fail
    simulator = start_simulator(provider, default_delay=5)
    client = CLIENTS[provider](simulator)
    task_id = client.created_id(client.create("a cat [sim:status-errors=2]"))

    # When it is read three times
    first, second, third = (client.poll(task_id) for _ in range(3))

    # Then the first two are server errors in the provider's shape and the third is normal
    if provider == "kie":
        assert [r.json()["code"] for r in (first, second)] == [500, 455]
        assert first.status_code == second.status_code == 200
    else:
        assert [r.status_code for r in (first, second)] == [500, 503]
    assert client.state(third) in ("pending", "running")
    assert simulator.task(task_id).status_reads == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_finished_task_can_be_extended(provider, start_simulator):
    # Given a finished task
    simulator = start_simulator(provider)
    client = CLIENTS[provider](simulator)
    parent_id = client.created_id(client.create("a boat at dawn"))
    wait_until_finished(client, parent_id)

    # When it is extended
    child_id = client.created_id(client.extend(parent_id, "the boat sails on [sim:size=2000]"))
    final = wait_until_finished(client, child_id)

    # Then the extension is a new task of its own that yields its own video
    assert child_id != parent_id and client.state(final) == "success"
    child = simulator.task(child_id)
    assert (child.kind, child.parent_task_id) == ("extend", parent_id)
    download = requests.get(client.video_urls(final)[0], timeout=5)
    assert len(download.content) == 2000


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unfinished_or_unknown_task_cannot_be_extended(provider, start_simulator):
    # Given a task that is still running
    simulator = start_simulator(provider, default_delay=5)
    client = CLIENTS[provider](simulator)
    running_id = client.created_id(client.create("a boat at dawn"))

    # When it, and a task id that never existed, are extended
    refusals = [client.extend(running_id, "more"), client.extend("task_unknown", "more")]

    # Then both are refused and no extension exists
    assert [client.created(response) for response in refusals] == [False, False]
    if provider == "apixo":
        assert all(response.status_code == 400 for response in refusals)
        assert "TASKID_ERROR" in refusals[0].json()["message"]
    elif provider == "kie":
        assert [response.json()["code"] for response in refusals] == [422, 404]
    else:
        assert [response.status_code for response in refusals] == [400, 404]
    assert [task.kind for task in simulator.tasks()] == ["generate"]


# --- callbacks (apixo and kie; apimart has none) -------------------------------------------------


@pytest.mark.parametrize("provider", CALLBACK_PROVIDERS)
def test_a_finished_task_calls_back_once(provider, start_simulator, receiver):
    # Given a simulator and a callback receiver
    simulator = start_simulator(provider)
    client = CLIENTS[provider](simulator)

    # When a task with a callback URL finishes
    task_id = client.created_id(client.create("a cat", callback_url=receiver.url))
    simulator.wait_for(lambda: receiver.received)
    time.sleep(0.2)  # room for an unwanted second delivery to show up

    # Then exactly one callback arrived, shaped like the provider's
    (body,) = receiver.received
    if provider == "apixo":
        assert body == client.poll(task_id).json()  # the callback body is the status body
        assert json.loads(body["data"]["resultJson"])["resultUrls"]
    else:
        assert body["code"] == 200 and body["data"]["taskId"] == task_id
        assert body["data"]["info"]["resultUrls"] == client.video_urls(client.poll(task_id))
    (attempt,) = simulator.task(task_id).callbacks
    assert (attempt.url, attempt.status_code) == (receiver.url, 200)


@pytest.mark.parametrize("provider", CALLBACK_PROVIDERS)
def test_a_failed_task_calls_back_with_the_failure(provider, start_simulator, receiver):
    # Given a simulator and a callback receiver
    simulator = start_simulator(provider)
    client = CLIENTS[provider](simulator)

    # When a task that fails with a numeric code finishes
    task_id = client.created_id(client.create("a cat [sim:fail=501]", callback_url=receiver.url))
    simulator.wait_for(lambda: receiver.received)

    # Then the callback carries the failure
    (body,) = receiver.received
    if provider == "apixo":
        assert body["data"]["state"] == "failed" and body["data"]["failCode"] == "501"
    else:
        assert body == {
            "code": 501,
            "msg": body["msg"],
            "data": {"taskId": task_id, "fallbackFlag": False},
        }
        assert client.poll(task_id).json()["data"]["successFlag"] == 3


@pytest.mark.parametrize("provider", CALLBACK_PROVIDERS)
def test_the_no_callback_tag_suppresses_the_callback(provider, start_simulator, receiver):
    # Given a simulator and a callback receiver
    simulator = start_simulator(provider)
    client = CLIENTS[provider](simulator)

    # When a tagged task with a callback URL finishes
    task_id = client.created_id(client.create("a cat [sim:no-callback]", callback_url=receiver.url))
    wait_until_finished(client, task_id)
    time.sleep(0.3)

    # Then it succeeded, but nobody was called
    assert client.state(client.poll(task_id)) == "success"
    assert receiver.received == [] and simulator.task(task_id).callbacks == ()


@pytest.mark.parametrize("provider", CALLBACK_PROVIDERS)
def test_the_duplicate_callback_tag_sends_three_identical_callbacks(
    provider, start_simulator, receiver
):
    # Given a simulator and a callback receiver
    simulator = start_simulator(provider)
    client = CLIENTS[provider](simulator)

    # When a tagged task finishes
    prompt = "a cat [sim:duplicate-callback]"
    task_id = client.created_id(client.create(prompt, callback_url=receiver.url))
    simulator.wait_for(lambda: len(receiver.received) >= 3)
    time.sleep(0.2)

    # Then the same body arrived three times
    assert len(receiver.received) == 3
    assert receiver.received[0] == receiver.received[1] == receiver.received[2]
    assert [a.copy for a in simulator.task(task_id).callbacks] == [1, 2, 3]


def test_apixo_retries_a_refused_callback_up_to_three_times(start_simulator, receiver):
    # Given a receiver that always answers 500
    simulator = start_simulator("apixo")
    client = ApixoClient(simulator)
    receiver.planned_statuses = [500] * 10

    # When a task with a callback finishes
    task_id = client.created_id(client.create("a cat", callback_url=receiver.url))
    simulator.wait_for(lambda: len(receiver.received) >= 4)
    time.sleep(0.3)

    # Then it was tried once and retried three times, then abandoned
    attempts = simulator.task(task_id).callbacks
    assert [(a.attempt, a.status_code) for a in attempts] == [(n, 500) for n in (1, 2, 3, 4)]


def test_apixo_stops_retrying_once_the_callback_is_accepted(start_simulator, receiver):
    # Given a receiver that fails once, then accepts
    simulator = start_simulator("apixo")
    client = ApixoClient(simulator)
    receiver.planned_statuses = [503]

    # When a task with a callback finishes
    task_id = client.created_id(client.create("a cat", callback_url=receiver.url))
    simulator.wait_for(lambda: len(receiver.received) >= 2)
    time.sleep(0.3)

    # Then the retry succeeded and no more were sent
    attempts = simulator.task(task_id).callbacks
    assert [a.status_code for a in attempts] == [503, 200]


def test_kie_gives_up_after_three_failed_callbacks(start_simulator, receiver):
    # Given a receiver that always answers 500
    simulator = start_simulator("kie")
    receiver.planned_statuses = [500] * 10

    # When a task with a callback finishes
    client = KieClient(simulator)
    task_id = client.created_id(client.create("a cat", callback_url=receiver.url))
    simulator.wait_for(lambda: len(receiver.received) >= 3)
    time.sleep(0.3)

    # Then exactly three attempts were made
    assert len(simulator.task(task_id).callbacks) == 3 == len(receiver.received)


def test_apimart_never_calls_back(start_simulator):
    # Given an apimart simulator and a request carrying a (foreign) callback field
    simulator = start_simulator("apimart")
    client = ApimartClient(simulator)

    # When the task finishes
    body = {"model": "veo3.1-fast", "prompt": "a cat", "callback_url": "http://127.0.0.1:9/x"}
    task_id = client.created_id(client.post("/v1/videos/generations", body))
    wait_until_finished(client, task_id)
    time.sleep(0.2)

    # Then no callback was attempted
    assert simulator.task(task_id).callbacks == ()


# --- provider-specific protocol details ----------------------------------------------------------


def test_apixo_validates_its_input_like_the_real_api(start_simulator):
    # Given an apixo simulator
    simulator = start_simulator("apixo")
    client = ApixoClient(simulator)
    url = "/api/v1/generateTask/veo-3-1"

    # When invalid requests are sent
    no_prompt = client.post(url, {"input": {"mode": "fast"}})
    image = "https://example.com/a.png"
    quality_reference = client.post(
        url,
        {
            "input": {
                "mode": "quality",
                "prompt": "x",
                "generationType": "REFERENCE_2_VIDEO",
                "image_urls": [image],
            }
        },
    )
    too_many_frames = client.post(
        url,
        {
            "input": {
                "mode": "fast",
                "prompt": "x",
                "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
                "image_urls": [image] * 3,
            }
        },
    )
    callback_without_url = client.post(url, {"request_type": "callback", "input": {"prompt": "x"}})

    # Then each is a 400 whose detail names the field, and nothing was created
    for response in (no_prompt, quality_reference, too_many_frames, callback_without_url):
        assert response.status_code == 400 and response.json()["code"] == 400
    assert "input.prompt" in no_prompt.json()["data"]["error"]
    assert "REFERENCE_2_VIDEO" in quality_reference.json()["data"]["error"]
    assert simulator.tasks() == []


def test_apixo_status_is_read_on_the_tasks_own_model_path(start_simulator):
    # Given a finished generation and its extension
    simulator = start_simulator("apixo")
    client = ApixoClient(simulator)
    parent_id = client.created_id(client.create("a boat"))
    wait_until_finished(client, parent_id)
    child_id = client.created_id(client.extend(parent_id, "more"))

    # When each is read on the other model's status path
    crossed = [
        client.get("/api/v1/statusTask/veo-3-1-extend", taskId=parent_id),
        client.get("/api/v1/statusTask/veo-3-1", taskId=child_id),
    ]

    # Then neither is found there
    assert [response.status_code for response in crossed] == [404, 404]


def test_apixo_cannot_extend_an_extension(start_simulator):
    # Given a finished extension
    simulator = start_simulator("apixo")
    client = ApixoClient(simulator)
    parent_id = client.created_id(client.create("a boat"))
    wait_until_finished(client, parent_id)
    child_id = client.created_id(client.extend(parent_id, "more"))
    wait_until_finished(client, child_id)

    # When the extension is extended
    response = client.extend(child_id, "even more")

    # Then apixo refuses: only veo-3-1 tasks can be continued
    assert response.status_code == 400 and "TASKID_ERROR" in response.json()["message"]


def test_apixo_limits_concurrent_unfinished_tasks(start_simulator):
    # Given an apixo simulator allowing one unfinished task
    simulator = start_simulator("apixo", max_concurrent_tasks=1, default_delay=0.3)
    client = ApixoClient(simulator)

    # When a second task is submitted while the first runs, and again after it finished
    first_id = client.created_id(client.create("one"))
    while_running = client.create("two")
    wait_until_finished(client, first_id)
    after = client.create("three")

    # Then only the concurrent one is refused
    assert (while_running.status_code, after.status_code) == (429, 200)


def test_kie_answers_validation_errors_in_the_body_with_http_200(start_simulator):
    # Given a kie simulator
    simulator = start_simulator("kie")
    client = KieClient(simulator)

    # When invalid requests are sent
    square = client.post("/api/v1/veo/generate", {"prompt": "x", "aspect_ratio": "1:1"})
    bad_seeds = client.post("/api/v1/veo/generate", {"prompt": "x", "seeds": 5})
    no_prompt = client.post("/api/v1/veo/generate", {"model": "veo3"})
    unknown = client.poll("veo_task_missing")

    # Then they are HTTP 200 with kie's body codes and messages
    assert all(r.status_code == 200 for r in (square, bad_seeds, no_prompt, unknown))
    assert square.json() == {"code": 422, "msg": "Ratio error", "data": None}
    assert bad_seeds.json()["code"] == 422 and "seeds" in bad_seeds.json()["msg"]
    assert no_prompt.json()["code"] == 422
    assert unknown.json() == {"code": 422, "msg": "record is null", "data": None}
    assert simulator.tasks() == []


def test_kie_reports_origin_urls_only_for_portrait_videos(start_simulator):
    # Given a kie simulator
    simulator = start_simulator("kie")
    client = KieClient(simulator)

    # When a 9:16 and a 16:9 video are generated
    portrait_body = {"prompt": "x", "aspectRatio": "9:16"}  # the older field name
    portrait = client.created_id(client.post("/api/v1/veo/generate", portrait_body))
    landscape = client.created_id(client.create("x"))
    portrait_record = wait_until_finished(client, portrait).json()["data"]["response"]
    landscape_record = wait_until_finished(client, landscape).json()["data"]["response"]

    # Then only the portrait one has an origin render, and both have their own result
    assert len(portrait_record["originUrls"]) == 1 and landscape_record["originUrls"] == []
    assert requests.get(portrait_record["originUrls"][0], timeout=5).status_code == 200


def test_kie_extend_checks_the_seeds_range(start_simulator):
    # Given a finished kie task
    simulator = start_simulator("kie")
    client = KieClient(simulator)
    parent_id = client.created_id(client.create("a boat"))
    wait_until_finished(client, parent_id)

    # When it is extended with seeds outside and inside 10000-99999
    outside = client.post("/api/v1/veo/extend", {"taskId": parent_id, "prompt": "x", "seeds": 9999})
    inside = client.post("/api/v1/veo/extend", {"taskId": parent_id, "prompt": "x", "seeds": 12345})

    # Then only the in-range one is accepted
    assert (outside.json()["code"], inside.json()["code"]) == (422, 200)


def test_apimart_answers_openai_style_errors(start_simulator):
    # Given an apimart simulator
    simulator = start_simulator("apimart")
    client = ApimartClient(simulator)

    # When invalid requests are sent
    string_duration = client.post(
        "/v1/videos/generations", {"model": "veo3.1-fast", "prompt": "x", "duration": "8"}
    )
    unknown = client.poll("task_missing")

    # Then they carry real HTTP statuses and an error object
    assert string_duration.status_code == 400
    assert string_duration.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 404


def test_apimart_remix_requires_the_original_model(start_simulator):
    # Given a finished veo3.1-fast task
    simulator = start_simulator("apimart")
    client = ApimartClient(simulator)
    parent_id = client.created_id(client.create("a boat"))
    wait_until_finished(client, parent_id)

    # When it is remixed with another model
    response = client.post(
        f"/v1/videos/{parent_id}/remix", {"model": "veo3.1-quality", "prompt": "more"}
    )

    # Then the remix is refused
    assert response.status_code == 400 and "model" in response.json()["error"]["message"]


def test_apimart_submit_and_poll_shapes(start_simulator):
    # Given an apimart simulator
    simulator = start_simulator("apimart", default_delay=1.0)
    client = ApimartClient(simulator)

    # When a task is submitted, polled while running and when done
    submitted = client.create("a cat").json()
    task_id = submitted["data"][0]["task_id"]
    time.sleep(0.5)
    running = client.poll(task_id).json()["data"]
    done = wait_until_finished(client, task_id).json()["data"]

    # Then submit answers an array, polling shows progress and an array of URLs at the end
    assert submitted == {"code": 200, "data": [{"status": "submitted", "task_id": task_id}]}
    assert running["status"] == "processing" and 0 < running["progress"] < 100
    assert done["status"] == "completed" and done["progress"] == 100
    assert isinstance(done["result"]["videos"][0]["url"], list)
    assert done["completed"] >= done["created"]


# --- introspection and start-up ------------------------------------------------------------------


def test_the_introspection_endpoint_matches_the_python_view(start_simulator):
    # Given a (long-running) task submitted twice with the same body, and read twice
    simulator = start_simulator("kie", default_delay=5)
    client = KieClient(simulator)
    first_id = client.created_id(client.create("a cat"))
    client.create("a cat")
    client.poll(first_id)
    client.poll(first_id)

    # When the simulator's own endpoint is read
    listed = requests.get(f"{simulator.base_url}/_sim/tasks", timeout=5).json()

    # Then it reports the same as the Python methods
    assert listed["provider"] == "kie"
    first = simulator.task(first_id)
    assert [task["task_id"] for task in listed["tasks"]] == [t.task_id for t in simulator.tasks()]
    assert listed["tasks"][0] == first.to_json()
    assert (first.submit_count, first.status_reads, first.kind) == (2, 2, "generate")
    assert len(listed["submissions"]) == 2


def test_start_simulators_gives_each_provider_its_own_origin():
    # Given free ports for the three providers
    ports = dict.fromkeys(PROVIDERS, 0)

    # When they are started together
    simulators = start_simulators(ports, dict.fromkeys(PROVIDERS, API_KEY))
    try:
        # Then each answers on its own origin with its own protocol
        assert len({simulator.base_url for simulator in simulators.values()}) == 3
        for provider, simulator in simulators.items():
            assert simulator.provider == provider
            response = CLIENTS[provider](simulator).create("a cat")
            assert CLIENTS[provider](simulator).created(response)
    finally:
        for simulator in simulators.values():
            simulator.stop()
