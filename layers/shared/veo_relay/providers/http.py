"""HTTP to a provider: one pooled session per provider, status reads retried with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from veo_relay.deadlines import Deadline, provider_has_time
from veo_relay.errors import ProviderError
from veo_relay.json_input import MalformedJson, parse_json

# (connect, read). A submit made while a client waits (the API) gets less when its deadline
# leaves less; the submit queue's worker always gets these.
SUBMIT_TIMEOUT = (3.05, 20.0)
STATUS_TIMEOUT = (3.05, 10.0)
_SHORTEST_TIMEOUT = 0.1  # urllib3 refuses 0; the caller made sure there was time (deadlines.py)
# A submit whose connect failed is tried again after these pauses (urllib3's backoff for the
# status reads' retries); None: the last attempt.
_CONNECT_PAUSES: tuple[float | None, ...] = (0.0, 1.0, 2.0, None)


class _GetsOnlyRetry(Retry):
    """urllib3 retries a failed connect whatever the method; here only GETs. A submit is never
    repeated by the transport: not once sent (a repeat could pay twice; urllib3 already keeps to
    that), nor after a failed connect (four 3-second connect timeouts would outlast the API's
    budget; the refusal proves nothing was created, and the submit queue tries again in a later
    slot)."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        connect_failed = error is not None and self._is_connection_error(error)
        if connect_failed and method is not None and not self._is_method_retryable(method):
            # What urllib3 raises once retries run out, so requests maps it as usual.
            raise MaxRetryError(_pool, url, error) from error  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


# GETs only: a submit is never repeated blindly, since a repeat could pay twice.
_STATUS_RETRY = _GetsOnlyRetry(
    total=3,
    backoff_factor=0.5,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=frozenset({"GET"}),
    respect_retry_after_header=True,
    raise_on_status=False,
)


class ProviderHttp:
    """`api_key` is called for each request (it reads through the secrets cache), so a key put
    or rotated after the first request is used; parsing a callback needs no key."""

    def __init__(self, base_url: str, api_key: Callable[[], str | None]) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            # No HTTP(S)_PROXY, .netrc or REQUESTS_CA_BUNDLE from the environment: a proxy would
            # be handed the Bearer key.
            session.trust_env = False
            session.mount("http://", HTTPAdapter(max_retries=_STATUS_RETRY))
            session.mount("https://", HTTPAdapter(max_retries=_STATUS_RETRY))
            session.headers["User-Agent"] = "veo-relay/1.0"
            self._session = session
        return self._session

    def _auth(self) -> dict[str, str]:
        key = self._api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def post(
        self, path: str, body: dict[str, Any], deadline: Deadline | None = None
    ) -> requests.Response:
        """A submit. A failed connect (nothing was sent) is tried again, as urllib3 would, but
        with a `deadline` only while the provider would still have its time (deadlines.py);
        connecting and waiting for the answer end by the deadline."""
        for pause in _CONNECT_PAUSES:
            try:
                response = self.session.post(
                    self.base_url + path,
                    json=body,
                    headers=self._auth(),
                    timeout=_submit_timeout(deadline),
                    allow_redirects=False,
                )
            except requests.ConnectionError as exc:
                if not _never_sent(exc):
                    raise _outcome_unknown(exc) from exc
                if pause is None or not provider_has_time(deadline, pause):
                    raise ProviderError(
                        "provider_unavailable",
                        f"provider unreachable: {exc.__class__.__name__}",
                        retryable=True,
                        created_nothing=True,
                    ) from exc
            except requests.RequestException as exc:
                raise _outcome_unknown(exc) from exc
            else:
                return _not_redirected(response)
            time.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get(self, path: str, params: dict[str, str] | None = None) -> requests.Response:
        try:
            response = self.session.get(
                self.base_url + path,
                params=params,
                headers=self._auth(),
                timeout=STATUS_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ProviderError(
                "provider_unavailable",
                f"provider status unreachable: {exc.__class__.__name__}",
                retryable=True,
            ) from exc
        # A status read redirected (a domain move, a maintenance page) says nothing of the task:
        # asked again later, so the poller keeps watching a task that may be done and paid for.
        return _not_redirected(response, retryable=True)


def _not_redirected(response: requests.Response, retryable: bool = False) -> requests.Response:
    """A provider's API answers where it is asked. A redirect is not followed: its target was
    never vetted (it may be loopback or the metadata service), and the key would go along."""
    if 300 <= response.status_code < 400:
        raise ProviderError(
            "provider_error",
            f"provider answered {response.status_code}, a redirect, which is not followed",
            raw_code=str(response.status_code),
            raw_message=response.headers.get("Location", "")[:200] or None,
            retryable=retryable,
        )
    return response


def _submit_timeout(deadline: Deadline | None) -> tuple[float, float]:
    """SUBMIT_TIMEOUT, cut to `deadline`: the longest connect and the read together fit in it."""
    connect, read = SUBMIT_TIMEOUT
    if deadline is None:
        return connect, read
    left = deadline.remaining()
    connect = max(_SHORTEST_TIMEOUT, min(connect, left))
    return connect, max(_SHORTEST_TIMEOUT, min(read, left - connect))


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when no connection was made (refused, unresolvable, connect timeout), so the provider
    cannot have seen the request; a connection dropped mid-request is not such a case."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _outcome_unknown(exc: Exception) -> ProviderError:
    # Sent, but no answer: the provider may or may not have created (and charged for) the task.
    return ProviderError(
        "timeout", f"provider did not answer the submit in time ({exc.__class__.__name__})"
    )


def json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = parse_json(response.content)
    except MalformedJson:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(
            "provider_error",
            f"provider answered {response.status_code} with a body that is not a JSON object",
            raw_code=str(response.status_code),
            retryable=response.status_code >= 500,
        )
    return body
