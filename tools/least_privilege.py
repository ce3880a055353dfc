"""The least-privilege report: for every function and the state machine, what the template grants
and what the test suites used, from the decisions the offline stack recorded (`make
least-privilege` runs the integration and end-to-end suites to collect them).

Goal: nothing used that is not granted, nothing granted that is never used. The managed policies
SAM attaches (logs, X-Ray, event-source polling) serve Lambda itself and are left out.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT_PATH = ROOT / "docs" / "least-privilege.md"


def _matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, value, re.IGNORECASE if ignore_case else 0) is not None


Call = tuple[str, str, str]  # principal, action, resource

# Grants that the service uses on the role's behalf, not our code: Step Functions delivers a state
# machine's execution logs with these (its Logging configuration).
USED_BY_THE_SERVICE = {
    ("FallbackPoller", action)
    for action in (
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    )
}


def _stable(resource: str) -> str:
    """A secret's ARN without the random suffix Secrets Manager gives it: every run of the
    suites provisions its own secrets."""
    return re.sub(r"(:secret:[^:]+)-[A-Za-z0-9]{6}$", r"\1", resource)


def load(path: Path) -> tuple[set[Call], dict[Call, int], set[Call]]:
    """Grants, allowed calls (with counts) and denied calls, over every process that wrote."""
    grants: set[Call] = set()
    used: dict[Call, int] = defaultdict(int)
    denied: set[Call] = set()
    for line in path.read_text().splitlines():
        record = json.loads(line)
        grants.update(
            (g["principal"], g["action"], _stable(g["resource"])) for g in record["granted"]
        )
        for call in record["used"]:
            key = (call["principal"], call["action"], _stable(call["resource"]))
            if call["allowed"]:
                used[key] += call["calls"]
            else:
                denied.add(key)
    return grants, used, denied


def report(path: Path) -> tuple[str, bool]:
    grants, used, denied = load(path)
    lines = [
        "# Least privilege: granted and used",
        "",
        "From `make least-privilege` (the integration and end-to-end suites against the offline",
        "stack, every AWS call checked against its caller's role). Managed policies SAM attaches",
        "for Lambda itself are left out.",
        "",
        "| principal | action | resource | calls |",
        "| --- | --- | --- | --- |",
    ]
    unused = []
    for principal, action, resource in sorted(grants):
        calls = sum(
            n
            for (p, a, r), n in used.items()
            if p == principal and _matches(action, a, ignore_case=True) and _matches(resource, r)
        )
        if (principal, action) in USED_BY_THE_SERVICE:
            lines.append(f"| {principal} | `{action}` | `{resource}` | by the service |")
            continue
        lines.append(f"| {principal} | `{action}` | `{resource}` | {calls or '**never**'} |")
        if not calls:
            unused.append((principal, action, resource))
    lines += ["", "## Used but not granted (AccessDenied)", ""]
    lines += [f"- {p}: `{a}` on `{r}`" for p, a, r in sorted(denied)] or ["None."]
    lines += ["", "## Granted but never used", ""]
    lines += [f"- {p}: `{a}` on `{r}`" for p, a, r in unused] or ["None."]
    return "\n".join(lines) + "\n", not denied and not unused


def main(argv: list[str]) -> int:
    text, met = report(Path(argv[0]))
    REPORT_PATH.write_text(text)
    print(text)
    print(f"written to {REPORT_PATH.relative_to(ROOT)}; goal {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
