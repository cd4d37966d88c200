"""Per-output queues: a failing output never blocks another; drops and errors are counted."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from falconet.api import Alert, OutputError
from falconet.dispatch import DROP_MESSAGE, Dispatcher
from falconet.stats import EngineStats

FAST = {"backoff_start": 0.001, "backoff_cap": 0.002}


def alert(i: int) -> Alert:
    return Alert("r", "Warning", "test", i, f"alert {i}", {"n": i})


class Memory:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.calls = 0
        self.closed = False

    async def send(self, alerts: Sequence[Alert]) -> None:
        self.calls += 1
        self.lines.extend(a.line for a in alerts)

    async def close(self) -> None:
        self.closed = True


class FailsTimes(Memory):
    """Raises ``exc`` on the first ``times`` sends, then delivers."""

    def __init__(self, times: int, exc: Exception) -> None:
        super().__init__()
        self.times = times
        self.exc = exc

    async def send(self, alerts: Sequence[Alert]) -> None:
        if self.times:
            self.times -= 1
            raise self.exc
        await super().send(alerts)


class Gate(Memory):
    """Blocks every send until ``open`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()

    async def send(self, alerts: Sequence[Alert]) -> None:
        await self.open.wait()
        await super().send(alerts)


def test_a_failing_output_does_not_block_another_and_is_retried() -> None:
    async def scenario() -> tuple[EngineStats, Memory, FailsTimes]:
        stats = EngineStats()
        good, flaky = Memory(), FailsTimes(2, OutputError("HTTP 500"))
        dispatcher = Dispatcher({"good": good, "flaky": flaky}, stats, 0, **FAST)
        dispatcher.start()
        for i in range(5):
            dispatcher.put(alert(i))
        await dispatcher.close(drain_timeout=30)
        return stats, good, flaky

    stats, good, flaky = asyncio.run(scenario())
    expected = [f"alert {i}" for i in range(5)]
    assert good.lines == expected
    assert flaky.lines == expected  # the same alerts, retried in order
    assert (stats.output("flaky").errors, stats.output("flaky").sent,
            stats.output("flaky").dropped) == (2, 5, 0)
    assert (stats.output("good").errors, stats.output("good").sent) == (0, 5)
    assert good.closed and flaky.closed


def test_an_output_that_never_recovers_loses_only_its_own_alerts_at_shutdown() -> None:
    async def scenario() -> tuple[EngineStats, Memory]:
        stats = EngineStats()
        good, dead = Memory(), FailsTimes(10**9, OSError("connection refused"))
        dispatcher = Dispatcher({"good": good, "dead": dead}, stats, 0, **FAST)
        dispatcher.start()
        for i in range(7):
            dispatcher.put(alert(i))
        while len(good.lines) < 7 or stats.output("dead").errors < 3:
            await asyncio.sleep(0.001)
        await dispatcher.close(drain_timeout=0.05)
        return stats, good

    stats, good = asyncio.run(scenario())
    assert good.lines == [f"alert {i}" for i in range(7)]
    assert stats.output("dead").sent == 0
    assert stats.output("dead").dropped == 7  # what was still queued or in flight
    assert stats.output("dead").queue_depth() == 0


def test_a_full_queue_drops_and_counts(capfd: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> tuple[EngineStats, Gate, list[int]]:
        stats = EngineStats()
        slow = Gate()
        dispatcher = Dispatcher({"slow": slow}, stats, 3)
        for i in range(10):  # nothing drains yet: the channel's task has not started
            dispatcher.put(alert(i))
        depth = [stats.output("slow").queue_depth()]
        dispatcher.start()
        slow.open.set()
        await dispatcher.close(drain_timeout=30)
        return stats, slow, depth

    stats, slow, depth = asyncio.run(scenario())
    assert depth == [3]
    assert slow.lines == ["alert 0", "alert 1", "alert 2"]
    assert (stats.output("slow").dropped, stats.output("slow").sent) == (7, 3)
    assert capfd.readouterr().err.count(DROP_MESSAGE) == 1  # upstream logs the first drop only


def test_new_alerts_queue_while_an_output_is_blocked() -> None:
    async def scenario() -> tuple[EngineStats, Gate, Memory]:
        stats = EngineStats()
        slow, fast = Gate(), Memory()
        dispatcher = Dispatcher({"slow": slow, "fast": fast}, stats, 100)
        dispatcher.start()
        dispatcher.put(alert(0))
        await asyncio.sleep(0)  # slow takes alert 0 and blocks in send
        for i in range(1, 4):
            dispatcher.put(alert(i))
        while len(fast.lines) < 4:
            await asyncio.sleep(0)
        assert stats.output("slow").queue_depth() == 4
        slow.open.set()
        await dispatcher.close(drain_timeout=30)
        return stats, slow, fast

    _, slow, fast = asyncio.run(scenario())
    assert slow.lines == fast.lines == [f"alert {i}" for i in range(4)]
    assert slow.calls == 2  # alert 0, then the three that queued meanwhile in one batch


def test_an_output_bug_drops_that_batch_and_delivery_goes_on() -> None:
    async def scenario() -> tuple[EngineStats, FailsTimes]:
        stats = EngineStats()
        buggy = FailsTimes(1, KeyError("oops"))
        dispatcher = Dispatcher({"buggy": buggy}, stats, 0, **FAST)
        dispatcher.start()
        dispatcher.put(alert(0))
        while stats.output("buggy").errors == 0:
            await asyncio.sleep(0)
        dispatcher.put(alert(1))
        await dispatcher.close(drain_timeout=30)
        return stats, buggy

    stats, buggy = asyncio.run(scenario())
    assert buggy.lines == ["alert 1"]
    assert (stats.output("buggy").errors, stats.output("buggy").dropped,
            stats.output("buggy").sent) == (1, 1, 1)
