"""Running the probe against the real kernel in tests: skip reasons, a child process with a name
of its own (so records and rules can single it out from everything else the machine does), and
draining a ``LiveCapture`` while the child runs.

The child waits for a byte on stdin before acting, so it acts only once the probe is attached;
it prints a JSON object (``pid``, ``tid`` and what its action code put in ``out``) on stdout.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
#: falco.yaml overrides for test runs: no webserver port, no file watching
QUIET = ("-o", "webserver.enabled=false", "-o", "watch_config_files=false")
#: a test waits this long for something falconet or a child must do (a deadline, not a timing)
DEADLINE_S = 60.0

CHILD_HEAD = """\
import ctypes, json, os, socket, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: the comm rules look for
tmp = sys.argv[2]
sys.stdin.buffer.read(1)  # go
out = {"pid": os.getpid(), "tid": threading.get_native_id()}
"""
CHILD_TAIL = """
print(json.dumps(out), flush=True)
"""


def skip_reason() -> str | None:
    """Why the probe cannot run here (not root, no BTF, no probe object...), or None."""
    if os.geteuid() != 0:
        return "needs root: loading the eBPF probe needs CAP_BPF and CAP_PERFMON"
    try:
        from falconet_syscall_ebpf.probe import ProbeUnavailable, check_environment
    except ImportError as exc:
        return f"falconet-syscall-ebpf is not installed ({exc}): run scripts/setup"
    try:
        check_environment()
    except ProbeUnavailable as exc:
        return f"the eBPF probe cannot run here: {exc}"
    return None


_SKIP = skip_reason()
#: the mark of every test that loads the probe: skipped, saying why, where it cannot run
needs_probe = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_name() -> str:
    """A comm (at most 15 bytes) no other process has."""
    return "fnt" + secrets.token_hex(5)


def start_child(action: str, name: str, tmp: Path, *args: str) -> subprocess.Popen[str]:
    """A Python child running ``action`` after the go byte (see the module docstring);
    ``args`` are ``sys.argv[3:]``."""
    return subprocess.Popen([sys.executable, "-c", CHILD_HEAD + action + CHILD_TAIL, name,
                             str(tmp), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_child(child: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = child.communicate(timeout=DEADLINE_S)
    assert child.returncode == 0, f"child failed ({child.returncode}): {err}"
    return json.loads(out.splitlines()[0])


def go(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("g")
    child.stdin.flush()


def capture_while(capture: Any, child: subprocess.Popen[str],
                  keep: Callable[[Any], bool]) -> tuple[list[Any], int]:
    """Drain ``capture`` while ``child`` runs and a little after; returns the decoded events
    ``keep`` accepts, and how many records were read in all."""
    from falconet_syscall_ebpf.decode import decode_records

    kept: list[Any] = []
    total = 0
    deadline = time.monotonic() + DEADLINE_S
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        chunk = capture.read()
        if len(chunk):
            events = decode_records(bytes(chunk), boot_ns=capture.boot_ns)
            total += len(events)
            kept.extend(ev for ev in events if keep(ev))
            quiet_since = None
            continue
        if child.poll() is not None:
            if quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.3:
                break
        time.sleep(0.005)
    return kept, total
