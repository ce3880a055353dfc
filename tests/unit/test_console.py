"""The local console's static files: what /console/ serves, with which types, and nothing else."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from offline import console
from offline.simulator.tags import GUIDE, SimTags, parse_tags


@pytest.mark.parametrize(
    ("path", "name", "content_type"),
    [
        ("/console/", "index.html", "text/html; charset=utf-8"),
        ("/console/index.html", "index.html", "text/html; charset=utf-8"),
        ("/console/console.js", "console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "console.css", "text/css; charset=utf-8"),
    ],
)
def test_each_file_is_served_with_its_type(path: str, name: str, content_type: str) -> None:
    # Given a console file / When it is asked for
    status, headers, body = console.respond("GET", path)

    # Then it is that file, typed, not to be sniffed, its scripts from this origin only
    assert status == 200
    assert body == (console.CONSOLE_DIR / name).read_bytes()
    assert headers["Content-Type"] == content_type
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_the_folder_without_its_slash_is_redirected_to_it() -> None:
    # Given /console (the page's relative links need the slash) / When asked for / Then redirected
    assert console.respond("GET", "/console") == (308, {"Location": "/console/"}, b"")


@pytest.mark.parametrize(
    "path",
    [
        "/console/../template.yaml",
        "/console/../console.py",
        "/console/..%2Fconsole.py",
        "/console/%2e%2e/aws.py",
        "/console//etc/passwd",
        "/console/./index.html",
        "/console/console/index.html",
        "/console/index.html/",
        "/console/INDEX.HTML",
        "/console/nothing.js",
    ],
)
def test_nothing_but_the_consoles_own_files_is_served(path: str) -> None:
    # Given a path that is not one of the console's files by name / When asked for
    status, headers, body = console.respond("GET", path)

    # Then it is the contract's 404
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"


def test_a_file_of_another_type_in_the_folder_is_not_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a console folder that also holds a text file and a subfolder
    (tmp_path / "page.html").write_text("<p>page</p>")
    (tmp_path / "notes.txt").write_text("private")
    (tmp_path / "dir.js").mkdir()
    monkeypatch.setattr(console, "CONSOLE_DIR", tmp_path)

    # When each is asked for / Then only the page is served
    assert console.respond("GET", "/console/page.html")[0] == 200
    assert console.respond("GET", "/console/notes.txt")[0] == 404
    assert console.respond("GET", "/console/dir.js")[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_console_is_read_only(method: str) -> None:
    # Given a request that would change something / When sent / Then 405, naming what is allowed
    status, headers, body = console.respond(method, "/console/index.html")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")
    assert json.loads(body)["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("path", "served"),
    [
        ("/console", True),
        ("/console/", True),
        ("/console/console.js", True),
        ("/consoles", False),
        ("/console-x/index.html", False),
        ("/v1/videos", False),
        ("/", False),
    ],
)
def test_only_the_console_folder_is_taken_from_the_api(path: str, served: bool) -> None:
    # Given a path / When the local API asks / Then only /console and below are the console's
    assert console.serves(path) is served


def test_the_page_loads_nothing_from_elsewhere() -> None:
    # Given the page and its script and style
    page = (console.CONSOLE_DIR / "index.html").read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)

    # When their references are read / Then all are this folder's files (or inline data)
    assert sorted(sources) == ["console.css", "console.js", "data:,"]
    for name in ("console.js", "console.css"):
        assert not re.search(r"https?://", (console.CONSOLE_DIR / name).read_text())


def test_the_simulators_tags_are_offered_as_the_guide_says() -> None:
    # Given the tag guide / When the console's tag list is asked for
    status, headers, body = console.respond("GET", "/console/sim-tags.json")

    # Then it is the guide, as JSON
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body) == [dataclasses.asdict(tag) for tag in GUIDE]


def test_the_tag_guide_names_every_tag_the_simulator_reads() -> None:
    # Given each tag of the guide, with its example value
    changed: set[str] = set()
    for tag in GUIDE:
        text = f"[sim:{tag.name}]" if tag.value is None else f"[sim:{tag.name}={tag.example}]"

        # When a prompt carries it
        tags = parse_tags(f"a cat {text}")

        # Then it changes what the simulator does
        differing = {
            field.name
            for field in dataclasses.fields(SimTags)
            if getattr(tags, field.name) != getattr(SimTags(), field.name)
        }
        assert differing, f"{text} changes nothing"
        changed |= differing

    # and together they reach every behaviour the simulator has
    assert changed == {field.name for field in dataclasses.fields(SimTags)}
