"""``falconet -w FILE``: the command line and the engine's side of recording, with a small source
that records (``tape``) so that no probe is needed; the syscall source itself is recorded against
the real kernel in test_capture_live.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import falconet.app
import falconet.plugins
from falconet.api import (
    EventBatch,
    EventSource,
    FieldSpec,
    FieldTable,
    FieldType,
    Plugin,
    SchemaEvent,
    SourceContext,
)
from falconet.app import RunOptions, run
from tests.cli.run_helpers import captured_runs, invoke

T0 = 1_714_557_600_000_000_000
RULE = """\
- rule: Tape event
  desc: every tape event
  condition: proc.name = cat
  output: tape %proc.name
  priority: WARNING
  source: tape
"""


async def _open(ctx: SourceContext) -> AsyncIterator[EventBatch]:
    """Three events, each also written as a JSON line to ``record_path`` when recording."""
    tape = ctx.record_path.open("w") if ctx.record_path is not None else None
    try:
        for i, name in enumerate(("cat", "ls", "cat")):
            fields = {"proc.name": name, "evt.type": "tick"}
            if tape is not None:
                tape.write(json.dumps(fields) + "\n")
            yield [SchemaEvent("tape", fields, ts=T0 + i)]
        await asyncio.Event().wait()
    finally:
        if tape is not None:
            tape.close()


def _replay(path: Path, _ctx: SourceContext) -> Iterator[EventBatch]:
    """Checks its input when called, as the syscall source's replay checks a capture header."""
    lines = path.read_text().splitlines()
    if lines[0].startswith("bad"):
        raise ValueError(f"{path}: not a tape")
    return iter([[SchemaEvent("tape", json.loads(line), ts=T0 + i)]
                 for i, line in enumerate(lines)])


def _plugin(name: str, source: str, can_record: bool) -> Plugin:
    def fields() -> list[FieldTable]:
        table = FieldTable(source)
        table.add(FieldSpec("proc.name", FieldType.CHARBUF, description="name"))
        table.add(FieldSpec("evt.type", FieldType.CHARBUF, description="type"))
        return [table]

    return Plugin(name=name, version="1.0.0", fields=fields,
                  source=EventSource(name=source, open=_open, replay=_replay,
                                     json_payload=False, can_record=can_record))


@pytest.fixture
def tape_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A falco.yaml that loads the recording ``tape`` source and a ``mute`` one that cannot
    record; alerts go to a file."""
    plugins = {"taper": _plugin("taper", "tape", True), "mute": _plugin("mute", "mute", False)}
    monkeypatch.setattr(falconet.plugins, "discover", lambda: plugins)
    (tmp_path / "rules.yaml").write_text(RULE)
    config = tmp_path / "falco.yaml"
    config.write_text(f"""\
