"""bench.aws_cost and bench.cost: counts times prices, as AWS bills them, and the report row.

Nothing here starts the stack (`python -m bench --only cost` does)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import aws_cost
from bench.cost import CASES, Measured, Metering, _report
from bench.report import MET, MISSED, NO_TARGET
from bench.run import SECTIONS


@pytest.mark.parametrize(
    ("duration_ns", "billed"),
    [(0, 1), (1, 1), (1_000_000, 1), (1_000_001, 2), (102_250_000, 103)],
)
def test_lambda_bills_each_invocation_rounded_up_to_the_millisecond(
    duration_ns: int, billed: int
) -> None:
    # When an invocation lasted `duration_ns`
    # Then it is billed for the next whole millisecond (at least one)
    assert aws_cost.billed_ms(duration_ns) == billed


def test_gb_seconds_are_billed_milliseconds_times_the_memory_size() -> None:
    # When 1,000 ms ran at 1,024 MB and 103 ms at 512 MB
    # Then they are 1 GB-s and 0.0515 GB-s
    assert aws_cost.gb_seconds(1000, 1024) == 1.0
    assert aws_cost.gb_seconds(103, 512) == pytest.approx(0.0515)


@pytest.mark.parametrize(("n_bytes", "chunks"), [(0, 1), (65_536, 1), (65_537, 2), (256 * 1024, 4)])
def test_a_payload_is_billed_per_64_kb_chunk_started(n_bytes: int, chunks: int) -> None:
    assert aws_cost.chunks_64k(n_bytes) == chunks


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"id": {"S": "abc"}}, 2 + 3),
        ({"n": {"N": "-0012.3450"}}, 1 + 3 + 1),  # digits 12345: 3 bytes, plus 1
        ({"ok": {"BOOL": True}, "x": {"NULL": True}}, 3 + 2),
        ({"b": {"B": b"\x00\x01"}}, 1 + 2),
        ({"m": {"M": {"a": {"S": "xy"}}}}, 1 + 3 + 1 + 1 + 2),
        ({"l": {"L": [{"S": "x"}, {"N": "7"}]}}, 1 + 3 + (1 + 1) + (1 + 2)),
        ({"ss": {"SS": ["a", "bc"]}}, 2 + 3),
    ],
)
def test_item_size_is_names_plus_values_as_dynamodb_counts_them(
    item: dict[str, dict[str, object]], size: int
) -> None:
    assert aws_cost.item_size(item) == size


def test_a_write_costs_a_unit_per_kb_of_the_larger_of_before_and_after() -> None:
    # Then a new item of 1 KB is one unit, one byte more two, and a shrinking item costs as
    # much as it was large
    assert aws_cost.write_units(0, 1024) == 1
    assert aws_cost.write_units(0, 1025) == 2
    assert aws_cost.write_units(3000, 100) == 3
    # And a write costs at least one unit, two in a transaction
    assert aws_cost.write_units(0, 0) == 1
    assert aws_cost.write_units(0, 1025, transactional=True) == 4


def test_a_read_costs_a_unit_per_4_kb_half_of_it_eventually_consistent() -> None:
    assert aws_cost.read_units(4096, consistent=True) == 1
    assert aws_cost.read_units(4097, consistent=True) == 2
    assert aws_cost.read_units(4097, consistent=False) == 1
    assert aws_cost.read_units(0, consistent=False) == 0.5  # a miss is still a read
    assert aws_cost.read_units(100, consistent=False, transactional=True) == 2


def test_a_global_secondary_index_is_written_when_its_item_enters_changes_moves_or_leaves() -> None:
    # Given an index keyed by owner and created_at
    keys = ("owner", "created_at")
    slot = {"id": {"S": "submit-schedule#kie"}}
    task = {"id": {"S": "vid_1"}, "owner": {"S": "me"}, "created_at": {"S": "t0"}}
    changed = {**task, "status": {"S": "completed"}}
    moved = {**task, "owner": {"S": "you"}}

    # Then an item without the index's key never costs the index anything
    assert aws_cost.index_write_units(None, slot, keys) == 0
    # And one entering it, changing in it or leaving it costs a write; moving, a delete and a put
    assert aws_cost.index_write_units(None, task, keys) == 1
    assert aws_cost.index_write_units(task, changed, keys) == 1
    assert aws_cost.index_write_units(task, None, keys) == 1
    assert aws_cost.index_write_units(task, moved, keys) == 2
    # And a write that changes nothing (a failed condition) costs the index nothing
    assert aws_cost.index_write_units(task, task, keys) == 0


def test_cost_is_each_meter_s_quantity_times_its_price_grouped_by_service() -> None:
    # Given a million Lambda requests, one GB-s and a thousand state transitions
    usage = {"lambda.requests": 1e6, "lambda.gb_seconds": 1.0, "states.transitions": 1000}

    # Then each costs its list price, and Lambda's two meters add up
    assert aws_cost.cost(usage)["lambda.requests"] == pytest.approx(0.20)
    assert aws_cost.by_service(usage) == pytest.approx(
        {"Lambda": 0.20 + 0.0000133334, "Step Functions": 0.025}
    )


def test_a_meter_without_a_price_is_refused() -> None:
    with pytest.raises(KeyError, match="no price"):
        aws_cost.cost({"lambda.requestz": 1})


def test_s3_requests_are_counted_by_price_class_and_announced_changes_as_events() -> None:
    # Given the meter
    meter = Metering()

    # When a multipart upload's part and completion, a GET and a tagging are counted
    for operation in ("UploadPart", "CompleteMultipartUpload", "GetObject", "PutObjectTagging"):
        meter._count("s3", operation, {}, {}, None, ok=True)

    # Then the part is a PUT-class request like the others, and only the completion and the
    # tagging reach EventBridge
    usage = meter.take().usage
    assert usage == Counter({"s3.put_class": 3, "s3.get_class": 1, "events.s3": 2})


def test_an_empty_receive_is_not_a_video_s_and_a_large_one_counts_its_chunks() -> None:
    meter = Metering()

    # When Lambda's poller receives nothing, then a message of 70 KB
    meter._count("sqs", "ReceiveMessage", {}, {"Messages": []}, None, ok=True)
    meter._count("sqs", "ReceiveMessage", {}, {"Messages": [{"Body": "x" * 70_000}]}, None, ok=True)

    # Then only the second is counted, as two requests
    measured = meter.take()
    assert measured.usage == Counter({"sqs.requests": 2})
    assert measured.calls == Counter({"sqs ReceiveMessage": 1})


def test_a_call_without_a_price_rule_stops_the_bench() -> None:
    # (every SQS action is a billed request; a service the bench has no rule for is refused)
    with pytest.raises(RuntimeError, match="no price rule for kinesis PutRecord"):
        Metering()._count("kinesis", "PutRecord", {}, {}, None, ok=True)


def _measured(usd_per_video: float, videos: int) -> Measured:
    """`videos` videos that cost `usd_per_video` each, all of it in state transitions."""
    per_transition = aws_cost.PRICES["states.transitions"].usd_per_unit
    measured = Measured()
    measured.usage["states.transitions"] = videos * usd_per_video / per_transition
    measured.invocations["ApiFunction"] = videos
    measured.billed_ms["ApiFunction"] = videos * 80
    return measured


@pytest.mark.parametrize(("share", "result"), [(0.005, MET), (0.02, MISSED)])
def test_the_row_shows_aws_per_1000_videos_beside_the_provider_and_their_ratio(
    share: float, result: str
) -> None:
    # Given videos whose AWS cost is `share` of the provider's price
    per_video = share * aws_cost.PROVIDER_PRICE_USD
    measured = {case.name: _measured(per_video, 4) for case in CASES}

    # When the section reports them
    section = _report(measured, 4, _measured(per_video, 1))

    # Then the default (callback) row gives both prices per 1,000 videos, the ratio and the target
    row = section.rows[0]
    assert row.figure.startswith("AWS cost per 1,000 completed videos")
    assert CASES[0].name in row.figure
    assert row.value == f"${1000 * per_video:.3f}"
    assert row.baseline.startswith(f"provider ${1000 * aws_cost.PROVIDER_PRICE_USD:,.2f}")
    assert row.ratio == f"{share * 100:.3f}%"
    assert row.target == "< 1% of the provider's price"
    assert row.result == result
    # And the fallback poller's row is a figure without a target
    assert section.rows[1].result == NO_TARGET
    # And the breakdown per service is in the notes
    assert any("Step Functions $" in note for note in section.notes)


def test_the_section_can_be_run_on_its_own() -> None:
    # `python -m bench --only cost` takes its choices from SECTIONS
    assert SECTIONS["cost"] == "bench.cost"
