"""syslog output against a real rsyslogd: remote RFC 5424 over UDP and TCP, the local
syslog(3) through /dev/log, and Falco's priority -> severity mapping."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from falconet.api import OutputError
from falconet.outputs import LocalSyslogOutput, RemoteSyslogOutput
from falconet.outputs.syslog_format import octet_counted, pri, rfc5424, severity

from .helpers import make_alert, wait_for_lines
from .rsyslog import Rsyslog

#: Falco's priorities and the syslog severity names rsyslog prints for them.
PRIORITIES = [("Emergency", "emerg"), ("Alert", "alert"), ("Critical", "crit"),
              ("Error", "err"), ("Warning", "warning"), ("Notice", "notice"),
              ("Informational", "info"), ("Debug", "debug")]


def ours(line: str) -> bool:
    """rsyslogd logs its own start/stop lines too; keep the alerts (programname falco)."""
    return " falco:" in line


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    server = Rsyslog(tmp_path / "rsyslog")
    server.start()
    yield server
    server.stop()


def test_message_format_and_priority_mapping() -> None:
    assert [severity(p) for p, _ in PRIORITIES] == list(range(8))
    assert pri("user", "Critical") == 10 and pri("local7", "Debug") == 191
    msg = rfc5424(pri("user", "Warning"), "node-1", b"hello", now_ns=1_700_000_000_123_456_789,
                  procid=42)
    assert msg == b"<12>1 2023-11-14T22:13:20.123456Z node-1 falco 42 - - hello"
    assert rfc5424(14, "has space", b"x", now_ns=0, procid=1) == (
        b"<14>1 1970-01-01T00:00:00.000000Z - falco 1 - - x")
    assert octet_counted(b"abc\ndef") == b"7 abc\ndef"


def test_udp_every_priority_arrives_with_its_severity(rsyslog: Rsyslog) -> None:
    out = RemoteSyslogOutput("127.0.0.1", rsyslog.udp_port, proto="udp")
    alerts = [make_alert(f"12:00:00.000000000: {p} udp alert {i} (user=root)", p,
                         document={"hostname": "node-7"})
              for i, (p, _) in enumerate(PRIORITIES)]

    async def scenario() -> None:
        await out.send(alerts[:3])
        await out.send(alerts[3:])
        await out.close()

    asyncio.run(scenario())
    got = wait_for_lines(rsyslog.out, len(alerts), keep=ours)
    assert sorted(got) == sorted(f"node-7 user.{sev} falco: {a.line}"
                                 for a, (_, sev) in zip(alerts, PRIORITIES, strict=True))


def test_tcp_octet_counted_frames_keep_each_alert_whole(rsyslog: Rsyslog) -> None:
    out = RemoteSyslogOutput("127.0.0.1", rsyslog.tcp_port, proto="tcp", facility="local7",
                             hostname="fallback-host")
    alerts = [make_alert('{"output":"tcp json","priority":"Error","rule":"R"}', "Error"),
              make_alert("two lines\nin one alert", "Notice", document={}),
              make_alert("Debug alert", "Debug", document={"hostname": "node-8"})]

    async def scenario() -> None:
        await out.send(alerts)
        await out.close()

    asyncio.run(scenario())
    got = wait_for_lines(rsyslog.out, 3, keep=ours)
    assert got == [  # one connection: order kept; rsyslog escapes the newline as #012
        'fallback-host local7.err falco: {"output":"tcp json","priority":"Error","rule":"R"}',
        "fallback-host local7.notice falco: two lines#012in one alert",
        "node-8 local7.debug falco: Debug alert",
    ]


def test_tcp_reconnects_after_the_server_restarts(rsyslog: Rsyslog) -> None:
    out = RemoteSyslogOutput("127.0.0.1", rsyslog.tcp_port, proto="tcp", hostname="h")
    port = rsyslog.tcp_port

    async def scenario() -> None:
        await out.send([make_alert("before restart", "Warning")])
        wait_for_lines(rsyslog.out, 1, keep=ours)
        rsyslog.stop()
        # The server closed the kept connection; reconnecting is refused: a failed delivery.
        with pytest.raises(OutputError) as info:
            await out.send([make_alert("during outage", "Warning")])
        assert str(info.value) == (f"syslog output: cannot connect to tcp 127.0.0.1:{port}: "
                                   "Connection refused")
        rsyslog.start(tcp_port=port)
        await out.send([make_alert("during outage", "Warning")])  # the engine's retry
        await out.close()

    asyncio.run(scenario())
    assert wait_for_lines(rsyslog.out, 2, keep=ours) == [
        "h user.warning falco: before restart", "h user.warning falco: during outage"]


def test_unresolvable_host_is_a_failed_delivery() -> None:
    out = RemoteSyslogOutput("no-such-host.invalid", 514, proto="udp")
    with pytest.raises(OutputError, match=r"^syslog output: cannot resolve no-such-host\.invalid"):
        asyncio.run(out.send([make_alert("x")]))


# --- the local syslog(3) -------------------------------------------------------------------

DEV_LOG = "/dev/log"


@pytest.fixture
def dev_log_rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """An rsyslogd owning /dev/log for the test, only where no syslog daemon has it: the socket
    is created by this rsyslogd and removed afterwards; an existing /dev/log is never touched."""
    if os.path.lexists(DEV_LOG):
        pytest.skip("/dev/log exists (a system syslog owns it): not replacing it for a test")
    if not os.access(os.path.dirname(DEV_LOG), os.W_OK):
        pytest.skip("/dev is not writable here: cannot provide /dev/log for syslog(3)")
    server = Rsyslog(tmp_path / "rsyslog")
    server.start(unix_socket=DEV_LOG)
    created = os.stat(DEV_LOG)
    try:
        yield server
    finally:
        server.stop()
        try:
            now = os.stat(DEV_LOG)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISSOCK(now.st_mode) and now.st_ino == created.st_ino:
                os.unlink(DEV_LOG)


def test_local_syslog3_ident_falco_with_the_priority_severity(dev_log_rsyslog: Rsyslog) -> None:
    alerts = [make_alert(f"12:00:00.000000000: {p} local alert ({sev})", p)
              for p, sev in PRIORITIES]
    out_user = LocalSyslogOutput()
    out_local4 = LocalSyslogOutput(facility="local4")

    async def scenario() -> None:
        await out_user.send(alerts)
        await out_local4.send([make_alert("on local4", "Notice")])
        await out_user.close()

    asyncio.run(scenario())
    got = wait_for_lines(dev_log_rsyslog.out, len(alerts) + 1, keep=ours)
    # hostname: rsyslog's own for local messages; the rest is what syslog(3) carried
    assert [line.split(" ", 1)[1] for line in got] == [
        *(f"user.{sev} falco: {a.line}" for a, (_, sev) in zip(alerts, PRIORITIES, strict=True)),
        "local4.notice falco: on local4"]
