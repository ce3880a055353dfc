"""What AWS bills for measured usage: us-east-1 list prices (no free tier, no savings plan) and
the billing rules that turn calls into billed units (Lambda's 1 ms rounding, DynamoDB's request
units, the 64 KB chunks of SQS and EventBridge).

Usage is a Counter of meter name -> quantity; a meter's price is per unit of that quantity.
Prices were read on 2026-12-02. Where the pricing page renders its figures client-side (Lambda,
S3, DynamoDB, SQS, EventBridge), the figure is the one quoted in the source named, or marked
"from memory": check those against the page before relying on them.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KIB = 1024
GIB = 1024**3
CHUNK_64K = 64 * KIB


@dataclass(frozen=True)
class Meter:
    service: str
    unit: str
    usd_per_unit: float
    source: str
    per: int = 1  # how the price is quoted: per this many units

    def quoted(self) -> str:
        price = f"{self.usd_per_unit * self.per:.10f}".rstrip("0").rstrip(".")
        return f"${price} per {self.per:,} {self.unit}"


_LAMBDA = (
    "https://aws.amazon.com/lambda/pricing/ (as quoted in reference/reliability-performance.md)"
)


def _from_memory(page: str) -> str:
    return f"{page}, the figure from memory (the page renders it client-side)"


_DYNAMODB = _from_memory("https://aws.amazon.com/dynamodb/pricing/on-demand/")
_S3 = _from_memory("https://aws.amazon.com/s3/pricing/")
PRICES: dict[str, Meter] = {
    "lambda.requests": Meter("Lambda", "request", 0.20 / 1e6, _LAMBDA, 10**6),
    "lambda.gb_seconds": Meter("Lambda", "GB-s (arm64)", 0.0000133334, _LAMBDA),
    "states.transitions": Meter(
        "Step Functions",
        "state transition (Standard)",
        0.025 / 1000,
        "https://aws.amazon.com/step-functions/pricing/ (as quoted in reference/"
        "reliability-performance.md)",
        1000,
    ),
    "dynamodb.write_units": Meter(
        "DynamoDB", "write request unit (on-demand)", 0.625 / 1e6, _DYNAMODB, 10**6
    ),
    "dynamodb.read_units": Meter(
        "DynamoDB", "read request unit (on-demand)", 0.125 / 1e6, _DYNAMODB, 10**6
    ),
    "dynamodb.storage_gb_month": Meter("DynamoDB", "GB-month stored", 0.25, _DYNAMODB),
    "dynamodb.pitr_gb_month": Meter("DynamoDB", "GB-month of PITR backup", 0.20, _DYNAMODB),
    "sqs.requests": Meter(
        "SQS",
        "request (64 KB chunk, standard queue)",
        0.40 / 1e6,
        _from_memory("https://aws.amazon.com/sqs/pricing/"),
        10**6,
    ),
    "events.custom": Meter(
        "EventBridge",
        "custom event (64 KB chunk)",
        1.00 / 1e6,
        "https://aws.amazon.com/eventbridge/pricing/ (64 KB chunks); the price from memory",
        10**6,
    ),
    # The pricing page tells S3's data events ("AWS opt-in data events") apart from the AWS
    # management events it ingests for free; third-party summaries call S3's events free. Charged
    # here at the custom events' price (from memory): the higher reading.
    "events.s3": Meter(
        "EventBridge",
        "S3 event (opt-in data event)",
        1.00 / 1e6,
        "https://aws.amazon.com/eventbridge/pricing/ (not free); the price from memory",
        10**6,
    ),
    "s3.put_class": Meter("S3", "PUT/COPY/POST/LIST request", 0.005 / 1000, _S3, 1000),
    "s3.get_class": Meter("S3", "GET and other request", 0.0004 / 1000, _S3, 1000),
    "s3.storage_gb_month": Meter(
        "S3",
        "GB-month, Standard",
        0.023,
        "https://aws.amazon.com/s3/pricing/ (first 50 TB; as quoted in a public price gist)",
    ),
    "apigw.requests": Meter(
        "API Gateway",
        "HTTP API request",
        1.00 / 1e6,
        "https://aws.amazon.com/api-gateway/pricing/ (as quoted in reference/"
        "reliability-performance.md)",
        10**6,
    ),
    "secretsmanager.calls": Meter(
        "Secrets Manager",
        "API call",
        0.05 / 10_000,
        _from_memory("https://aws.amazon.com/secrets-manager/pricing/"),
        10_000,
    ),
    "logs.ingested_gb": Meter(
        "CloudWatch Logs",
        "GB ingested (Standard)",
        0.50,
        _from_memory("https://aws.amazon.com/cloudwatch/pricing/"),
    ),
}


def _cheapest_video() -> tuple[float, str]:
    """The cheapest video of the template's default price table (veo_relay.pricing), and what it
    is: the target is a share of the cheapest price any provider charges."""
    from offline.template import load_template
    from veo_relay.pricing import PriceTable, to_usd
    from veo_relay.providers.registry import SPECS

    raw = load_template().parameter_defaults()["PriceTable"]
    table = PriceTable.parse(raw, {spec.name: spec.capabilities for spec in SPECS})
    micros, (provider, mode, resolution) = table.cheapest()
    return to_usd(micros), f"{provider} {mode} {resolution}, the price table's cheapest video"


PROVIDER_PRICE_USD, PROVIDER_PRICE_NAME = _cheapest_video()


def billed_ms(duration_ns: int) -> int:
    """Lambda bills each invocation's duration rounded up to the next millisecond."""
    return max(1, -(-duration_ns // 1_000_000))


def gb_seconds(billed: int, memory_mb: int) -> float:
    return billed / 1000 * memory_mb / 1024


def chunks_64k(n_bytes: int) -> int:
    """Requests (SQS) or events (EventBridge) a payload is billed as: one per 64 KB started."""
    return max(1, math.ceil(n_bytes / CHUNK_64K))


def item_size(attributes: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: each attribute's name plus its value."""
    return sum(len(name.encode()) + _value_size(value) for name, value in attributes.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return len(_binary(content))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(_number_size(n) for n in content)
    if kind == "BS":
        return sum(len(_binary(b)) for b in content)
    # A list or map: 3 bytes, plus 1 byte and the size of each element (a map's, with its name).
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in content.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


def _number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 (leading and trailing zeroes are trimmed)."""
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def _binary(content: Any) -> bytes:
    return content if isinstance(content, bytes) else base64.b64decode(content)


def write_units(before: int, after: int, transactional: bool = False) -> float:
    """One unit per KB started of the larger of the item before and after (a failed condition
    costs the same); a transaction's write costs two."""
    units = max(1, math.ceil(max(before, after) / KIB))
    return float(units * (2 if transactional else 1))


def read_units(size: int, consistent: bool, transactional: bool = False) -> float:
    """One unit per 4 KB started, half of it when eventually consistent, two in a transaction."""
    blocks = max(1, math.ceil(size / (4 * KIB)))
    if transactional:
        return float(2 * blocks)
    return float(blocks if consistent else blocks / 2)


def index_write_units(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, keys: Iterable[str]
) -> float:
    """Write units a base-table write costs in one global secondary index projecting ALL: an
    item enters or leaves the index (one write), changes in it (one), or moves to another index
    key (a delete and a put)."""
    keys = tuple(keys)
    was = before is not None and all(k in before for k in keys)
    now = after is not None and all(k in after for k in keys)
    old = item_size(before) if was and before is not None else 0
    new = item_size(after) if now and after is not None else 0
    if was and now and before is not None and after is not None:
        if all(before[k] == after[k] for k in keys):
            return write_units(old, new) if before != after else 0.0
        return write_units(old, 0) + write_units(0, new)
    if was:
        return write_units(old, 0)
    if now:
        return write_units(0, new)
    return 0.0


def cost(usage: Mapping[str, float]) -> dict[str, float]:
    """USD per meter."""
    unknown = set(usage) - set(PRICES)
    if unknown:
        raise KeyError(f"no price for {sorted(unknown)}")
    return {meter: quantity * PRICES[meter].usd_per_unit for meter, quantity in usage.items()}


def by_service(usage: Mapping[str, float]) -> dict[str, float]:
    """USD per service, most expensive first."""
    totals: Counter[str] = Counter()
    for meter, usd in cost(usage).items():
        totals[PRICES[meter].service] += usd
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def scaled(usage: Mapping[str, float], factor: float) -> dict[str, float]:
    return {meter: quantity * factor for meter, quantity in usage.items()}
