"""The live ``syscall`` source: the probe loaded, its ring buffer drained into event batches.

``LiveCapture`` is the probe plus its ring buffer reader (usable alone: the benchmarks count
records with it). ``open_source(ctx)`` is what ``EventSource.open`` runs: it loads the probe at
once, so a machine that cannot run it gives its one-line reason at start-up (ProbeUnavailable),
then returns the async iterator of batches. The probe does not wake the reader for each record
(an inter-processor interrupt per record would halve what the traced processes can do): the
reader looks again after a short sleep that doubles while the ring buffer stays empty (2 ms up
to 20 ms), and the probe wakes it through the ring buffer's file descriptor only when a quarter
of the ring buffer is waiting. Each read takes every complete record in one copy, and becomes
``SyscallBatch``es that the rules read record by record (``decode.py``). Every second the
per-CPU kernel counters are read into ``ctx.counters`` (``cpu_events``, ``cpu_drops``: on
/metrics as upstream's ``falcosecurity_scap_n_evts_cpu_total``...); losses (a full ring buffer)
also go to ``dropped`` and ``rejected["ring_buffer_full_cpu<N>"]`` and are logged as upstream's
drop alert, at most once every 30 seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from falconet.api import SourceContext
from falconet_syscall_ebpf import PROBE_VERSION
from falconet_syscall_ebpf.clock import boot_time_ns
from falconet_syscall_ebpf.decode import SyscallBatch, record_batches
from falconet_syscall_ebpf.probe import KernelCounters, Probe, ProbeUnavailable
from falconet_syscall_ebpf.ringbuf import RingReader
from falconet_syscall_ebpf.selection import (
    kernel_events,
    rule_event_types,
    unsupported,
)
from falconet_syscall_ebpf.syscalls import BY_NAME

__all__ = ["BATCH_EVENTS", "RING_BYTES", "LiveCapture", "ProbeUnavailable", "open_source"]

#: the ring buffer's data size (the probe's ``events`` map)
RING_BYTES = 8 * 1024 * 1024
#: at most this many bytes are copied out per read (about 10,000 records): a batch stays small
#: enough for the engine to yield to the outputs between batches
READ_BYTES = 1024 * 1024
#: events per yielded batch
BATCH_EVENTS = 4096
#: kernel counters are read this often (s)
COUNTERS_EVERY_S = 1.0
#: the reader's sleep after an empty read (s): the first, and the longest (it doubles)
POLL_MIN_S = 0.002
POLL_MAX_S = 0.02
#: upstream's syscall_event_drops defaults: ratio threshold, one message per 30 s at most
DROP_THRESHOLD = 0.1
DROP_LOG_EVERY_S = 30.0

RawHook = Callable[[bytes], None]


class LiveCapture:
    """The probe loaded and attached, and its ring buffer mapped for reading.

    ``event_types``: the event types rules can match (None: all); the base set is added.
    ``ignore_tgid``: a process whose syscalls are not captured (default: this one).
    """

    def __init__(self, *, event_types: Iterable[str] | None = None,
                 ignore_tgid: int | None = None, obj_path: Path | None = None) -> None:
        self.probe = Probe(obj_path=obj_path, ignore_tgid=ignore_tgid)
        try:
            self.reader = RingReader(self.probe.events_fd, RING_BYTES)
        except (OSError, ValueError) as exc:
            self.probe.close()
            raise ProbeUnavailable(f"could not map the probe's ring buffer: {exc}") from None
        self.boot_ns = boot_time_ns()
        self.enabled: frozenset[str] = frozenset()
        #: where the records of the chunk the last ``read`` returned start, and how many
        self.last_offsets: list[int] = []
        self.last_count = 0
        self.set_event_types(event_types)

    def set_event_types(self, event_types: Iterable[str] | None) -> frozenset[str]:
        """Capture what rules matching ``event_types`` (None: any) need; returns the set."""
        wanted = None if event_types is None else frozenset(event_types)
        self.enabled = self.probe.set_events(kernel_events(wanted))
        return self.enabled

    def read(self, max_bytes: int = READ_BYTES) -> bytes:
        """Framed records written since the last call (possibly none)."""
        chunk, self.last_offsets = self.reader.read(max_bytes)
        self.last_count = len(self.last_offsets)
        return chunk

    def pending(self) -> int:
        return self.reader.pending()

    def fileno(self) -> int:
        return self.probe.events_fd

    def counters(self) -> KernelCounters:
        return self.probe.counters()

    @property
    def syscall_ids(self) -> tuple[int, ...]:
        """The numbers of the event types captured (for a capture header)."""
        return tuple(sorted(BY_NAME[name].nr for name in self.enabled))

    def close(self) -> None:
        self.reader.close()
        self.probe.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class DropMonitor:
    """Reads the kernel counters, books losses into the source's counters, logs them."""

    def __init__(self, capture: LiveCapture, ctx: SourceContext) -> None:
        self.capture = capture
        self.ctx = ctx
        self.first = self.last = capture.counters()
        ctx.counters.cpu_events = ctx.counters.cpu_drops = (0,) * len(self.first.emitted)
        self.next_check = time.monotonic() + COUNTERS_EVERY_S
        self.next_log = 0.0

    def maybe_check(self) -> None:
        if time.monotonic() >= self.next_check:
            self.check()

    def check(self) -> KernelCounters:
        now = time.monotonic()
        self.next_check = now + COUNTERS_EVERY_S
        current = self.capture.counters()
        emitted = sum(current.emitted) - sum(self.last.emitted)
        lost = [c - p for c, p in zip(current.dropped, self.last.dropped, strict=True)]
        self.last = current
        counters = self.ctx.counters
        counters.cpu_events = _since(current.emitted, self.first.emitted)
        counters.cpu_drops = _since(current.dropped, self.first.dropped)
        total_lost = sum(lost)
        if total_lost <= 0:
            return current
        counters.dropped += total_lost
        for cpu, n in enumerate(lost):
            if n:
                reason = f"ring_buffer_full_cpu{cpu}"
                counters.rejected[reason] = counters.rejected.get(reason, 0) + n
        ratio = total_lost / max(1, emitted + total_lost)
        if ratio > DROP_THRESHOLD and now >= self.next_log and self.ctx.log is not None:
            self.next_log = now + DROP_LOG_EVERY_S
            self.ctx.log.warning(
                f"Falco internal: syscall event drop. {total_lost} system calls dropped in "
                "last second.", ebpf_enabled=1, n_drops=total_lost, n_evts=emitted + total_lost,
                n_drops_buffer_total=total_lost,
                n_drops_per_cpu=",".join(str(n) for n in lost))
        return current


