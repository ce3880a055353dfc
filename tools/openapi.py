"""Writes docs/openapi.json, the OpenAPI description generated from the API function's routes.

`make openapi` runs it; a unit test fails when the committed file and the code disagree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_PATH = ROOT / "docs" / "openapi.json"


def generate() -> str:
    sys.path.insert(0, str(ROOT / "layers" / "shared"))
    spec = importlib.util.spec_from_file_location(
        "veo_relay_api_app", ROOT / "functions/api/app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    schema: str = module.app.get_openapi_json_schema(
        title="veo-relay",
        version="1.0.0",
        description=(
            "Veo 3.1 videos through provider aggregators, kept in your S3 bucket. Client routes "
            'use IAM auth (SigV4); every error body is {"error": {"code", "message"}}.'
        ),
    )
    return schema + "\n"


if __name__ == "__main__":
    OPENAPI_PATH.parent.mkdir(exist_ok=True)
    OPENAPI_PATH.write_text(generate())
    print(f"wrote {OPENAPI_PATH.relative_to(ROOT)}")
