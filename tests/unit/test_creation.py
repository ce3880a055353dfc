"""Creating tasks (veo_relay.creation) and submitting them (veo_relay.submission) with in-memory
ports: checked before any credit is spent, recorded once, submitted once in a slot or queued,
never paid twice, and what an Idempotency-Key repeat gets."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.fakes import (
    FakeCreationCounts,
    FakeFallbackPoller,
    FakeMetrics,
    FakeProviders,
    FakeSlots,
    FakeSpendLedger,
    FakeSubmitQueue,
    FakeTasks,
    default_prices,
    make_task,
    spending,
)
from veo_relay.callback_tokens import CallbackTokens
from veo_relay.creation import CreateVideo, ExtendVideo, TaskCreation
from veo_relay.errors import (
    BudgetExceeded,
    CreatesThrottled,
    InvalidRequest,
    ProviderError,
    TaskConflict,
    TaskNotFound,
)
from veo_relay.providers.base import GenerationRequest
from veo_relay.providers.capabilities import Capabilities
from veo_relay.providers.registry import spec_of
from veo_relay.queues import SubmitTicket
from veo_relay.settings import ProviderSettings, RateLimit
from veo_relay.submission import SubmitOutcome, Submitter
from veo_relay.tasks import TaskStatus, utc_now

ALICE = "arn:aws:iam::123456789012:user/alice"
BASE_URL = "https://relay.example"
NAMES = ("apixo", "kie", "apimart")
PROVIDER_SETTINGS = {
    name: ProviderSettings(
        name=name,
        base_url=f"https://api.{name}.example",
        api_key="key",
        download_origins=frozenset(),
        rate_limit=RateLimit(20, 10),
        first_wait_seconds=90,
    )
    for name in NAMES
}


@dataclass
class World:
    tasks: FakeTasks = field(default_factory=FakeTasks)
    providers: FakeProviders = field(default_factory=FakeProviders)
    slots: FakeSlots = field(default_factory=FakeSlots)
    submit_queue: FakeSubmitQueue = field(default_factory=FakeSubmitQueue)
    poller: FakeFallbackPoller = field(default_factory=FakeFallbackPoller)
    metrics: FakeMetrics = field(default_factory=FakeMetrics)
    preference: tuple[str, ...] = NAMES
    ledger: FakeSpendLedger = field(default_factory=FakeSpendLedger)
    budget_micros: int | None = None
    creates_per_minute: int | None = None
    counts: FakeCreationCounts = field(default_factory=FakeCreationCounts)

    @property
    def submitter(self) -> Submitter:
        return Submitter(
            tasks=self.tasks,
            providers=self.providers,
            provider_settings=PROVIDER_SETTINGS,
            slots=self.slots,
            submit_queue=self.submit_queue,
            fallback_poller=self.poller,
            callback_tokens=CallbackTokens(lambda: b"k" * 32),
            metrics=self.metrics,
            prices=default_prices(),
        )

    @property
    def creation(self) -> TaskCreation:
        return TaskCreation(
            tasks=self.tasks,
            providers=self.providers,
            submitter=self.submitter,
            metrics=self.metrics,
            spending=spending(
                self.ledger,
                self.budget_micros,
                creates_per_minute=self.creates_per_minute,
                counts=self.counts,
            ),
            provider_names=frozenset(NAMES),
            default_provider="apixo",
            provider_preference=self.preference,
            webhook_allow_loopback=False,
        )

    def create(self, provider: str | None = None, key: str | None = None, **request: object):
        fields = {
            "prompt": "a lighthouse at dawn",
            "mode": "fast",
            "generation_type": "TEXT_2_VIDEO",
            "aspect_ratio": "16:9",
            **request,
        }
        command = CreateVideo(
            owner=ALICE,
            provider=provider,
            request=GenerationRequest(**fields),  # type: ignore[arg-type]
            idempotency_key=key,
        )
        return self.creation.create(command, BASE_URL)


def refusal(code: str, created_nothing: bool = True, retryable: bool = False) -> ProviderError:
    return ProviderError(
        code, f"refused: {code}", created_nothing=created_nothing, retryable=retryable
    )


def test_a_create_with_a_slot_now_is_submitted_with_its_callback_url_and_watched():
    world = World()

    task = world.create()

    # Then the task is in progress at the provider, recorded once, and the poller watches it
    assert task.status is TaskStatus.IN_PROGRESS and task.provider_task_id == "apixo-task-1"
    ((_, callback_url),) = world.providers.get("apixo").submitted
    assert callback_url is not None
    assert callback_url.startswith(f"{BASE_URL}/v1/callbacks/apixo/{task.id}.1.")
    assert world.tasks.writes[0] == "create" and world.poller.started == {task.id: 90}
    assert world.metrics.names() == ["task_created"]


def test_a_create_whose_slot_is_later_is_queued_with_its_ticket():
    world = World(slots=FakeSlots(delay=30))

    task = world.create()

    assert task.status is TaskStatus.QUEUED
    ((ticket, slot_at),) = world.submit_queue.sent
    assert ticket == SubmitTicket(task.id, BASE_URL)
    assert world.providers.get("apixo").submitted == []
    assert task.id in world.poller.started  # its deadline runs while it waits


def test_a_request_a_provider_refuses_by_its_rules_costs_nothing():
    world = World()
    world.providers.get("apixo").capabilities = Capabilities(max_prompt_length=5)

    with pytest.raises(InvalidRequest, match="prompt"):
        world.create(prompt="far too long a prompt")
    assert world.tasks.items == {} and world.slots.reserved == []


def test_auto_skips_a_provider_whose_rules_refuse_the_request():
    world = World()
    world.providers.get("apixo").capabilities = Capabilities(seed_range=None)

    task = world.create(provider="auto", seed=7)

    assert task.provider == "kie"
    assert world.tasks.get(task.id).fallback_providers == ["apimart"]


def test_auto_picks_the_first_provider_that_can_make_the_requested_resolution():
    # Given the providers' real capability tables
    world = World()
    for name in NAMES:
        world.providers.get(name).capabilities = spec_of(name).capabilities

    # When `auto` is asked for 1080p
    task = world.create(provider="auto", resolution="1080p")

    # Then apixo (first, 720p only) is passed over for kie, and apimart stays its fallback
    assert task.provider == "kie" and task.resolution == "1080p"
    assert world.tasks.get(task.id).fallback_providers == ["apimart"]


def test_a_resolution_the_chosen_provider_lacks_is_refused_before_anything_is_spent():
    world = World()
    world.providers.get("apixo").capabilities = spec_of("apixo").capabilities
    with pytest.raises(InvalidRequest) as raised:
        world.create(provider="apixo", resolution="4k")
    assert raised.value.field == "resolution"
    assert world.tasks.items == {} and world.slots.reserved == []


def test_an_unknown_provider_is_refused_naming_the_field():
    with pytest.raises(InvalidRequest, match="provider"):
        World().create(provider="sora")


def test_a_refusal_that_created_nothing_moves_auto_on_to_the_next_provider():
    # Given apixo out of credits
    world = World()
    world.providers.get("apixo").submit_errors = [refusal("insufficient_credits")]

    # When auto creates
    task = world.create(provider="auto")

    # Then the claim is given back and the task waits for kie's slot, never paid at apixo
    stored = world.tasks.get(task.id)
    assert stored.provider == "kie" and stored.submit_claimed_at is None
    assert stored.status is TaskStatus.QUEUED
    assert world.submit_queue.sent and world.providers.get("apixo").submitted == []


def test_a_submit_whose_answer_was_lost_is_never_submitted_again():
    # Given a provider whose answer to the submit is lost (it may have created the task)
    world = World()
    world.providers.get("apixo").submit_errors = [
        refusal("provider_timeout", created_nothing=False, retryable=True)
    ]
    task = world.create()

    # When the submit queue offers the task later
    outcome = world.submitter.submit_queued(SubmitTicket(task.id, BASE_URL), 0.0)

    # Then it is not the queue's to submit: the claim stays, the callback or deadline settles it
    assert outcome is SubmitOutcome.NOT_MINE
    assert world.providers.get("apixo").submitted == []
    assert world.tasks.get(task.id).submit_claimed_at is not None
    assert task.id in world.poller.started


def test_a_refusal_for_good_fails_the_task_and_is_raised():
    world = World()
    world.providers.get("apixo").submit_errors = [refusal("content_violation")]

    with pytest.raises(ProviderError):
        world.create()
    (task,) = world.tasks.items.values()
    assert task.status is TaskStatus.FAILED and task.error is not None
    assert task.error.code == "content_violation"


def test_a_fault_after_the_task_is_recorded_still_answers_the_task_and_keeps_it_watched():
    # Given a state write that fails after the provider accepted
    world = World()

    def broken(*args: object) -> None:
        raise ConnectionError("DynamoDB throttled")

    world.tasks.mark_submitted = broken  # type: ignore[method-assign]

    # When the task is created, Then the client gets the task (no error to retry into a second)
    task = world.create()
    assert task.id in world.tasks.items and task.id in world.poller.started
    assert len(world.providers.get("apixo").submitted) == 1


def test_a_repeat_under_the_same_idempotency_key_gets_the_task_and_submits_nothing():
    world = World()
    first = world.create(key="k-1")

    again = world.create(key="k-1")

    assert again.id == first.id
    assert len(world.providers.get("apixo").submitted) == 1
    assert world.tasks.writes.count("create") == 1


def test_the_same_key_with_another_body_is_a_conflict():
    world = World()
    world.create(key="k-1")

    with pytest.raises(TaskConflict, match="Idempotency-Key"):
        world.create(key="k-1", prompt="another prompt")


def test_an_extension_stays_on_its_parents_provider_and_family():
    # Given a completed kie video of alice's
    parent = make_task(
        TaskStatus.COMPLETED, id="vid_" + "d" * 24, provider="kie", provider_model="veo3_fast"
    )
    world = World(tasks=FakeTasks(parent))

    # When she extends it
    child = world.creation.extend(
        ExtendVideo(owner=ALICE, parent_id=parent.id, prompt="and then night", mode=None),
        BASE_URL,
    )

    # Then the child is kie's, in the parent's family, submitted against the parent's task
    assert (child.provider, child.root_id, child.parent_id) == ("kie", parent.id, parent.id)
    ((request, _),) = world.providers.get("kie").submitted
    assert request.parent_provider_task_id == parent.provider_task_id  # type: ignore[union-attr]


def test_only_a_completed_video_of_ones_own_can_be_extended():
    running = make_task(TaskStatus.IN_PROGRESS, id="vid_" + "e" * 24)
    others = make_task(TaskStatus.COMPLETED, id="vid_" + "f" * 24, owner="arn:aws:iam::1:user/bob")
    world = World(tasks=FakeTasks(running, others))

    def extend(parent_id: str) -> None:
        world.creation.extend(
            ExtendVideo(owner=ALICE, parent_id=parent_id, prompt="more", mode=None), BASE_URL
        )

    with pytest.raises(TaskConflict, match="only a completed video"):
        extend(running.id)
    with pytest.raises(TaskNotFound):
        extend(others.id)
    assert world.slots.reserved == []


# ----------------------------------------------------------------------------- money


def test_a_submitted_task_costs_the_price_tables_figure_and_holds_its_reservation():
    world = World()

    task = world.create()

    # Then the provider has it at apixo's fast price, and the month holds that much
    assert task.cost == {"usd": 0.2, "source": "price_table"}
    assert world.tasks.get(task.id).reserved_micros == 200_000
    assert world.ledger.read(ALICE, task.created_at[:7]) == (200_000, 0)


def test_a_create_past_the_budget_is_refused_before_anything_is_recorded_or_sent():
    # Given a budget with $0.30 left and apixo at $0.20 a video
    world = World(budget_micros=700_000)
    world.create()
    world.create()

    # When a third video would take the month to $0.60 and a fourth past $0.70
    world.create()
    with pytest.raises(BudgetExceeded, match=r"budget: .*\$0\.70"):
        world.create()

    # Then the refused one left no task, no slot, no submit, and the month is not past its budget
    assert len(world.tasks.items) == 3 and len(world.slots.reserved) == 3
    assert len(world.providers.get("apixo").submitted) == 3
    committed, _ = world.ledger.read(ALICE, utc_now()[:7])
    assert committed == 600_000


def test_auto_reserves_its_dearest_choice_and_an_extension_its_parents_provider_price():
    world = World()
    task = world.create(provider="auto", mode="quality")
    # apixo's quality ($1.50) is the dearest of the three, and apixo takes it
    assert world.tasks.get(task.id).reserved_micros == 1_500_000
    assert task.cost == {"usd": 1.5, "source": "price_table"}


def test_a_refusal_for_good_costs_nothing():
    world = World()
    world.providers.get("apixo").submit_errors = [refusal("content_violation")]

    with pytest.raises(ProviderError):
        world.create()

    (task,) = world.tasks.items.values()
    assert task.cost == {"usd": 0.0, "source": "price_table"}


def test_a_submit_whose_answer_was_lost_costs_its_price():
    world = World()
    world.providers.get("apixo").submit_errors = [
        refusal("provider_timeout", created_nothing=False, retryable=True)
    ]
    task = world.create()
    assert world.tasks.get(task.id).cost == {"usd": 0.2, "source": "price_table"}


def test_a_queued_task_has_no_cost_yet():
    world = World(slots=FakeSlots(delay=30))
    task = world.create()
    assert task.cost is None and task.to_public()["cost"] is None


def test_a_repeat_under_the_same_key_reserves_nothing_more():
    world = World()
    first = world.create(key="k-1")
    world.create(key="k-1")
    assert world.ledger.read(ALICE, first.created_at[:7]) == (200_000, 0)


def test_the_creates_of_a_minute_past_the_limit_are_throttled_before_anything_is_written():
    world = World(creates_per_minute=1)
    world.create()
    with pytest.raises(CreatesThrottled):
        world.create()
    assert len(world.tasks.items) == 1


def test_a_deleted_video_cannot_be_extended():
    # Given a completed video whose deletion has begun (gone to every reader)
    deleted = make_task(TaskStatus.COMPLETED, deletion_requested_at="2026-11-21T10:00:00.000Z")
    world = World(tasks=FakeTasks(deleted))

    # Then an extension of it is refused as of an unknown video, before any slot is taken
    with pytest.raises(TaskNotFound):
        world.creation.extend(
            ExtendVideo(owner=ALICE, parent_id=deleted.id, prompt="more", mode=None), BASE_URL
        )
    assert world.slots.reserved == []
