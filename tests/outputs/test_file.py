"""file output: appended lines, keep_alive both ways, and a path that cannot be opened."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from falconet.api import OutputError
from falconet.outputs import FileOutput

from .helpers import make_alert

A1, A2, A3 = (make_alert(t) for t in ("13:53:31.726060287: Critical one (a=1)",
                                      '{"output":"two","priority":"Warning"}',
                                      "three"))


def test_reopened_per_batch_appends_and_recreates_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_text("kept\n")
    out = FileOutput(str(path))

    async def scenario() -> None:
        await out.send([A1, A2])
        assert path.read_text() == f"kept\n{A1.line}\n{A2.line}\n"
        path.rename(tmp_path / "events.txt.1")  # logrotate
        await out.send([A3])
        await out.close()

    asyncio.run(scenario())
    assert path.read_text() == "three\n"
    assert (tmp_path / "events.txt.1").read_text() == f"kept\n{A1.line}\n{A2.line}\n"


def test_keep_alive_writes_through_one_open_file(tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    out = FileOutput(str(path), keep_alive=True)

    async def scenario() -> None:
        await out.send([A1])
        assert path.read_text() == f"{A1.line}\n"  # not buffered: on disk after the batch
        path.rename(tmp_path / "moved.txt")
        await out.send([A2, A3])  # still the open file, as upstream until SIGUSR1
        await out.close()

    asyncio.run(scenario())
    assert not path.exists()
    assert (tmp_path / "moved.txt").read_text() == f"{A1.line}\n{A2.line}\n{A3.line}\n"


def test_buffered_keep_alive_is_complete_after_close(tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    out = FileOutput(str(path), keep_alive=True, buffered=True)

    async def scenario() -> None:
        await out.send([A1, A2])
        await out.send([A3])
        await out.close()

    asyncio.run(scenario())
    assert path.read_text() == f"{A1.line}\n{A2.line}\n{A3.line}\n"


@pytest.mark.parametrize("keep_alive", [False, True])
def test_unopenable_path_names_path_and_reason_then_retry_succeeds(
        tmp_path: Path, keep_alive: bool) -> None:
    path = tmp_path / "missing-dir" / "events.txt"
    out = FileOutput(str(path), keep_alive=keep_alive)

    async def scenario() -> None:
        with pytest.raises(OutputError) as info:
            await out.send([A1])
        assert str(info.value) == (f"file output: cannot open {path}: "
                                   "No such file or directory")
        path.parent.mkdir()
        await out.send([A1])  # the engine's retry of the same batch
        await out.send([A2])
        await out.close()

    asyncio.run(scenario())
    assert path.read_text() == f"{A1.line}\n{A2.line}\n"


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    out = FileOutput(str(tmp_path))
    with pytest.raises(OutputError, match=r"^file output: cannot open .*: Is a directory$"):
        asyncio.run(out.send([A1]))


def test_lone_surrogate_is_replaced_and_the_rest_of_the_batch_written(tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    out = FileOutput(str(path))
    asyncio.run(out.send([make_alert("bad \udcff byte"), A3]))
    assert path.read_bytes() == b"bad ? byte\nthree\n"
