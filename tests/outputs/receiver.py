"""A real aiohttp server (HTTP or HTTPS, optionally requiring client certificates) that records
every request an HTTP output makes, raw: bodies are not decompressed."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes
    peer_port: int
    peer_cert: dict[str, Any] | None


@dataclass
class Receiver:
    """Answers each request with the next of ``answers`` ((status, body)), then 200 "ok";
    the first ``slow`` requests wait ``slow_s`` before answering."""

    answers: list[tuple[int, str]] = field(default_factory=list)
    slow: int = 0
    slow_s: float = 0.0
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else ("", 0)
        sslobj = transport.get_extra_info("ssl_object") if transport else None
        self.requests.append(Received(
            method=request.method, path_qs=request.path_qs, headers=dict(request.headers),
            body=await request.read(), peer_port=peer[1],
            peer_cert=sslobj.getpeercert() if sslobj is not None else None))
        if len(self.requests) <= self.slow:
            await asyncio.sleep(self.slow_s)
        status, text = self.answers.pop(0) if self.answers else (200, "ok")
        return web.Response(status=status, text=text)

    async def start(self, ssl_context: ssl.SSLContext | None = None, path: str = "/") -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # auto_decompress off: the test sees the bytes the output put on the wire.
        self._runner = web.AppRunner(app, auto_decompress=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{port}{path}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
