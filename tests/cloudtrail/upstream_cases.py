"""Upstream's CloudTrail regression cases (``shared/testdata/cloudtrail/cases.yaml``), importable.

A case names a trace (a CloudTrail log file), the rules files to load, and what upstream Falco
does with them: the exact alert count per rule (``expect``), no alert (``expect_none``), or a
failed start naming the required version (``expect_exit_nonzero`` + ``stderr_contains``).
These helpers turn a case into ``falconet`` arguments and judge a run::

    for case in load_cases():
        args = replay_args(case, write_config(tmp))
        check_run(case, exit_code, parse_alerts(stdout), stderr)   # AssertionError if it differs
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from falconet.ruleset.model import Priority

from .helpers import TESTDATA, UPSTREAM_RULES
from .helpers import parse_alerts as parse_alerts
from .helpers import write_config as write_config

CASES_FILE = TESTDATA / "cases.yaml"
#: the name cases.yaml uses for upstream's rules file
UPSTREAM_RULES_NAME = "aws_cloudtrail_rules.yaml"
SKIP_REASON = f"upstream cloudtrail cases not found at {CASES_FILE} (shared/ is not beside main)"
_KEYS = {"id", "trace", "rules", "expect", "expect_none", "expect_exit_nonzero",
         "min_priority_seen", "stderr_contains"}


@dataclass(frozen=True)
class Case:
    """One entry of cases.yaml, paths resolved."""

    id: str
    trace: Path
    rules: tuple[Path, ...]
    expect: Mapping[str, int] = field(default_factory=dict)
    expect_none: bool = False
    expect_exit_nonzero: bool = False
    min_priority_seen: Priority | None = None
    stderr_contains: str | None = None


def available() -> bool:
    """Whether the shared upstream data is beside the repository."""
    return CASES_FILE.is_file() and UPSTREAM_RULES.is_file()


def _rules_path(name: str) -> Path:
    return UPSTREAM_RULES if name == UPSTREAM_RULES_NAME else TESTDATA / name


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    """Every case of cases.yaml, in file order; a malformed entry raises ValueError."""
    docs = yaml.safe_load(path.read_text())
    if not isinstance(docs, list):
        raise ValueError(f"{path}: expected a list of cases")
    cases = []
    for doc in docs:
        unknown = set(doc) - _KEYS
        if unknown:
            raise ValueError(f"{path}: case {doc.get('id')!r}: unknown keys {sorted(unknown)}")
        priority = doc.get("min_priority_seen")
        cases.append(Case(
            id=str(doc["id"]),
            trace=TESTDATA / "traces" / doc["trace"],
            rules=tuple(_rules_path(r) for r in doc["rules"]),
            expect={str(k): int(v) for k, v in (doc.get("expect") or {}).items()},
            expect_none=bool(doc.get("expect_none", False)),
            expect_exit_nonzero=bool(doc.get("expect_exit_nonzero", False)),
            min_priority_seen=None if priority is None else Priority.parse(priority),
            stderr_contains=doc.get("stderr_contains"),
        ))
    return cases


def replay_args(case: Case, config: Path) -> list[str]:
    """The ``falconet`` arguments (no program name) replaying the case's trace."""
    rules = [arg for path in case.rules for arg in ("-r", str(path))]
    return ["-c", str(config), *rules, "--source", "aws_cloudtrail", "-e", str(case.trace)]


def check_run(case: Case, exit_code: int, alerts: Sequence[Mapping[str, Any]],
              stderr: str = "") -> None:
    """Raise AssertionError naming every way a run differs from the case."""
    counts = Counter(str(a.get("rule")) for a in alerts)
    problems = []
    if case.expect_exit_nonzero != (exit_code != 0):
        problems.append(f"exit code {exit_code}, expected "
                        f"{'non-zero' if case.expect_exit_nonzero else '0'}")
    if case.expect_none and alerts:
        problems.append(f"expected no alert, got {dict(counts)}")
    for rule, expected in case.expect.items():
        if counts.get(rule, 0) != expected:
            problems.append(f"rule {rule!r}: expected {expected} alert(s), got "
                            f"{counts.get(rule, 0)}")
    unexpected = set(counts) - set(case.expect)
    if case.expect and unexpected:
        problems.append(f"unexpected alerts from {sorted(unexpected)}")
    if case.min_priority_seen is not None:
        label = case.min_priority_seen.label
        if not any(a.get("priority") == label for a in alerts):
            seen = sorted({str(a.get("priority")) for a in alerts})
            problems.append(f"expected an alert with priority {label}, saw {seen}")
    if case.stderr_contains is not None and case.stderr_contains not in stderr:
        problems.append(f"expected {case.stderr_contains!r} in the log output")
    if problems:
        raise AssertionError(f"case {case.id}: " + "; ".join(problems)
                             + f"\nalerts: {dict(counts)}\nlog output:\n{stderr}")
