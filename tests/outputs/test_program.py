"""program output: real /bin/sh children reading alerts on stdin, keep_alive both ways."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

import pytest

from falconet.api import OutputError
from falconet.outputs import ProgramOutput

from .helpers import RecordingLog, make_alert

PY = shlex.quote(sys.executable)
A1, A2, A3 = (make_alert(t) for t in ("12:00:00.000000001: Critical first (x=1)",
                                      '{"output":"second","rule":"r"}',
                                      "third"))


def pid_logger(out: Path) -> str:
    """A program appending ``<its pid> <line>`` for every line it reads."""
    code = ("import os, sys\n"
            "for line in sys.stdin:\n"
            f"    with open({str(out)!r}, 'a') as f: f.write(f'{{os.getpid()}} {{line}}')\n")
    return f"{PY} -c {shlex.quote(code)}"


def split_pids(text: str) -> tuple[list[int], list[str]]:
    pairs = [line.split(" ", 1) for line in text.splitlines()]
    return [int(p) for p, _ in pairs], [rest for _, rest in pairs]


def test_without_keep_alive_one_process_per_alert(tmp_path: Path) -> None:
    out_file = tmp_path / "got.txt"
    out = ProgramOutput(pid_logger(out_file))

    async def scenario() -> None:
        await out.send([A1, A2])
        await out.send([A3])
        await out.close()

    asyncio.run(scenario())
    pids, lines = split_pids(out_file.read_text())
    assert lines == [A1.line, A2.line, A3.line]
    assert len(set(pids)) == 3


def test_keep_alive_one_process_for_every_batch(tmp_path: Path) -> None:
    out_file = tmp_path / "got.txt"
    out = ProgramOutput(pid_logger(out_file), keep_alive=True)

    async def scenario() -> None:
        await out.send([A1, A2])
        assert out.process is not None
        first = out.process
        await out.send([A3])
        assert out.process is first
        await out.close()  # closes stdin, waits for the program to finish
        assert out.process is None

    asyncio.run(scenario())
    pids, lines = split_pids(out_file.read_text())
    assert lines == [A1.line, A2.line, A3.line]
    assert len(set(pids)) == 1


@pytest.mark.parametrize("keep_alive", [False, True])
def test_alert_text_only_goes_to_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       keep_alive: bool) -> None:
    monkeypatch.chdir(tmp_path)
    out_file = tmp_path / "got.txt"
    hostile = make_alert("x'; touch pwned1; echo \"$(touch pwned2)\" `touch pwned3` | ; & \\")
    out = ProgramOutput(f"cat >> {shlex.quote(str(out_file))}", keep_alive=keep_alive)

    async def scenario() -> None:
        await out.send([hostile, A1])
        await out.close()

    asyncio.run(scenario())
    assert out_file.read_text() == f"{hostile.line}\n{A1.line}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["got.txt"]


def test_keep_alive_restarts_a_program_that_exited(tmp_path: Path) -> None:
    out_file = tmp_path / "got.txt"
    log = RecordingLog()
    # head takes one line and exits: every batch after that needs a new process.
    out = ProgramOutput(f"head -n 1 >> {shlex.quote(str(out_file))}", keep_alive=True, log=log)

    async def scenario() -> None:
        await out.send([A1])
        assert out.process is not None
        first = out.process
        assert await first.wait() == 0
        await out.send([A2])
        assert out.process is not first
        await out.close()

    asyncio.run(scenario())
    assert out_file.read_text() == f"{A1.line}\n{A2.line}\n"
    assert [(lvl, kw["status"]) for lvl, _, kw in log.records] == [("warning", 0)]


def test_a_command_the_shell_cannot_find_is_a_failed_delivery(tmp_path: Path) -> None:
    out = ProgramOutput("falconet-no-such-program --flag")
    with pytest.raises(OutputError) as info:
        asyncio.run(out.send([A1]))
    assert str(info.value) == ("program output: /bin/sh could not run "
                               "'falconet-no-such-program --flag' (command not found, "
                               "exit status 127)")


def test_a_failing_program_is_logged_and_not_retried(tmp_path: Path) -> None:
    out_file = tmp_path / "got.txt"
    log = RecordingLog()
    out = ProgramOutput(f"cat >> {shlex.quote(str(out_file))}; exit 3", log=log)
    asyncio.run(out.send([A1, A2]))
    assert out_file.read_text() == f"{A1.line}\n{A2.line}\n"
    assert [(lvl, kw["status"]) for lvl, _, kw in log.records] == [("warning", 3),
                                                                   ("warning", 3)]


def test_retry_after_a_partial_batch_does_not_run_delivered_alerts_again(
        tmp_path: Path) -> None:
    out_file = tmp_path / "got.txt"
    gate = tmp_path / "gate"
    # The program fails as "not found" (127) for the second alert until the gate file exists.
    code = ("import sys, os\n"
            "line = sys.stdin.read()\n"
            f"if 'second' in line and not os.path.exists({str(gate)!r}): sys.exit(127)\n"
            f"open({str(out_file)!r}, 'a').write(line)\n")
    out = ProgramOutput(f"{PY} -c {shlex.quote(code)}")

    async def scenario() -> None:
        batch = [A1, A2, A3]
        with pytest.raises(OutputError):
            await out.send(batch)
        gate.touch()
        await out.send(batch)

    asyncio.run(scenario())
    assert out_file.read_text() == f"{A1.line}\n{A2.line}\n{A3.line}\n"
