"""A third-party plugin, end to end: a distribution written here is pip-installed into the
running environment, found through its ``falconet`` entry point in a fresh interpreter, selected
by falco.yaml ``plugins:``, and its source's events raise exactly the expected alerts through
the same path the engine takes (load_plugins -> RulesLoader -> Ruleset -> AlertFormatter).

The distribution builds itself with a few-line PEP 517 backend (``backend-path``), so the test
needs neither network nor a wheel-building package. It is uninstalled when the module ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from .conftest import FIELDS_TSV

pytestmark = pytest.mark.installs_package

DIST = "falconet-demo-plugin"

BACKEND = '''
"""A minimal PEP 517 backend: a pure-Python wheel of the package beside this file."""
import base64, hashlib, pathlib, zipfile

NAME, VERSION, PACKAGE = "falconet-demo-plugin", "0.1.0", "falconet_demo_plugin"
META = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
WHEEL = ("Wheel-Version: 1.0\\nGenerator: demo_backend\\nRoot-Is-Purelib: true\\n"
         "Tag: py3-none-any\\n")
ENTRY_POINTS = "[falconet]\\ndemo = falconet_demo_plugin.plugin\\n"


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    here = pathlib.Path(__file__).parent
    info = f"{PACKAGE}-{VERSION}.dist-info"
    files = {str(p.relative_to(here)): p.read_bytes()
             for p in sorted((here / PACKAGE).rglob("*.py"))}
    files[f"{info}/METADATA"] = META.encode()
    files[f"{info}/WHEEL"] = WHEEL.encode()
    files[f"{info}/entry_points.txt"] = ENTRY_POINTS.encode()
    record = "".join(f"{n},{_digest(d)},{len(d)}\\n" for n, d in files.items())
    record += f"{info}/RECORD,,\\n"
    files[f"{info}/RECORD"] = record.encode()
    name = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w") as whl:
        for n, d in files.items():
            whl.writestr(n, d)
    return name
'''

PYPROJECT = """
[build-system]
requires = []
build-backend = "demo_backend"
backend-path = ["."]

[project]
name = "falconet-demo-plugin"
version = "0.1.0"
dependencies = ["falconet"]

