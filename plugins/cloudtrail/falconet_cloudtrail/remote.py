"""What the S3 and SQS inputs share: their settings, read once from ``init_config``, and the
start-up pieces (clients, retrier, checkpoint) built from them.

Upstream's keys keep upstream's defaults (``s3DownloadConcurrency`` 32, ``sqsDelete`` true,
``useS3SNS`` false, ``s3Interval``, ``s3AccountList``, ``sqsOwnerAccount``, the ``aws`` block).
falconet's own keys: ``s3PollInterval`` (list the bucket again every N seconds instead of
ending), ``sqsWaitTime`` (SQS long polling), ``checkpoint``/``checkpointFile`` (resume where
the last run stopped), ``since``/``until`` (event-time bounds). Defaults are filled here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from falconet.api import SourceContext
from falconet.log import get_logger

from .aws import AwsError, AwsSettings, Retrier
from .checkpoint import Checkpoint, CheckpointError, default_path
from .fields import SOURCE
from .report import Reporter
from .timebounds import TimeBoundError, TimeBounds, with_command_line

__all__ = [
    "DEFAULT_DOWNLOAD_CONCURRENCY",
    "DEFAULT_SQS_WAIT_S",
    "RemoteError",
    "RemoteSettings",
    "Started",
    "start",
]

DEFAULT_DOWNLOAD_CONCURRENCY = 32  # upstream's code (its README says 1)
DEFAULT_SQS_WAIT_S = 20  # SQS's longest long poll: fewest requests, answers as soon as a
#                          message arrives
_ACCOUNT_LIST = re.compile(r"^(?: *\d{12} *,?)*$")


class RemoteError(Exception):
    """The S3 or SQS input cannot start; the message (``cloudtrail: ...``) says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(f"cloudtrail: {message}")


@dataclass(frozen=True)
class RemoteSettings:
    """The S3/SQS keys of ``init_config`` with defaults filled in."""

    download_concurrency: int = DEFAULT_DOWNLOAD_CONCURRENCY
    poll_interval_s: float = 0.0
    accounts: tuple[str, ...] = ()
    sqs_delete: bool = True
    sqs_owner_account: str = ""
    use_s3_sns: bool = False
    sqs_wait_s: int = DEFAULT_SQS_WAIT_S
    checkpoint: bool = True
    checkpoint_file: str = ""
    bounds: TimeBounds = field(default_factory=TimeBounds)
    aws: AwsSettings = field(default_factory=AwsSettings)

    @classmethod
    def from_init_config(cls, config: Mapping[str, Any]) -> RemoteSettings:
        concurrency = int(config.get("s3DownloadConcurrency", DEFAULT_DOWNLOAD_CONCURRENCY))
        if concurrency < 1:
            raise RemoteError(f"invalid s3DownloadConcurrency: {concurrency} (at least 1)")
        accounts_text = str(config.get("s3AccountList", "") or "")
        if not _ACCOUNT_LIST.match(accounts_text):
            raise RemoteError(f"invalid s3AccountList \"{accounts_text}\": give 12-digit "
                              "account ids separated by commas")
        wait = int(config.get("sqsWaitTime", DEFAULT_SQS_WAIT_S))
        if not 0 <= wait <= 20:
            raise RemoteError(f"invalid sqsWaitTime: {wait} (0 to 20 seconds)")
        poll = float(config.get("s3PollInterval", 0) or 0)
        if poll < 0:
            raise RemoteError(f"invalid s3PollInterval: {poll} (seconds, 0: read once)")
        try:
            bounds = TimeBounds.from_init_config(config)
            aws = AwsSettings.from_init_config(config)
        except (TimeBoundError, AwsError) as exc:
            raise RemoteError(str(exc)) from None
        return cls(
            download_concurrency=concurrency,
            poll_interval_s=poll,
            accounts=tuple(a.strip() for a in accounts_text.split(",") if a.strip()),
            sqs_delete=bool(config.get("sqsDelete", True)),
            sqs_owner_account=str(config.get("sqsOwnerAccount", "") or ""),
            use_s3_sns=bool(config.get("useS3SNS", False)),
            sqs_wait_s=wait,
            checkpoint=bool(config.get("checkpoint", True)),
            checkpoint_file=str(config.get("checkpointFile", "") or ""),
            bounds=bounds,
            aws=aws,
        )

    def checkpoint_path(self, open_params: str) -> Path | None:
        if not self.checkpoint:
            return None
        if self.checkpoint_file:
            return Path(self.checkpoint_file).expanduser()
        return default_path(open_params)


@dataclass
class Started:
    """What an input runs with, made at start-up."""

    settings: RemoteSettings
    reporter: Reporter
    retrier: Retrier
    checkpoint: Checkpoint
    log: Any


def start(ctx: SourceContext) -> Started:
    """Settings, reporter, retrier and checkpoint of an S3 or SQS input (raises
    :class:`RemoteError` with what to fix)."""
    if ctx.log is None:
        ctx.log = get_logger(source=SOURCE)
    settings = RemoteSettings.from_init_config(ctx.init_config)
    settings = replace(settings, bounds=with_command_line(settings.bounds, ctx))
    reporter = Reporter(ctx.counters, ctx.log)
    try:
        checkpoint = Checkpoint.open(settings.checkpoint_path(ctx.open_params),
                                     ctx.open_params.strip())
    except CheckpointError as exc:
        raise RemoteError(str(exc)) from None
    return Started(settings, reporter, Retrier(reporter, settings.aws.max_attempts),
                   checkpoint, ctx.log)
