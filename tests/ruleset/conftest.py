"""Helpers for rules-loading tests: load YAML text with upstream's field tables and look at
what came out (compiled conditions, error and warning codes, messages and positions)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from falconet.fields import FieldRegistry, FieldSpec, FieldType, schema_registry
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.results import LoadMessage, LoadResult

SHARED = Path(__file__).resolve().parents[3] / "shared"
FIELDS_TSV = SHARED / "upstream" / "fields" / "fields.tsv"
UPSTREAM_RULES = SHARED / "upstream" / "rules"


@pytest.fixture(scope="session")
def registry() -> FieldRegistry:
    if not FIELDS_TSV.is_file():
        pytest.skip("needs ../shared/upstream/fields/fields.tsv (upstream field list)")
    return schema_registry(FIELDS_TSV)


#: Deprecated syscall fields Falco 0.44 still accepts (with a warning) but no longer lists, so
#: they are absent from the published field list; added for the tests of those warnings.
DEPRECATED_SYSCALL_FIELDS = {
    "evt.dir": FieldType.CHARBUF, "evt.latency": FieldType.RELTIME,
    "evt.latency.s": FieldType.RELTIME, "evt.latency.ns": FieldType.RELTIME,
    "evt.latency.human": FieldType.CHARBUF, "evt.wait_latency": FieldType.RELTIME,
}


@pytest.fixture(scope="session")
def dep_registry() -> FieldRegistry:
    """The upstream tables plus the deprecated syscall fields."""
    if not FIELDS_TSV.is_file():
        pytest.skip("needs ../shared/upstream/fields/fields.tsv (upstream field list)")
    reg = schema_registry(FIELDS_TSV)
    table = reg.table("syscall")
    for name, ftype in DEPRECATED_SYSCALL_FIELDS.items():
        if name not in table:
            table.add(FieldSpec(name, ftype))
    return reg


class Loaded:
    """A loader after loading one or more texts, with shortcuts for assertions."""

    def __init__(self, registry: FieldRegistry) -> None:
        self.loader = RulesLoader(registry)
        self.results: list[LoadResult] = []

    def load(self, text: str, name: str = "rules.yaml") -> LoadResult:
        result = self.loader.load_text(textwrap.dedent(text), name)
        self.results.append(result)
        return result

    @property
    def result(self) -> LoadResult:
        return self.results[-1]

    @property
    def ok(self) -> bool:
        return self.result.successful

    def compiled(self, rule: str) -> str:
        """The rule's ``condition_compiled`` (as ``falco -L`` shows it)."""
        for r in self.loader.rules:
            if r.name == rule:
                return r.condition_compiled
        raise AssertionError(f"rule {rule!r} not loaded: {self.errors}")

    def rule(self, name: str):
        for r in self.loader.rules:
            if r.name == name:
                return r
        raise AssertionError(f"rule {name!r} not loaded: {self.errors}")

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(e.code.value, e.message) for e in self.result.errors]

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return [(w.code.value, w.message) for w in self.result.warnings]

    @property
    def error(self) -> LoadMessage:
        assert len(self.result.errors) == 1, self.errors
        return self.result.errors[0]

    def warning_codes(self) -> list[str]:
        return [w.code.value for w in self.result.warnings]

    def warnings_of(self, code: str) -> list[str]:
        return [w.message for w in self.result.warnings if w.code.value == code]


@pytest.fixture
def loaded(registry: FieldRegistry) -> Loaded:
    return Loaded(registry)


def load(registry: FieldRegistry, *texts: str) -> Loaded:
    """Load each text as its own file (rules.yaml, rules2.yaml, ...)."""
    out = Loaded(registry)
    for i, text in enumerate(texts):
        out.load(text, "rules.yaml" if i == 0 else f"rules{i + 1}.yaml")
    return out


RULE = """
- rule: test_rule
  desc: test rule
  condition: {condition}
  output: command=%proc.cmdline
  priority: INFO
"""


def rule_with(condition: str, extra: str = "") -> str:
    """A one-rule file with the given condition (and extra keys, indented two spaces)."""
    return RULE.format(condition=condition) + textwrap.indent(textwrap.dedent(extra), "  ")


def D(text: str) -> str:
    """Dedent an indented YAML literal before concatenating it with generated text."""
    return textwrap.dedent(text)