def _since(now: tuple[int, ...], start: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n - s for n, s in zip(now, start, strict=True))


def open_source(ctx: SourceContext, *, on_raw: RawHook | None = None,
                obj_path: Path | None = None) -> AsyncIterator[SyscallBatch]:
    """The live source (``EventSource.open``): loads the probe now (ProbeUnavailable with the
    reason when it cannot run), selects in the kernel what ``ctx.rules`` can match, and returns
    the batches. ``on_raw`` sees every chunk of framed records before it is decoded; with
    ``ctx.record_path`` set, a capture file is written through it (``replay.Recorder``)."""
    wanted = rule_event_types(ctx.rules)
    capture = LiveCapture(event_types=wanted, obj_path=obj_path)
    log = ctx.log
    recorder: Any = None
    try:
        if ctx.record_path is not None:
            recorder = _recorder(ctx, capture)
            hook = recorder.on_raw
            on_raw = hook if on_raw is None else _both(on_raw, hook)
    except BaseException:
        capture.close()
        raise
    if log is not None:
        missing = unsupported(wanted)
        log.info(f"eBPF probe loaded: capturing {len(capture.enabled)} event types",
                 event_types=",".join(sorted(capture.enabled)), probe_version=PROBE_VERSION)
        if missing:
            shown = ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else "")
            log.notice(f"rules name {len(missing)} event types the probe does not capture "
                       f"(rules on them do not match live events): {shown}")
    if ctx.rules is not None:
        def on_rules_change(rules: Any) -> None:
            enabled = capture.set_event_types(rule_event_types(rules))
            if log is not None:
                log.info(f"kernel-side selection updated: {len(enabled)} event types",
                         event_types=",".join(sorted(enabled)))

        ctx.on_rules_change = on_rules_change
    return _batches(capture, ctx, on_raw, recorder)


def _both(first: RawHook, second: RawHook) -> RawHook:
    def hook(chunk: bytes) -> None:
        first(chunk)
        second(chunk)

    return hook


def _recorder(ctx: SourceContext, capture: LiveCapture) -> Any:
    from falconet_syscall_ebpf.capture import CaptureMetadata
    from falconet_syscall_ebpf.replay import Recorder

    assert ctx.record_path is not None
    meta = CaptureMetadata.for_this_host(str(PROBE_VERSION), capture.syscall_ids,
                                         boot_ns=capture.boot_ns)
    return Recorder(ctx.record_path, meta, lambda _chunk: capture.last_count, ctx.log)


async def _batches(capture: LiveCapture, ctx: SourceContext, on_raw: RawHook | None,
                   recorder: Any) -> AsyncIterator[SyscallBatch]:
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    fd = capture.fileno()
    loop.add_reader(fd, ready.set)
    monitor = DropMonitor(capture, ctx)
    boot_ns = capture.boot_ns
    wait = POLL_MIN_S
    try:
        while True:
            chunk = capture.read()
            if len(chunk):
                if on_raw is not None:
                    on_raw(chunk)
                for batch in record_batches(chunk, capture.last_offsets, boot_ns=boot_ns,
                                            size=BATCH_EVENTS):
                    yield batch
                monitor.maybe_check()
                wait = POLL_MIN_S
                continue
            ready.clear()
            try:
                # not asyncio.wait_for: on Python 3.11 it swallows a cancellation that comes
                # as the event is set, and -M, SIGINT and SIGTERM then never end the run
                async with asyncio.timeout(wait):
                    await ready.wait()
            except TimeoutError:
                wait = min(2 * wait, POLL_MAX_S)
            monitor.maybe_check()
    finally:
        loop.remove_reader(fd)
        try:
            final = monitor.check()
            if ctx.log is not None:
                ctx.log.info("eBPF probe closed", emitted=sum(final.emitted),
                             dropped=sum(final.dropped),
                             emitted_per_cpu=",".join(str(n) for n in final.emitted),
                             dropped_per_cpu=",".join(str(n) for n in final.dropped))
        finally:
            if recorder is not None:
                recorder.close()
            capture.close()
