"""One section in a process of its own: `python -m bench.run NAME --out result.json [--quick]`."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from bench.procs import with_layer_on_path

# name -> module with `run(quick: bool) -> SectionResult`, in the order `make bench` runs them
# (cold start first, while the machine is quietest).
SECTIONS = {
    "coldstart": "bench.coldstart",
    "callback": "bench.callback_ack",
    "copy": "bench.copy_throughput",
    "workflow": "bench.workflow",
    "cost": "bench.cost",
    "e2e": "bench.burst",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("name", choices=list(SECTIONS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with_layer_on_path()
    section = importlib.import_module(SECTIONS[args.name])
    result = section.run(args.quick)
    args.out.write_text(json.dumps(result.to_json(), indent=2))


if __name__ == "__main__":
    main()
