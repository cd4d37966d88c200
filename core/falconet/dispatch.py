"""Alerts to outputs: one bounded queue and one task per output.

Upstream (``falco_outputs.cpp``) has one queue in front of a worker that writes to every output in
turn, so one blocked output delays all of them. Here each output has its own queue and task: a
slow or failing output only fills its own queue. The policy when a queue is full is upstream's:
the alert is dropped and counted (``OutputStats.dropped``, exported as
``outputs_queue_num_drops``), and the first drop is logged with upstream's message. A capacity of
0 means unbounded, as ``outputs_queue.capacity: 0`` does upstream.

Alerts are handed over in batches: a woken output waits ``LINGER_S`` for the rest of a burst
(at most ``MAX_BATCH`` per call), which keeps thread hand-offs off the evaluation path.

A failed ``send`` (``OutputError``/``OSError``) is counted in ``OutputStats.errors`` and the same
alerts are retried with exponential backoff while newer alerts keep queueing. Any other exception
is a bug in the output: the batch is counted as dropped and logged with its traceback, and the
task goes on with the next alerts.

On shutdown each queue is drained for at most ``drain_timeout`` seconds (upstream's
``output_timeout`` watchdog); what is still queued then is counted as dropped, as upstream
discards it with "output channels still blocked, discarding all remaining notifications".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from typing import Any

from falconet.api import Alert, Output, OutputError
from falconet.log import get_logger
from falconet.stats import EngineStats, OutputStats

__all__ = ["DROP_MESSAGE", "Dispatcher", "OutputChannel"]

DROP_MESSAGE = "Outputs queue out of memory. Drop event and continue on ..."
BLOCKED_MESSAGE = "output channels still blocked, discarding all remaining notifications"

#: alerts handed to one ``send`` call at most
MAX_BATCH = 1024
#: how long a woken output waits for more alerts before sending: a send that hands work to a
#: thread (the file output) costs far more than the alerts it carries while rules run
LINGER_S = 0.02
BACKOFF_START_S = 0.1
BACKOFF_CAP_S = 10.0

_log = get_logger(component="dispatch")


class OutputChannel:
    """One output's queue and the task that drains it into ``Output.send``."""

    def __init__(self, name: str, output: Output, stats: OutputStats, capacity: int,
                 *, backoff_start: float = BACKOFF_START_S,
                 backoff_cap: float = BACKOFF_CAP_S) -> None:
        self.name = name
        self.output = output
        self.stats = stats
        self.capacity = capacity
        self.backoff_start = backoff_start
        self.backoff_cap = backoff_cap
        self.queue: deque[Alert] = deque()
        self._inflight: list[Alert] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        stats.queue_depth = self.depth

    def depth(self) -> int:
        """Alerts waiting, including a batch being (re)tried."""
        return len(self.queue) + len(self._inflight)

    def put(self, alert: Alert) -> None:
        """Queue ``alert``, or drop and count it when the queue is full (never blocks)."""
        if self.capacity and len(self.queue) >= self.capacity:
            if self.stats.dropped == 0:
                _log.error(DROP_MESSAGE, output=self.name)
            self.stats.dropped += 1
            return
        self.queue.append(alert)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"output:{self.name}")

    async def _run(self) -> None:
        queue = self.queue
        while True:
            if not queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                if not self._closing and len(queue) < MAX_BATCH:
                    await asyncio.sleep(LINGER_S)  # let a burst gather into one send
                continue
            n = min(len(queue), MAX_BATCH)
            self._inflight = [queue.popleft() for _ in range(n)]
            await self._deliver(self._inflight)
            self._inflight = []

    async def _deliver(self, batch: list[Alert]) -> None:
        delay = self.backoff_start
        while True:
            try:
                await self.output.send(batch)
            except (OutputError, OSError) as exc:
                self.stats.errors += 1
                _log.error("output failed, retrying", output=self.name, error=str(exc),
                           alerts=len(batch), retry_in_s=round(delay, 3))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_cap)
                continue
            except Exception:
                self.stats.errors += 1
                self.stats.dropped += len(batch)
                _log.exception("output raised an unexpected error, alerts dropped",
                               output=self.name, alerts=len(batch))
                return
            self.stats.sent += len(batch)
            return

    async def drain(self, timeout: float) -> bool:
        """Deliver what is queued within ``timeout`` s; count the rest as dropped. True when
        everything was delivered."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            self.start()
        assert self._task is not None
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if done:
            with contextlib.suppress(Exception):
                self._task.result()
            return True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        lost = self.depth()
        self.stats.dropped += lost
        self.queue.clear()
        self._inflight = []
        _log.warning(BLOCKED_MESSAGE, output=self.name, dropped=lost)
        return False

    async def close(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.output.close(), timeout)
        except Exception as exc:
            _log.error("output failed to close", output=self.name, error=repr(exc))


class Dispatcher:
    """Fans every alert out to the outputs' channels."""

    def __init__(self, outputs: Mapping[str, Output], stats: EngineStats, capacity: int,
                 **channel_options: Any) -> None:
        self.stats = stats
        self.capacity = capacity
        self.channel_options = channel_options
        self.channels = [self._channel(name, output) for name, output in outputs.items()]

    def _channel(self, name: str, output: Output) -> OutputChannel:
        return OutputChannel(name, output, self.stats.output(name), self.capacity,
                             **self.channel_options)

    async def replace(self, outputs: Mapping[str, Output], capacity: int,
                      drain_timeout: float) -> None:
        """Switch to new outputs (a reload changed their settings) without losing alerts: the
        alerts queued for an output that exists in both sets move to its new channel; the old
        channels finish their batch in flight (and, for outputs no longer configured, what is
        queued) within ``drain_timeout`` s, then close."""
        old = {c.name: c for c in self.channels}
        self.capacity = capacity
        self.channels = [self._channel(name, output) for name, output in outputs.items()]
        for channel in self.channels:
            previous = old.get(channel.name)
            if previous is not None:
                channel.queue.extend(previous.queue)
                previous.queue.clear()
            channel.start()
        await asyncio.gather(*(c.drain(drain_timeout) for c in old.values()))
        await asyncio.gather(*(c.close(drain_timeout) for c in old.values()))

    def start(self) -> None:
        for channel in self.channels:
            channel.start()

    def reopen(self) -> list[str]:
        """Ask every output that can to reopen its files (SIGUSR1); returns their names."""
        names = []
        for channel in self.channels:
            reopen = getattr(channel.output, "reopen", None)
            if callable(reopen):
                reopen()
                names.append(channel.name)
        return names

    def put(self, alert: Alert) -> None:
        for channel in self.channels:
            channel.put(alert)

    async def close(self, drain_timeout: float) -> None:
        """Drain every channel at once (each within ``drain_timeout`` s), then close outputs."""
        await asyncio.gather(*(c.drain(drain_timeout) for c in self.channels))
        await asyncio.gather(*(c.close(drain_timeout) for c in self.channels))
