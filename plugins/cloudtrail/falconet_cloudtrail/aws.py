"""AWS access for the S3 and SQS readers: settings, clients, errors users can act on, retries.

Why it looks the way it does:

- The ``aws`` block of ``init_config`` is upstream's (``profile``, ``region``, ``config``,
  ``credentials``: overrides of the SDK's shared configuration), plus falconet's
  ``endpointUrl`` (S3-compatible stores, emulators) and ``maxAttempts``. Anything not set
  comes from where every AWS SDK looks (environment variables, ``~/.aws``, instance roles).
- botocore's own retries are switched off: every throttled or transient failure comes back
  here, where it is retried with capped exponential backoff and full jitter, counted in the
  source's counters (``aws_throttled``, ``aws_transient_error``) and logged. A silent retry
  inside the SDK would hide a throttled account from ``/metrics``.
- Calls run in daemon threads (boto3 is blocking; its clients are thread-safe). A daemon thread
  never holds up falconet's exit, which matters for SQS long polls of up to 20 s.
- :func:`describe` turns an exception into one line naming the AWS error code and what to fix
  ("AccessDenied: Access Denied (check the IAM policy: s3:ListBucket)").
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .report import Reporter

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "AwsError",
    "AwsSettings",
    "Retrier",
    "describe",
    "error_code",
    "in_thread",
    "is_throttle",
    "is_transient",
    "make_clients",
]

T = TypeVar("T")

#: attempts of one request before giving up (the first one included)
DEFAULT_MAX_ATTEMPTS = 8
#: backoff: the n-th retry waits a random time in [0, min(CAP, BASE * 2**n)] seconds
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 20.0

#: error codes AWS services answer when a caller goes too fast (botocore's list, and S3's)
THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", "AWS.SimpleQueueService.RequestThrottled",
})
#: error codes of failures that a later attempt may not meet
TRANSIENT_CODES = frozenset({
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
    "ServiceUnavailable", "ServiceUnavailableException", "IDPCommunicationError",
})

#: what to check when an operation is denied: the IAM action it needs
IAM_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "GetQueueUrl": "sqs:GetQueueUrl",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
}
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled",
                           "AuthorizationError", "UnauthorizedOperation"})
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "InvalidClientTokenId",
                               "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
                               "InvalidToken", "UnrecognizedClientException"})


class AwsError(Exception):
    """An AWS request failed for good (not retried, or out of attempts); ``str`` says why."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AwsSettings:
    """The ``aws`` block of ``init_config``; empty strings leave the SDK's defaults."""

    profile: str = ""
    region: str = ""
    config_file: str = ""
    credentials_file: str = ""
    endpoint_url: str = ""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @classmethod
    def from_init_config(cls, config: Mapping[str, Any]) -> AwsSettings:
        block = config.get("aws") or {}
        if not isinstance(block, Mapping):
            raise AwsError("init_config: aws must be an object "
                           "({profile, region, config, credentials, endpointUrl})")
        settings = cls(
            profile=str(block.get("profile", "") or ""),
            region=str(block.get("region", "") or ""),
            config_file=str(block.get("config", "") or ""),
            credentials_file=str(block.get("credentials", "") or ""),
            endpoint_url=str(block.get("endpointUrl", "") or ""),
            max_attempts=int(block.get("maxAttempts", DEFAULT_MAX_ATTEMPTS)),
        )
        for key, path in (("aws.config", settings.config_file),
                          ("aws.credentials", settings.credentials_file)):
            # the SDK ignores a missing file silently; a path the user wrote must exist
            if path and not Path(path).expanduser().is_file():
                raise AwsError(f"{key}: {path} does not exist")
        if settings.max_attempts < 1:
            raise AwsError("aws.maxAttempts must be at least 1")
        return settings


def make_clients(settings: AwsSettings, *services: str, pool_size: int = 10) -> list[Any]:
    """boto3 clients for ``services`` from one session built with ``settings``.

    Raises :class:`AwsError` with what to fix when the profile is unknown or a client needs a
    region that nothing gives."""
    import boto3
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

    core = botocore.session.Session()
    if settings.config_file:
        core.set_config_variable("config_file", str(Path(settings.config_file).expanduser()))
    if settings.credentials_file:
        core.set_config_variable("credentials_file",
                                 str(Path(settings.credentials_file).expanduser()))
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},  # retried here, counted
        max_pool_connections=max(pool_size, 10),
        connect_timeout=10,
        read_timeout=60,  # above SQS's longest long poll (20 s)
        user_agent_extra="falconet-cloudtrail",
    )
    try:
        session = boto3.session.Session(botocore_session=core,
                                        profile_name=settings.profile or None,
                                        region_name=settings.region or None)
        return [session.client(service, endpoint_url=settings.endpoint_url or None,  # type: ignore[call-overload]
                               config=config)
                for service in services]
    except ProfileNotFound:
        where = settings.config_file or "the AWS config and credentials files"
        raise AwsError(f"aws.profile: profile '{settings.profile}' is not in {where}",
                       "ProfileNotFound") from None
    except NoRegionError:
        raise AwsError("no AWS region: set aws.region in init_config, AWS_REGION, or region "
                       "in the profile", "NoRegion") from None
    except BotoCoreError as exc:
        raise AwsError(f"AWS configuration: {exc}") from None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for other exceptions)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return ""
    return str((response.get("Error") or {}).get("Code") or "")


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return 0
    return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)


