"""Record and replay against the real kernel, with the real ``falconet`` command: a child process
opens /etc/shadow, creates, renames and unlinks a file while ``falconet --source syscall -w FILE
-M 2`` records; ``falconet --source syscall -e FILE`` then gives exactly the alerts the live run
gave, with the times the kernel recorded, every time."""

from __future__ import annotations

import os
import re
import socket
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from falconet_syscall_ebpf.capture import CaptureWriter, read_capture
from tests.syscall_ebpf.capture_helpers import (
    Recording,
    alert_lines,
    child_name,
    falconet,
    needs_probe,
    record,
    replay,
)

pytestmark = needs_probe

ACTION = """\
fd = os.open("/etc/shadow", os.O_RDONLY)
os.close(fd)
out["shadow_fd"] = fd
old, new = os.path.join(tmp, "old.txt"), os.path.join(tmp, "new.txt")
with open(old, "w"):
    pass
os.rename(old, new)
os.unlink(new)
"""

RULES = """\
- rule: Shadow opened
  desc: a one-line rule on the open of /etc/shadow
  condition: evt.type in (open, openat) and evt.arg.name = /etc/shadow and proc.name = {name}
  output: >-
    shadow opened (%evt.type fd=%evt.rawres flags=%evt.arg.flags by %proc.name
    pid=%proc.pid tid=%thread.tid)
  priority: WARNING
  source: syscall
- rule: File renamed
  desc: renames by the child
  condition: evt.type in (rename, renameat, renameat2) and proc.name = {name}
  output: renamed %evt.arg.oldpath to %evt.arg.newpath (res=%evt.res by %proc.name pid=%proc.pid)
  priority: NOTICE
  source: syscall
- rule: File unlinked
  desc: unlinks by the child
  condition: evt.type in (unlink, unlinkat) and proc.name = {name}
  output: unlinked %evt.arg.path (res=%evt.res failed=%evt.failed by %proc.name tid=%thread.tid)
  priority: NOTICE
  source: syscall
"""
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recording, Path, str]:
    """One recording shared by the tests of this module (each costs a few seconds)."""
    tmp = tmp_path_factory.mktemp("capture")
    name = child_name()
    rules = tmp / "rules.yaml"
    rules.write_text(RULES.format(name=name))
    rec = record(tmp / "run.fcap", rules, ACTION, name=name,
                 args=("-o", "time_format_iso_8601=true"))
    return rec, rules, name


def expected(rec: Recording, name: str) -> list[str]:
    """The alert lines, time left out, in the order the child made the syscalls."""
    pid, tid, tmp = rec.child["pid"], rec.child["tid"], rec.path.parent
    flags = "O_RDONLY|O_CLOEXEC"  # Python opens everything close-on-exec
    return [
        f"Warning shadow opened (openat fd={rec.child['shadow_fd']} flags={flags} by {name} "
        f"pid={pid} tid={tid})",
        f"Notice renamed {tmp}/old.txt to {tmp}/new.txt (res=SUCCESS by {name} pid={pid})",
        f"Notice unlinked {tmp}/new.txt (res=SUCCESS failed=false by {name} tid={tid})",
    ]


def split(lines: list[str]) -> tuple[list[int], list[str]]:
    """(times in ns since the epoch, the lines without their time)."""
    times, rest = [], []
    for line in lines:
        match = re.fullmatch(rf"({ISO}): (.*)", line)
        assert match is not None, line
        when = datetime.fromisoformat(match.group(1)[:26] + "+00:00")
        times.append(int(when.timestamp()) * 10**9 + int(match.group(1)[20:29]))
        rest.append(match.group(2))
    return times, rest


def test_the_recording_run_alerts_live_and_ends_after_m_seconds(
        recorded: tuple[Recording, Path, str]) -> None:
    rec, _, name = recorded
    assert rec.returncode == 0, rec.stderr
    times, lines = split(alert_lines(rec.stdout))
    assert lines == expected(rec, name)
    assert times == sorted(times)
    assert rec.child["start_ns"] <= times[0] and times[-1] <= rec.child["end_ns"]
    assert f"Recording 'syscall' source to {rec.path}" in rec.stderr
    assert re.search(rf"recording closed source=syscall file={re.escape(str(rec.path))} "
                     rf"blocks=\d+ records=\d+ bytes={rec.path.stat().st_size}\n", rec.stderr)


