"""The functions and the shared layer as `sam build` lays them out, built for this machine, and a
fresh interpreter that imports from them alone, as Lambda does.

`sam build` runs layers/shared/Makefile's `build-SharedLayer` (arm64, python3.13); its
`build-host` target runs the same recipe for this machine's platform and this interpreter's
version, bytecode compiled with unchecked-hash included. Lambda mounts the layer read-only at /opt
and puts /opt/python on sys.path after the function's own directory (/var/task, read-only too), so
nothing it imports from them is ever compiled to a cached file: what the artifact lacks in bytecode,
every cold start compiles again.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report import ROOT

LAYER_SOURCE = ROOT / "layers" / "shared"
FUNCTIONS_SOURCE = ROOT / "functions"
BUILD_TIMEOUT = 600  # seconds; pip downloads the layer's wheels
# The flags of a hash-based .pyc whose source is never checked (PEP 552).
UNCHECKED_HASH = 0b01


@dataclass(frozen=True)
class Built:
    layer: Path  # the layer's python/ directory: what Lambda puts on sys.path as /opt/python
    functions: dict[str, Path]  # function name -> its built directory (Lambda's /var/task)

    def files(self) -> set[Path]:
        """Every file of the build: what an import could have written shows up here."""
        roots = [self.layer, *self.functions.values()]
        return {path for root in roots for path in root.rglob("*")}


def function_names() -> list[str]:
    """The functions every stack deploys (the provider simulator, deployed only for a rehearsal
    with Simulate=true, is not one of them), by their directory under functions/."""
    from offline.template import load_template

    template = load_template()
    return sorted(
        Path(spec["Properties"]["CodeUri"]).name
        for spec in template.of_type("AWS::Serverless::Function").values()
        if "Condition" not in spec
    )


def build(work: Path, names: Sequence[str]) -> Built:
    """The layer (`make build-host`) and each function (its own Makefile) built into `work`."""
    layer_dir = work / "SharedLayer"
    _make(
        LAYER_SOURCE,
        "build-host",
        ARTIFACTS_DIR=str(layer_dir),
        HOST_PYTHON=sys.executable,
        PIP=f"{sys.executable} -m pip",
    )
    functions = {}
    for name in names:
        artifacts = work / name
        artifacts.mkdir(parents=True)
        _make(FUNCTIONS_SOURCE / name, f"build-{name}", ARTIFACTS_DIR=str(artifacts))
        functions[name] = artifacts
    return Built(layer_dir / "python", functions)


def _make(directory: Path, target: str, **variables: str) -> None:
    args = ["make", "--no-print-directory", "-C", str(directory), target]
    args += [f"{key}={value}" for key, value in variables.items()]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL
    )
    if done.returncode:
        output = (done.stdout + done.stderr).strip()
        raise RuntimeError(f"{' '.join(args)} failed:\n{output[-3000:]}")


def import_command(module: str, paths: Sequence[Path], *options: str, then: str = "") -> list[str]:
    """A fresh interpreter importing `module` with exactly `paths` ahead of the standard library.

    -I: no PYTHON* variables (PYTHONPATH among them), no user site, no script directory on the
    path; -S: no site-packages either (none of the .venv's packages, nor their bytecode); -B: no
    bytecode written (PYTHONDONTWRITEBYTECODE=1, which -I would ignore). `then` runs after the
    import, in the same process."""
    code = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}; import {module}"
    if then:
        code += f"; {then}"
    return [sys.executable, "-I", "-S", "-B", *options, "-c", code]


def make_read_only(root: Path) -> None:
    _chmod_tree(root, ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), 0)


def make_writable(root: Path) -> None:
    """Undoes make_read_only, so that the build can be deleted."""
    _chmod_tree(root, ~0, stat.S_IWUSR)


def _chmod_tree(root: Path, keep: int, add: int) -> None:
    for directory, _, files in os.walk(root):
        for path in [directory, *(os.path.join(directory, f) for f in files)]:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            os.chmod(path, (mode & keep) | add)


@dataclass(frozen=True)
class Bytecode:
    modules: int  # .py files
    compiled: int  # of them, with a .pyc for this interpreter in their __pycache__
    unchecked: int  # of those, hash-based and never checked against their source

    def describe(self) -> str:
        return (
            f"{self.compiled} of its {self.modules} modules have {sys.implementation.cache_tag} "
            f"bytecode, {self.unchecked} of them unchecked-hash"
        )


def bytecode(root: Path) -> Bytecode:
    """How much of the tree under `root` this interpreter can import without compiling."""
    tag = sys.implementation.cache_tag
    modules = compiled = unchecked = 0
    for source in root.rglob("*.py"):
        modules += 1
        cached = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not cached.is_file():
            continue
        compiled += 1
        with cached.open("rb") as file:
            header = file.read(8)
        if int.from_bytes(header[4:8], "little") == UNCHECKED_HASH:
            unchecked += 1
    return Bytecode(modules, compiled, unchecked)
