"""falconet's own default rules (rules/falconet_rules.yaml): each fires on the activity it
describes and stays quiet on the look-alike it excludes."""

from __future__ import annotations

from pathlib import Path

import pytest

from falconet.event import SchemaEvent
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.ruleset import Ruleset

RULES = Path(__file__).resolve().parents[2] / "rules" / "falconet_rules.yaml"

IN_CONTAINER = {"container.id": "3ad7b26ded6d"}
OPEN_READ = {"evt.type": "openat", "evt.is_open_read": True, "fd.typechar": "f", "fd.num": 3}
OPEN_WRITE = {"evt.type": "openat", "evt.is_open_write": True, "fd.typechar": "f", "fd.num": 3}
EXEC = {"evt.type": "execve"}

CASES = [
    ("Credential file opened by untrusted program",
     {**OPEN_READ, "fd.name": "/etc/shadow", "proc.name": "python3"},
     {**OPEN_READ, "fd.name": "/etc/shadow", "proc.name": "sshd"}),
    ("Interactive shell in container",
     {**EXEC, **IN_CONTAINER, "proc.name": "bash", "proc.tty": 34816},
     {**EXEC, **IN_CONTAINER, "proc.name": "bash", "proc.tty": 0}),
    ("Write below binary directory",
     {**OPEN_WRITE, "fd.directory": "/usr/bin", "proc.name": "curl"},
     {**OPEN_WRITE, "fd.directory": "/usr/bin", "proc.name": "dpkg"}),
    ("Package manager run in container",
     {**EXEC, **IN_CONTAINER, "proc.name": "apt-get"},
     {**EXEC, "container.id": "host", "proc.name": "apt-get"}),
    ("Network tool launched",
     {**EXEC, "proc.name": "ncat"},
     {**EXEC, "proc.name": "curl"}),
    ("Kernel module loaded",
     {"evt.type": "finit_module", "evt.res": "SUCCESS"},
     {"evt.type": "finit_module", "evt.res": "EPERM"}),
    ("Process memory accessed with ptrace",
     # schema-only events key an argument field as name[arg]: evt.arg.request = evt.arg[request]
     {"evt.type": "ptrace", "evt.arg[request]": "PTRACE_ATTACH", "proc.name": "python3"},
     {"evt.type": "ptrace", "evt.arg[request]": "PTRACE_ATTACH", "proc.name": "gdb"}),
    ("Fileless execution from memfd",
     {**EXEC, "proc.is_exe_from_memfd": True},
     {**EXEC, "proc.is_exe_from_memfd": False}),
]


@pytest.fixture(scope="module")
def ruleset(registry) -> Ruleset:
    loader = RulesLoader(registry)
    result = loader.load_file(RULES)
    assert result.successful and not result.warnings, [m.message for m in result.warnings]
    return Ruleset(loader.rules, registry, first_match=False)


def test_every_bundled_rule_has_a_case(ruleset: Ruleset) -> None:
    assert sorted(r.name for r in ruleset.enabled_rules) == sorted(name for name, _, _ in CASES)


@pytest.mark.parametrize(("rule", "fires", "quiet"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires_and_stays_quiet(ruleset: Ruleset, rule: str, fires: dict,
                                    quiet: dict) -> None:
    assert [r.name for r in ruleset.evaluate(SchemaEvent("syscall", fires))] == [rule]
    assert ruleset.evaluate(SchemaEvent("syscall", quiet)) == []
