"""The offline stack's IAM: AWS calls in IAM terms, and the roles as SAM deploys them."""

from __future__ import annotations

import pytest

from offline.iam import Role, UnmappedCall, authorizations, roles_from_template
from offline.template import load_template

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/TasksTable"


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("dynamodb", "GetItem", {"TableName": "TasksTable"}, [("dynamodb:GetItem", TABLE)]),
        (
            "dynamodb",
            "Query",
            {"TableName": "TasksTable", "IndexName": "owner-created-index"},
            [("dynamodb:Query", f"{TABLE}/index/owner-created-index")],
        ),
        (
            "dynamodb",
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "TasksTable"}},
                    {"ConditionCheck": {"TableName": "Other"}},
                ]
            },
            [
                ("dynamodb:PutItem", TABLE),
                (
                    "dynamodb:ConditionCheckItem",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/Other",
                ),
            ],
        ),
        (
            "s3",
            "HeadObject",
            {"Bucket": "b", "Key": "videos/x.mp4"},
            [("s3:GetObject", "arn:aws:s3:::b/videos/x.mp4")],
        ),
        (
            "s3",
            "CompleteMultipartUpload",
            {"Bucket": "b", "Key": "k"},
            [("s3:PutObject", "arn:aws:s3:::b/k")],
        ),
        ("s3", "ListObjectsV2", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        (
            "sqs",
            "SendMessageBatch",
            {"QueueUrl": "http://127.0.0.1:5000/123456789012/CopyQueue"},
            [("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:CopyQueue")],
        ),
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": "Keys"},
            [
                (
                    "secretsmanager:GetSecretValue",
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:Keys",
                )
            ],
        ),
        (
            "events",
            "PutEvents",
            {"Entries": [{"EventBusName": "videos"}, {}]},
            [
                ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default"),
                ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/videos"),
            ],
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": "PollerFunction"},
            [
                (
                    "lambda:InvokeFunction",
                    "arn:aws:lambda:us-east-1:123456789012:function:PollerFunction",
                )
            ],
        ),
    ],
)
def test_a_call_is_authorized_as_the_action_and_resource_aws_checks(
    service, operation, params, expected
):
    assert authorizations(service, operation, params) == expected


def test_a_call_with_no_rule_is_refused_loudly_rather_than_let_through():
    # Given an operation nobody mapped / When authorized / Then an error names it
    with pytest.raises(UnmappedCall, match="s3:ListBuckets"):
        authorizations("s3", "ListBuckets", {})


def test_a_role_allows_what_a_statement_grants_and_an_explicit_deny_wins():
    # Given a role allowing GetObject on videos/* but denying one key
    role = Role(
        "Fn",
        "FnRole",
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::b/videos/*",
                    },
                    {
                        "Effect": "Deny",
                        "Action": "s3:*",
                        "Resource": "arn:aws:s3:::b/videos/secret",
                    },
                ]
            },
        ),
        (),
    )
    # Then
    assert role.allows("s3:GetObject", "arn:aws:s3:::b/videos/a.mp4")
    assert not role.allows("s3:GetObject", "arn:aws:s3:::b/videos/secret")
    assert not role.allows("s3:PutObject", "arn:aws:s3:::b/videos/a.mp4")
    assert not role.allows("s3:GetObject", "arn:aws:s3:::b/other/a.mp4")
    assert role.session_arn == "arn:aws:sts::123456789012:assumed-role/FnRole/Fn"


def test_every_function_and_the_state_machine_has_its_role_as_sam_deploys_it():
    # Given the template with local names for its resources (as provisioning records them)
    template = load_template()
    for name in template.resources:
        template.names.setdefault(name, name)
    for name, kind in (("Arn", "arn:aws:local:::"), ("QueueName", ""), ("Name", "")):
        for resource in template.resources:
            template.attributes.setdefault((resource, name), f"{kind}{resource}")
    template.attributes[("TasksTable", "Arn")] = TABLE
    template.attributes[("TasksTable", "StreamArn")] = f"{TABLE}/stream/1"

    # When the roles are built
    roles = roles_from_template(template)

    # Then each function and the state machine has one, with SAM's own additions
    assert set(roles) == {
        *template.of_type("AWS::Serverless::Function"),
        *template.of_type("AWS::Serverless::StateMachine"),
    }
    copy_worker = roles["CopyWorkerFunction"]
    assert copy_worker.name == "CopyWorkerFunctionRole"
    assert copy_worker.allows("logs:CreateLogStream", "*")  # AWSLambdaBasicExecutionRole
    # And a SAM policy template is expanded: the callback may send to the copy queue only
    callback = roles["CallbackFunction"]
    copy_queue = "arn:aws:sqs:us-east-1:123456789012:CopyQueue"
    assert callback.allows("sqs:SendMessage", copy_queue)
    assert not callback.allows("sqs:SendMessage", copy_queue.replace("Copy", "Submit"))
    # And least privilege holds where the review found it missing
    assert not copy_worker.allows("s3:DeleteObject", "arn:aws:local:::VideoBucket/videos/x.mp4")
    assert not roles["SubmitWorkerFunction"].allows("dynamodb:PutItem", TABLE)
    assert not roles["ApiFunction"].allows("dynamodb:Query", TABLE)
    assert roles["ApiFunction"].allows("dynamodb:Query", f"{TABLE}/index/owner-created-index")
