"""A burst far above a provider's rate limit is absorbed, not passed on."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.targets import RunningStack

BURST = 200


@pytest.mark.timeout(900)
def test_a_burst_of_200_against_20_per_10_seconds_completes_without_a_429(
    burst_stack: RunningStack,
) -> None:
    # Given kie, which takes 20 new tasks per 10 seconds and refuses (429) beyond
    prompts = [f"burst video {i} [sim:size=4096]" for i in range(BURST)]

    # When 200 creates arrive at once
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda p: burst_stack.create(prompt=p, provider="kie"), prompts))

    # Then every one is accepted at once, none throttled
    assert Counter(r.status_code for r in responses) == {202: BURST}
    ids = [r.json()["id"] for r in responses]

    # and all of them complete, each with exactly one stored object
    tasks = _wait_until_closed(burst_stack, ids, timeout=600)
    elapsed = time.monotonic() - started
    errors = Counter((t["error"] or {}).get("message", "")[:80] for t in tasks if t["error"])
    assert Counter(t["status"] for t in tasks) == {"completed": BURST}, errors
    s3 = burst_stack.s3()
    for task in tasks:
        listing = s3.list_objects_v2(
            Bucket=task["video"]["bucket"], Prefix=f"videos/{task['root_id']}/"
        )
        key = task["video"]["key"]
        assert [o["Key"] for o in listing["Contents"]] == [key.removesuffix(".mp4") + ".json", key]

    # and kie never refused a submit, took each task once, and never faster than its limit
    state = burst_stack.simulator_state("kie")
    assert Counter(s["http_status"] for s in state["submissions"]) == {200: BURST}
    assert all(s["response_code"] == 200 for s in state["submissions"])
    made = Counter(t["task_id"] for t in state["tasks"])
    held = Counter(t["provider_task_id"] for t in tasks)
    assert made == held, _task_mismatch(made, held, tasks, state)
    times = sorted(s["received_at"] for s in state["submissions"])
    busiest = max(sum(1 for t in times if start <= t < start + 10) for start in times)
    print(
        f"\nburst: {BURST} creates -> {BURST} completed in {elapsed:.0f} s; kie saw "
        f"{len(state['submissions'])} submits, busiest 10-second window {busiest}"
    )
    assert busiest <= 20


CLOSED = ("completed", "failed")


def _task_mismatch(made: Counter, held: Counter, tasks: list[dict], state: dict) -> str:
    """What differs between the tasks kie made and those our tasks hold, with both sides' records
    of each id involved: the evidence a fault of this kind needs."""
    ids = {i for i in (made | held) if made[i] != held[i]}
    ours = [t for t in tasks if t["provider_task_id"] in ids]
    kies = [
        {k: v for k, v in t.items() if k in ("task_id", "prompt", "callback_url", "callbacks")}
        for t in state["tasks"]
        if t["task_id"] in ids
    ]
    return f"made by kie vs held by our tasks: {ids}\nours: {ours}\nkie's: {kies}"


def _wait_until_closed(stack: RunningStack, ids: list[str], timeout: float) -> list[dict]:
    """Each task as GET answers it once all are closed (or the time is up). Meanwhile the list of
    the caller's tasks (its only ones: two pages) tells how far they are, every second: polling
    each task would be 200 requests a round, load on the stack that is pacing the submits."""
    deadline = time.monotonic() + timeout
    while not set(ids) <= _closed_ids(stack) and time.monotonic() < deadline:
        time.sleep(1)
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda i: stack.get(i).json(), ids))


def _closed_ids(stack: RunningStack) -> set[str]:
    closed: set[str] = set()
    cursor = None
    while True:
        page = stack.list(limit=100, **({"cursor": cursor} if cursor else {})).json()
        closed.update(t["id"] for t in page["items"] if t["status"] in CLOSED)
        if not (cursor := page["next_cursor"]):
            return closed
