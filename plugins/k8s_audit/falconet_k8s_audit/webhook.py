"""The webhook the API server posts audit events to (``open_params: http(s)://host:port/path``).

Upstream answers 200 before parsing and loses whatever it cannot parse or keep up with. Here a
request is answered once its fate is known, so the API server's webhook backend (which retries
on 429 and on 5xx with Retry-After) never loses events silently:

- ``POST`` only (else 405 ``<METHOD> method not allowed``), on exactly the URL's path (else 404);
- with a bearer token configured, ``Authorization: Bearer <token>`` (else 401);
- ``Content-Type`` containing ``application/json`` (else 400 ``wrong Content Type``, upstream's);
- a body of at most ``webhookMaxBatchSize`` bytes (else 413, without reading it), arriving
  within ``webhookReadTimeout`` seconds (else 408: a stalled client holds only its own request);
- JSON (else 400 ``bad request: invalid JSON: ...``);
- then the events go on a queue bounded by ``webhookMaxQueuedEvents``; when the engine is that
  far behind, 429 with ``Retry-After``: nothing of the request is kept, and it is sent again;
- 200 means every accepted event of the body is queued for evaluation. Parts refused by the
  parsing rules (``parse.py``) are listed in the body of the answer: 200 when something was
  accepted, 400 when nothing was.

Every refusal is counted in ``SourceCounters.rejected`` by reason (and in ``malformed`` /
``dropped`` for refused events) and logged, the first ones of each reason.

The stream is an async iterator of batches (one per request); ``aclose()`` stops listening,
lets requests in flight finish (answered 429 from then on), and counts events still queued as
dropped.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import ssl
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from falconet.api import EventBatch, JsonEvent, SourceContext

from .parse import AuditParser, Parsed, Reporter
from .settings import Settings, SourceError
from .tls import server_context

__all__ = ["RETRY_AFTER_S", "BatchQueue", "WebhookStream", "open_webhook"]

#: what a 429 asks the API server to wait, in seconds
RETRY_AFTER_S = 1
#: upstream's shutdown grace for requests in flight
SHUTDOWN_TIMEOUT_S = 5.0
#: refused parts listed in one answer
MAX_LISTED = 20

# reasons of refused requests, as counted in SourceCounters.rejected
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
UNAUTHORIZED = "unauthorized"
WRONG_CONTENT_TYPE = "wrong_content_type"
BODY_TOO_LARGE = "body_too_large"
READ_TIMEOUT = "read_timeout"
READ_ERROR = "read_error"
QUEUE_FULL = "queue_full"
TLS_HANDSHAKE = "tls_handshake_failed"
INTERNAL_ERROR = "internal_error"


class BatchQueue:
    """Batches waiting for the engine, bounded by their number of events: a batch is refused
    when it would take the total over ``capacity`` (one batch is always let into an empty queue,
    however large, so a big request is never refused forever)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.events = 0
        self._batches: deque[list[JsonEvent]] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def full(self) -> bool:
        return self._closed or self.events >= self.capacity

    def offer(self, batch: list[JsonEvent]) -> bool:
        """Queue ``batch`` now, or say False (never waits)."""
        if self._closed or (self.events and self.events + len(batch) > self.capacity):
            return False
        self._batches.append(batch)
        self.events += len(batch)
        self._ready.set()
        return True

    async def get(self) -> list[JsonEvent] | None:
        """The oldest batch, waiting for one; None once closed."""
        while not self._batches:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        batch = self._batches.popleft()
        self.events -= len(batch)
        return batch

    def close(self) -> int:
        """Refuse every later offer, wake the reader; the number of events left unread."""
        self._closed = True
        self._ready.set()
        left, self.events = self.events, 0
        self._batches.clear()
        return left


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound now so that a taken port fails start-up. An empty host
    listens on every address (IPv6 and IPv4 when the system allows, as Go's ``:port``)."""
    shown = f"[{host}]" if ":" in host else host
    try:
        if host:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        else:
            family, kind, proto, address = socket.AF_INET6, socket.SOCK_STREAM, 0, ("::", port)
        sock = socket.socket(family, kind, proto)
    except OSError:
        if host:
            raise SourceError(f"cannot resolve {host}") from None
        family, address = socket.AF_INET, ("0.0.0.0", port)
        sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and not host:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise SourceError(f"cannot listen on {shown}:{port}: {exc.strerror or exc}") from None
    return sock


def _text(status: int, message: str, **headers: str) -> web.Response:
    """An answer as Go's ``http.Error`` writes one (text, a final newline)."""
    return web.Response(status=status, text=message + "\n", headers=headers or None)


def _summary(parsed: Parsed) -> str:
    total = len(parsed.events) + len(parsed.refusals)
    lines = [f"accepted {len(parsed.events)} of {total} audit events"]
    lines += [f"refused: {r.describe()}" for r in parsed.refusals[:MAX_LISTED]]
    if len(parsed.refusals) > MAX_LISTED:
        lines.append(f"refused: {len(parsed.refusals) - MAX_LISTED} more")
    return "\n".join(lines)


class WebhookStream:
    """The webhook server and its queue, as the source's async iterator of batches.

    The socket is bound when the stream is made (start-up errors stop start-up); the server
    starts serving on the first ``__anext__`` or an explicit ``start()``."""

    def __init__(self, url: str, settings: Settings, ctx: SourceContext) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError as exc:
            raise SourceError(f"open_params: bad port in {url}: {exc}") from None
        self.host = parts.hostname or ""
        self.path = parts.path or "/"
        self.settings = settings
        self.reporter = Reporter(ctx.counters, ctx.log)
        self.log = ctx.log
        self.parser = AuditParser(settings.max_event_size)
        self.queue = BatchQueue(settings.max_queued_events)
        self._token = settings.webhook_token.encode()
        self._ssl: ssl.SSLContext | None = None
        if self.scheme == "https":
            self._ssl = server_context(settings, self._handshake_failed)
        default_port = 443 if self._ssl is not None else 80
        self._sock = _listen(self.host, default_port if port is None else port)
        self._runner: web.AppRunner | None = None
        self._closed = False

    @property
    def port(self) -> int:
        """The port listened on (the one picked by the system for port 0)."""
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.host or "0.0.0.0"
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{self.port}{self.path}"

    async def start(self) -> None:
        """Serve requests (idempotent)."""
        if self._runner is not None or self._closed:
            return
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, self._sock, ssl_context=self._ssl).start()
        token = ", bearer token required" if self._token else ""
        client_ca = ", client certificate required" if self.settings.ssl_client_ca else ""
        self.log.info(f"k8s audit webhook listening on {self.url}{token}{client_ca}")

    def __aiter__(self) -> WebhookStream:
        return self

    async def __anext__(self) -> EventBatch:
        await self.start()
        batch = await self.queue.get()
        if batch is None:
            raise StopAsyncIteration
        return batch

    async def aclose(self) -> None:
        """Stop listening, finish requests in flight, count unevaluated events as dropped."""
        if self._closed:
            return
        self._closed = True
        left = self.queue.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._sock.close()
        if left:
            self.reporter.counters.dropped += left
            self.log.warning("audit events received but not evaluated at shutdown",
                             events=left)

    # --- requests -----------------------------------------------------------------------------

    def _refuse(self, reason: str, status: int, message: str, where: dict[str, Any],
                **headers: str) -> web.Response:
        self.reporter.log_request(reason, f"webhook request refused: {message}", status=status,
                                  **where)
        return _text(status, message, **headers)

    def _handshake_failed(self, exc: ssl.SSLError) -> None:
        self.reporter.log_request(TLS_HANDSHAKE, "webhook TLS handshake failed",
                                  error=exc.reason or str(exc))

    def _busy(self, where: dict[str, Any]) -> web.Response:
        return self._refuse(QUEUE_FULL, 429, "too many requests: audit events are waiting for "
                            "evaluation, retry later", where, **{"Retry-After": str(RETRY_AFTER_S)})

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                   self._token)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        where = {"client": request.remote or ""}
        try:
            return await self._answer(request, where)
        except Exception as exc:  # a bug must cost one request, not the source
            self.log.exception("webhook request failed", **where)
            return self._refuse(INTERNAL_ERROR, 500, f"internal error: {exc!r}", where)

    async def _answer(self, request: web.Request, where: dict[str, Any]) -> web.StreamResponse:
        if request.path != self.path:
            return self._refuse(NOT_FOUND, 404, "404 page not found",
                                {**where, "path": request.path})
        if request.method != "POST":
            return self._refuse(METHOD_NOT_ALLOWED, 405,
                                f"{request.method} method not allowed", where)
        if self._token and not self._authorized(request):
            return self._refuse(UNAUTHORIZED, 401, "unauthorized: a valid bearer token is "
                                "required", where, **{"WWW-Authenticate": "Bearer"})
        if "application/json" not in request.headers.get("Content-Type", "").lower():
            return self._refuse(WRONG_CONTENT_TYPE, 400, "wrong Content Type", where)
        if self.queue.full:
            return self._busy(where)
        body = await self._read_body(request, where)
        if isinstance(body, web.Response):
            return body
        parsed = self.parser.parse_bytes(body)
        if parsed.invalid:
            self.reporter.report(parsed.refusals, **where)
            return _text(400, f"bad request: {parsed.refusals[0].message}")
        if parsed.events and not self.queue.offer(parsed.events):
            return self._busy(where)
        self.reporter.report(parsed.refusals, **where)
        if not parsed.refusals:
            return web.Response(status=200)
        return _text(200 if parsed.events else 400, _summary(parsed))

    async def _read_body(self, request: web.Request,
                         where: dict[str, Any]) -> bytes | web.Response:
        limit = self.settings.max_batch_size
        length = request.content_length
        if length is not None and length > limit:
            return self._too_large(f"{length} bytes", where)
        chunks: list[bytes] = []
        size = 0
        timeout = self.settings.read_timeout_s
        try:
            async with asyncio.timeout(timeout):
                while chunk := await request.content.readany():
                    size += len(chunk)
                    if size > limit:
                        return self._too_large(f"more than {limit} bytes", where)
                    chunks.append(chunk)
        except TimeoutError:
            response = self._refuse(READ_TIMEOUT, 408, f"request body not received within "
                                    f"{timeout:g}s", {**where, "received_bytes": size})
            response.force_close()
            return response
        except Exception as exc:  # the client went away, or sent a broken body encoding
            response = self._refuse(READ_ERROR, 400, f"bad request: cannot read the body: "
                                    f"{exc}", where)
            response.force_close()
            return response
        return b"".join(chunks)

    def _too_large(self, size: str, where: dict[str, Any]) -> web.Response:
        response = self._refuse(BODY_TOO_LARGE, 413, f"request body too large: {size}, "
                                f"webhookMaxBatchSize is {self.settings.max_batch_size}", where)
        response.force_close()  # the rest of the body is not read
        return response


def open_webhook(url: str, settings: Settings, ctx: SourceContext) -> WebhookStream:
    return WebhookStream(url, settings, ctx)
