"""The ``sqs://`` input against a real ``moto_server``: CloudTrail's SNS notifications, S3 event
notifications sent to the queue directly and through SNS (moto delivers them as AWS does),
deletion only after the files are read, messages of no known form reported and left for the
dead-letter queue, ``sqsDelete: false`` without double reads, and unreadable files retried."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet_cloudtrail.sqs import EXPECTED, Unrecognised, open_sqs, parse_message

from .helpers import log_file, rec
from .moto import (
    BUCKET,
    Moto,
    context,
    gz_log,
    ids,
)

QUEUE = "trail-queue"
#: how long the test lets the stream run after it saw everything it waited for
SETTLE_S = 2.5



def queue(moto: Moto, name: str = QUEUE, **attributes: str) -> tuple[str, str]:
    """A queue; returns (url, arn)."""
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def topic_to(moto: Moto, queue_arn: str, name: str = "trail-topic") -> str:
    """An SNS topic delivering to the queue (SNS envelopes, as by default); returns its arn."""
    sns = moto.client("sns")
    arn: str = sns.create_topic(Name=name)["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return arn


def messages_in(moto: Moto, url: str) -> int:
    """Messages still in the queue, visible or not."""
    attrs = moto.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                      "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


def drive(ctx: Any, done: Callable[[list[Any]], bool], settle_s: float = SETTLE_S,
          deadline_s: float = 30.0) -> list[Any]:
    """Run the SQS input until ``done(events)`` holds (it may call AWS: it runs in a thread),
    let it run ``settle_s`` more (to catch any double read), then stop it as falconet does
    (cancel the task, close the stream)."""
    async def run() -> list[Any]:
        events: list[Any] = []
        stream = open_sqs(ctx)

        async def consume() -> None:
            async for batch in stream:
                events.extend(batch)

        task = asyncio.create_task(consume())
        try:
            loop = asyncio.get_running_loop()
            end = loop.time() + deadline_s
            while not await asyncio.to_thread(done, list(events)):
                if task.done():
                    task.result()
                    pytest.fail("the SQS input ended")
                if loop.time() > end:
                    pytest.fail(f"gave up waiting; events so far: {ids(events)}; log: "
                                f"{ctx.log.records}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(settle_s)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stream.aclose()
        return events

    return asyncio.run(run())


def test_cloudtrail_sns_notifications_are_read_and_deleted(moto: Moto, tmp_path: Path) -> None:
    s3 = moto.bucket(BUCKET)
    url, arn = queue(moto)
    topic = topic_to(moto, arn)
    keys = ["AWSLogs/1.json.gz", "AWSLogs/2.json"]
    s3.put_object(Bucket=BUCKET, Key=keys[0], Body=gz_log(rec("one"), rec("two")))
    s3.put_object(Bucket=BUCKET, Key=keys[1], Body=log_file(rec("three")))
    moto.client("sns").publish(TopicArn=topic, Message=json.dumps(
        {"s3Bucket": BUCKET, "s3ObjectKey": keys}))
    ctx = context(f"sqs://{QUEUE}", moto, tmp_path, sqsWaitTime=1)
    events = drive(ctx, lambda ev: len(ev) >= 3 and messages_in(moto, url) == 0)
    assert ids(events) == ["one", "two", "three"]
    assert ctx.counters.rejected == {} and ctx.counters.malformed == 0


def test_s3_event_notifications_raw_and_through_sns(moto: Moto, tmp_path: Path) -> None:
    """Bucket ``direct`` notifies the queue itself; bucket ``wrapped`` notifies an SNS topic
    that delivers to the queue. Keys arrive URL-encoded; S3's test events name no file."""
    url, arn = queue(moto)
    topic = topic_to(moto, arn)
    s3 = moto.bucket("direct-bucket")
    moto.bucket("wrapped-bucket")
    s3.put_bucket_notification_configuration(
        Bucket="direct-bucket", NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_bucket_notification_configuration(
        Bucket="wrapped-bucket", NotificationConfiguration={"TopicConfigurations": [
            {"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket="direct-bucket", Key="AWSLogs/raw file+1.json.gz",
                  Body=gz_log(rec("raw")))
    s3.put_object(Bucket="wrapped-bucket", Key="AWSLogs/wrapped=1.json",
                  Body=log_file(rec("wrapped")))
    ctx = context(f"sqs://{QUEUE}", moto, tmp_path, sqsWaitTime=1, useS3SNS=True)
    events = drive(ctx, lambda ev: len(ev) >= 2 and messages_in(moto, url) == 0)
    assert sorted(ids(events)) == ["raw", "wrapped"]
    assert ctx.counters.rejected == {} and ctx.counters.malformed == 0
    done = json.loads((tmp_path / "checkpoint.json").read_text())["objects"]
    assert sorted(done) == ["direct-bucket/AWSLogs/raw file+1.json.gz",
                            "wrapped-bucket/AWSLogs/wrapped=1.json"]


def json_error(text: str) -> str:
    """orjson's reason for ``text`` not being JSON (the wording is the decoder's)."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return str(exc)
    raise AssertionError(f"{text!r} is JSON")


BAD_BODIES = [
    ("not json at all", f"the body is not JSON ({json_error('not json at all')})"),
    ('{"hello": "world"}', 'a JSON object with keys "hello"'),
    (json.dumps({"Type": "SubscriptionConfirmation", "Message": "confirm"}),
     'an SNS message of Type "SubscriptionConfirmation" (only "Notification" announces '
     'files)'),
    (json.dumps({"Message": json.dumps({"s3Bucket": BUCKET, "s3ObjectKey": ["k.json"]})}),
     'a JSON object with keys "Message": an SNS envelope without its "Type" property'),
    (json.dumps({"Type": "Notification", "Message": json.dumps({"detail": 1})}),
     'an SNS notification whose Message is a JSON object with keys "detail"'),
]


@pytest.mark.parametrize(("body", "got"), BAD_BODIES)
def test_parse_message_says_what_arrived(body: str, got: str) -> None:
    with pytest.raises(Unrecognised) as caught:
        parse_message(body)
    assert str(caught.value) == got


def test_unrecognised_messages_are_reported_and_left_for_the_dead_letter_queue(
        moto: Moto, tmp_path: Path) -> None:
    dlq_url, dlq_arn = queue(moto, "trail-dlq")
    url, _ = queue(moto, VisibilityTimeout="1", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    s3 = moto.bucket(BUCKET)
    s3.put_object(Bucket=BUCKET, Key="AWSLogs/good.json", Body=log_file(rec("good")))
    sqs = moto.client("sqs")
    sent = {sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]: got
            for body, got in BAD_BODIES}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
        {"Type": "Notification", "Message": json.dumps(
            {"s3Bucket": BUCKET, "s3ObjectKey": ["AWSLogs/good.json"]})}))
    ctx = context(f"sqs://{QUEUE}", moto, tmp_path, sqsWaitTime=1)
    events = drive(ctx, lambda ev: bool(ev) and messages_in(moto, url) == 0
                   and messages_in(moto, dlq_url) == len(BAD_BODIES), settle_s=0.5)
    assert ids(events) == ["good"]
    # each message counted and logged once, though received twice before the DLQ took it
    assert ctx.counters.rejected == {"sqs_unrecognised_message": len(BAD_BODIES)}
    assert ctx.counters.malformed == len(BAD_BODIES)
    logged = {kw["message_id"]: event for lvl, event, kw in ctx.log.records
              if lvl == "warning"}
    assert logged == {
        message_id: f"SQS message {message_id} does not announce CloudTrail log files: got "
                    f"{got}; expected {EXPECTED}. It is left in the queue (not deleted): a "
                    "redrive policy moves it to the dead-letter queue"
        for message_id, got in sent.items()}
    in_dlq = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["MessageId"] for m in in_dlq) == sorted(sent)


def test_without_sqs_delete_redelivered_messages_are_not_read_twice(moto: Moto, tmp_path: Path
                                                                    ) -> None:
    url, _ = queue(moto, VisibilityTimeout="1")
    moto.bucket(BUCKET, {"AWSLogs/a.json": log_file(rec("a"))})
    sqs = moto.client("sqs")
    message_id = sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
        {"s3Bucket": BUCKET, "s3ObjectKey": ["AWSLogs/a.json"]}))["MessageId"]  # SNS raw
    ctx = context(f"sqs://{QUEUE}", moto, tmp_path, sqsWaitTime=1, sqsDelete=False)
    events = drive(ctx, bool, settle_s=3.5)  # received again after each 1 s visibility timeout
    assert ids(events) == ["a"]
    assert messages_in(moto, url) == 1  # still there: sqsDelete is false
    received = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"],
                                   WaitTimeSeconds=5)["Messages"][0]
    assert received["MessageId"] == message_id
    assert int(received["Attributes"]["ApproximateReceiveCount"]) >= 3
    doc = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert list(doc["messages"]) == [message_id]


def test_a_file_that_cannot_be_read_leaves_its_message_for_a_later_try(moto: Moto,
                                                                       tmp_path: Path) -> None:
    url, _ = queue(moto, VisibilityTimeout="2")
    s3 = moto.bucket(BUCKET, {"AWSLogs/here.json": log_file(rec("here"))})
    sqs = moto.client("sqs")
    message_id = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({
        "Type": "Notification", "Message": json.dumps({
            "s3Bucket": BUCKET, "s3ObjectKey": ["AWSLogs/here.json", "AWSLogs/late.json"]})}))[
        "MessageId"]
    ctx = context(f"sqs://{QUEUE}", moto, tmp_path, sqsWaitTime=1)
    first = drive(ctx, lambda ev: len(ctx.log.messages("warning")) >= 2, settle_s=0)
    assert ids(first) == ["here"]
    assert ctx.log.messages("warning")[:2] == [
        f"cannot read s3://{BUCKET}/AWSLogs/late.json: NoSuchKey: The specified key does not "
        "exist.; it will be read again later",
        f"SQS message {message_id} stays in the queue: 1 of its files could not be read"]
    assert ctx.counters.rejected["s3_get_failed"] >= 1
    assert messages_in(moto, url) == 1

    s3.put_object(Bucket=BUCKET, Key="AWSLogs/late.json", Body=log_file(rec("late")))
    again = context(f"sqs://{QUEUE}", moto, tmp_path, sqsWaitTime=1)
    second = drive(again, lambda ev: bool(ev) and messages_in(moto, url) == 0)
    assert ids(second) == ["late"]  # here.json is in the checkpoint: not read again
    assert again.counters.rejected == {}
