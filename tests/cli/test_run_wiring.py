"""Run-mode flags reach ``falconet.app.run`` as the RunOptions the engine reads.

The engine itself is exercised end to end by tests/cli/test_commands.py (subprocesses); here the
hand-off is captured so that every flag's destination is checked exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import falconet.app
import falconet.plugins
from falconet.api import EventBatch, EventSource, Plugin, SourceContext
from falconet.app import RunOptions
from tests.cli.run_helpers import captured_runs, invoke


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[RunOptions]:
    return captured_runs(monkeypatch)


def test_flags_map_to_run_options(captured: list[RunOptions]) -> None:
    code, _ = invoke("-c", "my.yaml", "-o", "a=1", "-o", "b=2", "-r", "x.yaml", "-r", "d/",
                     "--source", "k8s_audit", "-e", "audit.jsonl", "-M", "2.5", "--dry-run",
                     "-U", "--no-progress")
    assert code == 0
    assert captured == [RunOptions(
        config_path="my.yaml", overrides=("a=1", "b=2"), rules_paths=("x.yaml", "d/"),
        replay_source="k8s_audit", replay_path="audit.jsonl", duration_s=2.5, dry_run=True,
        enable_sources=(), disable_sources=(), unbuffered=True, progress=False)]


def test_defaults_run_live_with_automatic_progress(captured: list[RunOptions]) -> None:
    code, _ = invoke("--enable-source", "k8s_audit", "--enable-source", "syscall", "-M", "0")
    assert code == 0
    assert captured == [RunOptions(enable_sources=("k8s_audit", "syscall"), duration_s=None,
                                   progress=None)]


def test_exclusive_source_flags_stop_before_the_engine(captured: list[RunOptions]) -> None:
    code, output = invoke("--enable-source", "a", "--disable-source", "b")
    assert code == 1
    assert output == "Error: You can not mix --enable-source and --disable-source\n"
    assert captured == []


def test_listing_flags_do_not_run_the_engine(captured: list[RunOptions]) -> None:
    code, output = invoke("--list-plugins", "--dry-run")
    assert (code, output) == (0, "0 Plugins Loaded:\n\n")
    assert captured == []


def test_replay_without_source_uses_syscall_when_no_plugin_source(
        captured: list[RunOptions]) -> None:
    code, _ = invoke("-e", "events.jsonl")
    assert code == 0
    assert captured[0].replay_source == "syscall"


async def _never(_ctx: SourceContext) -> AsyncIterator[EventBatch]:  # pragma: no cover
    if False:
        yield []


def _reader(_path: Path, _ctx: SourceContext) -> Iterator[EventBatch]:  # pragma: no cover
    return iter(())


def test_replay_without_source_uses_the_only_loaded_source(
        captured: list[RunOptions], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    demo = Plugin(name="demo", version="1.0.0",
                  source=EventSource(name="demo_events", open=_never, replay=_reader))
    monkeypatch.setattr(falconet.plugins, "discover", lambda: {"demo": demo})
    config = tmp_path / "falco.yaml"
    config.write_text("plugins:\n  - name: demo\n")
    code, _ = invoke("-c", str(config), "-e", "events.jsonl")
    assert code == 0
    assert captured[0].replay_source == "demo_events"
    assert captured[0].config_path == str(config)
