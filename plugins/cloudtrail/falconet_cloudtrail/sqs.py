"""``open_params: sqs://queue-name``: the CloudTrail log files an SQS queue announces.

A message names log files in one of these forms, recognised by their shape (whatever
``useS3SNS`` says, so a queue fed both ways works):

- CloudTrail's SNS notification: an SNS envelope ``{"Type": "Notification", "Message": ...}``
  whose Message is ``{"s3Bucket": "...", "s3ObjectKey": ["...", ...]}``;
- an S3 event notification (``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket":
  {"name": ...}, "object": {"key": ...}}}]}``), in an SNS envelope or sent by S3 to the queue
  directly; keys arrive URL-encoded and are decoded; S3's ``s3:TestEvent`` names no file.

Each file is read once (the checkpoint remembers files and message ids, so a redelivered
message does not alert twice). A message is deleted (``sqsDelete``, default true) only once
every file it names was read: upstream deletes on receipt, which loses the files when falconet
stops before reading them. A file that cannot be read leaves its message in the queue to be
received again. A message of no known form is counted, logged with what was expected and what
arrived, and never deleted: the queue's redrive policy moves it to its dead-letter queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import orjson

from falconet.api import EventBatch, SourceContext

from .aws import AwsError, make_clients
from .checkpoint import SQS_RETENTION_S, CheckpointError
from .objects import ObjectReader, ObjectRef
from .remote import RemoteError, Started, start
from .s3 import is_wanted_key
from .timebounds import TimeBoundError

__all__ = ["EXPECTED", "Notice", "Unrecognised", "open_sqs", "parse_message"]

#: what the reader accepts, for the message about a message of another form
EXPECTED = ('an SNS notification ({"Type": "Notification", "Message": "..."}) whose Message is '
            'a CloudTrail notification ({"s3Bucket": "...", "s3ObjectKey": ["..."]}) or an S3 '
            'event notification ({"Records": [{"s3": {...}}]}), or an S3 event notification '
            "sent to the queue directly")
#: how long to wait after a failed receive (its retries exhausted) before the next one
RECEIVE_PAUSE_S = 5.0
#: how often old message ids and files are dropped from the checkpoint
EXPIRE_EVERY_S = 3600.0


class Unrecognised(ValueError):
    """A message of no known form; ``str`` says what arrived."""


@dataclass
class Notice:
    """What one message announces."""

    #: "cloudtrail", "s3" (event notification) or "s3-test" (S3's test event)
    kind: str
    #: it came in an SNS envelope
    wrapped: bool
    refs: list[ObjectRef] = field(default_factory=list)


def _shape(doc: Any) -> str:
    """A short description of a JSON value, for messages."""
    if isinstance(doc, dict):
        keys = ", ".join(f'"{k}"' for k in list(doc)[:8])
        more = ", ..." if len(doc) > 8 else ""
        return f"a JSON object with keys {keys}{more}" if doc else "an empty JSON object"
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "JSON null" if doc is None else f"a JSON {names.get(type(doc), type(doc).__name__)}"


def _cloudtrail_refs(doc: dict[str, Any]) -> list[ObjectRef]:
    bucket, keys = doc.get("s3Bucket"), doc.get("s3ObjectKey")
    if isinstance(keys, str):
        keys = [keys]
    if not (isinstance(bucket, str) and bucket and isinstance(keys, list)
            and all(isinstance(k, str) for k in keys)):
        raise Unrecognised('a CloudTrail notification needs "s3Bucket" (a string) and '
                           '"s3ObjectKey" (a list of strings); got ' + _shape(doc))
    return [ObjectRef(bucket, key) for key in keys]


def _s3_event_refs(records: list[Any]) -> list[ObjectRef]:
    refs = []
    for record in records:
        s3 = record.get("s3") if isinstance(record, dict) else None
        bucket = ((s3 or {}).get("bucket") or {}).get("name") if isinstance(s3, dict) else None
        key = ((s3 or {}).get("object") or {}).get("key") if isinstance(s3, dict) else None
        if not (isinstance(bucket, str) and isinstance(key, str)):
            raise Unrecognised("an S3 event notification record needs s3.bucket.name and "
                               "s3.object.key; got " + _shape(record))
        if str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
            refs.append(ObjectRef(bucket, unquote_plus(key)))
    return refs


def parse_message(body: str) -> Notice:
    """The files a message body announces; raises :class:`Unrecognised`."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Unrecognised(f"the body is not JSON ({exc})") from None
    wrapped = isinstance(doc, dict) and "Type" in doc
    if wrapped:
        if doc["Type"] != "Notification":
            raise Unrecognised(f'an SNS message of Type {orjson.dumps(doc["Type"]).decode()} '
                               '(only "Notification" announces files)')
        message = doc.get("Message")
        if not isinstance(message, str):
            raise Unrecognised('an SNS notification without a "Message" string')
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise Unrecognised(f"an SNS notification whose Message is not JSON ({exc})") \
                from None
    inner = "an SNS notification whose Message is " if wrapped else ""
    if isinstance(doc, dict):
        if "s3Bucket" in doc or "s3ObjectKey" in doc:
            return Notice("cloudtrail", wrapped, _cloudtrail_refs(doc))
        if isinstance(doc.get("Records"), list):
            return Notice("s3", wrapped, _s3_event_refs(doc["Records"]))
        if doc.get("Event") == "s3:TestEvent":
            return Notice("s3-test", wrapped)
    if not wrapped and isinstance(doc, dict) and "Message" in doc:
        raise Unrecognised(f'{_shape(doc)}: an SNS envelope without its "Type" property')
    raise Unrecognised(inner + _shape(doc))


