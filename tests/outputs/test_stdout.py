"""stdout output: one line per alert, flushed per batch unless buffered_outputs."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

import pytest

from falconet.outputs import StdoutOutput

from .helpers import PEER_DEADLINE_S, make_alert

# A child that writes one batch to its real stdout (a pipe) and then waits for a line on stdin
# before closing: whatever the parent reads before answering was flushed by ``send``.
CHILD = textwrap.dedent("""
    import asyncio, sys
    from falconet.api import Alert
    from falconet.outputs import StdoutOutput

    def alert(line):
        return Alert(rule="r", priority="Notice", source="s", time_ns=0, line=line, document={})

    async def main(buffered):
        out = StdoutOutput(buffered=buffered)
        await out.send([alert("first alert"), alert('{"json": "alert"}')])
        sys.stdin.readline()
        await out.send([alert("second batch")])
        await out.close()

    asyncio.run(main(sys.argv[1] == "buffered"))
""")


def run_child(mode: str) -> tuple[list[str], str]:
    """Start the child; read what arrived before the parent's go-ahead, then the rest."""
    # Without PYTHONUNBUFFERED, a pipe is block-buffered: only ``send``'s flush empties it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        early: list[str] = []
        if mode != "buffered":
            # Unflushed lines would never come while the child waits: read with a bound.
            with ThreadPoolExecutor(1) as pool:
                reading = pool.submit(lambda: [proc.stdout.readline() for _ in range(2)])
                try:
                    early = reading.result(timeout=PEER_DEADLINE_S)
                except FuturesTimeout:
                    proc.kill()
                    pytest.fail("the first batch was not flushed to the pipe")
        proc.stdin.write("go\n")
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    return early, rest


def test_unbuffered_batches_reach_a_pipe_reader_before_the_process_ends() -> None:
    early, rest = run_child("unbuffered")
    assert early == ["first alert\n", '{"json": "alert"}\n']
    assert rest == "second batch\n"


def test_buffered_output_is_complete_when_closed() -> None:
    _, rest = run_child("buffered")
    assert rest == 'first alert\n{"json": "alert"}\nsecond batch\n'


def test_unencodable_text_is_replaced_not_raised() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", newline="\n")
    out = StdoutOutput(stream=stream)
    asyncio.run(out.send([make_alert("caf\u00e9 \udcff"), make_alert("next")]))
    assert raw.getvalue() == b"caf? ?\nnext\n"
