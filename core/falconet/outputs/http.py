"""``http_output``: one POST per alert (Falco's ``output_http``, libcurl there, aiohttp here).

As upstream: body = the alert line, ``User-Agent: <user_agent>``, ``Content-Type:
application/json`` with ``json_output`` else ``text/plain``; a URL wrapped in quotes is unquoted;
redirects are not followed; ``max_consecutive_timeouts`` more attempts after a timeout.
Deliberate differences: a non-2xx answer is a failed delivery (:class:`OutputError` with the
status and the start of the body; libcurl's caller ignored it); ``compress_uploads`` gzips the
body with ``Content-Encoding: gzip`` (upstream's CURLOPT_TRANSFER_ENCODING only asks for a
compressed *response*); ``keep_alive`` false opens a new connection per request; ``echo`` logs
the response body instead of printing it to stdout, which carries alerts.
"""

from __future__ import annotations

import gzip
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from falconet.api import Alert, OutputError
from falconet.outputs._common import Delivered, line_bytes

#: How much of an error response's body goes into the error message.
BODY_EXCERPT = 200


def unquote_url(url: str) -> str:
    """Drop one pair of surrounding ``"``/``'`` quotes (upstream unescapes such a URL)."""
    if len(url) >= 2 and url[0] == url[-1] and url[0] in "\"'":
        return url[1:-1].replace("\\" + url[0], url[0]).replace("\\\\", "\\")
    return url


@dataclass(frozen=True)
class TlsSettings:
    """The ``http_output`` TLS keys."""

    insecure: bool = False
    ca_cert: str = ""
    ca_bundle: str = ""
    ca_path: str = ""
    mtls: bool = False
    client_cert: str = ""
    client_key: str = ""

    def context(self) -> ssl.SSLContext:
        """As upstream hands them to libcurl: ``ca_cert``, else ``ca_bundle``, else the
        ``ca_path`` folder (hashed names, as ``openssl rehash`` makes) verify the server;
        ``mtls`` presents ``client_cert``/``client_key``. Raises OSError or ssl.SSLError."""
        cafile = self.ca_cert or self.ca_bundle or None
        if cafile is not None:
            ctx = ssl.create_default_context(cafile=cafile)
        elif self.ca_path and os.path.isdir(self.ca_path):
            ctx = ssl.create_default_context(capath=self.ca_path)
        else:
            ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.mtls:
            ctx.load_cert_chain(self.client_cert, self.client_key or None)
        return ctx


class HttpOutput:
    """POSTs each alert to ``url``; see the module docstring for what follows upstream."""

    def __init__(self, url: str, *, json_output: bool = False,
                 user_agent: str = "falcosecurity/falco", tls: TlsSettings | None = None,
                 echo: bool = False,
                 compress_uploads: bool = False, keep_alive: bool = False,
                 max_consecutive_timeouts: int = 5, timeout_s: float | None = 2.0,
                 log: Any = None) -> None:
        self.url = unquote_url(url)
        self._tls = tls or TlsSettings()
        self._headers = {"User-Agent": user_agent,
                         "Content-Type": "application/json" if json_output else "text/plain"}
        if compress_uploads:
            self._headers["Content-Encoding"] = "gzip"
        self._compress = compress_uploads
        self._echo = echo
        self._keep_alive = keep_alive
        self._max_timeouts = max_consecutive_timeouts
        self._timeout = aiohttp.ClientTimeout(total=timeout_s or None)
        self._log = log
        self._session: aiohttp.ClientSession | None = None
        self._delivered = Delivered()

    def _new_session(self) -> aiohttp.ClientSession:
        ssl_arg: ssl.SSLContext | bool = True
        if urlsplit(self.url).scheme == "https":
            try:
                ssl_arg = self._tls.context()
            except (OSError, ssl.SSLError) as exc:
                raise OutputError(f"http output: TLS settings for {self.url}: {exc}") from exc
        # force_close: a connection per request when keep_alive is off.
        connector = aiohttp.TCPConnector(ssl=ssl_arg, force_close=not self._keep_alive)
        # No cookie jar: a webhook is stateless, and a server must not steer later requests.
        return aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                     cookie_jar=aiohttp.DummyCookieJar())

    async def send(self, alerts: Sequence[Alert]) -> None:
        if self._session is None:
            self._session = self._new_session()
        for alert in self._delivered.pending(alerts):
            body = line_bytes(alert.line)
            await self._post(self._session, gzip.compress(body) if self._compress else body)
            self._delivered.mark(alert)
        self._delivered.clear()

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        attempts = 0
        while True:
            attempts += 1
            try:
                async with session.post(self.url, data=body, headers=self._headers,
                                        allow_redirects=False) as resp:
                    text = await resp.text(errors="replace")
                    status, reason = resp.status, resp.reason
                break
            except TimeoutError as exc:
                if attempts > self._max_timeouts:
                    raise OutputError(f"http output: POST {self.url} timed out "
                                      f"{attempts} times in a row") from exc
            except aiohttp.ClientError as exc:
                raise OutputError(f"http output: POST {self.url} failed: "
                                  f"{_describe(exc)}") from exc
        if self._echo and self._log is not None:
            self._log.info("http output: response", url=self.url, status=status, body=text)
        if not 200 <= status < 300:
            answer = f"{status} {reason}" if reason else str(status)
            excerpt = " ".join(text[:BODY_EXCERPT].split())
            raise OutputError(f"http output: POST {self.url} answered {answer}"
                              + (f": {excerpt}" if excerpt else ""))

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _describe(exc: aiohttp.ClientError) -> str:
    """aiohttp's message, or the class name when it has none (ServerDisconnectedError)."""
    text = str(exc)
    return text if text else type(exc).__name__
