"""The layer's Makefile recipe, run for this machine (`build-host`) into a temporary directory:
the one `sam build` runs for Lambda, with another platform and interpreter. pip fetches the
wheels (from its cache or PyPI); about 15 s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import artifacts


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts.build(tmp_path_factory.mktemp("layer-build"), []).layer


def test_every_module_of_the_layer_ships_unchecked_hash_bytecode(layer: Path) -> None:
    # Then each module, ours and the dependencies', has this interpreter's bytecode, never
    # checked against its source
    found = artifacts.bytecode(layer)
    assert found.modules > 500  # botocore, pydantic, Powertools, veo_relay...
    assert found.compiled == found.unchecked == found.modules
    assert (layer / "veo_relay" / "__pycache__").is_dir()


def test_no_bytecode_but_the_builds_own(layer: Path) -> None:
    # Then no .pyc of another interpreter (the source tree's, pip's) came along
    tag = sys.implementation.cache_tag
    assert [p for p in layer.rglob("*.pyc") if not p.name.endswith(f".{tag}.pyc")] == []


def test_the_layer_imports_alone_without_compiling(layer: Path) -> None:
    # When veo_relay and boto3 are imported from the layer alone, verbosely
    command = artifacts.import_command(
        "veo_relay.wiring", [layer], "-v", then="import boto3, pydantic"
    )
    done = subprocess.run(command, capture_output=True, text=True, check=True)

    # Then every module of the layer came from its bytecode (-v quotes a .pyc's path), none was
    # compiled from its source
    lines = done.stderr.splitlines()
    assert [line for line in lines if f"code object from '{layer}" in line]
    assert [line for line in lines if f"code object from {layer}" in line] == []
