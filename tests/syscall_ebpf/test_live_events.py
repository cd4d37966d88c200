"""The probe against the real kernel: a child opens /etc/shadow, connects to a loopback port,
renames and unlinks a file, calls memfd_create and ptrace, then execs a binary; each syscall
arrives once, with its type, parameters (named as upstream's event table), return value, pid,
tid and comm, as the events and as the fields rules read."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.syscall_ebpf.live_helpers import (
    capture_while,
    child_name,
    finish_child,
    go,
    needs_probe,
    start_child,
)

pytestmark = needs_probe

ACTION = """\
fd = os.open("/etc/shadow", os.O_RDONLY)
os.close(fd)
out["shadow_fd"] = fd
s = socket.socket()
s.connect(("127.0.0.1", int(sys.argv[3])))
out["cport"], out["sock_fd"] = s.getsockname()[1], s.fileno()
s.close()
old, new = os.path.join(tmp, "old.txt"), os.path.join(tmp, "new.txt")
open(old, "w").close()
os.rename(old, new)
os.unlink(new)
try:
    os.unlink(new)
except FileNotFoundError:
    pass
m = os.memfd_create("falconet-test", os.MFD_CLOEXEC)
os.close(m)
out["memfd"] = m
pid = os.fork()
if pid == 0:
    time.sleep(60)
    os._exit(0)
libc.ptrace.restype = ctypes.c_long
out["ptrace_res"] = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
os.waitpid(pid, 0)
libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
os.kill(pid, 9)
os.waitpid(pid, 0)
out["tracee"] = pid
print(json.dumps(out), flush=True)
os.execv("/bin/true", ["true", "--falconet-test"])
"""
WANTED = {"openat", "connect", "rename", "unlink", "memfd_create", "ptrace", "execve"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], list[Any],
                                                                     int, Any]]:
    """One child run under the probe (module scope: loading the probe takes a moment)."""
    from falconet_syscall_ebpf.live import LiveCapture

    tmp = tmp_path_factory.mktemp("live")
    name = child_name()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    with LiveCapture(event_types=WANTED) as capture:
        child = start_child(ACTION, name, tmp, str(port))
        try:
            go(child)
            events, total = capture_while(capture, child,
                                          lambda ev: ev.comm in (name, "true"))
            out = finish_child(child)
        finally:
            if child.poll() is None:
                child.kill()
        counters = capture.counters()
    server.close()
    out.update(name=name, port=port, tmp=str(tmp), total=total,
               emitted=sum(counters.emitted))  # since the probe was loaded
    yield out, [ev for ev in events if ev.pid == out["pid"]], port, tmp


def only(events: list[Any], evt_type: str, **params: Any) -> Any:
    """The one event of ``evt_type`` whose parameters include ``params``."""
    found = [ev for ev in events if ev.evt_type == evt_type
             and all(ev.params().get(k) == v for k, v in params.items())]
    assert len(found) == 1, (evt_type, params, found)
    return found[0]


def field(name: str, ev: Any) -> Any:
    """What a rule reads: the plugin's field table, as the compiler resolves names."""
    from falconet_syscall_ebpf.fields import syscall_field_table

    spec, arg = syscall_field_table().lookup(name.split("[")[0]) or (None, None)
    assert spec is not None, name
    if "[" in name:
        arg = name.split("[", 1)[1][:-1]
    return spec.extractor(arg)(ev)


def common(ev: Any, out: dict[str, Any], comm: str | None = None) -> None:
    assert (ev.pid, ev.tid, ev.dir) == (out["pid"], out["tid"], "<")
    assert field("proc.pid", ev) == out["pid"]
    assert field("thread.tid", ev) == out["tid"]
    assert field("proc.name", ev) == (comm or out["name"])
    assert field("user.uid", ev) == 0
    assert field("group.gid", ev) == 0