[project.entry-points.falconet]
demo = "falconet_demo_plugin.plugin"
"""

PLUGIN = '''
"""The demo plugin: source "demo" reads JSON lines {"ts": ns, "user": ..., "count": ...}."""
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson

from falconet.api import (EventBatch, EventSource, FieldSpec, FieldTable, FieldType, JsonEvent,
                          Plugin, SourceContext)
from falconet.hookspecs import hookimpl


def _batches(path: Path, ctx: SourceContext) -> Iterator[EventBatch]:
    batch = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            ctx.counters.malformed += 1
            continue
        batch.append(JsonEvent("demo", line, payload=doc, ts=doc["ts"]))
        if len(batch) == 2:
            yield batch
            batch = []
    if batch:
        yield batch


async def _open(ctx: SourceContext) -> AsyncIterator[EventBatch]:
    for batch in _batches(Path(ctx.open_params), ctx):
        yield batch


def _user(arg):
    return lambda event: event.payload.get("user")


def _count(arg):
    def extract(event):
        value = event.payload.get("count")
        return value if type(value) is int and value >= 0 else None
    return extract


def _table() -> list[FieldTable]:
    table = FieldTable("demo")
    table.add(FieldSpec("demo.user", FieldType.CHARBUF, description="who did it",
                        make_extractor=_user))
    table.add(FieldSpec("demo.count", FieldType.UINT64, description="how many times",
                        make_extractor=_count))
    return [table]


@hookimpl
def falconet_register_plugins(register):
    register(Plugin(
        name="demo", version="0.1.0", description="Demo events", contact="nobody",
        init_schema={"type": "object", "properties": {"limit": {"type": "integer"}},
                     "additionalProperties": False},
        source=EventSource(name="demo", open=_open, replay=_batches),
        fields=_table,
    ))
'''

RUN = '''
"""Load falco.yaml, its plugins and rules as the engine does; print the alert lines."""
import asyncio
import sys
from pathlib import Path

from falconet.config import load_config
from falconet.log import configure_logging
from falconet.plugins import discover, load_plugins
from falconet.ruleset.alerts import AlertFormatter, AlertOptions
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.ruleset import Ruleset

configure_logging()  # to stderr
config_path, mode, events = sys.argv[1:4]
config = load_config(config_path)
catalogue = discover()
print("origin:", catalogue.origins["demo"])
plugins = load_plugins(config, catalogue)
loader = RulesLoader(plugins.registry)
for name in config.rules_files:
    result = loader.load_file(name)
    if not result.successful:
        sys.exit("rules: " + "; ".join(e.message for e in result.errors))
unmet = loader.check_plugin_requirements(plugins.versions())
if unmet:
    sys.exit("requirements: " + "; ".join(unmet))
ruleset = Ruleset(loader.rules, plugins.registry)
options = AlertOptions(json_output=config.json_output, hostname="demo-host")
table = plugins.registry.table("demo")
formatters = {}
loaded = plugins.sources["demo"]
ctx = loaded.context()
print("init_config:", dict(ctx.init_config), "open_params:", ctx.open_params)
num = 0


def handle(batch):
    global num
    for event in batch:
        num += 1
        event.num = num
    for event, rules in ruleset.evaluate_batch("demo", batch):
        for rule in rules:
            if rule.name not in formatters:
                formatters[rule.name] = AlertFormatter(rule, table, options)
            print(formatters[rule.name].alert(event).line)


if mode == "replay":
    for batch in loaded.source.replay(Path(events), ctx):
        handle(batch)
else:
    async def live():
        async for batch in loaded.source.open(ctx):
            handle(batch)
    asyncio.run(live())
print("malformed:", ctx.counters.malformed)
'''

RULES = """
- required_plugin_versions:
    - name: demo
      version: 0.1.0

- rule: Demo heavy user
  desc: a user doing many things
  condition: demo.count > 2 and demo.user != "ci"
  output: >-
    heavy user %demo.user (count=%demo.count action=%json.value[/action]
    plugin=%evt.pluginname)
  priority: WARNING
  source: demo

- rule: Demo root
  desc: root shows up
  condition: demo.user = root
  output: root seen (count=%demo.count evt=%evt.num)
  priority: CRITICAL
  source: demo
