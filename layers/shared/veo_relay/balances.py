"""Provider balances: every provider with a balance route (its spec's balance_unit) is read on a
schedule and its balance becomes the `ProviderBalance` metric, which an alarm watches. apimart
documents no balance route and is left out.

One provider failing does not keep the others from being read: each failure is logged and
counted (`ProviderErrors`), and once all were read the run raises BalanceReadFailed, so that the
function's errors show it too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from veo_relay.errors import ProviderError, VeoRelayError
from veo_relay.ports import Metrics, Providers
from veo_relay.providers.base import Balance

logger = Logger(child=True)


@dataclass(frozen=True)
class BalanceReport:
    balances: dict[str, Balance] = field(default_factory=dict)
    # The providers that could not be read, with the error code of each.
    failures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "balances": {
                name: {"amount": b.amount, "unit": b.unit} for name, b in self.balances.items()
            },
            "failures": dict(self.failures),
        }


class BalanceReadFailed(VeoRelayError):
    code = "balance_read_failed"

    def __init__(self, report: BalanceReport) -> None:
        names = ", ".join(f"{name} ({code})" for name, code in report.failures.items())
        super().__init__(f"could not read the balance of {names}")
        self.report = report


@dataclass(frozen=True)
class BalanceReader:
    providers: Providers
    # Every provider the function is configured for; those without a balance route are skipped.
    provider_names: Iterable[str]
    metrics: Metrics

    def read_all(self) -> BalanceReport:
        """Each balance, read and emitted; raises BalanceReadFailed, after the others were read,
        when any provider could not be."""
        report = BalanceReport()
        for name in self.provider_names:
            route = self.providers.get(name).balance
            if route is None:
                continue
            try:
                balance = route.read_balance()
            except ProviderError as exc:
                self.metrics.provider_error(name, exc.code)
                logger.error(
                    "provider balance not read",
                    extra={"provider": name, "code": exc.code, "reason": str(exc)},
                )
                report.failures[name] = exc.code
                continue
            self.metrics.provider_balance(name, balance.amount)
            logger.info(
                "provider balance",
                extra={"provider": name, "amount": balance.amount, "unit": balance.unit},
            )
            report.balances[name] = balance
        if report.failures:
            raise BalanceReadFailed(report)
        return report
