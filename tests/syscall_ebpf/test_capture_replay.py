"""The syscall source's replay (``falconet_syscall_ebpf.replay``): captures decoded block by block,
damage counted and logged while the good blocks still replay, JSON lines of field values read as
before, and the recorder hook. The decoder here is a small stand-in (8-byte records: a u32 id and
a u32 time) so that block handling is checked alone; test_capture_live.py replays real probe
records through the real decoder and the falconet command."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from falconet.api import SourceContext
from falconet.event import SchemaEvent
from falconet_syscall_ebpf.capture import CaptureError, CaptureMetadata, CaptureWriter, read_capture
from falconet_syscall_ebpf.replay import Recorder, replay_capture, replay_source

BOOT = 1_714_557_600_000_000_000
META = CaptureMetadata(boot_time_ns=BOOT, probe_version="test", hostname="h")
REPO = Path(__file__).resolve().parents[2]


class Log:
    """falconet's logger interface, keeping (level, message, details)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.records.append(("info", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.records.append(("warning", event, kw))

    def error(self, event: str, **kw: Any) -> None:
        self.records.append(("error", event, kw))

    def at(self, level: str) -> list[tuple[str, dict[str, Any]]]:
        return [(event, kw) for lvl, event, kw in self.records if lvl == level]


def context() -> SourceContext:
    return SourceContext("", {}, log=Log())


def records(*ids: int) -> bytes:
    return b"".join(struct.pack("<II", i, i * 10) for i in ids)


