"""Who owns a task: the caller's IAM ARN reduced to the principal that outlives its sessions."""

from __future__ import annotations

import pytest

from veo_relay.errors import Unauthenticated
from veo_relay.http_errors import status_for
from veo_relay.principals import owner_of

ACCT = "123456789012"


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{ACCT}:user/alice",
        f"arn:aws:iam::{ACCT}:user/division/team/alice",
        f"arn:aws:iam::{ACCT}:user/first.last+ci=1,x@example.com",
        f"arn:aws:iam::{ACCT}:root",
        f"arn:aws:sts::{ACCT}:federated-user/bob",
        f"arn:aws-us-gov:iam::{ACCT}:user/alice",
        f"arn:aws-cn:iam::{ACCT}:user/alice",
    ],
    ids=["user", "user-with-path", "user-name-chars", "root", "federated", "gov-user", "cn-user"],
)
def test_users_root_and_federated_users_keep_their_arn(arn):
    # Given a principal that signs as itself (no role session in between)
    # When its owner is derived
    # Then it is the ARN unchanged
    assert owner_of(arn) == arn


def test_two_sessions_of_one_role_are_one_owner():
    # Given two sessions of the same role, with session names chosen by whoever assumed it
    first = f"arn:aws:sts::{ACCT}:assumed-role/Renderer/alice-laptop"
    second = f"arn:aws:sts::{ACCT}:assumed-role/Renderer/botocore-session-1732190000"

    # When their owners are derived
    # Then both are the role
    assert owner_of(first) == owner_of(second) == f"arn:aws:iam::{ACCT}:role/Renderer"


def test_another_role_or_account_is_another_owner():
    renderer = owner_of(f"arn:aws:sts::{ACCT}:assumed-role/Renderer/s1")
    assert owner_of(f"arn:aws:sts::{ACCT}:assumed-role/Reviewer/s1") != renderer
    assert owner_of("arn:aws:sts::210987654321:assumed-role/Renderer/s1") != renderer


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:sts::{ACCT}:assumed-role/Renderer/s1",
        f"arn:aws:iam::{ACCT}:role/Renderer",
        f"arn:aws:iam::{ACCT}:role/teams/video/Renderer",
        f"arn:aws:iam::{ACCT}:role/service-role/Renderer",
    ],
    ids=["session", "role", "role-with-path", "service-role-path"],
)
def test_a_roles_path_is_dropped_as_its_sessions_arn_drops_it(arn):
    # Given the role as a session names it (no path) or as its own ARN (with or without a path)
    # When its owner is derived
    # Then every form is the same owner: role names are unique in an account, paths are not part
    # of a session's ARN
    assert owner_of(arn) == f"arn:aws:iam::{ACCT}:role/Renderer"


def test_sso_sessions_are_their_permission_sets_role():
    # Given an IAM Identity Center session (its role lives under /aws-reserved/sso.amazonaws.com/)
    arn = f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/me@example.com"

    # Then the owner is that role
    assert owner_of(arn) == f"arn:aws:iam::{ACCT}:role/AWSReservedSSO_Admin_0123456789abcdef"


@pytest.mark.parametrize("partition", ["aws-us-gov", "aws-cn", "aws-iso-b"])
def test_other_partitions_keep_their_partition(partition):
    # Given a role session in GovCloud, China or an isolated partition
    arn = f"arn:{partition}:sts::{ACCT}:assumed-role/Renderer/s1"

    # Then the owner is the role in that partition, never another partition's
    assert owner_of(arn) == f"arn:{partition}:iam::{ACCT}:role/Renderer"
    assert owner_of(arn) != owner_of(f"arn:aws:sts::{ACCT}:assumed-role/Renderer/s1")


@pytest.mark.parametrize(
    "arn",
    [
        None,
        "",
        "local-user",
        "arn:x",
        f"arn:aws:sts::{ACCT}:assumed-role/Renderer",  # no session
        f"arn:aws:sts::{ACCT}:assumed-role/Renderer/s1/extra",
        f"arn:aws:sts::{ACCT}:assumed-role/Renderer/s",  # a session name has 2 characters or more
        f"arn:aws:sts::{ACCT}:assumed-role/Rend er/s1",
        f"arn:aws:sts::{ACCT}:assumed-role//s1",
        f"arn:aws:sts::{ACCT}:assumed-role/{'R' * 65}/s1",
        f"arn:aws:iam::{ACCT}:role/",
        f"arn:aws:iam::{ACCT}:user/",
        f"arn:aws:iam::{ACCT}:user/alice bob",
        f"arn:aws:iam::{ACCT}:group/admins",
        f"arn:aws:iam::{ACCT}:root/extra",
        "arn:aws:iam::12345:user/alice",  # not a 12-digit account
        "arn:aws:iam:us-east-1:123456789012:user/alice",  # IAM ARNs have no region
        f"arn:gcp:iam::{ACCT}:user/alice",
        f"ARN:AWS:IAM::{ACCT}:USER/alice",
        f"arn:aws:s3:::{ACCT}",
        f" arn:aws:iam::{ACCT}:user/alice",
        f"arn:aws:iam::{ACCT}:user/alice\n",
        f"arn:aws:iam::{ACCT}:user/alicé",
    ],
)
def test_anything_else_is_unauthenticated(arn):
    # Given something that is not an IAM principal's ARN
    # When its owner is derived
    with pytest.raises(Unauthenticated) as raised:
        owner_of(arn)

    # Then the caller is refused as unauthenticated: 401
    assert status_for(raised.value) == 401
