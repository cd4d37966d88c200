"""``open_params: file://PATH``: following an audit log on a real filesystem as the API server
(and logrotate) write it. The follower is polled by hand where the order of writes matters; the
stream is read as the engine reads it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.api import SourceCounters
from falconet_k8s_audit.parse import Reporter
from falconet_k8s_audit.source import open_source
from falconet_k8s_audit.tail import FileFollower

from .helpers import RecordingLog, audit_event, event_list, source_context

DEADLINE_S = 10.0


def line(audit_id: str) -> bytes:
    return orjson.dumps(audit_event(audit_id)) + b"\n"


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def follower(path: Path, max_line: int = 1 << 20) -> tuple[FileFollower, SourceCounters,
                                                            RecordingLog]:
    counters, log = SourceCounters(), RecordingLog()
    follow = FileFollower(path, max_line, Reporter(counters, log))
    follow.start()
    return follow, counters, log


def ids(lines: list[bytes]) -> list[str]:
    return [orjson.loads(ln)["auditID"] for ln in lines]


# --- the follower -------------------------------------------------------------------------------

def test_reading_starts_at_the_end_of_an_existing_file(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line("old1") + line("old2"))
    follow, _, _ = follower(log)
    assert follow.poll() == []
    append(log, line("new1") + line("new2"))
    assert ids(follow.poll()) == ["new1", "new2"]
    assert follow.poll() == []
    follow.close()


def test_a_line_is_read_once_its_newline_is_written(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()
    follow, _, _ = follower(log)
    whole = line("split")
    append(log, whole[:20])
    assert follow.poll() == []
    append(log, whole[20:-1])
    assert follow.poll() == []
    append(log, b"\n" + line("next"))
    assert ids(follow.poll()) == ["split", "next"]
    follow.close()


def test_rotation_reads_the_old_file_to_its_end_then_the_new_one_from_its_start(
        tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line("before-start"))
    follow, _, rec = follower(log)
    append(log, line("a1"))
    assert ids(follow.poll()) == ["a1"]
    rotated = tmp_path / "audit-2024-01-02.log"
    log.rename(rotated)
    append(rotated, line("a2"))  # the writer finishes its last lines in the renamed file
    assert ids(follow.poll()) == ["a2"]
    append(rotated, line("a3") + line("a4")[:-1])  # the last line has no newline yet...
    log.write_bytes(line("b1") + line("b2"))  # ...when the writer opens the new file
    assert ids(follow.poll()) == ["a3", "a4", "b1", "b2"]
    append(rotated, line("lost"))  # the old file is no longer followed
    append(log, line("b3"))
    assert ids(follow.poll()) == ["b3"]
    assert rec.messages("info") == ["k8s audit log rotated, following the new file"]
    follow.close()


def test_copytruncate_restarts_reading_at_the_start(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line("old"))
    follow, _, rec = follower(log)
    append(log, line("a1") + line("a2"))
    assert ids(follow.poll()) == ["a1", "a2"]
    with log.open("r+b") as file:
        file.truncate(0)
    append(log, line("c1"))
    assert ids(follow.poll()) == ["c1"]
    assert rec.messages() == ["k8s audit log truncated, reading it from the start"]
    follow.close()


def test_a_file_that_does_not_exist_yet_is_read_from_its_start_when_it_appears(
        tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    follow, _, rec = follower(log)
    assert follow.poll() == []
    assert rec.records == [("info", "k8s audit log does not exist yet, waiting for it",
                            {"file": str(log)})]
    log.write_bytes(line("first"))
    assert ids(follow.poll()) == ["first"]
    follow.close()


def test_a_removed_file_is_read_again_when_created_again(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()
    follow, _, _ = follower(log)
    append(log, line("a1"))
    log.unlink()
    assert ids(follow.poll()) == ["a1"]
    assert follow.poll() == []
    log.write_bytes(line("b1"))
    assert ids(follow.poll()) == ["b1"]
    follow.close()


def test_a_line_longer_than_the_limit_is_skipped_counted_and_logged(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()
    limit = len(line("ok"))
    follow, counters, rec = follower(log, max_line=limit)
    long_line = orjson.dumps(audit_event("long", requestObject={"x": "y" * 200}))
    append(log, long_line + b"\n" + line("ok1"))
    assert ids(follow.poll()) == ["ok1"]
    # a long line arriving in pieces: dropped as soon as it is too long, up to its newline
    append(log, long_line[:limit + 5])
    assert follow.poll() == []
    append(log, long_line[limit + 5:] + b"\n" + line("ok2"))
    assert ids(follow.poll()) == ["ok2"]
    assert counters.rejected == {"line_too_long": 2}
    assert counters.malformed == 2
    assert [kw for _, msg, kw in rec.records if msg.startswith("line longer")] == [
        {"reason": "line_too_long", "file": str(log)}] * 2
    follow.close()


# --- the stream ---------------------------------------------------------------------------------

async def next_ids(stream: Any) -> list[str]:
    batch = await asyncio.wait_for(anext(stream), DEADLINE_S)
    return [event.payload["auditID"] for event in batch]


def test_file_url_streams_appended_events_with_upstream_parsing(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line("before"))

    async def scenario() -> Any:
        ctx = source_context(f"file://{log}", {"maxEventSize": 4000})
        stream: Any = open_source(ctx)
        append(log, line("a1") + b"\n" + b'{"kind": 0}\n' + b"{broken\n"
               + orjson.dumps(event_list(audit_event("a2"), audit_event("a3"))) + b"\n")
        assert await next_ids(stream) == ["a1", "a2", "a3"]
        (tmp_path / "audit.log").rename(tmp_path / "audit.log.1")
        log.write_bytes(line("b1"))
        assert await next_ids(stream) == ["b1"]
        append(log, line("b2"))
        (event,) = await asyncio.wait_for(anext(stream), DEADLINE_S)
        assert event.raw == orjson.dumps(audit_event("b2"))
        await stream.aclose()
        return ctx

    ctx = asyncio.run(scenario())
    assert ctx.counters.rejected == {"not_audit_event": 1, "invalid_json": 1}
    assert ctx.counters.malformed == 2
    assert [kw["file"] for _, msg, kw in ctx.log.records
            if msg == "data not recognized as a k8s audit event"] == [str(log)]


def test_file_url_with_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()

    async def scenario() -> list[str]:
        stream: Any = open_source(source_context("file://logs/audit.log"))
        (tmp_path / "logs" / "audit.log").write_bytes(line("rel"))
        try:
            return await next_ids(stream)
        finally:
            await stream.aclose()

    assert asyncio.run(scenario()) == ["rel"]


def test_a_missing_directory_fails_when_the_source_is_opened(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "audit.log"
    with pytest.raises(FileNotFoundError,
                       match=f"^k8s audit log directory not found: {tmp_path / 'nope'}$"):
        open_source(source_context(f"file://{missing}"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_closing_the_stream_closes_the_file(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.touch()

    async def scenario() -> None:
        stream: Any = open_source(source_context(f"file://{log}"))
        append(log, line("x"))
        assert await next_ids(stream) == ["x"]
        before = len(os.listdir("/proc/self/fd"))
        await stream.aclose()
        assert len(os.listdir("/proc/self/fd")) == before - 1
        with pytest.raises(StopAsyncIteration):
            await anext(stream)

    asyncio.run(scenario())