def is_throttle(exc: BaseException) -> bool:
    """The service asked us to slow down (retry later, with backoff)."""
    return error_code(exc) in THROTTLE_CODES or _status(exc) == 429


def is_transient(exc: BaseException) -> bool:
    """A failure a later attempt may not meet: server errors, timeouts, dropped connections."""
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError
                  | ConnectTimeoutError):
        return True
    return error_code(exc) in TRANSIENT_CODES or _status(exc) in (500, 502, 503, 504)


def describe(exc: BaseException, operation: str = "") -> str:
    """One line for a failed AWS request: the error code and message, and what to check."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, AwsError):
        return str(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ("no AWS credentials found (set aws.profile or aws.credentials in init_config, "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the host an IAM role)")
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect to the endpoint: {exc}"
    if not isinstance(exc, ClientError):
        return f"{type(exc).__name__}: {exc}"
    code = error_code(exc)
    message = str((exc.response.get("Error") or {}).get("Message") or "").strip()
    text = f"{code}: {message}" if message and message != code else code
    action = IAM_ACTIONS.get(operation, "")
    if code in _DENIED_CODES:
        text += f" (check the IAM policy: {action})" if action else " (check the IAM policy)"
    elif code in _CREDENTIAL_CODES:
        text += " (check the AWS credentials: aws.profile, aws.credentials, AWS_* variables)"
    elif code == "NoSuchBucket":
        text += " (check the bucket name in open_params)"
    elif code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        text += " (check the queue name in open_params, and sqsOwnerAccount for a queue of " \
                "another account)"
    return text


async def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run in a daemon thread: the event loop goes on, and falconet's exit never waits
    for a request still in flight (the thread ends with the process)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        try:
            value, error = fn(), None
        except BaseException as exc:  # handed to the awaiting task
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="cloudtrail-aws", daemon=True).start()
    return await future


class Retrier:
    """Runs AWS requests, retrying throttled and transient failures with backoff.

    Every retry is counted (``aws_throttled`` or ``aws_transient_error``) and logged through
    the reporter; a request that fails for good raises :class:`AwsError` with :func:`describe`'s
    text, prefixed with what was being done."""

    def __init__(self, reporter: Reporter, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S) -> None:
        self.reporter = reporter
        self.max_attempts = max_attempts
        self.base_s = base_s
        self.cap_s = cap_s

    def _retry_delay(self, exc: BaseException, attempt: int, what: str, operation: str) -> float:
        """The wait before the next attempt; raises :class:`AwsError` when ``exc`` is final.
        Every throttled or transient failure is counted, the retried ones are logged (the
        caller reports a final one)."""
        throttled = is_throttle(exc)
        retriable = throttled or is_transient(exc)
        if retriable:
            self.reporter.count("aws_throttled" if throttled else "aws_transient_error")
        text = f"{what}: {describe(exc, operation)}"
        if not retriable:
            raise AwsError(text, error_code(exc)) from exc
        if attempt >= self.max_attempts:
            state = "still throttled" if throttled else "still failing"
            raise AwsError(f"{text} ({state} after {attempt} attempts)", error_code(exc)) \
                from exc
        delay = random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        self.reporter.log_counted("aws_throttled" if throttled else "aws_transient_error",
                                  f"{text}; retrying", attempt=attempt,
                                  retry_in_s=round(delay, 3))
        return delay

    async def call(self, what: str, operation: str, fn: Callable[[], T]) -> T:
        """``fn()`` in a thread, retried; ``what`` names the request in messages."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await in_thread(fn)
            except Exception as exc:
                delay = self._retry_delay(exc, attempt, what, operation)
            await asyncio.sleep(delay)

    def call_now(self, what: str, operation: str, fn: Callable[[], T]) -> T:
        """``fn()`` in the calling thread (start-up checks, before the loop reads events)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:
                delay = self._retry_delay(exc, attempt, what, operation)
            time.sleep(delay)
