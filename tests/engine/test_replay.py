"""The generic JSON-lines reader: files, .gz, directories, schema events, malformed lines."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from falconet.api import SourceCounters
from falconet.event import JsonEvent, SchemaEvent
from falconet.replay import input_files, read_json_lines


def read_all(path: Path, *, schema: bool = False, batch_size: int = 512,
             counters: SourceCounters | None = None) -> list[list[object]]:
    return list(read_json_lines("src", path, counters or SourceCounters(), schema=schema,
                                batch_size=batch_size))


def test_json_events_keep_the_line_and_the_decoded_document(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"b": [1, 2]}\r\n')
    batches = read_all(path)
    events = [e for b in batches for e in b]
    assert all(isinstance(e, JsonEvent) and e.source == "src" for e in events)
    assert [e.raw for e in events] == [b'{"a": 1}', b'{"b": [1, 2]}']  # type: ignore[attr-defined]
    assert [e.payload for e in events] == [{"a": 1}, {"b": [1, 2]}]  # type: ignore[attr-defined]
    assert all(e.ts > 0 and e.num == 0 for e in events)  # type: ignore[attr-defined]


def test_batches_are_cut_at_the_batch_size(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(7)))
    assert [len(b) for b in read_all(path, batch_size=3)] == [3, 3, 1]


def test_schema_events_map_field_names_with_lists_as_tuples(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"evt.rawtime": 1714557600123456789, "evt.type": "execve", '
                    '"proc.aname": ["bash", "sshd"], "proc.name": "ls"}\n'
                    '{"proc.name": "cat"}\n')
    first, second = (e for b in read_all(path, schema=True) for e in b)
    assert isinstance(first, SchemaEvent) and isinstance(second, SchemaEvent)
    assert first.fields == {"evt.rawtime": 1714557600123456789, "evt.type": "execve",
                            "proc.aname": ("bash", "sshd"), "proc.name": "ls"}
    assert first.ts == 1714557600123456789
    assert first.evt_type == "execve"
    assert second.ts > 1714557600123456789  # no evt.rawtime: the wall clock


def test_malformed_lines_are_counted_logged_and_skipped(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"ok": 1}\n{"broken": \n[1, 2]\n{"ok": 2}\n')
    counters = SourceCounters()
    events = [e for b in read_all(path, schema=True, counters=counters) for e in b]
    assert [e.fields for e in events] == [{"ok": 1}, {"ok": 2}]  # type: ignore[attr-defined]
    assert counters.malformed == 2
    err = capfd.readouterr().err
    assert "line=2" in err and "invalid JSON" in err
    assert "line=3" in err and "expected a JSON object of field values" in err


def test_json_lines_are_not_decoded_while_reading(tmp_path: Path) -> None:
    """Rule evaluation decodes them (tests/engine/test_engine.py checks what it reports)."""
    path = tmp_path / "m.jsonl"
    path.write_text("nope\n{}\n")
    counters = SourceCounters()
    events = [e for b in read_all(path, counters=counters) for e in b]
    assert [e.raw for e in events] == [b"nope", b"{}"]  # type: ignore[attr-defined]
    assert counters.malformed == 0


def test_gzip_files_and_directories_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "b.jsonl").write_text('{"n": 2}\n')
    with gzip.open(folder / "a.jsonl.gz", "wb") as fh:
        fh.write(b'{"n": 1}\n')
    (folder / "c.jsonl").write_text('{"n": 3}\n')
    (folder / ".hidden").write_text('{"n": 0}\n')
    assert [p.name for p in input_files(folder)] == ["a.jsonl.gz", "b.jsonl", "c.jsonl"]
    events = [e for b in read_all(folder) for e in b]
    assert [e.payload["n"] for e in events] == [1, 2, 3]  # type: ignore[attr-defined]


def test_a_corrupt_gzip_loses_only_what_cannot_be_read(tmp_path: Path) -> None:
    good = gzip.compress(b'{"n": 1}\n' * 100)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(good[: len(good) - 12])  # the trailer and some data cut off
    counters = SourceCounters()
    events = [e for b in read_all(path, counters=counters) for e in b]
    assert counters.malformed == 1
    assert all(e.payload == {"n": 1} for e in events)  # type: ignore[attr-defined]


def test_a_missing_input_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="replay input not found"):
        read_all(tmp_path / "nope.jsonl")


def test_progress_bar_does_not_change_what_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(1000)))
    events = [e for b in read_json_lines("src", path, SourceCounters(), progress=True,
                                         batch_size=100) for e in b]
    assert [e.payload["i"] for e in events] == list(range(1000))  # type: ignore[attr-defined]
