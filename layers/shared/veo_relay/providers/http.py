"""HTTP to a provider: one pooled session per provider, status reads retried with backoff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from veo_relay.errors import ProviderError

SUBMIT_TIMEOUT = (3.05, 20.0)
STATUS_TIMEOUT = (3.05, 10.0)

# GETs only: a submit is never repeated blindly, since a repeat could pay twice.
_STATUS_RETRY = Retry(
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
            session.mount("http://", HTTPAdapter(max_retries=_STATUS_RETRY))
            session.mount("https://", HTTPAdapter(max_retries=_STATUS_RETRY))
            session.headers["User-Agent"] = "veo-relay/1.0"
            self._session = session
        return self._session

    def _auth(self) -> dict[str, str]:
        key = self._api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        try:
            return self.session.post(
                self.base_url + path, json=body, headers=self._auth(), timeout=SUBMIT_TIMEOUT
            )
        except requests.ConnectionError as exc:
            if not _never_sent(exc):
                raise _outcome_unknown(exc) from exc
            raise ProviderError(
                "provider_unavailable",
                f"provider unreachable: {exc.__class__.__name__}",
                retryable=True,
                created_nothing=True,
            ) from exc
        except requests.RequestException as exc:
            raise _outcome_unknown(exc) from exc

    def get(self, path: str, params: dict[str, str] | None = None) -> requests.Response:
        try:
            return self.session.get(
                self.base_url + path, params=params, headers=self._auth(), timeout=STATUS_TIMEOUT
            )
        except requests.RequestException as exc:
            raise ProviderError(
                "provider_unavailable",
                f"provider status unreachable: {exc.__class__.__name__}",
                retryable=True,
            ) from exc


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
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(
            "provider_error",
            f"provider answered {response.status_code} with a body that is not a JSON object",
            raw_code=str(response.status_code),
            retryable=response.status_code >= 500,
        )
    return body
