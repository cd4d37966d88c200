"""AWS settings and failures of the S3 and SQS inputs, over real HTTP to ``moto_server``:
clear start-up errors (denied, missing bucket or queue, no credentials, unknown profile),
upstream's ``aws`` keys (profile, credentials and config files), access denied to some objects
while the rest is read, and throttled requests retried with backoff, counted and logged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from falconet_cloudtrail.remote import RemoteError
from falconet_cloudtrail.s3 import open_s3
from falconet_cloudtrail.sqs import open_sqs

from .helpers import log_file, rec
from .moto import (
    BUCKET,
    REGION,
    Moto,
    ThrottlingProxy,
    collect,
    context,
    free_port,
    ids,
)


def profile_files(directory: Path, profile: str, key: dict[str, str]) -> dict[str, str]:
    """The ``aws`` block of init_config naming a profile in credentials and config files of
    its own (upstream's keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "credentials").write_text(
        f"[{profile}]\naws_access_key_id = {key['key']}\n"
        f"aws_secret_access_key = {key['secret']}\n")
    (directory / "config").write_text(f"[profile {profile}]\nregion = {REGION}\n")
    return {"profile": profile, "credentials": str(directory / "credentials"),
            "config": str(directory / "config")}


def open_error(opener: Any, ctx: Any) -> str:
    with pytest.raises(RemoteError) as caught:
        opener(ctx)
    return str(caught.value)


def test_a_bucket_the_credentials_may_not_list_stops_start_up(moto: Moto, tmp_path: Path
                                                             ) -> None:
    """moto's IAM simulation: the user may read objects but not list the bucket. (The
    prefixes of the IAM tests have no "/": moto computes a wrong signature for a listing whose
    prefix has one, and answers SignatureDoesNotMatch.)"""
    moto.bucket(BUCKET, {"AWSLogs/a.json": log_file(rec("a"))})
    key = moto.user("reader", [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                "Resource": f"arn:aws:s3:::{BUCKET}/*"}])
    moto.enforce_iam()
    ctx = context(f"s3://{BUCKET}/AWSLogs", moto, tmp_path,
                  aws=profile_files(tmp_path / "aws-files", "reader", key))
    assert open_error(open_s3, ctx) == (
        f"cloudtrail: cannot list s3://{BUCKET}/AWSLogs: AccessDenied: Access Denied "
        "(check the IAM policy: s3:ListBucket)")
    # the checkpoint lock was released: the same input can be opened again
    moto.reset()
    moto.bucket(BUCKET, {"AWSLogs/a.json": log_file(rec("a"))})
    again = context(f"s3://{BUCKET}/AWSLogs", moto, tmp_path)
    assert ids(asyncio.run(collect(open_s3(again)))) == ["a"]


def test_a_missing_bucket_stops_start_up(moto: Moto, tmp_path: Path) -> None:
    ctx = context("s3://no-such-bucket/logs", moto, tmp_path)
    assert open_error(open_s3, ctx) == (
        "cloudtrail: cannot list s3://no-such-bucket/logs: NoSuchBucket: The specified bucket "
        "does not exist (check the bucket name in open_params)")


