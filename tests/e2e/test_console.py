"""The local console (`make run`'s /console/) in a real headless Chromium, driven by Selenium: a
video created from its form becomes `completed` in its list and plays in its <video> element.

The browser is Debian's `chromium` and `chromedriver` (`chromium-driver`), installed with apt-get
when missing (as root, as CI runs). A browser that cannot be had fails the test: it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.targets import OfflineStack, RunningStack

BROWSER_PACKAGES = ("chromium", "chromium-driver")
APT_TIMEOUT_SECONDS = 600
CONSOLE_PRINCIPAL = "e2e-console"


def _installed() -> tuple[str, str] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _install_browser() -> tuple[str, str]:
    """Chromium and its driver, from the system's packages; pytest.fail when they cannot be had."""
    if found := _installed():
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *BROWSER_PACKAGES]
    for command in (["apt-get", "update"], install):
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"cannot install {' '.join(BROWSER_PACKAGES)}: {' '.join(command)}: {exc}")
        if done.returncode != 0:
            pytest.fail(
                f"cannot install {' '.join(BROWSER_PACKAGES)}: `{' '.join(command)}` exited "
                f"{done.returncode}:\n{done.stderr[-2000:]}"
            )
    if found := _installed():
        return found
    pytest.fail(f"{' '.join(BROWSER_PACKAGES)} installed, yet no chromium and chromedriver")


@pytest.fixture(scope="module")
def browser(stack: RunningStack) -> Iterator[WebDriver]:
    if stack.deployed:
        pytest.skip("the console is `make run`'s only; a deployed stack has none")
    chromium, chromedriver = _install_browser()
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio"):
        options.add_argument(argument)
    # Both paths given: Selenium Manager (which would download a driver) is never asked.
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, seconds: float, condition: Any, message: str) -> Any:
    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition, message)


@pytest.mark.timeout(APT_TIMEOUT_SECONDS * 2 + 120)  # a first run installs the browser
def test_a_video_made_from_the_console_form_plays_in_the_page(
    stack: RunningStack, browser: WebDriver
) -> None:
    # Given the console (which make run's banner names), as a principal of the test's own, with
    # the simulator's tags offered
    if isinstance(stack, OfflineStack) and stack.log_path:
        assert f"console:          {stack.api_url}/console/" in stack.log_path.read_text()
    browser.get(f"{stack.api_url}/console/")
    principal = browser.find_element(By.ID, "principal")
    principal.clear()
    principal.send_keys(f"{CONSOLE_PRINCIPAL}-{uuid.uuid4().hex[:8]}\n")
    _wait(browser, 10, lambda d: d.find_elements(By.ID, "tag-size"), "no simulator tags offered")
    _wait(
        browser,
        10,
        lambda d: "apixo" in [o.text for o in Select(d.find_element(By.ID, "provider")).options],
        "the providers never came from /v1/capabilities",
    )

    # When a video is asked for with the form: a prompt, a provider, a resolution and a size tag
    prompt = f"a lantern on a quiet lake {uuid.uuid4().hex[:6]}"
    browser.find_element(By.ID, "prompt").send_keys(prompt)
    Select(browser.find_element(By.ID, "provider")).select_by_value("apixo")
    Select(browser.find_element(By.ID, "resolution")).select_by_value("720p")
    browser.find_element(By.ID, "tag-size-value").send_keys("40000")
    assert browser.find_element(By.ID, "prompt-preview").text == f"{prompt} [sim:size=40000]"
    browser.find_element(By.ID, "submit").click()
    task_id = _wait(
        browser,
        15,
        lambda d: d.find_element(By.ID, "form-result").get_attribute("data-task-id"),
        "the create was not accepted",
    )

    # Then its row becomes `completed` by the page's own polling
    row = f'li.task[data-task-id="{task_id}"]'
    _wait(
        browser,
        40,
        lambda d: d.find_element(By.CSS_SELECTOR, f"{row} .status").text == "completed",
        f"{task_id} never showed completed",
    )
    assert browser.find_element(By.CSS_SELECTOR, f"{row} .prompt").text.startswith(prompt)
    # and its <video> loaded the stored MP4 from its presigned URL: frames decoded, a size known
    loaded = _wait(
        browser,
        20,
        lambda d: d.execute_script(
            "const v = document.querySelector(arguments[0]);"
            "return v && v.readyState >= 2 && v.videoWidth > 0 && !v.error"
            " ? [v.readyState, v.videoWidth, v.videoHeight, v.duration, v.currentSrc] : null;",
            f'video[data-task-id="{task_id}"]',
        ),
        f"the video of {task_id} never loaded",
    )
    ready_state, width, height, duration, source = loaded
    assert ready_state >= 2 and (width, height) == (64, 36)  # the clip's frames (tkhd: 1280x720)
    assert 0.5 <= duration <= 2
    # and it plays: frames are decoded and shown as time runs (a frameless MP4 gets this far too)
    browser.execute_script(
        "document.querySelector(arguments[0]).play();", f'video[data-task-id="{task_id}"]'
    )
    _wait(
        browser,
        10,
        lambda d: d.execute_script(
            "const v = document.querySelector(arguments[0]);"
            "return v.currentTime > 0.2 && v.getVideoPlaybackQuality().totalVideoFrames > 0;",
            f'video[data-task-id="{task_id}"]',
        ),
        f"the video of {task_id} never played",
    )
    task = stack.get(task_id, principal=principal.get_attribute("value") or "").json()
    assert task["status"] == "completed" and task["video"]["key"] in source
