"""The pipeline in-process: replay -> rules -> file output, counters, summary, bad events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from falconet.api import Alert
from falconet.app import RunOptions, run
from falconet.dispatch import Dispatcher
from falconet.engine import Engine, RulesState, format_summary
from falconet.event import SchemaEvent
from falconet.stats import EngineStats
from tests.engine.helpers import FIELDS_TSV, REPO
from tests.engine.test_app import SAMPLE_ALERTS, SAMPLE_SUMMARY

needs_fields = pytest.mark.skipif(not FIELDS_TSV.is_file(),
                                  reason="needs ../shared/upstream/fields/fields.tsv")
QUIET = ("stdout_output.enabled=false", "syslog_output.enabled=false",
         "webserver.enabled=false")


def replay(tmp_path: Path, events: Path, *overrides: str) -> tuple[int, Path]:
    alerts = tmp_path / "events.txt"
    code = run(RunOptions(
        overrides=(*QUIET, "file_output.enabled=true", f"file_output.filename={alerts}",
                   *overrides),
        rules_paths=(str(REPO / "rules" / "falconet_rules.yaml"),),
        replay_source="syscall", replay_path=str(events), progress=False))
    return code, alerts


@needs_fields
def test_replay_writes_exact_alerts_to_the_file_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, alerts = replay(tmp_path, REPO / "samples" / "syscall.jsonl")
    assert code == 0
    assert alerts.read_text().splitlines() == SAMPLE_ALERTS
    assert capsys.readouterr().out == SAMPLE_SUMMARY


@needs_fields
def test_replay_with_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, alerts = replay(tmp_path, REPO / "samples" / "syscall.jsonl", "json_output=true",
                          "time_format_iso_8601=true")
    assert code == 0
    docs = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert [d["rule"] for d in docs][:2] == ["Credential file opened by untrusted program",
                                             "Interactive shell in container"]
    first = docs[0]
    assert first["time"] == "2024-05-01T10:00:02.123456789Z"
    assert first["priority"] == "Warning" and first["source"] == "syscall"
    assert first["output_fields"]["fd.name"] == "/etc/shadow"
    assert first["output_fields"]["evt.time.iso8601"] == 1714557602123456789
    assert capsys.readouterr().out == SAMPLE_SUMMARY


@needs_fields
def test_malformed_lines_are_counted_and_the_rest_evaluated(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = (REPO / "samples" / "syscall.jsonl").read_text().splitlines()
    events = tmp_path / "mixed.jsonl"
    events.write_text("\n".join([good[2], "{not json", good[4], "[1, 2]", good[13]]) + "\n")
    code, alerts = replay(tmp_path, events)
    assert code == 0
    assert alerts.read_text().splitlines() == [SAMPLE_ALERTS[0], SAMPLE_ALERTS[1],
                                               SAMPLE_ALERTS[7]]
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "Events detected: 3"
    assert captured.err.count("malformed input line skipped") == 2
    assert "line=2" in captured.err and "line=4" in captured.err
    assert "malformed=2" in captured.err


def json_source_engine(condition: str, parsers: Any = None) -> tuple[Engine, Memory, EngineStats]:
    """The real engine and ruleset over a JSON source ``app`` with one rule, as a source whose
    plugin brings no field table of its own has them: ``evt.*`` and ``json.*``."""
    from falconet.common_fields import common_field_table, json_field_specs
    from falconet.fields import FieldRegistry, FieldTable
    from falconet.ruleset.alerts import AlertFormatter, AlertOptions
    from falconet.ruleset.loader import RulesLoader
    from falconet.ruleset.ruleset import Ruleset

    table = FieldTable("app")
    for spec in [*common_field_table("app"), *json_field_specs()]:
        table.add(spec)
    registry = FieldRegistry()
    registry.add_table(table)
    loader = RulesLoader(registry)
    result = loader.load_text(f"""
- rule: Deleted
  desc: d
  condition: {condition}
  output: "deleted %json.value[/id] (evt %evt.num)"
  priority: WARNING
  source: app
