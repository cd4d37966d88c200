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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests import upstream_cases as shared_cases
from tests.upstream_cases import Case as Case

from .helpers import TESTDATA, UPSTREAM_RULES
from .helpers import parse_alerts as parse_alerts
from .helpers import write_config as write_config

CASES_FILE = TESTDATA / "cases.yaml"
SKIP_REASON = f"upstream cloudtrail cases not found at {CASES_FILE} (shared/ is not beside main)"


def available() -> bool:
    """Whether the shared upstream data is beside the repository."""
    return CASES_FILE.is_file() and UPSTREAM_RULES.is_file()


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    """Every case of the CloudTrail cases.yaml, in file order."""
    return shared_cases.load_cases(path, UPSTREAM_RULES)


def replay_args(case: Case, config: Path) -> list[str]:
    """The ``falconet`` arguments (no program name) replaying the case's trace."""
    return shared_cases.replay_args(case, config, "aws_cloudtrail")


def check_run(case: Case, exit_code: int, alerts: Sequence[Mapping[str, Any]],
              stderr: str = "") -> None:
    """Raise AssertionError naming every way a run differs from the case; a case with
    ``expect`` fails on other rules' alerts too."""
    shared_cases.check_run(case, exit_code, alerts, stderr, only_expected=True)

