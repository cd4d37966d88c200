"""Real S3 and SQS for the cloudtrail input tests: ``moto_server`` (the emulator from the
``moto[server]`` dev extra) over HTTP on 127.0.0.1, and a throttling HTTP proxy in front of it.

The server is started once per test module (``python -m moto.server``) and stopped by its PID;
each test starts from an empty emulator (``POST /moto-api/reset``). AWS settings come only from
what a test gives: the ``aws_env`` fixture points the SDK's files at empty ones and sets dummy
credentials, so a developer's ``~/.aws`` never leaks in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from falconet.api import SourceContext

from .helpers import RecordingLog, log_file

# Test modules import the fixtures ``moto_server`` (one server per module), ``moto`` (emptied
# for each test) and ``aws_env`` by their function names (``moto_fixture``...).
__all__ = ["ACCOUNT", "BUCKET", "REGION", "Moto", "ThrottlingProxy", "aws_env_fixture", "collect",
           "context", "gz_log", "ids", "moto_fixture", "moto_server_fixture", "trail_key"]
#: the trail bucket the tests create
BUCKET = "trail-bucket"

REGION = "us-east-1"
#: moto's default account
ACCOUNT = "123456789012"
#: how long a test waits for the emulator or for events: a bound, not a speed claim
DEADLINE_S = 30.0

MOTO_MISSING = ("moto[server] is not installed (it is in falconet's dev extra: "
                "bash scripts/setup installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def trail_key(account: str = ACCOUNT, region: str = REGION, stamp: str = "20240501T1000Z",
              unique: str = "abc", *, org: str = "", prefix: str = "") -> str:
    """A key as CloudTrail writes it: ``[prefix/]AWSLogs/[org/]<account>/CloudTrail/<region>/
    YYYY/MM/DD/<account>_CloudTrail_<region>_<stamp>_<unique>.json.gz``."""
    day = f"{stamp[0:4]}/{stamp[4:6]}/{stamp[6:8]}"
    org_part = f"{org}/" if org else ""
    head = f"{prefix}/" if prefix else ""
    return (f"{head}AWSLogs/{org_part}{account}/CloudTrail/{region}/{day}/"
            f"{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz")


class Moto:
    """A running ``moto_server``: clients for it, and its control API."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"

    def client(self, service: str, **credentials: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=credentials.get("key", "testing"),
                            aws_secret_access_key=credentials.get("secret", "testing"))

    def _control(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/{path}", data=body,
                                         method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def reset(self) -> None:
        """Forget every bucket, queue, user; IAM checks off."""
        self._control("reset-auth", b"inf")
        self._control("reset")

    def enforce_iam(self) -> None:
        """From now on every request needs the credentials of an IAM user whose policy allows
        it (moto's IAM simulation)."""
        self._control("reset-auth", b"0")

    # --- building the input ---------------------------------------------------------------

    def bucket(self, name: str, objects: dict[str, bytes] | None = None) -> Any:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        for key, data in (objects or {}).items():
            s3.put_object(Bucket=name, Key=key, Body=data)
        return s3

    def user(self, name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
        """An IAM user with an inline policy; returns its access key (``key``, ``secret``)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def _start() -> Moto:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    moto = Moto(port, proc)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"moto_server exited ({proc.returncode}): {err}")
        try:
            with urllib.request.urlopen(f"{moto.url}/moto-api/data.json", timeout=2):
                return moto
        except OSError:
            if time.monotonic() > deadline:
                _stop(moto)
                raise RuntimeError(f"moto_server did not answer on {moto.url}") from None
            time.sleep(0.1)


def _stop(moto: Moto) -> None:
    moto.proc.terminate()
    try:
        moto.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        moto.proc.kill()
        moto.proc.wait()
    if moto.proc.stderr is not None:
        moto.proc.stderr.close()


@pytest.fixture(scope="module", name="moto_server")
def moto_server_fixture() -> Iterator[Moto]:
    """One ``moto_server`` per test module."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        pytest.skip(MOTO_MISSING)
    server = _start()
    try:
        yield server
    finally:
        _stop(server)


@pytest.fixture(name="moto")
def moto_fixture(moto_server: Moto, aws_env: Path) -> Moto:
    """The module's ``moto_server``, emptied for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture(name="aws_env")
def aws_env_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AWS settings for the code under test: dummy credentials, the test region, empty
    shared files, no instance metadata lookups. Returns the directory of the shared files."""
    home = tmp_path / "aws"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


def gz_log(*records: Any) -> bytes:
    """A gzip-compressed CloudTrail log file."""
    return gzip.compress(log_file(*records))


def context(open_params: str, moto: Moto | str, tmp_path: Path,
            **init_config: Any) -> SourceContext:
    """A SourceContext for ``open_params`` against ``moto`` (or an endpoint URL), with a
    checkpoint in ``tmp_path`` unless the test says otherwise."""
    endpoint = moto.url if isinstance(moto, Moto) else moto
    config: dict[str, Any] = {"checkpointFile": str(tmp_path / "checkpoint.json")}
    config.update(init_config)
    aws = dict(config.get("aws") or {})
    aws.setdefault("endpointUrl", endpoint)
    aws.setdefault("region", REGION)
    config["aws"] = aws
    return SourceContext(open_params, config, log=RecordingLog())


async def collect(stream: AsyncIterator[Any], *, until: Callable[[list[Any]], bool] | None = None,
                  deadline_s: float = DEADLINE_S) -> list[Any]:
    """The events of ``stream``: all of them when it ends by itself, else until ``until``
    holds for the events so far (then the stream is closed, as falconet closes it)."""
    events: list[Any] = []

    async def run() -> None:
        async for batch in stream:
            events.extend(batch)
            if until is not None and until(events):
                return

    try:
        await asyncio.wait_for(run(), deadline_s)
    except TimeoutError:
        pytest.fail(f"stream gave {len(events)} events in {deadline_s} s: "
                    f"{[e.payload.get('eventID') for e in events]}")
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    return events


def ids(events: list[Any]) -> list[str]:
    return [e.payload["eventID"] for e in events]


class ThrottlingProxy:
    """A real HTTP proxy in front of moto that answers the first ``throttle`` requests it is
    sent whose path contains ``match`` with ``503 SlowDown`` (S3's throttling answer), and
    forwards everything else; with ``hold_s``, it holds each forwarded ``match`` request that
    long and records how many were in flight at once. Runs in its own thread and event loop,
    so blocking clients in the test's thread can use it."""

    def __init__(self, upstream: str, throttle: int = 0, match: str = "",
                 hold_s: float = 0.0) -> None:
        self.upstream = upstream
        self.remaining = throttle
        self.match = match
        self.hold_s = hold_s
        self.throttled = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: Any = None

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        if self.remaining > 0 and self.match in request.path_qs:
            self.remaining -= 1
            self.throttled += 1
            body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                    "<Message>Please reduce your request rate.</Message></Error>")
            return web.Response(status=503, body=body.encode(), content_type="application/xml")
        if self.hold_s and self.match in request.path_qs:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.hold_s)
                return await self._forward(request)
            finally:
                self.in_flight -= 1
        return await self._forward(request)

    async def _forward(self, request: Any) -> Any:
        from aiohttp import ClientSession, web

        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        headers["Host"] = self.upstream.split("://", 1)[1]
        async with ClientSession(auto_decompress=False) as session, session.request(
                request.method, self.upstream + request.path_qs, headers=headers,
                data=await request.read(), allow_redirects=False) as answer:
            body = await answer.read()
            out = {k: v for k, v in answer.headers.items()
                   if k.lower() not in ("transfer-encoding", "content-length", "connection")}
            return web.Response(status=answer.status, body=body, headers=out)

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        if not self._ready.wait(DEADLINE_S):
            raise RuntimeError("the throttling proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
