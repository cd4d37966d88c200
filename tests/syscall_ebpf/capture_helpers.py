"""Making small syscall captures in tests: the real ``falconet -w FILE -M SECONDS`` records while a
child process (with a name of its own, so rules can single it out from everything else the
machine does) runs a few lines of Python; ``replay`` runs ``falconet -e`` on the result.

Needs root and the built probe: tests carry the ``needs_probe`` mark, which says why not.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .live_helpers import needs_probe as needs_probe  # one check for every live test

REPO = Path(__file__).resolve().parents[2]
#: falco.yaml overrides for test runs: no webserver port, no file watching, times in UTC
QUIET = ("-o", "webserver.enabled=false", "-o", "watch_config_files=false")
ENV = {**os.environ, "TZ": "UTC"}

_CHILD = """\
import ctypes, json, os, sys, threading, time
ctypes.CDLL(None, use_errno=True).prctl(15, sys.argv[2].encode(), 0, 0, 0)  # PR_SET_NAME
capture = sys.argv[1]
deadline = time.monotonic() + 60
while not os.path.exists(capture):  # the recorder creates it once the probe is attached
    if time.monotonic() > deadline:
        sys.exit("the capture file never appeared")
    time.sleep(0.01)
tmp = sys.argv[3]
out = {"pid": os.getpid(), "tid": threading.get_native_id(), "start_ns": time.time_ns()}
"""
_CHILD_END = """
out["end_ns"] = time.time_ns()
print(json.dumps(out))
"""


def child_name() -> str:
    """A process name (comm, at most 15 bytes) no other process is likely to have."""
    return f"fncap{secrets.token_hex(4)}"


def falconet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "falconet.cli", *QUIET, *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, env=ENV)


@dataclass
class Recording:
    path: Path
    #: falconet's exit code, stdout (alerts raised live, then the summary) and stderr
    returncode: int
    stdout: str
    stderr: str
    #: what the child printed: ``pid``, ``tid``, ``start_ns``/``end_ns`` (wall clock around
    #: its actions), plus whatever the action code put in ``out``
    child: dict[str, Any]


def record(path: Path, rules: Path, action: str, *, name: str, seconds: float = 2,
           args: tuple[str, ...] = ()) -> Recording:
    """Run ``falconet -r RULES --source syscall -w PATH -M SECONDS`` and, once recording, a child
    process named ``name`` that runs ``action`` (Python; ``tmp`` is ``path``'s directory, and
    ``out`` a dict printed as JSON at the end)."""
    assert not path.exists()
    cmd = [sys.executable, "-m", "falconet.cli", *QUIET, "-r", str(rules), "--source",
           "syscall", "-w", str(path), "-M", str(seconds), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=ENV)
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD + action + _CHILD_END, str(path), name,
             str(path.parent)], capture_output=True, text=True, timeout=90)
        try:
            stdout, stderr = proc.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            raise AssertionError(f"falconet -M {seconds} still ran a minute later; "
                                 f"stderr:\n{stderr[-5000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert child.returncode == 0, f"child failed: {child.stderr}\nfalconet: {stderr}"
    return Recording(path, proc.returncode, stdout, stderr, json.loads(child.stdout))


def replay(path: Path, rules: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``falconet -r RULES --source syscall -e PATH``."""
    return falconet("-r", str(rules), "--source", "syscall", "-e", str(path), *args)


def alert_lines(stdout: str) -> list[str]:
    """The alert lines of falconet's stdout (the end-of-run summary left out)."""
    lines = stdout.splitlines()
    end = next((i for i, line in enumerate(lines) if line.startswith("Events detected: ")),
               len(lines))
    return lines[:end]

