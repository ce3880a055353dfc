"""`python -m bench [--quick] [--only NAME ...] [--output PATH]`.

Runs each section in a process of its own, prints the table and writes the report with the
machine it ran on. A full run writes docs/performance.md; --quick and --only print only, unless
--output names a file (their figures are not the ones to keep).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import MISSED, ROOT, Row, SectionResult, machine_info, render, table_only
from bench.run import SECTIONS

DEFAULT_OUTPUT = ROOT / "docs" / "performance.md"
SECTION_TIMEOUT = 3600  # seconds; the e2e burst alone may take ten minutes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and counts, for developing"
    )
    parser.add_argument(
        "--only", action="append", choices=list(SECTIONS), help="run only this section (repeatable)"
    )
    parser.add_argument("--output", type=Path, help=f"report file (default: {DEFAULT_OUTPUT})")
    args = parser.parse_args()
    names = args.only or list(SECTIONS)
    output = args.output or (None if args.quick or args.only else DEFAULT_OUTPUT)

    machine = machine_info()
    sections = [_run_section(name, args.quick) for name in names]
    mode = ("quick" if args.quick else "full") + (f", only {', '.join(names)}" if args.only else "")
    markdown = render(sections, machine, mode)
    print(table_only(markdown))
    if output is not None:
        output.write_text(markdown)
        print(f"\nwritten to {output}")


def _run_section(name: str, quick: bool) -> SectionResult:
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="veo-relay-bench-") as work:
        out, log = Path(work) / "result.json", Path(work) / "section.log"
        command = [sys.executable, "-m", "bench.run", name, "--out", str(out)]
        with log.open("w") as log_file:
            try:
                done = subprocess.run(
                    [*command, *(["--quick"] if quick else [])],
                    cwd=ROOT,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    timeout=SECTION_TIMEOUT,
                )
                failed = done.returncode != 0 or not out.exists()
            except subprocess.TimeoutExpired:
                failed = True
        elapsed = time.monotonic() - started
        print(f"[bench] {name} done in {elapsed:.0f} s", file=sys.stderr, flush=True)
        if not failed:
            return SectionResult.from_json(json.loads(out.read_text()))
        tail = log.read_text()[-1500:]
        print(tail, file=sys.stderr)
        result = SectionResult(name, [Row(f"{name}: the section failed", "error", result=MISSED)])
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        result.notes.append(f"the section did not finish: `{last}`")
        return result


if __name__ == "__main__":
    main()
