"""The `veo-relay` command over a faked HTTP transport: arguments, output (--json for
scripts), live progress on stderr, and exit codes that say what happened."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from tests.client_fakes import API, DOWNLOAD_URL, TASK_ID, VIDEO_BYTES, error_body, task_body
from tests.helpers import ROOT
from veo_relay_client import Task
from veo_relay_client.cli import EXIT_CODES, Progress, _parser, main


@pytest.fixture
def http() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--api", API, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_waits_shows_progress_and_saves_the_checked_video(
    http: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given the API accepts the create and the task is completed when next read
    http.post(f"{API}/v1/videos", json=task_body("in_progress", progress=40), status=202)
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))  # download's read
    http.get(DOWNLOAD_URL, body=VIDEO_BYTES)
    output = tmp_path / "fox.mp4"
    # When a video is generated with --wait --output (options after the command, --api too)
    code = main(
        [
            "generate",
            "a red fox in snow",
            "--provider",
            "kie",
            "--resolution",
            "1080p",
            "--wait",
            "--output",
            str(output),
            "--api",
            API,
        ]
    )
    out, err = capsys.readouterr()
    # Then it exits 0, the file is the video, stderr followed the task and stdout summarises it
    assert code == 0
    assert (
        hashlib.sha256(output.read_bytes()).hexdigest() == task_body("completed")["video"]["sha256"]
    )
    assert json.loads(http.calls[0].request.body) == {
        "prompt": "a red fox in snow",
        "provider": "kie",
        "resolution": "1080p",
    }
    assert "in_progress 40%" in err and "completed" in err and f"saved {output}" in err
    assert out.startswith(f"{TASK_ID}  completed  kie  fast  1080p  $0.33")


def test_generate_json_without_wait_prints_the_task_object(
    http: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    http.post(f"{API}/v1/videos", json=task_body("queued"), status=202)
    code, out, err = run(capsys, "--json", "generate", "a fox")
    assert code == 0
    assert json.loads(out) == task_body("queued")
    assert err == ""


def test_a_failed_task_exits_1(http: Any, capsys: pytest.CaptureFixture[str]) -> None:
    http.post(f"{API}/v1/videos", json=task_body("in_progress"), status=202)
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("failed"))
    code, out, err = run(capsys, "generate", "a fox [sim:fail=CONTENT_VIOLATION]", "--wait")
    assert code == 1
    assert "content_violation" in out and "content_violation" in err


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (404, error_body("not_found", "video task 'vid_x' not found"), 3),
        (402, error_body("budget_exceeded", "budget $1.40, spent $1.40"), 3),
        (409, error_body("conflict"), 3),
        (502, error_body("content_violation"), 4),
        (500, error_body("internal_error"), 4),
    ],
)
def test_an_api_error_exits_with_its_class_and_says_why(
    status: int,
    body: dict[str, Any],
    code: int,
    http: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the API answers an error
    http.get(f"{API}/v1/videos/{TASK_ID}", json=body, status=status)
    # When the task is read, for a script / Then the exit code and the JSON say what happened
    exit_code, out, err = run(capsys, "get", TASK_ID, "--json")
    assert exit_code == code
    assert json.loads(out) == {"error": {"status": status, **body["error"]}}
    assert body["error"]["message"] in err


def test_a_timeout_exits_5(http: Any, capsys: pytest.CaptureFixture[str]) -> None:
    http.post(f"{API}/v1/videos", json=task_body("in_progress"), status=202)
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("in_progress"))
    code, out, err = run(capsys, "generate", "a fox", "--wait", "--timeout", "0", "--json")
    assert code == 5
    assert "wait_timeout" in err
    shown = json.loads(out)
    assert shown["error"]["code"] == "wait_timeout"
    assert shown["task"] == task_body("in_progress")


def test_downloading_a_task_without_a_video_exits_3(
    http: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("in_progress"))
    code, _, err = run(capsys, "download", TASK_ID, str(tmp_path / "fox.mp4"))
    assert code == 3
    assert "not_completed" in err


def test_a_checksum_mismatch_exits_6_and_leaves_no_file(
    http: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    http.get(f"{API}/v1/videos/{TASK_ID}", json=task_body("completed"))
    http.get(DOWNLOAD_URL, body=b"not the video")
    code, _, err = run(capsys, "download", TASK_ID, str(tmp_path / "fox.mp4"))
    assert code == 6
    assert "checksum_mismatch" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_api_exits_4(
    http: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given nothing answers, however often asked (and the retries' backoff made instant)
    monkeypatch.setattr("veo_relay_client.client.random.uniform", lambda low, high: 0.0)
    http.get(f"{API}/v1/videos/{TASK_ID}", body=requests.ConnectionError("refused"))
    # When a task is read / Then, the retries spent, the exit code says the API was not reached
    code, _, err = run(capsys, "get", TASK_ID)
    assert code == 4
    assert "connection_error" in err
    assert len(http.calls) == 5


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["generate", "a fox", "--resolution", "8k"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code, meaning in EXIT_CODES.items():
        assert f"{code:3d}  {meaning}" in out


def test_list_prints_every_page_up_to_max(http: Any, capsys: pytest.CaptureFixture[str]) -> None:
    http.get(
        f"{API}/v1/videos",
        json={"items": [task_body(id=f"vid_{i:024x}") for i in range(2)], "next_cursor": "c"},
    )
    http.get(
        f"{API}/v1/videos", json={"items": [task_body(id="vid_" + "f" * 24)], "next_cursor": None}
    )
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    assert [task["id"] for task in json.loads(out)] == [
        f"vid_{0:024x}",
        f"vid_{1:024x}",
        "vid_" + "f" * 24,
    ]


def test_usage_and_capabilities_for_people_and_scripts(
    http: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    usage = {
        "month": "2026-12",
        "spent_usd": 0.2,
        "reserved_usd": 0.3,
        "budget_usd": 5.0,
        "tasks": {"completed": 1, "in_progress": 1},
    }
    capabilities = {
        "providers": {
            "kie": {
                "modes": ["fast", "lite"],
                "resolutions": {"720p": {}, "4k": {}},
                "aspect_ratios": ["16:9"],
            }
        },
        "default_provider": "apixo",
        "auto_order": ["apixo", "kie"],
    }
    for _ in range(2):
        http.get(f"{API}/v1/usage", json=usage)
        http.get(f"{API}/v1/capabilities", json=capabilities)
    assert run(capsys, "usage")[1] == (
        "2026-12: spent $0.20, reserved $0.30, budget $5.00; tasks: completed 1, in_progress 1\n"
    )
    assert json.loads(run(capsys, "usage", "--json")[1]) == usage
    assert run(capsys, "capabilities")[1].splitlines() == [
        "kie: modes fast, lite; resolutions 720p, 4k; aspect ratios 16:9",
        "default provider: apixo; auto tries: apixo, kie",
    ]
    assert json.loads(run(capsys, "capabilities", "--json")[1]) == capabilities


def test_cancel_and_delete(http: Any, capsys: pytest.CaptureFixture[str]) -> None:
    http.post(f"{API}/v1/videos/{TASK_ID}/cancel", json=task_body("failed"))
    http.delete(f"{API}/v1/videos/{TASK_ID}", status=204)
    assert run(capsys, "cancel", TASK_ID)[0] == 0
    assert run(capsys, "delete", TASK_ID, "--json")[1:] == (
        json.dumps({"id": TASK_ID, "deleted": True}, indent=2) + "\n",
        "",
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_redraws_the_status_and_draws_the_download_as_a_bar() -> None:
    # Given a terminal and a clock
    stream, now = Terminal(), [0.0]
    progress = Progress(stream, enabled=True, clock=lambda: now[0])
    # When the task is read twice in one state, then completes, and its video downloads
    progress.update(Task.from_dict(task_body("in_progress")))
    now[0] = 2.5
    progress.update(Task.from_dict(task_body("in_progress")))
    progress.update(Task.from_dict(task_body("completed")))
    progress.bytes(500, 1000)
    progress.bytes(1000, 1000)
    progress.saved(Task.from_dict(task_body("completed")), "fox.mp4")
    # Then the status line ticks in place, each change and the bar start lines of their own
    clear = "\x1b[K"
    assert stream.getvalue().split("\n") == [
        f"\r[  0.0s] {TASK_ID} in_progress{clear}\r[  2.5s] {TASK_ID} in_progress{clear}",
        f"[  2.5s] {TASK_ID} completed{clear}",
        f"downloading [{'#' * 15}{'.' * 15}]  50% 0.5 kB/1.0 kB{clear}"
        f"\rdownloading [{'#' * 30}] 100% 1.0 kB/1.0 kB{clear}",
        "[  2.5s] saved fox.mp4 (3.0 kB, SHA-256 checked)",
        "",
    ]


def test_progress_in_a_log_is_a_line_per_change_and_no_bar() -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=True, clock=lambda: 0.0)
    for status in ("queued", "queued", "in_progress", "completed"):
        progress.update(Task.from_dict(task_body(status)))
    progress.bytes(500, 1000)
    progress.saved(Task.from_dict(task_body("completed")), "fox.mp4")
    assert stream.getvalue().splitlines() == [
        f"[  0.0s] {TASK_ID} queued",
        f"[  0.0s] {TASK_ID} in_progress",
        f"[  0.0s] {TASK_ID} completed",
        "[  0.0s] saved fox.mp4 (3.0 kB, SHA-256 checked)",
    ]


def test_quiet_progress_writes_nothing() -> None:
    stream = Terminal()
    progress = Progress(stream, enabled=False)
    progress.update(Task.from_dict(task_body("in_progress")))
    progress.bytes(1, 2)
    assert stream.getvalue() == ""


def test_a_deployed_stack_without_aws_credentials_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no AWS credentials anywhere botocore looks (and no instance metadata to ask)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # When a deployed stack is asked / Then nothing is sent, and the exit code says why
    code = main(["--api", "https://abc123.execute-api.eu-west-1.amazonaws.com", "usage"])
    assert code == 2
    assert "no AWS credentials" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "schema"),
    [(["generate", "a fox"], "CreateVideoBody"), (["extend", TASK_ID, "a fox"], "ExtendVideoBody")],
)
def test_generate_and_extend_have_an_option_for_every_field_of_their_body(
    argv: list[str], schema: str
) -> None:
    # Given a body's fields in docs/openapi.json (image_urls is given one --image-url at a time)
    description = json.loads((ROOT / "docs" / "openapi.json").read_text())
    fields = {
        f.replace("image_urls", "image_url")
        for f in description["components"]["schemas"][schema]["properties"]
    }
    # When the command's arguments are parsed / Then each field has its own
    assert fields <= set(vars(_parser().parse_args(argv)))