plugins: [{{name: taper}}, {{name: mute}}]
rules_files: [{tmp_path / "rules.yaml"}]
stdout_output: {{enabled: false}}
syslog_output: {{enabled: false}}
webserver: {{enabled: false}}
file_output: {{enabled: true, filename: {tmp_path / "alerts.txt"}}}
time_format_iso_8601: true
""")
    return config


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[RunOptions]:
    return captured_runs(monkeypatch)


# --- the command line --------------------------------------------------------------------------

def test_w_records_the_named_source_or_syscall(captured: list[RunOptions]) -> None:
    assert invoke("--source", "tape", "-w", "out.fcap", "-M", "2")[0] == 0
    assert invoke("-w", "out.fcap")[0] == 0
    assert captured == [RunOptions(record_source="tape", record_path="out.fcap", duration_s=2),
                        RunOptions(record_source="syscall", record_path="out.fcap")]


def test_w_and_e_together_are_refused(captured: list[RunOptions]) -> None:
    assert invoke("-w", "out.fcap", "-e", "in.fcap") == (
        1, "Error: -w records live events: it cannot be combined with -e\n")
    assert captured == []


def test_help_lists_w_in_the_running_section() -> None:
    code, output = invoke("-h")
    running = output[output.index("Running:"):]
    assert code == 0 and "-w FILE" in running


# --- the engine ----------------------------------------------------------------------------------

def test_a_recording_run_hands_the_path_to_the_source_and_alerts_as_usual(
        tape_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tape = tmp_path / "run.tape"
    code = run(RunOptions(config_path=str(tape_config), record_source="tape",
                          record_path=str(tape), duration_s=0.5, progress=False))
    assert code == 0
    assert tape.read_text().splitlines() == [
        '{"proc.name": "cat", "evt.type": "tick"}', '{"proc.name": "ls", "evt.type": "tick"}',
        '{"proc.name": "cat", "evt.type": "tick"}']
    alerts = (tmp_path / "alerts.txt").read_text().splitlines()
    assert alerts == ["2024-05-01T10:00:00.000000000Z: Warning tape cat",
                      "2024-05-01T10:00:00.000000002Z: Warning tape cat"]
    assert f"Recording 'tape' source to {tape}" in capsys.readouterr().err
    # and what was recorded replays to the same alerts
    (tmp_path / "alerts.txt").unlink()
    assert run(RunOptions(config_path=str(tape_config), replay_source="tape",
                          replay_path=str(tape), progress=False)) == 0
    assert (tmp_path / "alerts.txt").read_text().splitlines() == alerts


@pytest.mark.parametrize(("source", "extra", "why"), [
    ("mute", {}, "the source 'mute' cannot record its events"),
    ("nosuch", {}, "no loaded plugin provides the source 'nosuch'"),
    ("tape", {"disable_sources": ("tape",)}, "the source 'tape' is not enabled"),
    ("tape", {"enable_sources": ("mute",)}, "the source 'tape' is not enabled"),
])
def test_sources_that_cannot_record_are_refused_before_anything_runs(
        tape_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str,
        extra: dict[str, tuple[str, ...]], why: str) -> None:
    out = tmp_path / "out.fcap"
    code = run(RunOptions(config_path=str(tape_config), record_source=source,
                          record_path=str(out), duration_s=5, progress=False,
                          **extra))  # type: ignore[arg-type]
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == f"Error: Cannot record with -w: {why}"
    assert not out.exists() and not (tmp_path / "alerts.txt").exists()


def test_a_recording_path_in_a_missing_directory_is_refused(
        tape_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(RunOptions(config_path=str(tape_config), record_source="tape",
                          record_path=str(tmp_path / "nodir" / "out.fcap"), progress=False))
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"Error: Cannot record with -w: no directory {tmp_path / 'nodir'}")
    code = run(RunOptions(config_path=str(tape_config), record_source="tape",
                          record_path=str(tmp_path), progress=False))
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"Error: Cannot record with -w: {tmp_path} is a directory")


def test_a_replay_reader_that_refuses_its_input_is_a_start_up_error(
        tape_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tape"
    bad.write_text("bad input\n")
    code = run(RunOptions(config_path=str(tape_config), replay_source="tape",
                          replay_path=str(bad), progress=False))
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"Error: Could not open replay input {bad}: {bad}: not a tape")


def test_engine_kind_replay_replays_the_capture_file_of_falco_yaml(
        tape_config: Path, tmp_path: Path) -> None:
    tape = tmp_path / "in.tape"
    tape.write_text('{"proc.name": "cat"}\n{"proc.name": "sh"}\n')
    code = run(RunOptions(config_path=str(tape_config), replay_source="tape",
                          overrides=("engine.kind=replay", f"engine.replay.capture_file={tape}"),
                          progress=False))
    assert code == 0
    assert (tmp_path / "alerts.txt").read_text().splitlines() == [
        "2024-05-01T10:00:00.000000000Z: Warning tape cat"]


def test_falco_yaml_capture_enabled_is_reported_as_not_supported(
        tape_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tape = tmp_path / "in.tape"
    tape.write_text('{"proc.name": "cat"}\n')
    code = run(RunOptions(config_path=str(tape_config), replay_source="tape",
                          replay_path=str(tape), overrides=("capture.enabled=true",),
                          progress=False))
    assert code == 0
    assert ("capture.enabled is set, but captures triggered by alerts are not supported "
            "(ignored): record a run with --source syscall -w FILE\n") in capsys.readouterr().err
