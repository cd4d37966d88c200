"""A real rsyslogd for the syslog tests: imudp + imtcp on 127.0.0.1 (and optionally imuxsock on a
unix socket), writing ``<host> <facility>.<severity> <programname>: <msg>`` lines to a file."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.processes import stop

from .helpers import PEER_DEADLINE_S

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

TEMPLATE = ("%hostname% %syslogfacility-text%.%syslogseverity-text% %programname%:"
            "%msg:::sp-if-no-1st-sp%%msg%\\n")


class Rsyslog:
    """One rsyslogd in the foreground (``-n``), its pid file and state in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        if not os.access(RSYSLOGD, os.X_OK):
            pytest.skip("rsyslogd is not installed (scripts/setup installs the rsyslog package)")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.out = workdir / "received.log"
        self.udp_port = 0
        self.tcp_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, tcp_port: int = 0, unix_socket: str | None = None) -> None:
        """Start; ``tcp_port`` 0 lets the kernel choose. Ports are read back from /proc."""
        lines = [
            f'global(workDirectory="{self.workdir}")',
            'module(load="imudp")',
            'module(load="imtcp")',
            'input(type="imudp" address="127.0.0.1" port="0")',
            f'input(type="imtcp" address="127.0.0.1" port="{tcp_port}")',
        ]
        if unix_socket is not None:
            lines += ['module(load="imuxsock" SysSock.Use="off")',
                      f'input(type="imuxsock" Socket="{unix_socket}" CreatePath="off" '
                      'RateLimit.Interval="0")']
        lines += [f'template(name="falconet_test" type="string" string="{TEMPLATE}")',
                  f'*.* action(type="omfile" file="{self.out}" template="falconet_test")']
        conf = self.workdir / "rsyslog.conf"
        conf.write_text("\n".join(lines) + "\n")
        stderr = (self.workdir / "rsyslogd.stderr").open("ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")],
            stdout=stderr, stderr=stderr, start_new_session=True)
        stderr.close()
        end = time.monotonic() + PEER_DEADLINE_S
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            inodes = _socket_inodes(self.proc.pid)
            udp = _local_ports("/proc/net/udp", inodes, state="07")
            tcp = _local_ports("/proc/net/tcp", inodes, state="0A")  # LISTEN
            if udp and tcp and (unix_socket is None or os.path.exists(unix_socket)):
                self.udp_port, self.tcp_port = udp[0], tcp[0]
                return
            time.sleep(0.02)
        log = (self.workdir / "rsyslogd.stderr").read_text(errors="replace")
        self.stop()
        pytest.fail(f"rsyslogd did not start listening: {log}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            stop(proc, PEER_DEADLINE_S)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _local_ports(table: str, inodes: set[str], *, state: str) -> list[int]:
    """The 127.0.0.1 ports in a /proc/net table whose socket is one of ``inodes``."""
    ports = []
    with open(table) as rows:
        next(rows)
        for row in rows:
            cols = row.split()
            local, st, inode = cols[1], cols[3], cols[9]
            if inode in inodes and st == state and local.startswith("0100007F:"):
                ports.append(int(local.split(":")[1], 16))
    return ports