def test_open_of_etc_shadow(run: Any) -> None:
    out, events, _port, _tmp = run
    ev = only(events, "openat", name="/etc/shadow")
    common(ev, out)
    assert ev.res == out["shadow_fd"]
    assert field("evt.type", ev) == "openat"
    assert field("evt.arg.name", ev) == "/etc/shadow"
    assert field("evt.arg[name]", ev) == "/etc/shadow"
    assert field("evt.arg[2]", ev) == "/etc/shadow"
    assert field("evt.arg.flags", ev) == "O_RDONLY|O_CLOEXEC"
    assert field("evt.arg.dirfd", ev) == "AT_FDCWD"
    assert field("evt.res", ev) == "SUCCESS"
    assert field("evt.rawres", ev) == out["shadow_fd"]
    assert field("evt.failed", ev) is False
    assert field("evt.dir", ev) == "<"
    assert field("evt.args", ev) == (
        f"fd={out['shadow_fd']} dirfd=-100(AT_FDCWD) name=/etc/shadow "
        "flags=524288(O_RDONLY|O_CLOEXEC) mode=0 dev=<NA> ino=<NA> ")


def test_connect_to_a_loopback_port(run: Any) -> None:
    out, events, port, _tmp = run
    ev = only(events, "connect")
    common(ev, out)
    assert ev.res == 0
    assert field("evt.arg.fd", ev) == str(out["sock_fd"])
    assert field("evt.arg.addr", ev) == f"127.0.0.1:{port}"
    assert field("evt.arg.tuple", ev) == f"127.0.0.1:{out['cport']}->127.0.0.1:{port}"
    assert field("evt.res", ev) == "SUCCESS"


def test_rename_and_unlink(run: Any) -> None:
    out, events, _port, tmp = run
    old, new = str(Path(tmp) / "old.txt"), str(Path(tmp) / "new.txt")
    ev = only(events, "rename")
    common(ev, out)
    assert ev.params() == {"res": 0, "oldpath": old, "newpath": new}
    assert field("evt.args", ev) == f"res=0 oldpath={old} newpath={new} "
    done, failed = (ev for ev in events if ev.evt_type == "unlink")
    common(done, out)
    assert done.params() == {"res": 0, "path": new}
    assert (field("evt.res", done), field("evt.failed", done)) == ("SUCCESS", False)
    assert failed.params() == {"res": -2, "path": new}
    assert (field("evt.res", failed), field("evt.rawres", failed)) == ("ENOENT", -2)
    assert field("evt.failed", failed) is True
    assert field("evt.args", failed) == f"res=-2(ENOENT) path={new} "


def test_memfd_create(run: Any) -> None:
    out, events, _port, _tmp = run
    ev = only(events, "memfd_create")
    common(ev, out)
    assert ev.params() == {"fd": out["memfd"], "name": "falconet-test", "flags": 1}
    assert field("evt.arg.name", ev) == "falconet-test"
    assert field("evt.arg.flags", ev) == "MFD_CLOEXEC"


def test_ptrace_attach_and_detach(run: Any) -> None:
    out, events, _port, _tmp = run
    attach = only(events, "ptrace", request=16)
    common(attach, out)
    assert attach.res == out["ptrace_res"] == 0
    assert field("evt.arg.request", attach) == "PTRACE_ATTACH"
    assert field("evt.arg.pid", attach) == str(out["tracee"])
    detach = only(events, "ptrace", request=17)
    assert field("evt.arg.request", detach) == "PTRACE_DETACH"


def test_execve_of_a_binary(run: Any) -> None:
    out, events, _port, _tmp = run
    ev = only(events, "execve")
    common(ev, out, comm="true")  # comm after the exec
    assert ev.res == 0
    params = ev.params()
    assert (params["exe"], params["args"], params["filename"]) == (
        "true", b"--falconet-test\x00", "/bin/true")
    assert (params["tid"], params["pid"], params["comm"]) == (out["tid"], out["pid"], "true")
    assert field("evt.arg.filename", ev) == "/bin/true"
    assert field("evt.arg.args", ev) == "--falconet-test."


def test_each_syscall_arrives_once_and_counters_cover_them(run: Any) -> None:
    out, events, _port, _tmp = run
    kinds = [ev.evt_type for ev in events if ev.evt_type in WANTED - {"openat"}]
    assert sorted(kinds) == sorted(["connect", "rename", "unlink", "unlink", "memfd_create",
                                    "ptrace", "ptrace", "execve"])
    assert out["emitted"] >= out["total"] > 0