def decode(data: bytes, _count: int) -> Sequence[Any]:
    """Stand-in decoder: the time is boot-relative, as the probe's."""
    if data.startswith(b"\xff"):
        raise struct.error("unpack requires a buffer of 8 bytes")
    return [SchemaEvent("syscall", {"id": i}, ts=BOOT + t)
            for i, t in struct.iter_unpack("<II", data[:len(data) // 8 * 8])]


def ids(batches: Any) -> list[list[tuple[int, int]]]:
    return [[(ev.fields["id"], ev.ts - BOOT) for ev in batch] for batch in batches]


def capture(path: Path, *blocks: tuple[bytes, int]) -> list[int]:
    """Write the blocks; returns each block's offset."""
    offsets = []
    with CaptureWriter(path, META) as writer:
        for data, count in blocks:
            offsets.append(writer.bytes_written)
            writer.write_block(data, count)
    return offsets


def test_a_capture_replays_one_batch_per_block_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    capture(path, (records(1, 2), 2), (records(3), 1))
    ctx = context()
    assert ids(replay_capture(path, ctx, decode)) == [[(1, 10), (2, 20)], [(3, 30)]]
    assert ctx.counters.malformed == 0
    assert ctx.log.at("info") == [("replaying a capture", {
        "file": str(path), "format": "1.0", "hostname": "h", "kernel": "",
        "probe_version": "test", "falconet_version": ""})]
    assert ctx.log.at("warning") == []


def test_a_truncated_capture_replays_its_earlier_blocks_and_counts_the_loss(
        tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    offsets = capture(path, (records(1), 1), (records(2, 3), 2), (records(4, 5, 6), 3))
    path.write_bytes(path.read_bytes()[:offsets[2] + 24 + 10])
    ctx = context()
    assert ids(replay_capture(path, ctx, decode)) == [[(1, 10)], [(2, 20), (3, 30)]]
    assert ctx.counters.malformed == 1
    assert ctx.log.at("warning") == [("capture replay stopped", {
        "file": str(path),
        "reason": f"truncated block at offset {offsets[2]}: 10 of 24 bytes of 3 records"})]


def test_blocks_that_fail_their_checks_or_the_decoder_are_skipped_and_counted(
        tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    offsets = capture(path, (records(1), 1), (records(2, 3), 2), (b"\xff" * 16, 2),
                      (records(7) + b"\x01\x02", 3), (records(8), 1))
    data = bytearray(path.read_bytes())
    data[offsets[1] + 24] ^= 0x01  # a flipped bit in block 2: its checksum fails
    path.write_bytes(bytes(data))
    ctx = context()
    assert ids(replay_capture(path, ctx, decode)) == [[(1, 10)], [(7, 70)], [(8, 80)]]
    assert ctx.counters.malformed == 1 + 2 + 2  # one bad block, two undecodable, two missing
    assert ctx.log.at("warning") == [
        ("capture block skipped", {"file": str(path), "reason":
         f"bad block at offset {offsets[1]}: checksum mismatch"}),
        ("capture block skipped", {"file": str(path), "reason":
         f"block at offset {offsets[2]}: records not decodable: "
         "error('unpack requires a buffer of 8 bytes')"}),
        ("capture block damaged", {"file": str(path), "reason":
         f"block at offset {offsets[3]}: 1 of 3 records decoded"}),
    ]


def test_problems_past_the_tenth_are_counted_and_totalled_once(tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    capture(path, *[(b"\xff" * 8, 1)] * 14)
    ctx = context()
    assert list(replay_capture(path, ctx, decode)) == []
    assert ctx.counters.malformed == 14
    warnings = ctx.log.at("warning")
    assert len(warnings) == 11
    assert warnings[-1] == ("capture problems not logged",
                            {"file": str(path), "total": 14, "not_logged": 4})


def test_a_capture_that_cannot_be_replayed_is_refused_when_replay_is_called(
        tmp_path: Path) -> None:
    path = tmp_path / "c.fcap"
    capture(path, (records(1), 1))
    data = bytearray(path.read_bytes())
    data[8:10] = struct.pack("<H", 3)
    path.write_bytes(bytes(data))
    with pytest.raises(CaptureError, match=r"capture format version 3\.0 is newer than this "
                                           r"falconet reads \(1\.0\)"):
        replay_source(path, context())


def test_a_capture_of_an_unknown_probe_version_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("falconet_syscall_ebpf.decode",
                        reason="the probe's decoder is not installed")
    path = tmp_path / "c.fcap"
    capture(path, (records(1), 1))  # probe_version "test"
    from falconet_syscall_ebpf import PROBE_VERSION

    with pytest.raises(CaptureError) as err:
        replay_source(path, context())
    assert str(err.value) == (f"{path}: records of probe version test: this falconet decodes "
                              f"probe version {PROBE_VERSION}")


def test_a_falco_scap_file_is_refused_with_what_falconet_reads(tmp_path: Path) -> None:
    path = tmp_path / "falco.scap"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\x00" * 60)
    with pytest.raises(CaptureError) as err:
        replay_source(path, context())
    assert str(err.value) == (f"{path}: a Falco .scap capture: falconet replays its own capture "
                              "files (falconet -w, docs/capture-format.md) and JSON lines of "
                              "field values")


def test_json_lines_of_field_values_are_still_replayed_as_schema_events(
        tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"evt.type": "openat", "fd.name": "/etc/shadow", "evt.rawtime": 5, '
                    '"proc.aname": ["a", "b"]}\n{not json\n')
    ctx = context()
    batches = list(replay_source(path, ctx))
    assert [[(ev.evt_type, ev.ts, ev.fields) for ev in batch] for batch in batches] == [[
        ("openat", 5, {"evt.type": "openat", "fd.name": "/etc/shadow", "evt.rawtime": 5,
                       "proc.aname": ("a", "b")})]]
    assert ctx.counters.malformed == 1


def test_the_bundled_sample_replays_through_the_syscall_replay() -> None:
    ctx = context()
    events = [ev for batch in replay_source(REPO / "samples" / "syscall.jsonl", ctx)
              for ev in batch]
    lines = (REPO / "samples" / "syscall.jsonl").read_text().splitlines()
    assert len(events) == len([line for line in lines if line.strip()])
    assert ctx.counters.malformed == 0


# --- recording ----------------------------------------------------------------------------------

def test_the_recorder_writes_one_block_per_chunk(tmp_path: Path) -> None:
    path = tmp_path / "rec.fcap"
    log = Log()
    recorder = Recorder(path, META, lambda chunk: len(chunk) // 8, log)
    recorder.on_raw(memoryview(records(1, 2)))
    recorder.on_raw(memoryview(b""))
    recorder.on_raw(memoryview(records(3)))
    recorder.close()
    recorder.close()
    meta, blocks = read_capture(path)
    assert meta == META
    assert [(b.count, b.data) for b in blocks] == [(2, records(1, 2)), (1, records(3))]
    assert log.at("info") == [("recording closed", {"file": str(path), "blocks": 2,
                                                    "records": 3, "bytes": path.stat().st_size})]


def test_a_failed_write_stops_the_recording_not_the_source(tmp_path: Path) -> None:
    path = tmp_path / "rec.fcap"
    log = Log()
    recorder = Recorder(path, META, lambda chunk: 0, log)  # a count that does not fit the bytes
    recorder.on_raw(memoryview(records(1)))
    recorder.on_raw(memoryview(records(2)))  # ignored: the recording has stopped
    recorder.close()
    assert log.at("error") == [("recording stopped", {
        "file": str(path), "error": "a block of 8 bytes cannot hold 0 records", "blocks": 0,
        "records": 0})]
    _meta, blocks = read_capture(path)
    assert list(blocks) == []


# --- directories, with the probe's decoder -------------------------------------------------------

def frame(nr: int, ts: int, pid: int, comm: bytes = b"cat") -> bytes:
    """One ring-buffer frame holding a parameterless record of probe version 1 (the package
    README's layout): frame header, 64-byte record header; 72 bytes, already 8-aligned."""
    record = struct.pack("<HBBHHQIIIIIIq16s", nr, 0, 0, 64, 0, ts, pid, pid, 1, 0, 0, 0, 0,
                         comm)
    return struct.pack("<II", len(record), 0) + record


def probe_capture(path: Path, *frames: bytes) -> None:
    from falconet_syscall_ebpf import PROBE_VERSION

    meta = CaptureMetadata(boot_time_ns=BOOT, probe_version=str(PROBE_VERSION))
    with CaptureWriter(path, meta) as writer:
        writer.write_block(b"".join(frames), len(frames))


def test_a_directory_replays_its_captures_and_json_lines_in_name_order(tmp_path: Path) -> None:
    pytest.importorskip("falconet_syscall_ebpf.decode",
                        reason="the probe's decoder is not installed")
    probe_capture(tmp_path / "a.fcap", frame(257, 5, 100), frame(3, 6, 100))
    (tmp_path / "b.jsonl").write_text('{"evt.type": "execve", "evt.rawtime": 7}\n')
    probe_capture(tmp_path / "c.fcap", frame(87, 8, 200))
    ctx = context()
    events = [ev for batch in replay_source(tmp_path, ctx) for ev in batch]
    assert [(ev.evt_type, ev.ts) for ev in events] == [
        ("openat", BOOT + 5), ("close", BOOT + 6), ("execve", 7), ("unlink", BOOT + 8)]
    assert [getattr(ev, "pid", None) for ev in events] == [100, 100, None, 200]
    assert ctx.counters.malformed == 0


def test_a_directory_with_a_capture_it_cannot_replay_is_refused_at_once(tmp_path: Path) -> None:
    probe_capture(tmp_path / "a.fcap", frame(257, 5, 100))
    capture(tmp_path / "b.fcap", (records(1), 1))
    data = bytearray((tmp_path / "b.fcap").read_bytes())
    data[8:10] = struct.pack("<H", 9)
    (tmp_path / "b.fcap").write_bytes(bytes(data))
    with pytest.raises(CaptureError, match=r"b\.fcap: capture format version 9\.0 is newer"):
        replay_source(tmp_path, context())
