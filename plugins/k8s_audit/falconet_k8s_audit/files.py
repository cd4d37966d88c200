"""Replaying audit log files: ``open_params`` without a scheme, and ``falconet --source k8s_audit
-e PATH``.

As upstream: a file is read once, line by line (each line a JSON document read by the rules of
``parse.py``: one Event, an EventList or an array), then the stream ends; a directory is its
regular files in modification-time order, oldest first (name order among equal times; hidden
files skipped). Beyond upstream: ``.gz`` files (the API server's ``--audit-log-compress``
backups) are read decompressed. Refused lines and events are counted and logged with their file
and line number.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, cast

from falconet.api import EventBatch, JsonEvent

from .parse import AuditParser, Refusal, Reporter

__all__ = ["BATCH_SIZE", "UNREADABLE", "audit_files", "read_audit_files", "replay_stream"]

BATCH_SIZE = 128
#: reason counted for a file that cannot be read to its end (a truncated .gz)
UNREADABLE = "unreadable_input"


def audit_files(path: Path) -> list[Path]:
    """``path``, or a directory's regular files oldest first. FileNotFoundError if absent."""
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))
    if not path.exists():
        raise FileNotFoundError(f"k8s audit input not found: {path}")
    return [path]


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def read_audit_files(path: Path, parser: AuditParser, reporter: Reporter, *,
                     batch_size: int = BATCH_SIZE) -> Iterator[list[JsonEvent]]:
    """Batches of the events of ``path`` (a file or a directory), in input order."""
    batch: list[JsonEvent] = []
    for file in audit_files(path):
        lineno = 0
        try:
            with _open(file) as reader:
                for lineno, line in enumerate(reader, 1):
                    if not line.strip():
                        continue
                    parsed = parser.parse_bytes(line)
                    if parsed.refusals:
                        reporter.report(parsed.refusals, file=str(file), line=lineno)
                    batch += parsed.events
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
        except (OSError, EOFError) as exc:
            reporter.refuse(Refusal(UNREADABLE, f"unreadable input: {exc}"), file=str(file),
                            line=lineno + 1)
    if batch:
        yield batch


async def replay_stream(path: Path, parser: AuditParser,
                        reporter: Reporter) -> AsyncIterator[EventBatch]:
    """The same batches as a live stream that ends with the input."""
    for batch in read_audit_files(path, parser, reporter):
        yield batch