def open_sqs(ctx: SourceContext) -> AsyncIterator[EventBatch]:
    """The ``sqs://`` input. Raises :class:`RemoteError` at once when it cannot start (bad
    settings, no credentials, a queue that does not exist or may not be used)."""
    name = ctx.open_params.strip()[len("sqs://"):].strip("/")
    if not name:
        raise RemoteError(f"{ctx.open_params}: no queue name (sqs://queue-name)")
    started = start(ctx)
    settings = started.settings
    args = {"QueueName": name}
    if settings.sqs_owner_account:
        args["QueueOwnerAWSAccountId"] = settings.sqs_owner_account
    try:
        sqs, s3 = make_clients(settings.aws, "sqs", "s3",
                               pool_size=settings.download_concurrency)
        url = started.retrier.call_now(f"cannot use the SQS queue {name}", "GetQueueUrl",
                                       lambda: sqs.get_queue_url(**args))["QueueUrl"]
    except AwsError as exc:
        started.checkpoint.close()
        raise RemoteError(str(exc)) from None
    reader = ObjectReader(s3, started.retrier, started.reporter, started.checkpoint,
                          settings.download_concurrency)
    started.log.info(f"reading CloudTrail log files announced on {url}",
                     sqsDelete=settings.sqs_delete, **started.checkpoint.summary())
    return _QueueReader(started, sqs, url, reader).stream()


class _QueueReader:
    """Receives messages and reads the files they announce (module docstring)."""

    def __init__(self, started: Started, sqs: Any, url: str, reader: ObjectReader) -> None:
        self.started = started
        self.sqs = sqs
        self.url = url
        self.reader = reader
        self.reporter = started.reporter
        self.checkpoint = started.checkpoint
        #: ids of unrecognised messages already reported (each is counted once)
        self.reported: set[str] = set()

    async def _receive(self) -> list[dict[str, Any]]:
        settings = self.started.settings

        def receive() -> Any:
            return self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=settings.sqs_wait_s,
                                            AttributeNames=["ApproximateReceiveCount"])

        answer = await self.started.retrier.call(f"cannot receive from {self.url}",
                                                 "ReceiveMessage", receive)
        return list(answer.get("Messages") or ())

    async def _delete(self, message: dict[str, Any]) -> None:
        def delete() -> Any:
            return self.sqs.delete_message(QueueUrl=self.url,
                                           ReceiptHandle=message["ReceiptHandle"])

        try:
            await self.started.retrier.call(f"cannot delete message {message['MessageId']}",
                                            "DeleteMessage", delete)
        except AwsError as exc:
            self.reporter.problem("sqs_delete_failed", f"{exc}; it will be received again and "
                                  "skipped (its files are in the checkpoint)")

    def _unrecognised(self, message: dict[str, Any], exc: Unrecognised) -> None:
        message_id = message["MessageId"]
        if message_id in self.reported:
            return
        self.reported.add(message_id)
        received = (message.get("Attributes") or {}).get("ApproximateReceiveCount", "?")
        self.reporter.problem(
            "sqs_unrecognised_message",
            f"SQS message {message_id} does not announce CloudTrail log files: got {exc}; "
            f"expected {EXPECTED}. It is left in the queue (not deleted): a redrive policy "
            "moves it to the dead-letter queue",
            malformed=True, message_id=message_id, received=received)

    async def _handle(self, message: dict[str, Any]) -> AsyncGenerator[EventBatch, None]:
        """The events of the files one message announces; then the message is deleted, or
        left for another try when a file could not be read."""
        checkpoint, settings = self.checkpoint, self.started.settings
        message_id = message["MessageId"]
        if checkpoint.message_done(message_id):  # redelivered: read already
            if settings.sqs_delete:
                await self._delete(message)
            return
        try:
            notice = parse_message(message.get("Body") or "")
        except Unrecognised as exc:
            self._unrecognised(message, exc)
            return
        window = settings.bounds.at(datetime.now(UTC))
        refs = []
        for ref in notice.refs:
            if not is_wanted_key(ref.key):
                self.reporter.problem("not_a_log_file", "announced object is not a CloudTrail "
                                      "log file (.json, .json.gz), skipped", level="info",
                                      file=ref.url, message_id=message_id)
            elif window.accepts_key(ref.key):
                refs.append(ref)
        failed: list[ObjectRef] = []
        async with contextlib.aclosing(self.reader.read(refs, window, failed)) as batches:
            async for batch in batches:
                yield batch
        if failed:
            self.started.log.warning(f"SQS message {message_id} stays in the queue: "
                                     f"{len(failed)} of its files could not be read",
                                     message_id=message_id)
            return
        checkpoint.mark_message(message_id)
        if settings.sqs_delete:
            await self._delete(message)
        self.reader.save_checkpoint()

    async def stream(self) -> AsyncIterator[EventBatch]:
        expired_at = 0.0
        try:
            while True:
                if time.monotonic() - expired_at >= EXPIRE_EVERY_S:
                    self.checkpoint.expire(SQS_RETENTION_S)
                    expired_at = time.monotonic()
                self.reader.save_checkpoint(now=True)  # before a wait of up to 20 s
                try:
                    messages = await self._receive()
                except AwsError as exc:
                    self.reporter.problem("sqs_receive_failed", str(exc))
                    await asyncio.sleep(RECEIVE_PAUSE_S)
                    continue
                for message in messages:
                    try:
                        async with contextlib.aclosing(self._handle(message)) as batches:
                            async for batch in batches:
                                yield batch
                    except TimeBoundError as exc:  # a relative range that became empty
                        self.started.log.error(f"cloudtrail: {exc}; nothing more to read")
                        return
        finally:
            try:
                self.checkpoint.close()
            except CheckpointError as exc:
                self.reporter.problem("checkpoint_write_failed", str(exc), level="error")