"""

T0 = 1_700_000_000_123_456_789
EVENTS = [
    {"ts": T0, "user": "alice", "count": 3, "action": "push"},
    {"ts": T0 + 1, "user": "ci", "count": 9, "action": "build"},
    {"ts": T0 + 2, "user": "bob", "count": 1, "action": "pull"},
    "not json",
    {"ts": T0 + 3, "user": "root", "action": "login"},
    {"ts": T0 + 4, "user": "carol", "count": 5, "action": "delete"},
]

EXPECTED_TEXT = [
    "22:13:20.123456789: Warning heavy user alice (count=3 action=push plugin=demo)",
    "22:13:20.123456792: Critical root seen (count=<NA> evt=4)",
    "22:13:20.123456793: Warning heavy user carol (count=5 action=delete plugin=demo)",
]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "--root-user-action=ignore",
                    "--disable-pip-version-check", "-q"], check=True, capture_output=True)


@pytest.fixture(scope="module")
def demo_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """pip-installs falconet-demo-plugin for the tests of this module, then uninstalls it."""
    root = tmp_path_factory.mktemp("falconet-demo-plugin")
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "demo_backend.py").write_text(BACKEND)
    (root / "falconet_demo_plugin").mkdir()
    (root / "falconet_demo_plugin" / "__init__.py").write_text('"""falconet demo plugin."""\n')
    (root / "falconet_demo_plugin" / "plugin.py").write_text(PLUGIN)
    pip("install", "--no-deps", "--no-build-isolation", str(root))
    try:
        yield
    finally:
        pip("uninstall", "-y", DIST)


def write_case(tmp_path: Path, *, json_output: bool = False) -> Path:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(
        e.encode() if isinstance(e, str) else orjson.dumps(e) for e in EVENTS) + b"\n")
    (tmp_path / "demo_rules.yaml").write_text(RULES)
    falco_yaml = tmp_path / "falco.yaml"
    falco_yaml.write_text(textwrap.dedent(f"""\
        rules_files: [{tmp_path / "demo_rules.yaml"}]
        json_output: {str(json_output).lower()}
        plugins:
          - name: demo
            library_path: libdemo.so
            init_config: '{{"limit": 10}}'
            open_params: "  {events}  "
        """))
    return falco_yaml


def run(tmp_path: Path, falco_yaml: Path, mode: str) -> tuple[list[str], str]:
    script = tmp_path / "run_demo.py"
    script.write_text(RUN)
    env = {**os.environ}
    if FIELDS_TSV.is_file():
        env["FALCONET_FIELDS_TSV"] = str(FIELDS_TSV)
    proc = subprocess.run([sys.executable, str(script), str(falco_yaml), mode,
                           str(tmp_path / "events.jsonl")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines(), proc.stderr


@pytest.mark.parametrize("mode", ["replay", "open"])
def test_an_installed_plugin_raises_the_expected_alerts(demo_installed: None, tmp_path: Path,
                                                        mode: str) -> None:
    lines, stderr = run(tmp_path, write_case(tmp_path), mode)
    assert "plugin=demo library_path=libdemo.so provided_by='falconet-demo-plugin" in stderr
    assert lines == [
        "origin: falconet-demo-plugin (falconet_demo_plugin.plugin)",
        f"init_config: {{'limit': 10}} open_params: {tmp_path / 'events.jsonl'}",
        *EXPECTED_TEXT,
        "malformed: 1",
    ]


def test_json_alerts_carry_the_plugins_typed_fields(demo_installed: None,
                                                    tmp_path: Path) -> None:
    lines, _ = run(tmp_path, write_case(tmp_path, json_output=True), "replay")
    alerts = [orjson.loads(line) for line in lines[2:-1]]
    assert alerts[0] == {
        "hostname": "demo-host",
        "output": EXPECTED_TEXT[0],
        "output_fields": {"demo.count": 3, "demo.user": "alice", "evt.pluginname": "demo",
                          "evt.time": T0, "json.value[/action]": "push"},
        "priority": "Warning",
        "rule": "Demo heavy user",
        "source": "demo",
        "tags": [],
        "time": "2023-11-14T22:13:20.123456789Z",
    }
    assert [a["rule"] for a in alerts] == ["Demo heavy user", "Demo root", "Demo heavy user"]
    assert alerts[1]["output_fields"]["demo.count"] is None


def test_a_bad_init_config_stops_the_load_naming_the_key(demo_installed: None,
                                                         tmp_path: Path) -> None:
    falco_yaml = write_case(tmp_path)
    falco_yaml.write_text(falco_yaml.read_text().replace('{"limit": 10}', '{"limit": "ten"}'))
    script = tmp_path / "run_demo.py"
    script.write_text(RUN)
    proc = subprocess.run([sys.executable, str(script), str(falco_yaml), "replay",
                           str(tmp_path / "events.jsonl")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        "falconet.plugins.PluginError: plugin 'demo' init_config: limit: 'ten' is not of type "
        "'integer'")


def test_the_falconet_command_replays_the_plugins_source(demo_installed: None,
                                                         tmp_path: Path) -> None:
    falco_yaml = write_case(tmp_path)
    env = {**os.environ}
    if FIELDS_TSV.is_file():
        env["FALCONET_FIELDS_TSV"] = str(FIELDS_TSV)
    proc = subprocess.run([sys.executable, "-m", "falconet.cli", "-c", str(falco_yaml),
                           "--source", "demo", "-e", str(tmp_path / "events.jsonl")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "plugin=demo library_path=libdemo.so" in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == EXPECTED_TEXT  # then Falco's summary
    assert "Events detected: 3" in lines
