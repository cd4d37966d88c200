"""The checkpoint: its file (atomic writes, lock, clear errors for a damaged file), and the
S3 input resuming from it against a real ``moto_server``: a stop in the middle of a file
resumes after the last evaluated record, entries of objects gone from the bucket are dropped,
``checkpoint: false`` reads everything again as upstream does."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet_cloudtrail.checkpoint import (
    COMPLETE,
    FORMAT,
    SQS_RETENTION_S,
    Checkpoint,
    CheckpointError,
    default_path,
)
from falconet_cloudtrail.objects import BATCH_SIZE
from falconet_cloudtrail.remote import RemoteError
from falconet_cloudtrail.s3 import Listing, open_s3

from .helpers import log_file, rec
from .moto import (
    BUCKET,
    Moto,
    collect,
    context,
    gz_log,
    ids,
    trail_key,
)

# --- the file -------------------------------------------------------------------------------


def test_progress_survives_a_reopen_in_a_versioned_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "cp.json"
    checkpoint = Checkpoint.open(path, "s3://b/p")
    checkpoint.complete("b/p/1.json")
    checkpoint.progress("b/p/2.json", 512)
    checkpoint.mark_message("m-1")
    checkpoint.close()
    doc = orjson.loads(path.read_bytes())
    assert (doc["format"], doc["version"], doc["source"]) == (FORMAT, 1, "s3://b/p")
    assert {k: v[1] for k, v in doc["objects"].items()} == {"b/p/1.json": COMPLETE,
                                                           "b/p/2.json": 512}
    assert list(doc["messages"]) == ["m-1"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["cp.json", "cp.json.lock"]

    again = Checkpoint.open(path, "s3://b/p")
    assert again.is_complete("b/p/1.json") and not again.is_complete("b/p/2.json")
    assert again.records_done("b/p/2.json") == 512 and again.records_done("b/p/3.json") == 0
    assert again.message_done("m-1") and not again.message_done("m-2")
    again.close()


def test_one_checkpoint_serves_one_process(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    first = Checkpoint.open(path, "s3://b")
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.open(path, "s3://b")
    assert str(caught.value) == (f"checkpoint {path} is in use by another falconet process "
                                 "(give each one its own checkpointFile)")
    first.close()
    Checkpoint.open(path, "s3://b").close()


@pytest.mark.parametrize(("content", "message"), [
    (b"{half", "is not JSON ({error}): move it away to start over (everything will be read "
               "again)"),
    (b'{"objects": {}}', f'is not a falconet cloudtrail checkpoint (no "format": "{FORMAT}")'),
    (orjson.dumps({"format": FORMAT, "version": 9}), "has version 9; this falconet reads "
                                                     "version 1"),
    (orjson.dumps({"format": FORMAT, "version": 1, "objects": {"k": 3}}),
     "is damaged (objects or messages are not as written): move it away to start over"),
])
def test_a_damaged_file_stops_start_up_with_what_to_do(tmp_path: Path, content: bytes,
                                                       message: str) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(content)
    try:
        orjson.loads(content)
        error = ""
    except orjson.JSONDecodeError as exc:
        error = str(exc)
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.open(path, "s3://b")
    assert str(caught.value) == f"checkpoint {path} " + message.format(error=error)


def test_an_unwritable_place_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "a-file" / "cp.json"
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.open(path, "s3://b")
    assert str(caught.value) == (f"checkpoint {path}: cannot create its directory "
                                 f"{path.parent}: File exists")
    (tmp_path / "read-only").mkdir(mode=0o500)
    path = tmp_path / "read-only" / "cp.json"
    if os.geteuid() == 0:  # root writes anywhere: the write-protected case needs a user
        return
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.open(path, "s3://b")
    assert str(caught.value) == (f"checkpoint {path}: cannot create {path}.lock: "
                                 "Permission denied")


def test_old_sqs_entries_expire(tmp_path: Path) -> None:
    checkpoint = Checkpoint(None, "sqs://q")
    checkpoint.mark_message("old")
    checkpoint.complete("b/old.json")
    checkpoint.messages["old"] -= SQS_RETENTION_S + 10
    checkpoint.objects["b/old.json"][0] -= SQS_RETENTION_S + 10
    checkpoint.mark_message("new")
    checkpoint.complete("b/new.json")
    checkpoint.expire()
    assert list(checkpoint.messages) == ["new"] and list(checkpoint.objects) == ["b/new.json"]


def test_the_default_file_is_per_input_under_the_state_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    first, second = default_path("s3://bucket/AWSLogs/"), default_path("s3://bucket/other/")
    assert first.parent == tmp_path / "falconet" / "cloudtrail"
    assert first.name.startswith("s3_bucket_AWSLogs-") and first.suffix == ".json"
    assert first != second


# --- the S3 input resuming --------------------------------------------------------------------


def test_a_stop_inside_a_file_resumes_after_the_last_evaluated_record(moto: Moto,
                                                                      tmp_path: Path) -> None:
    total = 2 * BATCH_SIZE + 100
    records = [rec(f"r{n}") for n in range(total)]
    moto.bucket(BUCKET, {"big/a.json.gz": gz_log(*records),
                         "big/b.json": log_file(rec("after"))})

    async def first_batch_only() -> list[Any]:
        stream = open_s3(context(f"s3://{BUCKET}/big/", moto, tmp_path))
        batch = await stream.__anext__()  # evaluated; then falconet stops
        await stream.aclose()
        return list(batch)

    first = asyncio.run(first_batch_only())
    assert ids(first) == [f"r{n}" for n in range(BATCH_SIZE)]
    doc = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert {k: v[1] for k, v in doc["objects"].items()} == {f"{BUCKET}/big/a.json.gz":
                                                           BATCH_SIZE}

    rest = asyncio.run(collect(open_s3(context(f"s3://{BUCKET}/big/", moto, tmp_path))))
    assert ids(rest) == [f"r{n}" for n in range(BATCH_SIZE, total)] + ["after"]
    assert asyncio.run(collect(open_s3(context(f"s3://{BUCKET}/big/", moto, tmp_path)))) == []


def test_objects_gone_from_the_bucket_leave_the_checkpoint(moto: Moto, tmp_path: Path) -> None:
    s3 = moto.bucket(BUCKET, {"p/1.json": log_file(rec("one")),
                              "p/2.json": log_file(rec("two"))})
    assert ids(asyncio.run(collect(open_s3(context(f"s3://{BUCKET}/p/", moto, tmp_path))))) \
        == ["one", "two"]
    s3.delete_object(Bucket=BUCKET, Key="p/1.json")  # a lifecycle rule expired it
    assert asyncio.run(collect(open_s3(context(f"s3://{BUCKET}/p/", moto, tmp_path)))) == []
    doc = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert list(doc["objects"]) == [f"{BUCKET}/p/2.json"]


def test_an_entry_is_gone_when_its_listed_range_no_longer_has_it() -> None:
    trail = "AWSLogs/1/CloudTrail/"
    listing = Listing(complete=True, trails=[trail],
                      ranges=[(f"{trail}us-east-1/", ""),
                              (f"{trail}eu-west-1/", f"{trail}eu-west-1/2024/05/01/")],
                      listed={f"{trail}us-east-1/2024/05/01/x.json"})
    assert {key: listing.gone(key) for key in [
        f"{trail}us-east-1/2024/05/01/x.json",  # listed
        f"{trail}us-east-1/2024/05/01/y.json",  # in a listed range, not listed: deleted
        f"{trail}eu-west-1/2024/04/30/z.json",  # before the range's StartAfter: not looked at
        f"{trail}eu-west-1/2024/05/02/z.json",  # in the range: deleted
        f"{trail}ap-south-1/2024/05/01/z.json",  # a region no longer in the trail: deleted
        "other/x.json",                          # outside everything listed: kept
    ]} == {f"{trail}us-east-1/2024/05/01/x.json": False,
           f"{trail}us-east-1/2024/05/01/y.json": True,
           f"{trail}eu-west-1/2024/04/30/z.json": False,
           f"{trail}eu-west-1/2024/05/02/z.json": True,
           f"{trail}ap-south-1/2024/05/01/z.json": True,
           "other/x.json": False}


def test_a_narrower_window_does_not_forget_what_it_did_not_list(moto: Moto, tmp_path: Path
                                                                ) -> None:
    """A run with ``since`` neither reads nor forgets the files before it: the next run
    without bounds reads nothing again."""
    moto.bucket(BUCKET, {trail_key(stamp="20240401T1000Z", unique="old"): gz_log(rec("old")),
                         trail_key(stamp="20240501T1000Z", unique="new"): gz_log(rec("new"))})
    url = f"s3://{BUCKET}/AWSLogs/123456789012/"
    assert ids(asyncio.run(collect(open_s3(context(url, moto, tmp_path))))) == ["old", "new"]
    narrow = context(url, moto, tmp_path, since="2024-04-30T00:00:00Z")
    assert asyncio.run(collect(open_s3(narrow))) == []
    assert asyncio.run(collect(open_s3(context(url, moto, tmp_path)))) == []
    doc = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert len(doc["objects"]) == 2


def test_a_sliding_window_forgets_files_it_moved_past(moto: Moto, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    recent = trail_key(stamp=f"{now - timedelta(hours=12):%Y%m%dT%H%M}Z", unique="recent")
    old = trail_key(stamp=f"{now - timedelta(days=3):%Y%m%dT%H%M}Z", unique="old")
    moto.bucket(BUCKET, {recent: gz_log(rec("recent")), old: gz_log(rec("old"))})
    url = f"s3://{BUCKET}/AWSLogs/123456789012/"
    assert sorted(ids(asyncio.run(collect(open_s3(context(url, moto, tmp_path)))))) == \
        ["old", "recent"]
    assert asyncio.run(collect(open_s3(context(url, moto, tmp_path, s3Interval="1d")))) == []
    doc = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert list(doc["objects"]) == [f"{BUCKET}/{recent}"]  # a day before the start: forgotten


def test_without_a_checkpoint_every_run_reads_everything(moto: Moto, tmp_path: Path) -> None:
    moto.bucket(BUCKET, {"p/1.json": log_file(rec("one"))})
    for _ in range(2):
        ctx = context(f"s3://{BUCKET}/p/", moto, tmp_path, checkpoint=False)
        assert ids(asyncio.run(collect(open_s3(ctx)))) == ["one"]
    assert not (tmp_path / "checkpoint.json").exists()


def test_a_checkpoint_in_use_stops_the_second_input(moto: Moto, tmp_path: Path) -> None:
    moto.bucket(BUCKET, {"p/1.json": log_file(rec("one"))})
    first = open_s3(context(f"s3://{BUCKET}/p/", moto, tmp_path))
    with pytest.raises(RemoteError) as caught:
        open_s3(context(f"s3://{BUCKET}/p/", moto, tmp_path))
    assert str(caught.value) == (f"cloudtrail: checkpoint {tmp_path / 'checkpoint.json'} is in "
                                 "use by another falconet process (give each one its own "
                                 "checkpointFile)")
    assert ids(asyncio.run(collect(first))) == ["one"]
