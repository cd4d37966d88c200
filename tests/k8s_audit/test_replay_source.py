"""Reading audit log files once: ``open_params`` without a scheme (a stream that ends) and
``falconet --source k8s_audit -e PATH`` (the plugin's replay, run as the real command)."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet_k8s_audit.source import open_source, replay_source

from .helpers import STAGE_NS, TRACES, audit_event, event_list, source_context

REPO = Path(__file__).resolve().parents[2]


def line(audit_id: str, **extra: Any) -> bytes:
    return orjson.dumps(audit_event(audit_id, **extra)) + b"\n"


async def drain(stream: Any) -> list[list[str]]:
    """Every batch of a stream that ends, as auditIDs."""
    return [[e.payload["auditID"] for e in batch] async for batch in stream]


def replayed(path: Path, init: dict[str, Any] | None = None) -> tuple[list[str], Any]:
    ctx = source_context(str(path), init)
    got = [e.payload["auditID"] for batch in replay_source(path, ctx) for e in batch]
    return got, ctx


def test_a_plain_path_is_read_once_and_the_stream_ends(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line("a1") + b"\n\n" + orjson.dumps([audit_event("a2"), event_list(
        audit_event("a3"))]) + b"\n" + line("a4").rstrip(b"\n"))  # no final newline
    ctx = source_context(str(log))
    assert asyncio.run(drain(open_source(ctx))) == [["a1", "a2", "a3", "a4"]]
    assert (ctx.counters.malformed, ctx.counters.dropped, ctx.counters.rejected) == (0, 0, {})


def test_events_carry_the_compact_event_json_and_the_stage_time(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    doc = audit_event("a1")
    log.write_bytes(orjson.dumps(event_list(doc)) + b"\n")
    (batch,) = list(replay_source(log, source_context(str(log))))
    (event,) = batch
    assert (event.source, event.ts, event.raw, event.payload) == (
        "k8s_audit", STAGE_NS, orjson.dumps(doc), doc)


def test_batches_hold_at_most_128_events_in_order(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(line(f"e{i}") for i in range(300)))
    batches = list(replay_source(log, source_context(str(log))))
    assert [len(b) for b in batches] == [128, 128, 44]
    assert [e.payload["auditID"] for b in batches for e in b] == [f"e{i}" for i in range(300)]


def test_a_directory_is_read_oldest_file_first(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    for name, ids, mtime in (("a.log", ["a1", "a2"], 3000), ("b.log", ["b1"], 1000),
                             ("c.log.gz", ["c1"], 2000), (".hidden", ["h1"], 500)):
        data = b"".join(line(i) for i in ids)
        path = folder / name
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        os.utime(path, (mtime, mtime))
    (folder / "sub").mkdir()
    got, ctx = replayed(folder)
    assert got == ["b1", "c1", "a1", "a2"]
    assert ctx.counters.rejected == {}


def test_bad_lines_and_events_are_counted_and_logged_with_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line("a1") + b'{"kind": 0}\n' + b"{broken\n" + line("no-ts", stage_ts=None)
                    + line("big", requestObject={"x": "y" * 300}) + line("a2"))
    got, ctx = replayed(log, {"maxEventSize": 300})
    assert got == ["a1", "a2"]
    assert ctx.counters.rejected == {"not_audit_event": 1, "invalid_json": 1,
                                     "bad_stage_timestamp": 1, "event_too_large": 1}
    assert (ctx.counters.malformed, ctx.counters.dropped) == (3, 1)
    where = [(msg.split(":")[0], kw.get("line"), kw.get("auditID"))
             for _, msg, kw in ctx.log.records]
    assert where == [("data not recognized as a k8s audit event", 2, None),
                     ("invalid JSON", 3, None), ("can't read stageTimestamp", 4, "no-ts"),
                     ("event larger than maxEventSize", 5, "big")]
    assert {kw["file"] for _, _, kw in ctx.log.records} == {str(log)}


def test_a_truncated_gz_keeps_what_was_read_and_is_counted(tmp_path: Path) -> None:
    log = tmp_path / "audit.log.gz"
    data = gzip.compress(b"".join(line(f"e{i}") for i in range(2000)))
    log.write_bytes(data[: len(data) // 2])
    got, ctx = replayed(log)
    assert 0 < len(got) < 2000
    assert got == [f"e{i}" for i in range(len(got))]
    assert ctx.counters.rejected == {"unreadable_input": 1}
    assert ctx.counters.malformed == 1


def test_a_missing_path_fails_when_the_source_is_opened(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    with pytest.raises(FileNotFoundError) as err:
        open_source(source_context(str(missing)))
    assert str(err.value) == f"k8s audit input not found: {missing}"


@pytest.mark.skipif(not TRACES.is_dir(), reason=f"upstream traces not found at {TRACES} "
                    "(shared/ is not beside main)")
def test_every_upstream_trace_replays_without_loss() -> None:
    for trace in sorted(TRACES.glob("*.json")):
        got, ctx = replayed(trace)
        docs = [orjson.loads(ln) for ln in trace.read_bytes().splitlines() if ln.strip()]
        if trace.name == "fal_01_003.json":
            assert (got, ctx.counters.rejected) == ([], {"not_audit_event": 1}), trace.name
        else:
            assert got == [d["auditID"] for d in docs], trace.name
            assert ctx.counters.rejected == {}, trace.name


# --- falconet --source k8s_audit -e PATH --------------------------------------------------------

RULE = """\
- rule: Audit event seen
  desc: every audit event
  condition: ka.verb exists
  output: seen %ka.auditid by %ka.user.name at %json.rawtime
  priority: WARNING
  source: k8s_audit
"""


def run_falconet(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    return subprocess.run(
        [sys.executable, "-m", "falconet.cli", "-r", str(rules),
         "-o", "plugins[]={name: k8saudit}", "-o", "plugins[]={name: json}",
         "-o", "webserver.enabled=false", "-o", "watch_config_files=false", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "TZ": "UTC"})


def test_falconet_replays_a_file_through_the_plugin_reader(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line("a1") + b'{"kind": 0}\n'
                    + orjson.dumps(event_list(audit_event("a2", stage_ts="2024-01-02T03:04:06Z")))
                    + b"\n")
    res = run_falconet(tmp_path, "--source", "k8s_audit", "-e", str(log))
    assert res.returncode == 0, res.stderr
    alerts = [ln for ln in res.stdout.splitlines() if " seen " in ln]
    assert alerts == [
        f"03:04:05.123456789: Warning seen a1 by alice at {STAGE_NS}",
        "03:04:06.000000000: Warning seen a2 by alice at 1704164646000000000",
    ]
    assert f"Opening 'k8s_audit' source with a replay of {log}" in res.stderr
    assert "data not recognized as a k8s audit event source=k8s_audit reason=not_audit_event " \
           f"file={log} line=2" in res.stderr
