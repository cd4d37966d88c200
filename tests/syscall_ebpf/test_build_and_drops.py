"""The probe build (``python3 -m falconet_syscall_ebpf.build``): a fresh object from the source
loads and captures; a missing tool is named with its package. And losses: a ring buffer nobody
reads fills up, the kernel counts what it could not write, and the source books it in its
counters (``dropped``, ``rejected`` and ``cpu_drops`` per CPU) and logs upstream's drop alert;
a ring buffer that is read loses nothing, however many times it wraps around."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from falconet.api import SourceContext
from falconet_syscall_ebpf import build
from tests.syscall_ebpf.live_helpers import (
    capture_while,
    child_name,
    finish_child,
    go,
    needs_probe,
    start_child,
)

TOOLS = ("clang", "bpftool", "llvm-strip")


class Log:
    """A logger with falconet's interface that keeps (level, message, fields)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda message, **fields: self.records.append((level, message, fields))


def test_a_missing_tool_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(build.BuildError) as err:
        build.build(tmp_path / "probe.bpf.o", force=True, work=tmp_path)
    assert str(err.value) == ("clang not found: apt-get install clang (all of: clang bpftool "
                              "libbpf-dev llvm)")
    assert build.main(["--force", "-o", str(tmp_path / "x.o")]) == 1


@needs_probe
def test_a_fresh_build_loads_and_captures(tmp_path: Path) -> None:
    if any(shutil.which(t) is None and shutil.which(t, path="/usr/sbin") is None
           for t in TOOLS):
        pytest.skip("needs clang, bpftool and llvm-strip (scripts/setup installs them)")
    from falconet_syscall_ebpf.live import LiveCapture

    obj = build.build(tmp_path / "probe.bpf.o", force=True, work=tmp_path / "work")
    assert obj.stat().st_size > 0
    assert (tmp_path / "work" / "vmlinux.h").is_file()
    name = child_name()
    with LiveCapture(event_types={"mkdir"}, obj_path=obj) as capture:
        child = start_child('os.mkdir(os.path.join(tmp, "made"))\n', name, tmp_path)
        go(child)
        finish_child(child)
        events, _total = capture_while(capture, child, lambda ev: ev.comm == name)
    made = [ev for ev in events if ev.evt_type == "mkdir"]
    assert [ev.params()["path"] for ev in made] == [str(tmp_path / "made")]


FLOOD = """\
for _ in range(150_000):
    os.close(os.open("/dev/null", os.O_RDONLY))
"""


@needs_probe
def test_a_full_ring_buffer_is_counted_and_logged(tmp_path: Path) -> None:
    from falconet_syscall_ebpf.live import DropMonitor, LiveCapture

    log = Log()
    ctx = SourceContext("", {}, log=log)
    with LiveCapture(event_types={"openat"}) as capture:
        monitor = DropMonitor(capture, ctx)
        before = monitor.last
        child = start_child(FLOOD, child_name(), tmp_path)
        go(child)  # nobody reads the ring buffer meanwhile: 300,000 records do not fit
        finish_child(child)
        counters = monitor.check()
    lost = sum(counters.dropped) - sum(before.dropped)
    assert ctx.counters.dropped == lost > 0
    assert ctx.counters.rejected == {
        f"ring_buffer_full_cpu{cpu}": after - earlier
        for cpu, (after, earlier) in enumerate(zip(counters.dropped, before.dropped,
                                                   strict=True)) if after > earlier}
    warnings = [r for r in log.records if r[0] == "warning"]
    assert len(warnings) == 1
    _level, message, fields = warnings[0]
    assert message == (f"Falco internal: syscall event drop. {lost} system calls dropped in "
                       "last second.")
    assert fields["n_drops"] == lost and fields["ebpf_enabled"] == 1
    assert fields["n_evts"] > lost
    # the per-CPU counters since the source started, as /metrics shows them
    assert ctx.counters.cpu_drops == tuple(
        after - first for after, first in zip(counters.dropped, before.dropped, strict=True))
    assert ctx.counters.cpu_events == tuple(
        after - first for after, first in zip(counters.emitted, before.emitted, strict=True))
    assert sum(ctx.counters.cpu_events) > 0


@needs_probe
def test_nothing_is_lost_once_the_ring_buffer_has_wrapped_around(tmp_path: Path) -> None:
    """300,000 records (about 30 MB) pass through the 8 MiB ring buffer while it is read: every
    open arrives and the kernel loses nothing. (The consumer position was once written byte by
    byte: after the first wrap the kernel now and then read a half-written position, took the
    ring buffer for full and dropped records.)"""
    from falconet_syscall_ebpf.decode import SyscallBatch
    from falconet_syscall_ebpf.live import RING_BYTES, LiveCapture

    name = child_name()
    reads: list[tuple[bytes, list[int]]] = []
    with LiveCapture(event_types={"openat"}) as capture:
        before = capture.counters()
        child = start_child(FLOOD, name, tmp_path)
        go(child)
        while child.poll() is None or capture.pending():  # kept as read, decoded afterwards
            chunk = capture.read()
            if chunk:
                reads.append((chunk, capture.last_offsets))
            else:
                time.sleep(0.001)
        finish_child(child)
        after = capture.counters()
    assert sum(after.dropped) - sum(before.dropped) == 0
    assert sum(len(chunk) for chunk, _offsets in reads) > 3 * RING_BYTES  # wrapped 3 times
    opens = sum(1 for chunk, offsets in reads for ev in SyscallBatch(chunk, offsets)
                if ev.comm == name and ev.evt_type == "openat"
                and ev.params()["name"] == "/dev/null")
    assert opens == 150_000

