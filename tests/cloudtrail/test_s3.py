"""The ``s3://`` input against a real ``moto_server``: which log files are read (prefixes,
CloudTrail's account and organisation layout, ``s3Interval``, ``since``/``until``), polling for
new objects, and bad objects counted and logged while the others are read."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import pytest

from falconet_cloudtrail.s3 import open_s3

from .helpers import log_file, rec
from .moto import (
    BUCKET,
    Moto,
    ThrottlingProxy,
    collect,
    context,
    gz_log,
    ids,
    trail_key,
)


def read_all(ctx: Any) -> list[Any]:
    return asyncio.run(collect(open_s3(ctx)))


def test_reads_every_log_file_under_the_prefix_once_then_ends(moto: Moto, tmp_path: Path
                                                              ) -> None:
    moto.bucket(BUCKET, {
        "logs/a.json.gz": gz_log(rec("a1"), rec("a2")),
        "logs/b.json": log_file(rec("b1")),
        "logs/sub/c.json.gz": gz_log(rec("c1")),
        "logs/notes.txt": b"not a log file",
        "logs/x/CloudTrail-Digest/us-east-1/d.json.gz": gzip.compress(b'{"digest": true}'),
        "other/z.json": log_file(rec("z1")),
    })
    ctx = context(f"s3://{BUCKET}/logs/", moto, tmp_path)
    assert ids(read_all(ctx)) == ["a1", "a2", "b1", "c1"]
    assert ctx.counters.malformed == 0 and ctx.counters.rejected == {}
    assert ctx.log.messages("info") == [f"reading CloudTrail log files from s3://{BUCKET}/logs/ "
                                        "(once)",
                                        f"3 log files to read from s3://{BUCKET}/logs/",
                                        f"finished reading s3://{BUCKET}/logs/"]


def test_whole_bucket_and_events_keep_their_raw_text_and_time(moto: Moto, tmp_path: Path
                                                              ) -> None:
    moto.bucket(BUCKET, {"k.json": log_file(rec("k1", "2024-05-01T10:00:01.5Z"))})
    events = read_all(context(f"s3://{BUCKET}", moto, tmp_path))
    assert [(e.source, e.ts, e.raw) for e in events] == [
        ("aws_cloudtrail", 1714557601_500000000,
         log_file(rec("k1", "2024-05-01T10:00:01.5Z"))[len(b'{"Records":['):-2])]


def test_account_folder_is_read_region_by_region_within_s3_interval(moto: Moto, tmp_path: Path
                                                                    ) -> None:
    """``AWSLogs/<account>/`` (upstream's "Copy S3 URI") is expanded to its regions; the
    interval selects files by the time in their names, with a 24-hour clock (upstream parses
    hours 13-23 as an error)."""
    moto.bucket(BUCKET, {
        trail_key(stamp="20240430T2350Z", unique="early"): gz_log(rec("early")),
        trail_key(stamp="20240501T1805Z", unique="in1"): gz_log(rec("in1")),
        trail_key(region="eu-west-1", stamp="20240501T1810Z", unique="in2"): gz_log(rec("in2")),
        trail_key(stamp="20240501T1900Z", unique="late"): gz_log(rec("late")),
        "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/05/01/d.json.gz":
            gzip.compress(b'{"digest": 1}'),
    })
    ctx = context(f"s3://{BUCKET}/AWSLogs/123456789012/", moto, tmp_path,
                  s3Interval="2024-05-01T18:00:00Z-2024-05-01T18:30:00Z")
    assert ids(read_all(ctx)) == ["in2", "in1"]  # eu-west-1 sorts before us-east-1
    assert ctx.counters.rejected == {}


def test_organisation_trail_reads_the_listed_accounts_or_all(moto: Moto, tmp_path: Path
                                                            ) -> None:
    org = "o-abcdefghij"
    moto.bucket(BUCKET, {
        trail_key("111111111111", org=org, prefix="corp"): gz_log(rec("acct1")),
        trail_key("222222222222", org=org, prefix="corp"): gz_log(rec("acct2")),
        trail_key("333333333333", org=org, prefix="corp"): gz_log(rec("acct3")),
    })
    listed = context(f"s3://{BUCKET}/corp/AWSLogs/{org}/", moto, tmp_path / "a",
                     s3AccountList="111111111111, 333333333333")
    assert ids(read_all(listed)) == ["acct1", "acct3"]
    every = context(f"s3://{BUCKET}/corp/AWSLogs/{org}", moto, tmp_path / "b")
    assert ids(read_all(every)) == ["acct1", "acct2", "acct3"]


def test_since_and_until_bound_the_events(moto: Moto, tmp_path: Path) -> None:
    moto.bucket(BUCKET, {
        trail_key(stamp="20240501T0955Z", unique="old"): gz_log(rec("before")),
        trail_key(stamp="20240501T1005Z", unique="mid"): gz_log(
            rec("edge-before", "2024-05-01T09:59:59Z"), rec("at-since", "2024-05-01T10:00:00Z"),
            rec("inside", "2024-05-01T10:03:00Z"), rec("at-until", "2024-05-01T10:04:00Z")),
    })
    ctx = context(f"s3://{BUCKET}/AWSLogs/", moto, tmp_path,
                  since="2024-05-01T10:00:00Z", until="2024-05-01T12:04:00+02:00")
    assert ids(read_all(ctx)) == ["at-since", "inside"]
    assert ctx.counters.rejected == {"out_of_time_range": 2}
    assert ctx.counters.malformed == 0
    assert ctx.log.messages("info").count("records outside since/until skipped") == 2


def test_command_line_since_and_until_prune_the_files_too(moto: Moto, tmp_path: Path) -> None:
    """``falconet --since/--until`` arrive as ``SourceContext.since_ns/until_ns``: the files
    named before ``since`` are not read at all (the engine drops out-of-range events anyway)."""
    moto.bucket(BUCKET, {
        trail_key(stamp="20240501T0955Z", unique="old"): gz_log(rec("before")),
        trail_key(stamp="20240501T1005Z", unique="mid"): gz_log(
            rec("at-since", "2024-05-01T10:00:00Z"), rec("inside", "2024-05-01T10:03:00Z")),
    })
    ctx = context(f"s3://{BUCKET}/AWSLogs/", moto, tmp_path)
    ctx.since_ns = 1714557600 * 10**9  # 2024-05-01T10:00:00Z
    ctx.until_ns = 1714557840 * 10**9  # 2024-05-01T10:04:00Z
    assert ids(read_all(ctx)) == ["at-since", "inside"]
    assert ctx.counters.rejected == {}  # "before" was in a file never downloaded


def test_bad_objects_are_counted_and_logged_and_the_others_read(moto: Moto, tmp_path: Path
                                                               ) -> None:
    no_time = rec("no-time")
    del no_time["eventTime"]
    moto.bucket(BUCKET, {
        "a/1-good.json.gz": gz_log(rec("good1")),
        "a/2-corrupt.json.gz": gz_log(rec("lost"))[:30],
        "a/3-not-cloudtrail.json": b'{"hello": "world"}',
        "a/4-no-event-time.json.gz": gz_log(no_time, rec("good2")),
        "a/5-good.json": log_file(rec("good3")),
    })
    ctx = context(f"s3://{BUCKET}/a/", moto, tmp_path)
    assert ids(read_all(ctx)) == ["good1", "good2", "good3"]
    assert ctx.counters.malformed == 3
    assert ctx.counters.rejected == {"unreadable_gzip": 1, "not_cloudtrail": 1,
                                     "bad_event_time": 1}
    warnings = [(event, kw.get("file")) for lvl, event, kw in ctx.log.records
                if lvl == "warning"]
    assert warnings == [
        ("unreadable gzip file skipped", f"s3://{BUCKET}/a/2-corrupt.json.gz"),
        ('not a CloudTrail log file (no "Records" list), skipped',
         f"s3://{BUCKET}/a/3-not-cloudtrail.json"),
        ("record without an RFC 3339 eventTime, skipped",
         f"s3://{BUCKET}/a/4-no-event-time.json.gz"),
    ]


def test_polling_reads_objects_that_appear_once_each(moto: Moto, tmp_path: Path) -> None:
    s3 = moto.bucket(BUCKET, {"p/1.json": log_file(rec("first"))})
    ctx = context(f"s3://{BUCKET}/p/", moto, tmp_path, s3PollInterval=0.1)

    async def run() -> list[Any]:
        events: list[Any] = []
        stream = open_s3(ctx)
        try:
            async def take(count: int) -> None:
                while len(events) < count:
                    events.extend(await asyncio.wait_for(stream.__anext__(), 30))

            await take(1)
            await asyncio.to_thread(s3.put_object, Bucket=BUCKET, Key="p/2.json.gz",
                                    Body=gz_log(rec("second"), rec("third")))
            await take(3)
            await asyncio.to_thread(s3.put_object, Bucket=BUCKET, Key="p/0-sorts-first.json",
                                    Body=log_file(rec("fourth")))
            await take(4)
            # many more polls: nothing is read twice
            with pytest.raises(TimeoutError):
                events.extend(await asyncio.wait_for(stream.__anext__(), 1.5))
        finally:
            await stream.aclose()
        return events

    assert ids(asyncio.run(run())) == ["first", "second", "third", "fourth"]
    assert ctx.counters.rejected == {} and ctx.counters.malformed == 0


@pytest.mark.parametrize("concurrency", [1, 4])
def test_downloads_run_s3_download_concurrency_at_a_time_events_stay_in_order(
        moto: Moto, tmp_path: Path, concurrency: int) -> None:
    """A proxy holds each download a moment and counts the downloads in flight at once."""
    moto.bucket(BUCKET, {f"c/{n}.json": log_file(rec(f"e{n}")) for n in range(8)})
    with ThrottlingProxy(moto.url, match="/c/", hold_s=0.2) as proxy:
        ctx = context(f"s3://{BUCKET}/c/", proxy.url, tmp_path,
                      s3DownloadConcurrency=concurrency)
        assert ids(read_all(ctx)) == [f"e{n}" for n in range(8)]
    assert proxy.max_in_flight == concurrency
