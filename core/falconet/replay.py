"""The generic reader behind ``falconet --source NAME -e PATH`` for sources without their own.

Input: JSON lines, one document per line; ``PATH`` may be a file, a ``.gz`` file, or a directory
(its regular files in name order). Blank lines are skipped. Each line becomes one event:

- ``JsonLine(source, line)`` for JSON-payload sources (``json.*``/``jevt.*`` and the plugin's
  own fields read it), in a ``LineBatch`` (a ``falconet.event.JsonLineBatch``). The line is not
  decoded here, and most lines never become an event object: rule evaluation decodes each line
  just before its rules run and keeps an event, with its document, only for the lines a rule
  matched. That costs about half of what decoding a batch ahead into event objects did. A line
  found not to be JSON then comes back to its batch (``LineBatch.reject``) and is reported as if
  found here.
- ``SchemaEvent(source, fields=obj)`` for sources whose fields are schema-only (``syscall``
  from upstream's field list): the object maps field names, as conditions write them, to their
  values (JSON arrays become tuples, for list fields). This is how pre-extracted syscall events
  (``samples/syscall.jsonl``) are replayed through syscall rules.

Timestamps: a ``SchemaEvent`` takes its ``evt.rawtime`` value (integer ns since the epoch) when
the object has one, so replays of recorded events give the same alert lines every time; every
other event is stamped with the wall clock when it is read (one reading per chunk of input), as a
live source would stamp it (the generic reader knows nothing of a payload's own time field;
plugins that do bring ``replay``).

A line that is not JSON (or, for schema events, not an object) is counted in
``SourceCounters.malformed`` and logged with its file and line number; after ``MAX_LOGGED``
such lines only the total is logged, when the input ends. Nothing else is lost. (JSON lines are
checked when rules decode them: a source that no rule reads is not checked.)

With ``progress`` on, a rich progress bar on stderr shows the bytes read (of the files as
stored, so compressed bytes for ``.gz``).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import orjson

from falconet.api import EventBatch, SourceCounters
from falconet.event import JsonLine, JsonLineBatch, SchemaEvent
from falconet.log import get_logger
from falconet.progress import ProgressBar

__all__ = ["BATCH_SIZE", "MAX_LOGGED", "LineBatch", "input_files", "read_json_lines"]

BATCH_SIZE = 128
CHUNK_BYTES = 1 << 18
MAX_LOGGED = 10
_TIME_FIELD = "evt.rawtime"

_log = get_logger(component="replay")


def input_files(path: Path) -> list[Path]:
    """``path`` itself, or a directory's regular files in name order (hidden files skipped).
    Raises FileNotFoundError when ``path`` does not exist."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not path.exists():
        raise FileNotFoundError(f"replay input not found: {path}")
    return [path]


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(line reader, raw file): the raw file's position is the progress."""
    raw: IO[bytes] = path.open("rb")
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), raw
    return raw, raw


def _line_chunks(reader: IO[bytes]) -> Iterator[list[bytes]]:
    """The input's lines, without their newline, a chunk at a time: one read and one split per
    ``CHUNK_BYTES`` instead of a call per line."""
    rest = b""
    while data := reader.read(CHUNK_BYTES):
        data = rest + data if rest else data
        if b"\r" in data:  # CRLF input: one C-level pass here instead of a test per line
            data = data.replace(b"\r\n", b"\n")
        lines = data.split(b"\n")
        rest = lines.pop()
        yield lines
    if rest:
        yield [rest.removesuffix(b"\r")]


class LineBatch(JsonLineBatch):
    """The JSON lines of one slice of an input file, with where they came from: the engine hands
    back a line that turned out not to be JSON (``reject``), and it is counted and logged with
    its file and line number, like a malformed line found while reading."""

    def __init__(self, source: str, part: list[bytes], ts: int, first_line: int, file: Path,
                 counters: SourceCounters, log: Any) -> None:
        super().__init__(source, [line for line in part if line], ts)
        self.part, self.first_line, self.file = part, first_line, file
        self.counters, self.log = counters, log

    def reject(self, event: JsonLine, reason: str) -> None:
        raw = event.raw
        if raw is None or not raw.strip():
            return  # a blank line: skipped, not malformed
        index = next(i for i, line in enumerate(self.part) if line is raw)
        _malformed(self.log, self.counters, self.file, self.first_line + index,
                   f"invalid JSON: {reason}")


def _schema_fields(obj: dict[str, Any]) -> dict[str, Any]:
    for key, value in obj.items():
        if type(value) is list:
            obj[key] = tuple(value)
    return obj


def read_json_lines(source: str, path: Path, counters: SourceCounters, *, schema: bool = False,
                    batch_size: int = BATCH_SIZE, progress: bool = False,
                    log: Any = None) -> Iterator[EventBatch]:
    """Batches of events read from ``path`` (see the module docstring)."""
    log = log if log is not None else _log.bind(source=source)
    files = input_files(path)
    total = sum(f.stat().st_size for f in files)
    bar = ProgressBar(progress, total, f"{source}: {path.name}")
    done_bytes = 0
    malformed_before = counters.malformed
    try:
        for file in files:
            reader, raw = _open(file)
            with raw, reader:
                lineno = 0
                try:
                    for lines in _line_chunks(reader):
                        now = time.time_ns()  # the read time of the whole chunk
                        for i in range(0, len(lines), batch_size):
                            part = lines[i:i + batch_size]
                            batch = (_schema_events(source, part, now, lineno + i, file,
                                                    counters, log) if schema else
                                     LineBatch(source, part, now, lineno + i + 1, file, counters,
                                               log))
                            if batch:
                                yield batch
                        lineno += len(lines)
                        bar.update(done_bytes + raw.tell())
                except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
                    _malformed(log, counters, file, lineno + 1, f"unreadable input: {exc}")
            done_bytes += file.stat().st_size
            bar.update(done_bytes)
    finally:
        bar.stop()
        bad = counters.malformed - malformed_before
        if bad > MAX_LOGGED:
            log.warning("malformed input lines skipped", total=bad,
                        not_logged=bad - MAX_LOGGED)


def _schema_events(source: str, lines: list[bytes], now: int, lineno: int, file: Path,
                   counters: SourceCounters, log: Any) -> list[Any]:
    """Schema events of ``lines`` (the first is line ``lineno + 1``): blank lines skipped,
    malformed ones counted and logged."""
    batch: list[Any] = []
    for line in lines:
        lineno += 1
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if line.strip():
                _malformed(log, counters, file, lineno, f"invalid JSON: {exc}")
            continue
        if type(doc) is not dict:
            _malformed(log, counters, file, lineno, "expected a JSON object of field values")
        else:
            ts = doc.get(_TIME_FIELD)
            batch.append(SchemaEvent(source, _schema_fields(doc), evt_type=doc.get("evt.type"),
                                     ts=ts if type(ts) is int else now))
    return batch


def _malformed(log: Any, counters: SourceCounters, file: Path, lineno: int, reason: str) -> None:
    counters.malformed += 1
    if counters.malformed <= MAX_LOGGED:
        log.warning("malformed input line skipped", file=str(file), line=lineno, reason=reason)
