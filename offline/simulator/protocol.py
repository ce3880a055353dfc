"""What every provider protocol module provides to the server, plus the behaviour they share."""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from .engine import TaskEngine
from .ratelimit import RateLimit, SlidingWindowLimiter
from .tasks import SimTask
from .web import Route, SimResponse


class ProviderProtocol(ABC):
    name: ClassVar[str]
    default_rate_limit: ClassVar[RateLimit]
    default_max_concurrent_tasks: ClassVar[int | None] = None
    # What the account holds until a test sets it (POST /_sim/balance), in the provider's unit;
    # None: the provider has no balance route.
    default_balance: ClassVar[float | None] = None

    def __init__(
        self,
        engine: TaskEngine,
        *,
        rate_limit: RateLimit | None = None,
        max_concurrent_tasks: int | None = None,
    ) -> None:
        self.engine = engine
        self.limiter = SlidingWindowLimiter(rate_limit or self.default_rate_limit)
        self.max_concurrent_tasks = (
            max_concurrent_tasks
            if max_concurrent_tasks is not None
            else self.default_max_concurrent_tasks
        )

    @abstractmethod
    def routes(self) -> list[Route]: ...

    @abstractmethod
    def unauthorized(self) -> SimResponse: ...

    @abstractmethod
    def not_found(self) -> SimResponse: ...

    @abstractmethod
    def server_error(self) -> SimResponse: ...

    def prompt_of(self, body: dict[str, Any]) -> str | None:
        """The prompt in a create request body, for the submission log."""
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else None

    def admit_request(self) -> SimResponse | None:
        """A rejection for an authenticated API request before its handler runs, or None."""
        return None

    def injected_status_error(self, task: SimTask) -> int | None:
        """Counts a status read; while `[sim:status-errors=N]` lasts, returns 500 or 503."""
        reads = self.engine.store.note_status_read(task)
        if reads > task.tags.status_errors:
            return None
        return 500 if reads % 2 else 503

    def balance(self) -> float:
        assert self.default_balance is not None, f"{self.name} has no balance route"
        return self.engine.store.balance(self.default_balance)

    def at_concurrency_limit(self) -> bool:
        return (
            self.max_concurrent_tasks is not None
            and self.engine.store.count_unfinished() >= self.max_concurrent_tasks
        )
