"""Local CloudTrail log files: ``open_params`` that is a path, and ``falconet --source
aws_cloudtrail -e PATH``.

As upstream (``filepath.Walk``): a file, or a directory walked recursively in name order,
keeping the files named ``*.json`` and ``*.json.gz``; no such file is an error at open. Each file
is read whole and handed to ``records.records_from_bytes``; its events make one batch. A file
that cannot be read is counted (``unreadable_file``) and logged, and the walk goes on. On a
terminal, a progress bar shows the files and bytes read.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from falconet.api import EventBatch, SourceCounters

from .progress import Progress
from .records import is_log_file_name, records_from_bytes, refuse

__all__ = ["UNREADABLE_FILE", "log_files", "read_log_files", "stream_log_files"]

UNREADABLE_FILE = "unreadable_file"


def _walk(directory: str, out: list[str]) -> None:
    """Go's ``filepath.Walk`` order: the entries of a directory sorted by name, each directory
    walked where it sorts. Symbolic links to directories are not followed (as Walk)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            _walk(path, out)
        elif is_log_file_name(name):
            out.append(path)


def log_files(path: Path) -> list[Path]:
    """The CloudTrail log files of ``path`` (a file or a directory), in upstream's order.
    Raises FileNotFoundError when ``path`` does not exist or holds no log file."""
    if not path.exists():
        raise FileNotFoundError(f"cannot open {path}: no such file or directory")
    if not path.is_dir():
        if not is_log_file_name(path.name):
            raise FileNotFoundError(f"{path} is not a CloudTrail log file (*.json, *.json.gz)")
        return [path]
    found: list[str] = []
    _walk(str(path), found)
    if not found:
        raise FileNotFoundError(f"no json files found in {path} (*.json, *.json.gz)")
    return [Path(p) for p in found]


def read_log_files(files: list[Path], counters: SourceCounters, log: Any, *,
                   progress: bool = False) -> Iterator[EventBatch]:
    """One batch per file that has events, in order."""
    bar = Progress(progress, files)
    try:
        for file in files:
            try:
                data = file.read_bytes()
            except OSError as exc:
                refuse(counters, log, UNREADABLE_FILE, "unreadable file skipped",
                       file=str(file), error=exc.strerror or str(exc))
                bar.advance(0)
                continue
            events = records_from_bytes(data, str(file), counters, log)
            bar.advance(len(data))
            del data
            if events:
                yield events
            del events  # evaluated by now: freed before the next file is decoded
    finally:
        bar.stop()


async def stream_log_files(files: list[Path], counters: SourceCounters,
                           log: Any) -> AsyncIterator[EventBatch]:
    """The same batches as a live stream that ends with the input."""
    for batch in read_log_files(files, counters, log):
        yield batch