""", "app_rules.yaml")
    assert result.successful, [e.message for e in result.errors]
    ruleset = Ruleset(loader.rules, registry)
    formatters = {r.name: AlertFormatter(r, table, AlertOptions(hostname="h"))
                  for r in ruleset.enabled_rules}
    stats, out = EngineStats(), Memory()
    engine = Engine(RulesState(ruleset, formatters), Dispatcher({"mem": out}, stats, 0), stats,
                    parsers)
    return engine, out, stats


#: one condition per batch runner of ``ruleset.index``: a top-level key, a nested key, no key
JSON_CONDITIONS = ["json.value[/action] = delete", "json.value[/req/verb] = delete",
                   "json.value[/rows] > 10"]


@pytest.mark.parametrize("condition", JSON_CONDITIONS)
def test_json_lines_that_are_not_json_are_reported_with_their_line(
        condition: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from falconet.replay import read_json_lines

    hit = '{"id": %d, "action": "delete", "req": {"verb": "delete"}, "rows": 20}'
    miss = '{"id": %d, "action": "get", "req": {"verb": "get"}, "rows": 1}'
    path = tmp_path / "app.jsonl"
    path.write_text("\n".join([hit % 1, "{not json", "", miss % 2, "  ", "[1, 2]", "nope",
                               hit % 3]) + "\n")
    engine, out, stats = json_source_engine(condition)
    stream = read_json_lines("app", path, stats.source("app").counters, batch_size=3)
    assert asyncio.run(engine.run({"app": stream})) is True
    # every non-empty line takes an event number, a malformed one too
    assert [a.line.split(": ", 1)[1] for a in out.alerts] == ["Warning deleted 1 (evt 1)",
                                                              "Warning deleted 3 (evt 7)"]
    assert stats.source("app").counters.malformed == 2
    err = capsys.readouterr().err
    assert err.count("malformed input line skipped") == 2
    assert "line=2" in err and "line=7" in err and "invalid JSON" in err


@pytest.mark.parametrize("with_parser", [False, True])
def test_json_lines_become_event_objects_only_where_a_rule_matched(
        with_parser: bool, tmp_path: Path) -> None:
    """Without a parser, the index evaluates the lines of a batch through one reused event and
    makes an event of a matching line only; a parser reads every event, so the batch makes them
    all, numbered, and the index evaluates those. Alerts are the same either way."""
    from falconet.replay import read_json_lines

    path = tmp_path / "app.jsonl"
    actions = ["delete" if i % 4 == 0 else "get" for i in range(1, 11)]
    path.write_text("".join(f'{{"id": {i}, "action": "{a}"}}\n'
                            for i, a in enumerate(actions, 1)))
    seen: list[tuple[int, str]] = []
    batches: list[Any] = []

    def parse(batch: Any) -> None:
        seen.extend((event.num, event.payload["action"]) for event in batch)

    def record(stream: Any) -> Any:
        for batch in stream:
            batches.append(batch)
            yield batch

    engine, out, stats = json_source_engine(JSON_CONDITIONS[0],
                                            {"app": [parse]} if with_parser else None)
    stream = read_json_lines("app", path, stats.source("app").counters, batch_size=4)
    assert asyncio.run(engine.run({"app": record(stream)})) is True
    assert [a.line.split(": ", 1)[1] for a in out.alerts] == ["Warning deleted 4 (evt 4)",
                                                              "Warning deleted 8 (evt 8)"]
    assert [len(b) for b in batches] == [4, 4, 2]
    if with_parser:
        assert seen == list(enumerate(actions, 1))
        assert all(b.events is not None for b in batches)
    else:
        assert all(b.events is None for b in batches)


def test_only_the_first_malformed_json_lines_are_logged_then_a_total(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from falconet.replay import MAX_LOGGED, read_json_lines

    path = tmp_path / "m.jsonl"
    path.write_text("nope\n" * (MAX_LOGGED + 5) + '{"action": "delete", "id": 9}\n')
    engine, out, stats = json_source_engine(JSON_CONDITIONS[0])
    stream = read_json_lines("app", path, stats.source("app").counters)
    assert asyncio.run(engine.run({"app": stream})) is True
    assert len(out.alerts) == 1
    assert stats.source("app").counters.malformed == MAX_LOGGED + 5
    err = capsys.readouterr().err
    assert err.count("malformed input line skipped") == MAX_LOGGED
    assert f"total={MAX_LOGGED + 5}" in err


@needs_fields
def test_since_and_until_keep_the_events_inside_the_window(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sample's events are 10:00:02.12 ... 10:00:13.12 (evt.rawtime); the window keeps
    the alerts from 10:00:03 (included) to 10:00:10 (excluded)."""
    _, alerts = replay(tmp_path, REPO / "samples" / "syscall.jsonl")
    everything = alerts.read_text().splitlines()
    alerts.unlink()
    code = run(RunOptions(
        overrides=(*QUIET, "file_output.enabled=true", f"file_output.filename={alerts}"),
        rules_paths=(str(REPO / "rules" / "falconet_rules.yaml"),), replay_source="syscall",
        replay_path=str(REPO / "samples" / "syscall.jsonl"), progress=False,
        since="2024-05-01T10:00:03Z", until="2024-05-01T12:00:10+02:00"))
    assert code == 0
    inside = [line for line in everything if "10:00:03" <= line[:8] < "10:00:10"]
    assert 0 < len(inside) < len(everything)
    assert alerts.read_text().splitlines() == inside


