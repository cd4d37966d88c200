"""Reading S3 objects into event batches: concurrent downloads, events in order, progress in
the checkpoint. The S3 and SQS inputs both read their log files through :class:`ObjectReader`.

Why it looks the way it does:

- Up to ``s3DownloadConcurrency`` downloads run ahead in threads while the files are handed on
  in the order they were listed or announced, so events keep CloudTrail's order.
- Each file is decoded by ``records.records_from_bytes`` (in a thread: gunzip and JSON
  decoding of a large file would otherwise stall the event loop), then cut into batches.
  After the engine has evaluated a batch (the stream resumes only then) the checkpoint
  records how many records of the file are done; when the source is closed while a batch is
  out, that batch was evaluated too (the engine evaluates a batch before it awaits anything).
  A file that was half read when falconet stopped is resumed after its last evaluated record.
- A file that cannot be downloaded (denied, missing, still throttled after every attempt) is
  counted (``s3_get_failed``), logged and left out of the checkpoint, so a later listing or a
  redelivered SQS message reads it again; a file that downloads but is not a CloudTrail log
  is counted by the decoder and recorded as done (reading it again would not help).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from falconet.api import EventBatch, SourceCounters

from .aws import AwsError, Retrier, in_thread
from .checkpoint import Checkpoint
from .report import Reporter
from .timebounds import TimeWindow

__all__ = ["BATCH_SIZE", "ObjectReader", "ObjectRef"]

#: events handed to the engine at once (CloudTrail files hold up to a few thousand records)
BATCH_SIZE = 512

Decoder = Callable[[bytes, str, SourceCounters, Any], list[Any]]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An S3 object holding a CloudTrail log file."""

    bucket: str
    key: str

    @property
    def name(self) -> str:
        """How the checkpoint records it."""
        return f"{self.bucket}/{self.key}"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _default_decoder() -> Decoder:
    from .records import records_from_bytes

    return records_from_bytes


class ObjectReader:
    """Downloads and decodes objects; yields their events in batches (see the module doc)."""

    def __init__(self, s3: Any, retrier: Retrier, reporter: Reporter, checkpoint: Checkpoint,
                 concurrency: int, decode: Decoder | None = None) -> None:
        self.s3 = s3
        self.retrier = retrier
        self.reporter = reporter
        self.checkpoint = checkpoint
        self.concurrency = concurrency
        self.decode = decode or _default_decoder()

    async def _download(self, ref: ObjectRef) -> bytes:
        def get() -> bytes:
            body = self.s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            return data

        return await self.retrier.call(f"cannot read {ref.url}", "GetObject", get)

    async def read(self, refs: Sequence[ObjectRef], window: TimeWindow,
                   failed: list[ObjectRef] | None = None) -> AsyncGenerator[EventBatch, None]:
        """The events of ``refs`` in order, skipping what the checkpoint has; refs that could
        not be downloaded are appended to ``failed``."""
        checkpoint = self.checkpoint
        todo = [ref for ref in refs if not checkpoint.is_complete(ref.name)]
        pending: dict[int, asyncio.Task[bytes]] = {}
        ahead = 0
        try:
            for index, ref in enumerate(todo):
                while ahead < len(todo) and ahead < index + self.concurrency:
                    pending[ahead] = asyncio.create_task(self._download(todo[ahead]))
                    ahead += 1
                try:
                    data = await pending.pop(index)
                except AwsError as exc:
                    self.reporter.problem("s3_get_failed", f"{exc}; it will be read again "
                                          "later", file=ref.url)
                    if failed is not None:
                        failed.append(ref)
                    continue
                events = await in_thread(functools.partial(
                    self.decode, data, ref.url, self.reporter.counters, self.reporter.log))
                # the file's batches, inline: a nested generator would not see the close
                name = ref.name
                for first in range(checkpoint.records_done(name), len(events), BATCH_SIZE):
                    end = min(first + BATCH_SIZE, len(events))
                    chunk = events[first:end]
                    if window.bounds_events:
                        chunk = window.keep(chunk, self.reporter, ref.url)
                    if chunk:
                        try:
                            yield chunk
                        except GeneratorExit:
                            checkpoint.progress(name, end)  # evaluated before the close
                            raise
                    checkpoint.progress(name, end)
                    self.save_checkpoint()
                checkpoint.complete(name)
                self.save_checkpoint()
        finally:
            for task in pending.values():
                task.cancel()
            for task in pending.values():
                with contextlib.suppress(BaseException):
                    await task

    def save_checkpoint(self, now: bool = False) -> None:
        """Write the checkpoint if due (``now``: if anything changed, before the input waits);
        a failure is counted and logged, reading goes on."""
        try:
            if now:
                self.checkpoint.flush()
            else:
                self.checkpoint.save_if_due()
        except Exception as exc:
            self.reporter.problem("checkpoint_write_failed", str(exc))
