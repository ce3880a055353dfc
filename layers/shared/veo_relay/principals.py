"""Who owns a task: the caller's IAM identity, reduced to the principal that stays the same
across its sessions.

API Gateway names an IAM caller by the ARN it signed with. For a role that is the session's ARN,
`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`, and the session name is chosen by whoever assumes
the role: owning tasks by it would lose them at the next session and let a caller pick an owner.
The owner is the role instead, `arn:aws:iam::ACCT:role/ROLE`. A session's ARN carries no role
path, so a role's ARN given with one (offline, `X-Local-Principal`) is reduced to the same form;
role names are unique in an account whatever their path. IAM users, the account root and STS
federated users (GetFederationToken) are principals in their own right and keep their ARN.
"""

from __future__ import annotations

import re

from veo_relay.errors import Unauthenticated

# aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, ...
_PARTITION = r"(?P<partition>aws(?:-[a-z]+)*)"
_ACCOUNT = r"(?P<account>\d{12})"
# IAM's character set for role, user and session names (no "/"), and its length limits.
_NAME = r"[\w+=,.@-]"
# An IAM path between the type and the name: "" or "a/b/" (IAM's path characters).
_PATH = r"(?:[\x21-\x7e]*/)?"

_ASSUMED_ROLE = re.compile(
    rf"arn:{_PARTITION}:sts::{_ACCOUNT}:assumed-role/(?P<role>{_NAME}{{1,64}})/{_NAME}{{2,64}}",
    re.ASCII,
)
_ROLE = re.compile(
    rf"arn:{_PARTITION}:iam::{_ACCOUNT}:role/{_PATH}(?P<role>{_NAME}{{1,64}})", re.ASCII
)
_KEPT = (
    re.compile(rf"arn:{_PARTITION}:iam::{_ACCOUNT}:user/{_PATH}{_NAME}{{1,64}}", re.ASCII),
    re.compile(rf"arn:{_PARTITION}:iam::{_ACCOUNT}:root", re.ASCII),
    re.compile(rf"arn:{_PARTITION}:sts::{_ACCOUNT}:federated-user/{_NAME}{{2,32}}", re.ASCII),
)


def owner_of(caller_arn: str | None) -> str:
    """The owner of the tasks `caller_arn` creates and sees. Raises Unauthenticated for anything
    that is not an IAM principal's ARN."""
    if not caller_arn:
        raise Unauthenticated("the request carries no IAM identity")
    role = _ASSUMED_ROLE.fullmatch(caller_arn) or _ROLE.fullmatch(caller_arn)
    if role is not None:
        return f"arn:{role['partition']}:iam::{role['account']}:role/{role['role']}"
    if any(pattern.fullmatch(caller_arn) for pattern in _KEPT):
        return caller_arn
    raise Unauthenticated("the request's IAM identity is not a principal this API knows")