@pytest.mark.parametrize(("since", "until", "message"), [
    ("yesterday", None, "Error: --since/--until: 'yesterday' is neither a time with its "
                        "zone (2024-05-01T10:00:00Z) nor a duration back from now (5d, 12h, "
                        "30m, 45s, 2w)"),
    ("2024-05-01T10:00:00", None, "is neither a time with its zone"),
    ("2024-05-01T10:00:00Z", "2024-05-01T09:00:00Z",
     "Error: --since 2024-05-01T10:00:00Z must be before --until 2024-05-01T09:00:00Z"),
])
def test_bad_since_or_until_is_a_start_up_error(
        since: str, until: str | None, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = run(RunOptions(overrides=QUIET, replay_source="syscall",
                          replay_path=str(REPO / "samples" / "syscall.jsonl"), progress=False,
                          since=since, until=until))
    assert code == 1
    assert message in capsys.readouterr().err


def test_durations_count_back_from_now() -> None:
    from falconet.timebounds import parse_bound

    now = 1714557600 * 10**9
    assert parse_bound("90s", now) == now - 90 * 10**9
    assert parse_bound("2w", now) == now - 14 * 86400 * 10**9
    assert parse_bound("2024-05-01T10:00:00.5Z", now) == now + 500_000_000


def test_a_missing_replay_file_is_a_start_up_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = replay(tmp_path, tmp_path / "nope.jsonl")
    assert code == 1
    assert "Error: Could not open replay input" in capsys.readouterr().err


# --- the engine alone -------------------------------------------------------------------------


class Memory:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def send(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)

    async def close(self) -> None:
        pass


class Rule:
    def __init__(self, name: str, priority: Any, tags: frozenset[str] = frozenset()) -> None:
        self.name, self.priority, self.source, self.tags = name, priority, "src", tags


class Formatter:
    def __init__(self, rule: Rule, fail_on: int = -1) -> None:
        self.rule = rule
        self.fail_on = fail_on

    def alert(self, event: Any) -> Alert:
        if event.num == self.fail_on:
            raise ValueError("formatting bug")
        return Alert(self.rule.name, self.rule.priority.label, "src", event.ts,
                     f"{self.rule.name} #{event.num}", {})


class NameRules:
    """A stand-in ruleset: a rule fires when ``proc.name`` equals its name; ``boom`` raises."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    def evaluate(self, event: Any, source: str | None = None) -> list[Rule]:
        name = event.fields.get("proc.name")
        if name == "boom":
            raise RuntimeError("extractor bug")
        return [r for r in self.rules if r.name == name]

    def evaluate_batch(self, source: str, events: Sequence[Any]) -> list[tuple[Any, list[Rule]]]:
        return [(e, hits) for e in events if (hits := self.evaluate(e, source))]


def engine_with(rules: list[Rule], **formatter_kw: Any) -> tuple[Engine, Memory, EngineStats]:
    stats, out = EngineStats(), Memory()
    state = RulesState(NameRules(rules), {r.name: Formatter(r, **formatter_kw) for r in rules},
                       {r.name: i for i, r in enumerate(rules)})  # type: ignore[arg-type]
    return Engine(state, Dispatcher({"mem": out}, stats, 0), stats), out, stats


def batch(*names: str) -> list[SchemaEvent]:
    return [SchemaEvent("src", {"proc.name": n}, ts=i) for i, n in enumerate(names)]


def test_events_are_numbered_per_source_and_one_bad_event_loses_only_itself() -> None:
    from falconet.ruleset.model import Priority

    engine, out, stats = engine_with([Rule("a", Priority.NOTICE), Rule("b", Priority.DEBUG)])
    streams = {"src": iter([batch("a", "boom", "b"), batch("a", "x")])}
    assert asyncio.run(engine.run(streams)) is True
    assert [a.line for a in out.alerts] == ["a #1", "b #3", "a #4"]
    assert (stats.source("src").events, stats.source("src").batches) == (5, 2)
    assert engine.eval_errors == 1
    assert stats.alerts_by_rule == {"a": 2, "b": 1}
    assert stats.rule_priority == {"a": "Notice", "b": "Debug"}


def test_a_formatting_error_skips_that_alert_only() -> None:
    from falconet.ruleset.model import Priority

    engine, out, stats = engine_with([Rule("a", Priority.NOTICE)], fail_on=2)
    asyncio.run(engine.run({"src": iter([batch("a", "a", "a")])}))
    assert [a.line for a in out.alerts] == ["a #1", "a #3"]
    assert engine.format_errors == 1
    assert stats.alerts_by_rule == {"a": 2}


def test_a_failing_source_is_logged_the_others_finish_and_the_run_fails() -> None:
    from falconet.ruleset.model import Priority

    def broken() -> Any:
        yield batch("a")
        raise OSError("device gone")

    engine, out, _ = engine_with([Rule("a", Priority.NOTICE)])
    ok = asyncio.run(engine.run({"bad": broken(), "src": iter([batch("a"), batch("a")])}))
    assert ok is False
    assert engine.failed_sources == ["bad"]
    assert len(out.alerts) == 3


def test_stop_ends_a_live_source_and_drains() -> None:
    from falconet.ruleset.model import Priority

    async def live() -> Any:
        yield batch("a")
        await asyncio.Event().wait()  # no more traffic
        yield batch("never")

    async def scenario() -> tuple[bool, Memory]:
        engine, out, _ = engine_with([Rule("a", Priority.NOTICE)])
        task = asyncio.create_task(engine.run({"src": live()}))
        while not out.alerts:
            await asyncio.sleep(0)
        engine.stop("test")
        return await task, out

    ok, out = asyncio.run(scenario())
    assert ok is True
    assert [a.line for a in out.alerts] == ["a #1"]


def test_a_source_that_ignores_stop_does_not_hold_back_the_outputs(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import falconet.engine
    from falconet.ruleset.model import Priority

    monkeypatch.setattr(falconet.engine, "SOURCE_STOP_TIMEOUT_S", 0.1)

    source_ended = asyncio.Event()

    async def stubborn() -> Any:
        yield batch("a")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # swallows the stop, as a source stuck in its cleanup would
        source_ended.set()

    async def scenario() -> tuple[bool, Memory, bool]:
        engine, out, _ = engine_with([Rule("a", Priority.NOTICE)])
        task = asyncio.create_task(engine.run({"src": stubborn()}))
        while not out.alerts:
            await asyncio.sleep(0)
        engine.stop("test")
        return await task, out, source_ended.is_set()

    ok, out, ended_first = asyncio.run(scenario())
    assert ok is True
    assert [a.line for a in out.alerts] == ["a #1"]
    assert ended_first is False  # run() drained and returned while the source still ran
    err = capsys.readouterr().err
    assert "event sources did not stop in time; draining the outputs anyway" in err
    assert "source:src" in err


def test_the_summary_is_upstreams_text() -> None:
    from falconet.ruleset.model import Priority

    stats = EngineStats()
    stats.alerts_by_rule.update({"late rule": 2, "info rule": 1, "zero": 0, "early rule": 4})
    stats.rule_priority.update({"late rule": "Critical", "info rule": "Informational",
                                "early rule": "Critical"})
    order = {"early rule": 0, "info rule": 1, "late rule": 2}
    assert Priority.INFORMATIONAL.label == "Informational"
    assert format_summary(stats, order) == (
        "Events detected: 7\n"
        "Rule counts by severity:\n"
        "   CRITICAL: 6\n"
        "   INFO: 1\n"
        "Triggered rules by rule name:\n"
        "   early rule: 4\n"
        "   info rule: 1\n"
        "   late rule: 2\n")


def test_no_alerts_summary() -> None:
    assert format_summary(EngineStats(), {}) == (
        "Events detected: 0\nRule counts by severity:\nTriggered rules by rule name:\n")
