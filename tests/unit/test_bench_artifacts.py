"""bench.artifacts: the cold start bench imports from the built layer alone, as Lambda does.

The interpreters it starts are real; nothing here opens a socket or builds the layer (the
integration suite builds it)."""

from __future__ import annotations

import json
import os
import py_compile
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from bench import artifacts

PROBE = textwrap.dedent(
    """
    import json, sys
    import layer_module
    def importable(name):
        try:
            __import__(name)
        except ImportError:
            return False
        return True
    print(json.dumps({
        "path": sys.path,
        "site": "site" in sys.modules,
        "venv_package": importable("pytest"),
        "pythonpath_module": importable("elsewhere"),
        "flags": [sys.flags.isolated, sys.flags.no_site, sys.flags.dont_write_bytecode],
    }))
    """
)


@pytest.fixture
def built(tmp_path: Path) -> artifacts.Built:
    function, layer, elsewhere = tmp_path / "fn", tmp_path / "layer" / "python", tmp_path / "else"
    for directory in (function, layer, elsewhere):
        directory.mkdir(parents=True)
    (function / "app.py").write_text(PROBE)
    (layer / "layer_module.py").write_text("")
    (elsewhere / "elsewhere.py").write_text("")
    return artifacts.Built(layer, {"fn": function})


def _probe(built: artifacts.Built, tmp_path: Path) -> dict[str, object]:
    command = artifacts.import_command("app", [built.functions["fn"], built.layer])
    # PYTHONPATH names a directory the import must not see.
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "else")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_function_then_the_layer_come_before_the_standard_library_and_nothing_else(
    built: artifacts.Built, tmp_path: Path
) -> None:
    # When the probe function is imported as the cold start bench imports a handler
    seen = _probe(built, tmp_path)

    # Then its path is the function's directory, the layer's python/, then the standard library
    path = [str(p) for p in seen["path"]]  # type: ignore[attr-defined]
    assert path[:2] == [str(built.functions["fn"]), str(built.layer)]
    assert not [p for p in path[2:] if "site-packages" in p or p in ("", str(tmp_path))]


def test_the_import_sees_no_site_packages_and_no_pythonpath(
    built: artifacts.Built, tmp_path: Path
) -> None:
    # When the probe function is imported with PYTHONPATH set, from the .venv's interpreter
    seen = _probe(built, tmp_path)

    # Then neither the .venv's packages nor PYTHONPATH's modules are importable, and site never ran
    assert seen["venv_package"] is False
    assert seen["pythonpath_module"] is False
    assert seen["site"] is False
    assert seen["flags"] == [1, 1, 1]  # -I, -S, -B


def test_the_import_writes_no_bytecode(built: artifacts.Built, tmp_path: Path) -> None:
    # Given the build's files
    before = built.files()

    # When the probe function is imported
    _probe(built, tmp_path)

    # Then no file was written beside them (no __pycache__)
    assert built.files() == before


def test_then_runs_after_the_import_in_the_same_process(built: artifacts.Built) -> None:
    # When code follows the import
    command = artifacts.import_command(
        "layer_module", [built.layer], then="print(layer_module.__name__ in sys.modules)"
    )

    # Then it sees the imported module
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


def test_a_read_only_build_can_be_made_writable_again(built: artifacts.Built, tmp_path: Path):
    # When the build is made read-only
    artifacts.make_read_only(tmp_path)

    # Then no file or directory keeps a write bit
    modes = [stat.S_IMODE(p.lstat().st_mode) for p in [tmp_path, *tmp_path.rglob("*")]]
    assert all(mode & 0o222 == 0 for mode in modes)

    # And made writable again, its owner can write everything (so that it can be deleted)
    artifacts.make_writable(tmp_path)
    modes = [stat.S_IMODE(p.lstat().st_mode) for p in [tmp_path, *tmp_path.rglob("*")]]
    assert all(mode & stat.S_IWUSR for mode in modes)


def test_bytecode_counts_modules_compiled_for_this_interpreter_and_unchecked_ones(
    tmp_path: Path,
) -> None:
    # Given three modules: one compiled unchecked-hash, one by timestamp, one not at all
    for name in ("unchecked", "timestamp", "source_only"):
        (tmp_path / f"{name}.py").write_text("x = 1\n")
    mode = py_compile.PycInvalidationMode
    for name, invalidation in (("unchecked", mode.UNCHECKED_HASH), ("timestamp", mode.TIMESTAMP)):
        py_compile.compile(str(tmp_path / f"{name}.py"), invalidation_mode=invalidation)

    # Then two have bytecode, one of them unchecked-hash
    assert artifacts.bytecode(tmp_path) == artifacts.Bytecode(modules=3, compiled=2, unchecked=1)
