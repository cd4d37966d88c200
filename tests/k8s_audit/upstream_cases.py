"""Upstream's k8s audit regression cases (``shared/testdata/k8s_audit/cases.yaml``), importable.

A case names a trace (JSON lines, one audit Event each), the rules files to load, and the
alerts upstream Falco raises. These helpers turn a case into ``falconet`` arguments and check
the alerts a run produced, so that any way of feeding the trace (``-e`` replay here, a POST to
the live webhook elsewhere) is judged by the same code::

    for case in load_cases():
        args = ["-c", str(write_config(tmp)), *case_rules_args(case), ...]
        check_alerts(case, parse_alerts(stdout), stderr)   # AssertionError listing what differs
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from falconet.ruleset.model import Priority

from .helpers import SHARED

TESTDATA = SHARED / "testdata" / "k8s_audit"
CASES_FILE = TESTDATA / "cases.yaml"
UPSTREAM_RULES = SHARED / "upstream" / "rules" / "k8s_audit_rules.yaml"
#: the name cases.yaml uses for upstream's rules file
UPSTREAM_RULES_NAME = "k8s_audit_rules.yaml"
SKIP_REASON = f"upstream k8s audit cases not found at {CASES_FILE} (shared/ is not beside main)"

#: falco.yaml for a replay: upstream's two plugins, JSON alerts on stdout, nothing else started
FALCO_YAML = """\
plugins:
  - name: k8saudit
    library_path: libk8saudit.so
    open_params: "http://:9765/k8s-audit"
  - name: json
    library_path: libjson.so
load_plugins: [k8saudit, json]
rules_files: []
json_output: true
json_include_output_property: true
json_include_tags_property: true
stdout_output: {enabled: true}
syslog_output: {enabled: false}
file_output: {enabled: false}
webserver: {enabled: false}
watch_config_files: false
config_files: []
"""


@dataclass(frozen=True)
class Case:
    """One entry of cases.yaml, paths resolved."""

    id: str
    trace: Path
    rules: tuple[Path, ...]
    expect: Mapping[str, int] = field(default_factory=dict)
    expect_none: bool = False
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
        unknown = set(doc) - {"id", "trace", "rules", "expect", "expect_none",
                              "min_priority_seen", "stderr_contains"}
        if unknown:
            raise ValueError(f"{path}: case {doc.get('id')!r}: unknown keys {sorted(unknown)}")
        priority = doc.get("min_priority_seen")
        cases.append(Case(
            id=str(doc["id"]),
            trace=TESTDATA / "traces" / doc["trace"],
            rules=tuple(_rules_path(r) for r in doc["rules"]),
            expect={str(k): int(v) for k, v in (doc.get("expect") or {}).items()},
            expect_none=bool(doc.get("expect_none", False)),
            min_priority_seen=None if priority is None else Priority.parse(priority),
            stderr_contains=doc.get("stderr_contains"),
        ))
    return cases


def case_rules_args(case: Case) -> list[str]:
    """``-r FILE`` for each rules file of the case, in its order."""
    return [arg for rules in case.rules for arg in ("-r", str(rules))]


def write_config(directory: Path) -> Path:
    """Write :data:`FALCO_YAML` as ``falco.yaml`` in ``directory``; returns its path."""
    path = directory / "falco.yaml"
    path.write_text(FALCO_YAML)
    return path


def replay_args(case: Case, config: Path) -> list[str]:
    """The ``falconet`` arguments (no program name) replaying the case's trace."""
    return ["-c", str(config), *case_rules_args(case), "--source", "k8s_audit",
            "-e", str(case.trace)]


def parse_alerts(stdout: str) -> list[dict[str, Any]]:
    """The JSON alerts among stdout's lines (the end-of-run summary is plain text)."""
    return [orjson.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def check_alerts(case: Case, alerts: Sequence[Mapping[str, Any]], stderr: str = "") -> None:
    """Raise AssertionError naming every way ``alerts``/``stderr`` differ from the case."""
    counts = Counter(str(a.get("rule")) for a in alerts)
    problems = []
    if case.expect_none and alerts:
        problems.append(f"expected no alert, got {dict(counts)}")
    for rule, expected in case.expect.items():
        if counts.get(rule, 0) != expected:
            problems.append(f"rule {rule!r}: expected {expected} alert(s), got "
                            f"{counts.get(rule, 0)}")
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


def case_ids(cases: Iterable[Case]) -> list[str]:
    return [c.id for c in cases]
