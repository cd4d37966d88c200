"""Reloads: a failing build keeps what runs; the watcher sees edits and new rules files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from falconet.reload import FileWatcher, Reloader, ReloadError


def test_a_failing_build_keeps_the_running_state_and_reports_why() -> None:
    applied: list[str] = []
    failures: list[str] = []
    outcomes = iter(["v2", ReloadError("rules.yaml: Invalid\nLOAD_ERR_YAML_PARSE"), "v3"])

    def build() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    async def scenario() -> Reloader:
        reloader = Reloader(build, applied.append, failures.append)
        task = asyncio.create_task(reloader.run())
        for reason in ("SIGHUP", "SIGHUP", "watched file changed"):
            reloader.request(reason)
            await reloader.wait_idle()
        task.cancel()
        return reloader

    reloader = asyncio.run(scenario())
    assert applied == ["v2", "v3"]
    assert failures == ["rules.yaml: Invalid\nLOAD_ERR_YAML_PARSE"]
    assert (reloader.reloads, reloader.failures) == (2, 1)


def test_an_unexpected_build_error_is_a_failed_reload_not_a_crash() -> None:
    failures: list[str] = []

    def build() -> str:
        raise KeyError("bug")

    ok = asyncio.run(Reloader(build, lambda _: None, failures.append).reload("test"))
    assert ok is False
    assert failures == ["unexpected error: KeyError('bug')"]


def test_requests_made_during_a_build_coalesce() -> None:
    builds: list[int] = []

    async def scenario() -> None:
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()

        def build() -> int:
            builds.append(1)
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()
            return len(builds)

        reloader = Reloader(build, lambda _: None)
        task = asyncio.create_task(reloader.run())
        reloader.request("one")
        while not builds:
            await asyncio.sleep(0.001)
        reloader.request("two")
        reloader.request("three")
        gate.set()
        await reloader.wait_idle()
        task.cancel()

    asyncio.run(scenario())
    assert len(builds) == 2  # the first, then one for both requests made meanwhile


def test_the_watcher_sees_edits_new_files_in_directories_and_removals(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    config = tmp_path / "falco.yaml"
    config.write_text("a: 1\n")
    changes: list[str] = []
    watcher = FileWatcher(lambda: [config, rules_dir], changes.append)
    assert watcher.check() is False

    config.write_text("a: 22\n")
    assert watcher.check() is True
    assert changes == [f"watched file changed: {config}"]
    assert watcher.check() is False

    (rules_dir / "new_rules.yaml").write_text("[]\n")
    assert watcher.check() is True
    assert changes[-1] == f"watched file changed: {rules_dir}"

    stat = config.stat()  # same size, new mtime: still a change
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert watcher.check() is True

    config.unlink()
    assert watcher.check() is True
    assert watcher.check() is False
