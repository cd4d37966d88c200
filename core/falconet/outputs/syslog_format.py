"""Syslog message building: Falco's priority -> severity mapping and RFC 5424 framing.

Falco passes its priority enum straight to syslog(3): Emergency is 0 ... Debug is 7, which are
exactly the syslog severities LOG_EMERG ... LOG_DEBUG. The remote format is RFC 5424
(``<PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID SD MSG``): rsyslog's default parser chain reads it
with APP-NAME as ``programname``, a full date with time zone, and the message untouched (RFC 3164
has no year, and rsyslog keeps its separator space in ``msg``).
"""

from __future__ import annotations

import os
import time

from falconet.config_schema import SYSLOG_FACILITIES

#: Falco's priority labels (``falco_common::format_priority``) -> syslog severity.
SEVERITY = {"Emergency": 0, "Alert": 1, "Critical": 2, "Error": 3, "Warning": 4, "Notice": 5,
            "Informational": 6, "Info": 6, "Debug": 7}
#: syslog(3)'s ident for Falco's alerts; kept so existing ``programname == "falco"`` filters
#: match falconet's alerts, local or remote.
APP_NAME = "falco"
#: Largest UDP payload over IPv4; a longer message is cut to fit rather than never sent.
MAX_UDP_PAYLOAD = 65507


def severity(priority: str) -> int:
    """The syslog severity of a Falco priority label (unknown labels: Debug, the lowest)."""
    return SEVERITY.get(priority, SEVERITY.get(priority.capitalize(), 7))


def pri(facility: str, priority: str) -> int:
    """``facility * 8 + severity``, the number syslog(3) and the ``<PRI>`` header carry."""
    return SYSLOG_FACILITIES[facility] * 8 + severity(priority)


def header_hostname(name: str) -> str:
    """RFC 5424 HOSTNAME: printable US-ASCII without spaces, at most 255 chars; else ``-``."""
    if not name or len(name) > 255 or not all(33 <= ord(c) <= 126 for c in name):
        return "-"
    return name


def rfc5424(pri_value: int, hostname: str, message: bytes, now_ns: int | None = None,
            procid: int | None = None) -> bytes:
    """One RFC 5424 message (no framing); the time is the sending time in UTC, as syslog(3)
    stamps the time it is called."""
    secs, micros = divmod((time.time_ns() if now_ns is None else now_ns) // 1000, 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{micros:06d}Z"
    pid = os.getpid() if procid is None else procid
    head = f"<{pri_value}>1 {stamp} {header_hostname(hostname)} {APP_NAME} {pid} - - "
    return head.encode("ascii") + message


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting framing for TCP: ``LEN SP MSG``; the receiver needs no
    delimiter, so a newline inside an alert cannot split it."""
    return str(len(message)).encode("ascii") + b" " + message
