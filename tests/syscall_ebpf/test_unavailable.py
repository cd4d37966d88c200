"""When the probe cannot run (no privileges, no BTF, no libbpf, no built object), falconet says
exactly what is missing and how to fix it, in one line; a syscall-only run exits 1 with it, and
with other live sources the syscall source is left out while they keep alerting.

Privileges are dropped in a child with ``setpriv`` (uid 0 without any capability: what an
unprivileged user has for loading BPF, while the interpreter under /root stays readable)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from falconet_syscall_ebpf import probe
from tests.syscall_ebpf.live_helpers import QUIET, REPO

NO_CAPS = ("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs")
ROOT_LINE = ("Error: Could not open source 'syscall': run as root (loading eBPF programs needs "
             "CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)")
SYSCALL_RULE = """\
- rule: Shadow opened
  desc: the open of /etc/shadow
  condition: evt.type in (open, openat) and evt.arg.name = /etc/shadow
  output: shadow opened by %proc.name
  priority: WARNING
"""
K8S_RULE = """\
- rule: Pod created
  desc: a pod creation
  condition: ka.verb = create and ka.target.resource = pods
  output: pod %ka.target.name created by %ka.user.name
  priority: NOTICE
  source: k8s_audit
"""
AUDIT_EVENT = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": "a-1",
    "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/default/pods",
    "verb": "create", "user": {"username": "alice"},
    "objectRef": {"resource": "pods", "namespace": "default", "name": "web"},
    "responseStatus": {"code": 201},
    "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
    "stageTimestamp": "2024-05-01T10:00:00.100000Z",
}


def unprivileged() -> tuple[str, ...]:
    """The command prefix that runs without BPF privileges (nothing when already so)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop the capabilities of a root child")
    return NO_CAPS


def falconet(*args: str, prefix: tuple[str, ...] = (),
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "falconet.cli", *QUIET, *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, **(env or {})})


def last_line(res: subprocess.CompletedProcess[str]) -> str:
    return res.stderr.strip().splitlines()[-1]


def test_without_privileges_a_syscall_run_says_run_as_root(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(SYSCALL_RULE)
    res = falconet("-r", str(rules), prefix=unprivileged())
    assert res.returncode == 1
    assert last_line(res) == ROOT_LINE
    assert res.stdout == ""


def test_without_the_probe_object_it_says_run_scripts_setup(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(SYSCALL_RULE)
    missing = tmp_path / "probe.bpf.o"
    res = falconet("-r", str(rules), env={probe.OBJECT_ENV: str(missing)})
    assert res.returncode == 1
    if os.geteuid() != 0:
        assert last_line(res) == ROOT_LINE  # the first thing missing is said first
        return
    assert last_line(res) == (
        f"Error: Could not open source 'syscall': probe object not built ({missing}): run "
        "scripts/setup (it installs clang, bpftool, libbpf-dev and llvm, then runs python3 -m "
        "falconet_syscall_ebpf.build)")


def test_a_broken_syscall_setup_leaves_the_other_sources_running(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_bytes(orjson.dumps(AUDIT_EVENT) + b"\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(SYSCALL_RULE + K8S_RULE)
    config = tmp_path / "falco.yaml"
    config.write_text(f"plugins:\n  - name: k8saudit\n    open_params: {audit}\n"
                      "  - name: json\n")
    res = falconet("-c", str(config), "-r", str(rules), prefix=unprivileged())
    assert res.returncode == 0, res.stderr
    assert "Enabled event sources: k8s_audit, syscall" in res.stderr
    assert ("Could not open source 'syscall': run as root (loading eBPF programs needs "
            "CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) (the other sources run)") in res.stderr
    assert res.stdout.splitlines()[0] == (
        "10:00:00.100000000: Notice pod web created by alice")
    assert "   Pod created: 1" in res.stdout.splitlines()


def test_every_missing_piece_has_its_own_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_can_load_bpf", lambda: True)
    monkeypatch.setattr(probe, "BTF_PATH", tmp_path / "vmlinux")
    with pytest.raises(probe.ProbeUnavailable) as err:
        probe.check_environment()
    assert str(err.value) == (f"kernel has no BTF ({tmp_path / 'vmlinux'}): the probe needs a "
                              "kernel built with CONFIG_DEBUG_INFO_BTF=y")
    monkeypatch.setattr(probe, "BTF_PATH", Path(__file__))

    def no_libbpf() -> None:
        raise OSError("libbpf.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(probe, "load_libbpf", no_libbpf)
    with pytest.raises(probe.ProbeUnavailable) as err:
        probe.check_environment()
    assert str(err.value) == ("libbpf.so.1 not found (libbpf.so.1: cannot open shared object "
                              "file: No such file or directory): apt-get install libbpf1")
    monkeypatch.setattr(probe, "load_libbpf", lambda: object())
    with pytest.raises(probe.ProbeUnavailable) as err:
        probe.check_environment(tmp_path / "none.o")
    assert str(err.value).startswith(f"probe object not built ({tmp_path / 'none.o'}): run "
                                     "scripts/setup")
    monkeypatch.setattr(probe, "_can_load_bpf", lambda: False)
    with pytest.raises(probe.ProbeUnavailable) as err:
        probe.check_environment()
    assert str(err.value) == ("run as root (loading eBPF programs needs CAP_BPF and "
                              "CAP_PERFMON, or CAP_SYS_ADMIN)")


def test_a_corrupt_probe_object_is_a_load_error_with_libbpfs_reason(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: only then does loading get as far as the object")
    bad = tmp_path / "probe.bpf.o"
    bad.write_bytes(b"\x7fELF not really")
    rules = tmp_path / "rules.yaml"
    rules.write_text(SYSCALL_RULE)
    res = falconet("-r", str(rules), env={probe.OBJECT_ENV: str(bad)})
    assert res.returncode == 1
    assert last_line(res).startswith(
        f"Error: Could not open source 'syscall': could not load the eBPF probe: opening {bad}:")
