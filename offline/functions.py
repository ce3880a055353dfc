"""The template's functions, run in this process the way Lambda would run them."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from offline.template import ROOT, Template

LAYER_PATH = ROOT / "layers" / "shared"


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class LocalFunctions:
    """Loads each function's `app.py` (with the shared layer on the path, as Lambda would) and
    invokes its handler by logical id, function name or ARN."""

    def __init__(self, template: Template) -> None:
        if str(LAYER_PATH) not in sys.path:
            sys.path.insert(0, str(LAYER_PATH))
        self._template = template
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()
        globals_ = template.body["Globals"]["Function"]
        self._specs = {}
        for name, spec in template.of_type("AWS::Serverless::Function").items():
            props = spec["Properties"]
            self._specs[name] = (
                props["CodeUri"],
                props["Handler"],
                int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                int(props.get("Timeout", globals_.get("Timeout", 3))),
            )

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def handler(self, name: str) -> Callable[[dict[str, Any], Any], Any]:
        code_uri, handler, _, _ = self._specs[name]
        module_name, function_name = handler.rsplit(".", 1)
        with self._lock:
            if name not in self._modules:
                path = ROOT / code_uri / f"{module_name}.py"
                spec = importlib.util.spec_from_file_location(f"veo_relay_fn_{name}", path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._modules[name] = module
        return getattr(self._modules[name], function_name)

    def invoke(self, name_or_arn: str, event: dict[str, Any]) -> Any:
        name = self.logical_id(name_or_arn)
        _, _, memory, timeout = self._specs[name]
        context = LocalContext(
            function_name=name,
            memory_limit_in_mb=memory,
            timeout_seconds=timeout,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        )
        return self.handler(name)(event, context)

    def logical_id(self, name_or_arn: str) -> str:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        if name not in self._specs:
            raise KeyError(f"no function {name_or_arn!r} in template.yaml")
        return name
