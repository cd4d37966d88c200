"""Helpers for runtime tests: load rules YAML text into a Ruleset over schema-only tables."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from falconet.fields import FieldRegistry, schema_registry
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.model import Priority
from falconet.ruleset.ruleset import Ruleset

SHARED = Path(__file__).resolve().parents[3] / "shared"


@pytest.fixture(scope="session")
def registry() -> FieldRegistry:
    if not (SHARED / "upstream" / "fields" / "fields.tsv").is_file():
        pytest.skip("needs ../shared/upstream/fields/fields.tsv (upstream field list)")
    return schema_registry(SHARED / "upstream" / "fields" / "fields.tsv")


def load_rules(registry: FieldRegistry, text: str) -> RulesLoader:
    loader = RulesLoader(registry)
    result = loader.load_text(textwrap.dedent(text), "rules.yaml")
    assert result.successful, [e.message for e in result.errors]
    return loader


def make_ruleset(registry: FieldRegistry, text: str, *, first_match: bool = True,
                 min_priority: Priority = Priority.DEBUG) -> Ruleset:
    loader = load_rules(registry, text)
    return Ruleset(loader.rules, registry, first_match=first_match, min_priority=min_priority)