def test_the_replay_gives_exactly_the_live_alerts_every_time(
        recorded: tuple[Recording, Path, str]) -> None:
    rec, rules, _ = recorded
    first = replay(rec.path, rules, "-o", "time_format_iso_8601=true")
    second = replay(rec.path, rules, "-o", "time_format_iso_8601=true")
    assert first.returncode == 0, first.stderr
    assert alert_lines(first.stdout) == alert_lines(rec.stdout)
    assert second.stdout == first.stdout
    assert first.stdout.splitlines()[len(alert_lines(rec.stdout)):] == [
        "Events detected: 3", "Rule counts by severity:", "   WARNING: 1", "   NOTICE: 2",
        "Triggered rules by rule name:", "   Shadow opened: 1", "   File renamed: 1",
        "   File unlinked: 1"]
    assert f"Opening 'syscall' source with a replay of {rec.path}" in first.stderr
    assert "source input lost" not in first.stderr


def test_engine_kind_replay_in_falco_yaml_replays_the_capture_file(
        recorded: tuple[Recording, Path, str]) -> None:
    rec, rules, _ = recorded
    res = falconet("-r", str(rules), "-o", "engine.kind=replay", "-o",
                   f"engine.replay.capture_file={rec.path}", "-o", "time_format_iso_8601=true")
    assert res.returncode == 0, res.stderr
    assert alert_lines(res.stdout) == alert_lines(rec.stdout)


def test_the_default_time_format_replays_the_same_times(
        recorded: tuple[Recording, Path, str]) -> None:
    rec, rules, _ = recorded
    iso_times, _ = split(alert_lines(rec.stdout))
    plain = alert_lines(replay(rec.path, rules).stdout)
    assert [line.split(": ", 1)[0] for line in plain] == [
        datetime.fromtimestamp(t // 10**9, UTC).strftime("%H:%M:%S") + f".{t % 10**9:09d}"
        for t in iso_times]


def test_the_header_describes_the_recording(recorded: tuple[Recording, Path, str]) -> None:
    from falconet_syscall_ebpf import PROBE_VERSION
    from falconet_syscall_ebpf.clock import boot_time_ns

    rec, _, _ = recorded
    meta, blocks = read_capture(rec.path)
    assert (meta.hostname, meta.kernel_release, meta.machine) == (
        socket.gethostname(), os.uname().release, os.uname().machine)
    assert meta.probe_version == str(PROBE_VERSION)
    assert {257, 82, 87} <= set(meta.syscalls)  # openat, rename, unlink (x86_64)
    assert abs(meta.boot_time_ns - boot_time_ns()) < 10_000_000
    assert rec.child["start_ns"] - 120 * 10**9 < meta.created_ns < rec.child["start_ns"]
    total = sum(block.count for block in blocks)
    assert f" records={total} " in rec.stderr


def test_a_truncated_capture_replays_the_blocks_before_the_cut(
        recorded: tuple[Recording, Path, str], tmp_path: Path) -> None:
    """The recorded blocks up to the child's last one, then one more block cut short, as a
    recorder killed while writing leaves them."""
    from falconet_syscall_ebpf.decode import decode_records

    rec, rules, _ = recorded
    meta, blocks = read_capture(rec.path)
    kept = []
    for block in blocks:
        kept.append(block)
        if any(ev.pid == rec.child["pid"] and ev.evt_type == "unlink"
               for ev in decode_records(block.data)):
            break
    cut = tmp_path / "cut.fcap"
    with CaptureWriter(cut, meta) as writer:
        for block in kept:
            writer.write_block(block.data, block.count)
        last_offset = writer.bytes_written
        writer.write_block(kept[0].data, kept[0].count)
    size = len(kept[0].data)
    cut.write_bytes(cut.read_bytes()[:last_offset + 24 + size // 2])
    res = replay(cut, rules, "-o", "time_format_iso_8601=true")
    assert res.returncode == 0, res.stderr
    assert alert_lines(res.stdout) == alert_lines(rec.stdout)
    assert (f"capture replay stopped source=syscall file={cut} reason='truncated block at "
            f"offset {last_offset}: {size // 2} of {size} bytes of {kept[0].count} records'\n"
            in res.stderr)
    assert "source input lost component=engine source=syscall malformed=1 dropped=0\n" \
        in res.stderr


def test_a_newer_capture_format_stops_falconet_before_any_event(
        recorded: tuple[Recording, Path, str], tmp_path: Path) -> None:
    rec, rules, _ = recorded
    newer = tmp_path / "newer.fcap"
    data = bytearray(rec.path.read_bytes())
    data[8:12] = struct.pack("<HH", 2, 1)
    newer.write_bytes(bytes(data))
    res = replay(newer, rules)
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr.splitlines()[-1] == (
        f"Error: Could not open replay input {newer}: {newer}: capture format version 2.1 is "
        "newer than this falconet reads (1.0): upgrade falconet to replay it")
