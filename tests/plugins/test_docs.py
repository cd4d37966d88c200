"""docs/plugins.md documents the whole contract: every hook of hookspecs.py, and every public
attribute of the falconet.api types, each in its type's own section (names found by
introspection, so a new attribute without documentation fails here); and its complete example
works as written."""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import re
import types
from pathlib import Path

import orjson
import pytest
import yaml

import falconet.api as api
import falconet.hookspecs as hookspecs
from falconet.config import build_config
from falconet.plugins import discover, load_plugins
from falconet.ruleset.alerts import AlertFormatter, AlertOptions
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.ruleset import Ruleset

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def hook_names() -> list[str]:
    tree = ast.parse(Path(hookspecs.__file__).read_text(encoding="utf-8"))
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(isinstance(d, ast.Name) and d.id == "hookspec" for d in node.decorator_list)]


def public_attributes(cls: type) -> set[str]:
    """Fields, slots, properties, methods and enum members a plugin author can use."""
    names: set[str] = set()
    if issubclass(cls, enum.Enum):
        names |= set(cls.__members__)
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls)}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("falconet"):
            continue
        names |= set(getattr(klass, "__slots__", ()))
        for name, value in vars(klass).items():
            if callable(value) or isinstance(value, property):
                names.add(name)
    return {n for n in names if not n.startswith("_")}


def section(text: str, name: str) -> str:
    """The text under the ``### `name` `` heading, up to the next heading."""
    match = re.search(rf"^### `{re.escape(name)}`\n(.*?)(?=^#)", text + "\n#", re.S | re.M)
    assert match is not None, f"docs/plugins.md has no section ### `{name}`"
    return match.group(1)


API_CLASSES = [name for name in api.__all__ if inspect.isclass(getattr(api, name))]


def test_the_hooks_are_found() -> None:
    assert hook_names() == ["falconet_register_plugins"]


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented(hook: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert re.search(rf"^## The hook\n(.|\n)*`{hook}\(register\)`", text, re.M), hook


@pytest.mark.parametrize("name", API_CLASSES)
def test_every_api_attribute_is_documented_in_its_section(name: str) -> None:
    text = section(DOC.read_text(encoding="utf-8"), name)
    missing = sorted(attr for attr in public_attributes(getattr(api, name))
                     if not re.search(rf"`(?:[\w.]*\.)?{re.escape(attr)}\b[^`]*`", text))
    assert missing == [], f"{name}: not documented: {missing}"


def test_every_api_name_is_mentioned() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert [n for n in api.__all__ if f"`{n}`" not in text and f"`{n}(" not in text] == []


def code_block(text: str, lang: str, first_line: str) -> str:
    """The fenced ``lang`` block whose text starts with ``first_line``."""
    for body in re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M):
        if body.startswith(first_line):
            return str(body)
    raise AssertionError(f"no ```{lang} block starting with {first_line!r}")


def test_the_complete_example_works(tmp_path: Path) -> None:
    """The guide's plugin, falco.yaml and rules, run as written: the alert it promises."""
    text = DOC.read_text(encoding="utf-8")
    module = types.ModuleType("docs_demo_plugin")
    exec(code_block(text, "python", "from collections.abc"), module.__dict__)
    plugins = discover(entry_points=False, modules=[module])
    falco_yaml = yaml.safe_load(code_block(text, "yaml", "# falco.yaml"))
    events = tmp_path / "demo.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in [
        {"ts": 1_000_000_000, "user": "alice", "count": 3, "action": "push"},
        {"ts": 2_000_000_000, "user": "ci", "count": 7, "action": "build"},
        {"ts": 3_000_000_000, "user": "bob", "count": "many"},
    ]))
    falco_yaml["plugins"][0]["open_params"] = str(events)
    loaded = load_plugins(build_config(falco_yaml), plugins)
    assert loaded.loaded[0].init_config == {"limit": 10}
    loader = RulesLoader(loaded.registry)
    result = loader.load_text(code_block(text, "yaml", "# demo_rules.yaml"), "demo_rules.yaml")
    assert result.successful, [e.message for e in result.errors]
    assert loader.check_plugin_requirements(loaded.versions()) == []
    ruleset = Ruleset(loader.rules, loaded.registry)
    demo = loaded.sources["demo"]
    lines = []
    for batch in demo.source.replay(events, demo.context()):
        for event, rules in ruleset.evaluate_batch("demo", batch):
            formatter = AlertFormatter(rules[0], loaded.registry.table("demo"), AlertOptions())
            lines.append(formatter.alert(event).line)
    assert lines == ["00:00:01.000000000: Warning heavy user alice (count=3 action=push)"]
