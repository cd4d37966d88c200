"""The ``aws_cloudtrail`` event source: ``open_params`` picks the input, as upstream's ``Open``.

| ``open_params``            | input                                                       |
|----------------------------|-------------------------------------------------------------|
| ``s3://bucket[/prefix]``   | the log files of a bucket (``s3.py``)                       |
| ``sqs://queue-name``       | the log files an SQS queue announces (``sqs.py``)           |
| anything else              | a local file or directory, read once (``files.py``)         |

``open_source`` does what can fail before returning (a missing path, no log file, AWS
settings), so a misconfiguration stops falconet at start-up with a message. The S3 and SQS
modules are imported only when used: a local replay never loads the AWS SDK.
``replay_source`` is the reader behind ``falconet --source aws_cloudtrail -e PATH``.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from falconet.api import EventBatch, SourceContext
from falconet.log import get_logger

from .fields import SOURCE
from .files import log_files, read_log_files, stream_log_files
from .timebounds import bound_replay, bound_stream

__all__ = ["SourceError", "open_source", "replay_source"]


class SourceError(Exception):
    """The source cannot be opened as configured; the message says what to fix."""


def _log(ctx: SourceContext) -> Any:
    if ctx.log is None:
        ctx.log = get_logger(source=SOURCE)
    return ctx.log


def _remote(module: str, function: str, ctx: SourceContext) -> AsyncIterator[EventBatch]:
    try:
        opener = getattr(importlib.import_module(f"falconet_cloudtrail.{module}"), function)
    except (ImportError, AttributeError) as exc:
        raise SourceError(f"{ctx.open_params}: this input is not available ({exc})") from exc
    stream: AsyncIterator[EventBatch] = opener(ctx)
    return stream


def open_source(ctx: SourceContext) -> AsyncIterator[EventBatch]:
    """The stream ``ctx.open_params`` names (see the module docstring)."""
    _log(ctx)
    params = ctx.open_params.strip()
    if not params:
        raise SourceError("open_params is empty: give s3://bucket/prefix, sqs://queue-name, "
                          "or the path of a CloudTrail log file or directory")
    if params.startswith("s3://"):
        return _remote("s3", "open_s3", ctx)
    if params.startswith("sqs://"):
        return _remote("sqs", "open_sqs", ctx)
    files = log_files(Path(params))  # FileNotFoundError now, not at the first batch
    return bound_stream(stream_log_files(files, ctx.counters, ctx.log), ctx)


def replay_source(path: Path, ctx: SourceContext) -> Iterator[EventBatch]:
    """``falconet --source aws_cloudtrail -e PATH``: the events of a file or directory, with a
    progress bar when ``ctx.progress`` says so."""
    _log(ctx)
    return bound_replay(read_log_files(log_files(path), ctx.counters, ctx.log,
                                       progress=ctx.progress), ctx)
