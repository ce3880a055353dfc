"""Who the caller is: SigV4 with the caller's AWS credentials for a deployed stack (API Gateway's
IAM auth), the `X-Local-Principal` header for `make run` (which names its stand-in principal)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import botocore.session
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from requests.auth import AuthBase

# Headers the signature covers besides host and x-amz-date: the ones the API reads. Not the
# hop-by-hop ones requests adds (Connection, Accept-Encoding), which a proxy may rewrite.
_SIGNED_HEADERS = ("content-type", "idempotency-key")
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class LocalPrincipal(AuthBase):
    """The offline stack's stand-in for an IAM caller; a deployed stack never reads it."""

    def __init__(self, principal: str) -> None:
        self.principal = principal

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Local-Principal"] = self.principal
        return request


class SigV4(AuthBase):
    """Signs each request (each retry anew) for API Gateway's IAM auth, service execute-api."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self._credentials = credentials
        self._region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        headers = {k: v for k, v in request.headers.items() if k.lower() in _SIGNED_HEADERS}
        signed = AWSRequest(
            method=request.method, url=request.url, data=request.body or b"", headers=headers
        )
        # Refreshable credentials (an assumed role's) are read afresh for each signature.
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(
            signed
        )
        request.headers.update(
            {k: v for k, v in signed.headers.items() if k.lower() not in _SIGNED_HEADERS}
        )
        return request


def is_local(api_url: str) -> bool:
    """Whether the API is on this machine (`make run`), where identity is a header."""
    host = urlsplit(api_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sigv4_for(
    api_url: str, region: str | None = None, session: botocore.session.Session | None = None
) -> SigV4:
    """SigV4 with the caller's credentials (botocore's chain: environment, profile, SSO, role);
    the region from the API's execute-api host, else given, else the profile's."""
    session = session or botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ValueError("no AWS credentials to sign with (see `aws configure`)")
    found = _EXECUTE_API_HOST.match(urlsplit(api_url).hostname or "")
    region = region or (found.group(1) if found else None) or session.get_config_variable("region")
    if not region:
        raise ValueError("no AWS region: pass region=, or set AWS_REGION or a profile's region")
    return SigV4(credentials, region)