def test_no_credentials_stop_start_up(moto: Moto, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ctx = context(f"s3://{BUCKET}", moto, tmp_path)
    assert open_error(open_s3, ctx) == (
        f"cloudtrail: cannot list s3://{BUCKET}/: no AWS credentials found (set aws.profile or "
        "aws.credentials in init_config, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give "
        "the host an IAM role)")


def test_an_unknown_profile_and_a_missing_file_stop_start_up(moto: Moto, tmp_path: Path
                                                            ) -> None:
    files = profile_files(tmp_path / "aws-files", "someone", {"key": "k", "secret": "s"})
    ctx = context(f"s3://{BUCKET}", moto, tmp_path, aws={**files, "profile": "nobody"})
    assert open_error(open_s3, ctx) == (
        f"cloudtrail: aws.profile: profile 'nobody' is not in {files['config']}")
    ctx = context(f"s3://{BUCKET}", moto, tmp_path,
                  aws={"credentials": str(tmp_path / "missing")})
    assert open_error(open_s3, ctx) == f"cloudtrail: aws.credentials: {tmp_path}/missing " \
                                       "does not exist"


def test_a_missing_queue_stops_start_up(moto: Moto, tmp_path: Path) -> None:
    ctx = context("sqs://no-such-queue", moto, tmp_path)
    assert open_error(open_sqs, ctx) == (
        "cloudtrail: cannot use the SQS queue no-such-queue: "
        "AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist. "
        "(check the queue name in open_params, and sqsOwnerAccount for a queue of another "
        "account)")


def test_objects_the_credentials_may_not_read_are_counted_and_read_once_allowed(
        moto: Moto, tmp_path: Path) -> None:
    """The user may list the bucket and read ``ok/``, not ``denied/``: the denied file is
    counted and logged with the IAM action to grant, the others are read; it is not in the
    checkpoint, so the run after the policy is fixed reads it (and nothing else)."""
    moto.bucket(BUCKET, {"logs/denied/1.json": log_file(rec("denied1")),
                         "logs/ok/2.json": log_file(rec("ok2")),
                         "logs/ok/3.json": log_file(rec("ok3"))})
    listing = {"Effect": "Allow", "Action": ["s3:ListBucket"],
               "Resource": f"arn:aws:s3:::{BUCKET}"}
    key = moto.user("reader", [listing, {"Effect": "Allow", "Action": ["s3:GetObject"],
                                         "Resource": f"arn:aws:s3:::{BUCKET}/logs/ok/*"}])
    admin = moto.user("admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    aws = profile_files(tmp_path / "aws-files", "reader", key)
    moto.enforce_iam()
    ctx = context(f"s3://{BUCKET}/logs", moto, tmp_path, aws=aws)
    assert ids(asyncio.run(collect(open_s3(ctx)))) == ["ok2", "ok3"]
    assert ctx.counters.rejected == {"s3_get_failed": 1}
    assert ctx.counters.malformed == 0
    assert ctx.log.messages("warning") == [
        f"cannot read s3://{BUCKET}/logs/denied/1.json: AccessDenied: Access Denied (check "
        "the IAM policy: s3:GetObject); it will be read again later"]
    doc = json.loads((tmp_path / "checkpoint.json").read_text())
    assert sorted(doc["objects"]) == [f"{BUCKET}/logs/ok/2.json", f"{BUCKET}/logs/ok/3.json"]

    moto.client("iam", **admin).put_user_policy(
        UserName="reader", PolicyName="reader-policy", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [listing, {
                "Effect": "Allow", "Action": ["s3:GetObject"],
                "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    again = context(f"s3://{BUCKET}/logs", moto, tmp_path, aws=aws)
    assert ids(asyncio.run(collect(open_s3(again)))) == ["denied1"]
    assert again.counters.rejected == {}


def test_throttled_requests_are_retried_with_backoff_counted_and_logged(
        moto: Moto, tmp_path: Path) -> None:
    """moto does not throttle: a real HTTP proxy in front of it answers ``503 SlowDown`` to
    the first two requests (the start-up listing) and to the first three downloads of
    ``b.json``; every request is retried until it passes."""
    moto.bucket(BUCKET, {"t/a.json": log_file(rec("a")), "t/b.json": log_file(rec("b"))})
    with ThrottlingProxy(moto.url, throttle=2) as start_proxy:
        ctx = context(f"s3://{BUCKET}/t/", start_proxy.url, tmp_path / "1")
        assert ids(asyncio.run(collect(open_s3(ctx)))) == ["a", "b"]
        assert start_proxy.throttled == 2
    assert ctx.counters.rejected == {"aws_throttled": 2}
    assert ctx.log.messages("warning") == [
        f"cannot list s3://{BUCKET}/t/: SlowDown: Please reduce your request rate.; retrying"
    ] * 2
    assert [kw["attempt"] for lvl, _, kw in ctx.log.records if lvl == "warning"] == [1, 2]

    with ThrottlingProxy(moto.url, throttle=3, match="/t/b.json") as proxy:
        ctx = context(f"s3://{BUCKET}/t/", proxy.url, tmp_path / "2")
        assert ids(asyncio.run(collect(open_s3(ctx)))) == ["a", "b"]
        assert proxy.throttled == 3
    assert ctx.counters.rejected == {"aws_throttled": 3}
    assert ctx.log.messages("warning") == [
        f"cannot read s3://{BUCKET}/t/b.json: SlowDown: Please reduce your request rate.; "
        "retrying"] * 3


def test_a_request_still_throttled_after_its_attempts_fails_alone(moto: Moto, tmp_path: Path
                                                                 ) -> None:
    moto.bucket(BUCKET, {"t/a.json": log_file(rec("a")), "t/b.json": log_file(rec("b")),
                         "t/c.json": log_file(rec("c"))})
    with ThrottlingProxy(moto.url, throttle=2, match="/t/b.json") as proxy:
        ctx = context(f"s3://{BUCKET}/t/", proxy.url, tmp_path,
                      aws={"maxAttempts": 2})
        assert ids(asyncio.run(collect(open_s3(ctx)))) == ["a", "c"]
    assert ctx.counters.rejected == {"aws_throttled": 2, "s3_get_failed": 1}
    assert ctx.log.messages("warning") == [
        f"cannot read s3://{BUCKET}/t/b.json: SlowDown: Please reduce your request rate.; "
        "retrying",
        f"cannot read s3://{BUCKET}/t/b.json: SlowDown: Please reduce your request rate. "
        "(still throttled after 2 attempts); it will be read again later"]


def test_an_endpoint_that_does_not_answer_is_retried_then_stops_start_up(
        moto: Moto, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    ctx = context(f"s3://{BUCKET}", f"http://127.0.0.1:{port}", tmp_path,
                  aws={"maxAttempts": 2})
    message = open_error(open_s3, ctx)
    assert message.startswith(f"cloudtrail: cannot list s3://{BUCKET}/: cannot connect to the "
                              f"endpoint: Could not connect to the endpoint URL: "
                              f"\"http://127.0.0.1:{port}/{BUCKET}?")
    assert message.endswith("\" (still failing after 2 attempts)")
    assert ctx.counters.rejected == {"aws_transient_error": 2}
    assert [kw["attempt"] for lvl, _, kw in ctx.log.records if lvl == "warning"] == [1]
