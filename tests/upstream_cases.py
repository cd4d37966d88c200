"""Upstream's regression cases (``shared/testdata/<source>/cases.yaml``): loading and judging,
shared by every source's compatibility tests (``tests/k8s_audit``, ``tests/cloudtrail``).

A case names a trace, the rules files to load, and what upstream Falco does with them: exact
alert counts per rule (``expect``), no alert (``expect_none``), an alert of some priority
(``min_priority_seen``), log text (``stderr_contains``), a failed start
(``expect_exit_nonzero``). Each source's module adds how to feed the trace to falconet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from falconet.cli import main
from falconet.ruleset.model import Priority

#: what follows a source's ``plugins:`` block in a replay's falco.yaml: JSON alerts on stdout,
#: nothing else started (``replay_config``)
_REPLAY_SETTINGS = """\
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


def load_cases(path: Path, upstream_rules: Path) -> list[Case]:
    """Every case of ``path``, in file order; a malformed entry raises ValueError. A rules name
    equal to ``upstream_rules``'s is that file; other names are relative to ``path``'s folder,
    traces to its ``traces/``."""
    testdata = path.parent
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
            trace=testdata / "traces" / doc["trace"],
            rules=tuple(upstream_rules if r == upstream_rules.name else testdata / r
                        for r in doc["rules"]),
            expect={str(k): int(v) for k, v in (doc.get("expect") or {}).items()},
            expect_none=bool(doc.get("expect_none", False)),
            expect_exit_nonzero=bool(doc.get("expect_exit_nonzero", False)),
            min_priority_seen=None if priority is None else Priority.parse(priority),
            stderr_contains=doc.get("stderr_contains"),
        ))
    return cases


def check_run(case: Case, exit_code: int, alerts: Sequence[Mapping[str, Any]],
              stderr: str = "", *, only_expected: bool = False) -> None:
    """Raise AssertionError naming every way a run differs from the case. With
    ``only_expected``, a case with ``expect`` also fails on alerts of other rules."""
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
    if only_expected and case.expect and unexpected:
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


def replay_config(plugins: str) -> str:
    """A replay's falco.yaml: ``plugins`` (the ``plugins:`` and ``load_plugins:`` lines of the
    source under test), then JSON alerts on stdout and nothing else started."""
    return plugins + _REPLAY_SETTINGS


def rules_args(case: Case) -> list[str]:
    """``-r FILE`` for each rules file of the case, in its order."""
    return [arg for rules in case.rules for arg in ("-r", str(rules))]


def replay_args(case: Case, config: Path, source: str) -> list[str]:
    """The ``falconet`` arguments (no program name) replaying the case's trace."""
    return ["-c", str(config), *rules_args(case), "--source", source, "-e", str(case.trace)]


def parse_alerts(stdout: str) -> list[dict[str, Any]]:
    """The JSON alerts among stdout's lines (the end-of-run summary is plain text)."""
    return [orjson.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``falconet ARGS`` in-process: (exit code, stdout, stderr)."""
    try:
        main.main(args, prog_name="falconet", standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
