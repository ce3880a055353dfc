"""What importing each handler loads: the packages that would weigh on a cold start wait for their
first use, or are never loaded at all. (How long the import takes is `make bench`'s to measure.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.artifacts import function_names
from tests.helpers import ROOT

FUNCTIONS = function_names()  # every stack's (the rehearsal's simulator is not held to this)
# The X-Ray SDK (Powertools Tracer) in no function; boto3 with the first client a function's
# wiring makes; requests with the first provider; PynamoDB with the first task read or written;
# pydantic in the API alone (its validation).
NOT_AT_IMPORT = {"aws_xray_sdk", "boto3", "requests", "pynamodb"}
NOT_AT_IMPORT_BY = {name: NOT_AT_IMPORT | {"pydantic"} for name in FUNCTIONS if name != "api"}


def test_every_function_is_covered():
    assert len(FUNCTIONS) == 10


@pytest.mark.parametrize("name", FUNCTIONS)
def test_importing_the_handler_leaves_heavy_packages_for_later(name: str) -> None:
    # Given a fresh interpreter with the function's directory and the layer on its path
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "functions" / name), str(ROOT / "layers/shared")]
        ),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "veo-relay",
    }
    code = "import sys, app; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"

    # When the handler module is imported, as Lambda's cold start does
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )

    # Then none of the packages it can do without at import were loaded
    loaded = set(done.stdout.split())
    assert loaded & NOT_AT_IMPORT_BY.get(name, NOT_AT_IMPORT) == set()
