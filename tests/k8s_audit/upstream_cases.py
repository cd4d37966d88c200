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

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests import upstream_cases as shared_cases
from tests.upstream_cases import Case as Case
from tests.upstream_cases import check_run

from .helpers import SHARED

TESTDATA = SHARED / "testdata" / "k8s_audit"
CASES_FILE = TESTDATA / "cases.yaml"
UPSTREAM_RULES = SHARED / "upstream" / "rules" / "k8s_audit_rules.yaml"
SKIP_REASON = f"upstream k8s audit cases not found at {CASES_FILE} (shared/ is not beside main)"

#: falco.yaml for a replay: upstream's two plugins, JSON alerts on stdout, nothing else started
FALCO_YAML = shared_cases.replay_config("""\
plugins:
  - name: k8saudit
    library_path: libk8saudit.so
    open_params: "http://:9765/k8s-audit"
  - name: json
    library_path: libjson.so
load_plugins: [k8saudit, json]
""")


def available() -> bool:
    """Whether the shared upstream data is beside the repository."""
    return CASES_FILE.is_file() and UPSTREAM_RULES.is_file()


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    """Every case of the k8s audit cases.yaml, in file order."""
    return shared_cases.load_cases(path, UPSTREAM_RULES)


case_rules_args = shared_cases.rules_args
parse_alerts = shared_cases.parse_alerts


def write_config(directory: Path) -> Path:
    """Write :data:`FALCO_YAML` as ``falco.yaml`` in ``directory``; returns its path."""
    path = directory / "falco.yaml"
    path.write_text(FALCO_YAML)
    return path


def replay_args(case: Case, config: Path) -> list[str]:
    """The ``falconet`` arguments (no program name) replaying the case's trace."""
    return shared_cases.replay_args(case, config, "k8s_audit")


def check_alerts(case: Case, alerts: Sequence[Mapping[str, Any]], stderr: str = "") -> None:
    """Raise AssertionError naming every way ``alerts``/``stderr`` differ from the case (other
    rules may fire too, as the cases file says)."""
    check_run(case, 0, alerts, stderr)


def case_ids(cases: Iterable[Case]) -> list[str]:
    return [c.id for c in cases]
