"""``syslog_output``: the local syslog(3) as Falco (``output_syslog``), or a remote syslog server
over UDP or TCP (falconet's ``host``/``port``/``proto`` keys).

Local: ident ``falco``, the configured facility (``user``, Falco's), severity from the priority;
syslog(3) reports nothing, so neither can this output: a missing ``/dev/log`` loses alerts
silently, exactly as upstream. Remote: RFC 5424 messages (see ``syslog_format``); UDP is one
datagram per alert, TCP uses RFC 6587 octet-counted frames on one kept connection.
"""

from __future__ import annotations

import asyncio
import os
import socket
import syslog
from collections.abc import Sequence

from falconet.api import Alert, OutputError
from falconet.outputs._common import Delivered, line_bytes
from falconet.outputs.syslog_format import (
    APP_NAME,
    MAX_UDP_PAYLOAD,
    octet_counted,
    pri,
    rfc5424,
)
from falconet.ruleset.alerts import default_hostname


class LocalSyslogOutput:
    """syslog(3) per alert, called in a worker thread (it may block on a stalled daemon)."""

    def __init__(self, *, facility: str = "user") -> None:
        self._facility = facility
        self._opened = False

    async def send(self, alerts: Sequence[Alert]) -> None:
        items = [(pri(self._facility, a.priority), a.line) for a in alerts]
        await asyncio.to_thread(self._emit, items)

    def _emit(self, items: Sequence[tuple[int, str]]) -> None:
        if not self._opened:
            # Python would otherwise open the log with argv[0] ("python3") as the ident.
            syslog.openlog(APP_NAME, 0, syslog.LOG_USER)
            self._opened = True
        for priority, line in items:
            try:
                syslog.syslog(priority, line)
            except UnicodeEncodeError:
                syslog.syslog(priority, line_bytes(line).decode("utf-8"))

    async def close(self) -> None:
        return None


class RemoteSyslogOutput:
    """RFC 5424 messages to ``host:port`` over ``proto`` (udp|tcp).

    UDP errors (an ICMP "port unreachable" from an earlier datagram) raise :class:`OutputError`;
    the datagrams already sent are not sent again on retry. TCP keeps one connection, checks
    before each batch that the server has not closed it (then reconnects), and raises
    :class:`OutputError` when it cannot connect or write. As with any plain TCP syslog, a
    server that vanishes without closing can lose what the kernel had accepted (RELP exists
    for that).
    """

    def __init__(self, host: str, port: int = 514, *, proto: str = "udp",
                 facility: str = "user", timeout_s: float | None = 2.0,
                 hostname: str | None = None) -> None:
        if proto not in ("udp", "tcp"):
            raise ValueError(f"syslog output: proto must be udp or tcp, not {proto!r}")
        self.host = host
        self.port = port
        self.proto = proto
        self._facility = facility
        self._timeout = timeout_s or None
        self._hostname = hostname or default_hostname()
        self._sock: socket.socket | None = None
        self._delivered = Delivered()

    def _where(self) -> str:
        return f"{self.proto} {self.host}:{self.port}"

    def _message(self, alert: Alert) -> bytes:
        host = alert.document.get("hostname")
        return rfc5424(pri(self._facility, alert.priority),
                       host if isinstance(host, str) and host else self._hostname,
                       line_bytes(alert.line))

    async def send(self, alerts: Sequence[Alert]) -> None:
        if self.proto == "udp":
            await self._send_udp(alerts)
        else:
            await self._send_tcp(alerts)

    async def _send_udp(self, alerts: Sequence[Alert]) -> None:
        loop = asyncio.get_running_loop()
        for alert in self._delivered.pending(alerts):
            sock = self._sock or await self._open(socket.SOCK_DGRAM)
            try:
                await loop.sock_sendall(sock, self._message(alert)[:MAX_UDP_PAYLOAD])
            except OSError as exc:
                self._drop()
                raise OutputError(f"syslog output: cannot send to {self._where()}: "
                                  f"{_reason(exc)}") from exc
            self._delivered.mark(alert)
        self._delivered.clear()

    async def _send_tcp(self, alerts: Sequence[Alert]) -> None:
        data = b"".join(octet_counted(self._message(a)) for a in alerts)
        if self._sock is not None and _peer_closed(self._sock):
            self._drop()
        sock = self._sock or await self._open(socket.SOCK_STREAM)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(sock, data),
                                   self._timeout)
        except (OSError, TimeoutError) as exc:
            self._drop()
            raise OutputError(f"syslog output: cannot send to {self._where()}: "
                              f"{_reason(exc)}") from exc

    async def _open(self, kind: socket.SocketKind) -> socket.socket:
        """Resolve ``host`` (without blocking the loop) and connect to the first address that
        accepts; for UDP, connecting makes ICMP errors visible on the next send."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=kind)
        except OSError as exc:
            raise OutputError(f"syslog output: cannot resolve {self.host}: "
                              f"{_reason(exc)}") from exc
        reason = "no address"
        for family, type_, proto, _, addr in infos:
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, addr), self._timeout)
            except (OSError, TimeoutError) as exc:
                sock.close()
                reason = _reason(exc)
                continue
            self._sock = sock
            return sock
        raise OutputError(f"syslog output: cannot connect to {self._where()}: {reason}")

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    async def close(self) -> None:
        self._drop()


def _reason(exc: OSError) -> str:
    """``Connection refused`` rather than asyncio's ``Connect call failed ('h', 514)``."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the server closed (or reset) the connection; a syslog server never sends."""
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
