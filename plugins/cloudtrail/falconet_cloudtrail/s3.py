"""``open_params: s3://bucket[/prefix]``: the CloudTrail log files of a bucket.

As upstream: every ``.json``/``.json.gz`` object under the prefix is read, then the source ends.
A prefix ending at ``AWSLogs/<account>/`` is expanded to its ``CloudTrail/<region>/`` folders,
and one ending at ``AWSLogs/`` or ``AWSLogs/<o-organisation>/`` (an organisation trail) to those
of the accounts in ``s3AccountList``, or of every account found; with a start time
(``s3Interval``, ``since``) each region is listed from that day on (``StartAfter``), and files
are selected by the time in their names. Downloads run ``s3DownloadConcurrency`` at a time.

falconet's additions: ``s3PollInterval`` lists the bucket again every N seconds and reads the
files that appeared (each once); the checkpoint skips what an earlier run read; files under
``CloudTrail-Digest/`` (integrity digests, not events) are left out; a prefix starting with
``AWSLogs/`` is expanded too (upstream expands it only after another folder).

``open_s3`` checks at start-up that the bucket can be listed, so missing credentials or
permissions stop falconet with the AWS error and the IAM action to grant.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from falconet.api import EventBatch, SourceContext

from .aws import AwsError, Retrier, make_clients
from .checkpoint import CheckpointError
from .objects import ObjectReader, ObjectRef
from .records import is_log_file_name
from .remote import RemoteError, Started, start
from .report import Reporter
from .timebounds import TimeBoundError, TimeWindow

__all__ = ["S3Lister", "is_wanted_key", "open_s3", "parse_s3_url"]

# "Copy S3 URI" of an account folder (standard trail, or one account of an organisation trail)
_ACCOUNT_FOLDER = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]{10,32}/)?\d{12}/?$")
# the AWSLogs folder itself, or an organisation's folder in it
_ORG_FOLDER = re.compile(r"(?:^|/)AWSLogs(?:/o-[a-z0-9]{10,32})?/?$")


def parse_s3_url(params: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); the prefix may be empty."""
    rest = params.strip()[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise RemoteError(f"{params}: no bucket name (s3://bucket[/prefix])")
    return bucket, prefix


def is_wanted_key(key: str) -> bool:
    """A CloudTrail log file (``.json``, ``.json.gz``), not a digest file."""
    return is_log_file_name(key) and "CloudTrail-Digest/" not in key


def _folder(prefix: str) -> str:
    return prefix if prefix.endswith("/") else prefix + "/"


class S3Lister:
    """Lists the log files of ``s3://bucket/prefix`` as upstream does (module docstring)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, accounts: tuple[str, ...],
                 retrier: Retrier, reporter: Reporter, concurrency: int) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.accounts = accounts
        self.retrier = retrier
        self.reporter = reporter
        self.concurrency = concurrency
        self._regions_known: list[str] = []

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    async def _pages(self, prefix: str, *, delimiter: str = "",
                     start_after: str = "") -> tuple[list[str], list[str]]:
        """Keys and common prefixes under ``prefix`` (every page). Raises AwsError."""
        keys: list[str] = []
        folders: list[str] = []
        token = ""
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if delimiter:
                args["Delimiter"] = delimiter
            if start_after:
                args["StartAfter"] = start_after
            if token:
                args["ContinuationToken"] = token
            page = await self.retrier.call(f"cannot list s3://{self.bucket}/{prefix}",
                                           "ListObjectsV2",
                                           functools.partial(self.s3.list_objects_v2, **args))
            keys += [obj["Key"] for obj in page.get("Contents", ())]
            folders += [p["Prefix"] for p in page.get("CommonPrefixes", ())]
            token = page.get("NextContinuationToken") or ""
            if not page.get("IsTruncated") or not token:
                return keys, folders

    async def _trail_folders(self) -> list[str]:
        """The ``.../CloudTrail/`` folders the prefix stands for (none: list it as it is)."""
        if _ACCOUNT_FOLDER.search(self.prefix):
            return [_folder(self.prefix) + "CloudTrail/"]
        if not _ORG_FOLDER.search(self.prefix):
            return []
        base = _folder(self.prefix)
        if self.accounts:
            return [f"{base}{account}/CloudTrail/" for account in self.accounts]
        _, folders = await self._pages(base, delimiter="/")
        return [f + "CloudTrail/" for f in folders if _ACCOUNT_FOLDER.search(f)]

    async def _listings(self, window: TimeWindow) -> tuple[list[tuple[str, str]], bool]:
        """(prefix, StartAfter) of each listing to make; False when some folder could not be
        listed (then the result is incomplete)."""
        complete = True
        try:
            trails = await self._trail_folders()
        except AwsError as exc:
            self.reporter.problem("s3_list_failed", str(exc))
            return [], False
        day = window.start_after_day()
        limit = asyncio.Semaphore(self.concurrency)

        async def regions_of(trail: str) -> list[str] | None:
            async with limit:
                try:
                    return (await self._pages(trail, delimiter="/"))[1]
                except AwsError as exc:
                    self.reporter.problem("s3_list_failed", str(exc))
                    return None

        listings: list[tuple[str, str]] = []
        self._regions_known = []
        for trail, regions in zip(trails, await asyncio.gather(*map(regions_of, trails)),
                                  strict=True):
            if regions is None:
                complete = False
                continue
            self._regions_known.append(trail)
            listings += [(region, region + day if day else "") for region in regions]
        if not listings and complete:
            listings = [(self.prefix, "")]  # no CloudTrail layout found: the prefix as given
        return listings, complete

    async def list(self, window: TimeWindow) -> Listing:
        """The log files inside ``window``, in listing order, with what was listed."""
        listings, complete = await self._listings(window)
        limit = asyncio.Semaphore(self.concurrency)

        async def keys_of(prefix: str, start_after: str) -> list[str] | None:
            async with limit:
                try:
                    keys, _ = await self._pages(prefix, start_after=start_after)
                except AwsError as exc:
                    self.reporter.problem("s3_list_failed", str(exc))
                    return None
                return keys

        found = await asyncio.gather(*(keys_of(p, s) for p, s in listings))
        listing = Listing(complete=complete, trails=self._regions_known)
        for (prefix, start_after), keys in zip(listings, found, strict=True):
            if keys is None:
                listing.complete = False
                continue
            listing.ranges.append((prefix, start_after))
            listing.listed.update(keys)
            listing.refs += [ObjectRef(self.bucket, k) for k in keys
                             if is_wanted_key(k) and window.accepts_key(k)]
        return listing


@dataclass
class Listing:
    """One pass over the bucket: the files to read, and what the pass saw (so that the
    checkpoint forgets only objects that are gone, not those outside this pass's window)."""

    complete: bool
    #: CloudTrail folders whose regions were all found (a region gone from them is gone)
    trails: list[str] = field(default_factory=list)
    refs: list[ObjectRef] = field(default_factory=list)
    #: every key listed, log file or not, in the window or not
    listed: set[str] = field(default_factory=set)
    #: (prefix, StartAfter) of each listing that succeeded
    ranges: list[tuple[str, str]] = field(default_factory=list)
    _index: tuple[list[tuple[str, str]], list[str]] | None = field(default=None, repr=False)

    def gone(self, key: str) -> bool:
        """``key`` was in a listed range and not listed: deleted from the bucket."""
        if key in self.listed:
            return False
        if self._index is None:  # prefixes do not nest: the candidate is the last one <= key
            self._index = sorted(self.ranges), sorted(self.trails)
        ranges, trails = self._index
        at = bisect.bisect_right(ranges, (key, "\uffff")) - 1
        if at >= 0 and key.startswith(ranges[at][0]):
            return key > ranges[at][1]
        at = bisect.bisect_right(trails, key) - 1
        return at >= 0 and key.startswith(trails[at])


def open_s3(ctx: SourceContext) -> AsyncIterator[EventBatch]:
    """The ``s3://`` input. Raises :class:`RemoteError` at once when it cannot start (bad
    settings, no credentials, a bucket it may not list)."""
    bucket, prefix = parse_s3_url(ctx.open_params)
    started = start(ctx)
    settings = started.settings
    try:
        (s3,) = make_clients(settings.aws, "s3", pool_size=settings.download_concurrency)
        started.retrier.call_now(
            f"cannot list s3://{bucket}/{prefix}", "ListObjectsV2",
            lambda: s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1))
    except AwsError as exc:
        started.checkpoint.close()
        raise RemoteError(str(exc)) from None
    lister = S3Lister(s3, bucket, prefix, settings.accounts, started.retrier, started.reporter,
                      settings.download_concurrency)
    reader = ObjectReader(s3, started.retrier, started.reporter, started.checkpoint,
                          settings.download_concurrency)
    mode = (f"every {settings.poll_interval_s:g} s" if settings.poll_interval_s
            else "once")
    started.log.info(f"reading CloudTrail log files from {lister.url} ({mode})",
                     **started.checkpoint.summary())
    return _stream(started, lister, reader)


#: with a sliding start (``s3Interval: 1d``), files named this long before the start are
#: forgotten: the input will not list them again
FORGET_AFTER_S = 86400


def _keep(bucket: str, listing: Listing, window: TimeWindow, sliding: bool, name: str) -> bool:
    """Whether the checkpoint keeps the entry ``name`` (``bucket/key``) after ``listing``."""
    entry_bucket, _, key = name.partition("/")
    if entry_bucket != bucket:
        return True
    if listing.gone(key):
        return False
    return not (sliding and window.named_before_start(key, FORGET_AFTER_S))


async def _stream(started: Started, lister: S3Lister,
                  reader: ObjectReader) -> AsyncIterator[EventBatch]:
    settings, checkpoint, log = started.settings, started.checkpoint, started.log
    try:
        while True:
            try:
                window = settings.bounds.at(datetime.now(UTC))
            except TimeBoundError as exc:  # a relative range that became empty
                log.error(f"cloudtrail: {exc}; nothing more to read")
                return
            listing = await lister.list(window)
            refs = listing.refs
            new = sum(1 for ref in refs if not checkpoint.is_complete(ref.name))
            if new:
                log.info(f"{new} log files to read from {lister.url}", listed=len(refs))
            async with contextlib.aclosing(reader.read(refs, window)) as batches:
                async for batch in batches:
                    yield batch
            if listing.complete:
                checkpoint.retain_objects(functools.partial(_keep, lister.bucket, listing,
                                                            window, settings.bounds.sliding))
            if not settings.poll_interval_s:
                log.info(f"finished reading {lister.url}", files=len(refs))
                return
            reader.save_checkpoint(now=True)
            await asyncio.sleep(settings.poll_interval_s)
    finally:
        try:
            checkpoint.close()
        except CheckpointError as exc:
            started.reporter.problem("checkpoint_write_failed", str(exc), level="error")
