"""Reloading config and rules while events flow: SIGHUP and ``watch_config_files``.

Upstream restarts the whole application on SIGHUP or when a watched file changes, after a dry
run of the new configuration; a failing dry run keeps the old process running and raises a
"Falco internal: hot restart failure" alert. falconet does the same without the restart: the new
rules are built off the event loop (in a thread: the compile is pure Python, so the loop keeps
draining outputs meanwhile) and swapped into the engine between two batches; alerts already
queued are delivered as they are. A build that fails leaves the running rules alone, is counted
(``EngineStats.rules.failed_reloads``) and reported with its reason (file, line, error code).

The watcher polls modification times once a second (no inotify dependency): the config files
loaded, the rules files, and the listing of the rules directories, so a new file in a rules
directory counts as a change, as upstream's directory watch does.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from falconet.log import get_logger

__all__ = [
    "FileWatcher", "ReloadError", "Reloader", "cancel_tasks", "install_sighup", "snapshot",
    "start_tasks",
]

_log = get_logger(component="reload")

Snapshot = dict[str, Any]


class ReloadError(Exception):
    """A new configuration or rules set that cannot be used; the message says why."""


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def snapshot(paths: Iterable[str | os.PathLike[str]]) -> Snapshot:
    """What the watcher compares: each file's (mtime, size), each directory's entries with
    theirs, None for a missing path."""
    snap: Snapshot = {}
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            try:
                children = sorted(path.iterdir())
            except OSError:
                snap[str(path)] = None
                continue
            snap[str(path)] = tuple((c.name, _stat(c)) for c in children)
        else:
            snap[str(path)] = _stat(path)
    return snap


class FileWatcher:
    """Calls ``on_change`` when any watched path changes (polled every ``interval`` s)."""

    def __init__(self, paths: Callable[[], Iterable[str | os.PathLike[str]]],
                 on_change: Callable[[str], None], interval: float = 1.0) -> None:
        self.paths = paths
        self.on_change = on_change
        self.interval = interval
        self._last = snapshot(paths())

    def rearm(self) -> None:
        """Take the current state as the reference (after a reload, which may watch new
        paths)."""
        self._last = snapshot(self.paths())

    def check(self) -> bool:
        current = snapshot(self.paths())
        if current == self._last:
            return False
        changed = sorted(k for k in current.keys() | self._last.keys()
                         if current.get(k, 0) != self._last.get(k, 0))
        self._last = current
        self.on_change(f"watched file changed: {', '.join(changed)}")
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()


class Reloader:
    """Serializes reload requests: one build at a time, requests made meanwhile coalesce."""

    def __init__(self, build: Callable[[], Any], apply: Callable[[Any], Any],
                 on_failure: Callable[[str], None] | None = None,
                 on_done: Callable[[], None] | None = None) -> None:
        self.build = build
        self.apply = apply
        self.on_failure = on_failure
        self.on_done = on_done
        self.reloads = 0
        self.failures = 0
        self._wanted = asyncio.Event()
        self._reasons: list[str] = []
        self._idle = asyncio.Event()
        self._idle.set()

    def request(self, reason: str) -> None:
        """Ask for a reload (safe from a signal handler registered with the loop)."""
        self._reasons.append(reason)
        self._idle.clear()
        self._wanted.set()

    async def wait_idle(self) -> None:
        """Until no reload is pending or running (tests, shutdown)."""
        await self._idle.wait()

    async def reload(self, reason: str) -> bool:
        """Build and apply now; False (old rules kept) when the build fails."""
        _log.info("reloading config and rules", reason=reason)
        try:
            state = await asyncio.to_thread(self.build)
            applied = self.apply(state)
            if inspect.isawaitable(applied):
                await applied
        except ReloadError as exc:
            return self._failed(str(exc))
        except Exception as exc:  # a bug in the build: keep running, say so
            _log.exception("reload failed unexpectedly")
            return self._failed(f"unexpected error: {exc!r}")
        self.reloads += 1
        _log.info("config and rules reloaded")
        return True

    def _failed(self, message: str) -> bool:
        self.failures += 1
        _log.error("reload failed, keeping the running rules", reason=message)
        if self.on_failure is not None:
            self.on_failure(message)
        return False

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            reasons, self._reasons = self._reasons, []
            await self.reload("; ".join(dict.fromkeys(reasons)))
            if self.on_done is not None:
                self.on_done()
            if not self._wanted.is_set():
                self._idle.set()


def install_sighup(loop: asyncio.AbstractEventLoop, reloader: Reloader) -> bool:
    """SIGHUP -> reload; False where the platform has no SIGHUP."""
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return False

    def on_sighup() -> None:
        _log.info("SIGHUP received, reloading config and rules")
        reloader.request("SIGHUP")

    loop.add_signal_handler(sighup, on_sighup)
    return True


def start_tasks(reloader: Reloader, watcher: FileWatcher | None) -> list[asyncio.Task[None]]:
    """The reloader's task, and the watcher's when ``watch_config_files`` is on."""
    tasks = [asyncio.create_task(reloader.run(), name="reloader")]
    if watcher is not None:
        tasks.append(asyncio.create_task(watcher.run(), name="config-watcher"))
    return tasks


async def cancel_tasks(tasks: Iterable[asyncio.Task[None]]) -> None:
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

