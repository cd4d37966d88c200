"""Loading the probe: environment checks, open/load/attach through libbpf, the kernel-side
selection map, the per-CPU counters.

``check_environment`` turns each missing piece into one line saying what to do (run as root,
a kernel with BTF, libbpf, the built object); ``Probe`` raises ``ProbeUnavailable`` with such a
line when loading fails, the verifier's last words included.
"""

from __future__ import annotations

import ctypes as C
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falconet_syscall_ebpf.libbpf import (
    LibbpfError,
    check_ptr,
    libbpf_messages,
    load_libbpf,
    strerror,
)
from falconet_syscall_ebpf.syscalls import (
    BY_NAME,
    DESC_ENABLED,
    MAX_KERNEL_PARAMS,
    EventDef,
    Kernel,
)

__all__ = ["BTF_PATH", "DEFAULT_OBJECT", "OBJECT_ENV", "KernelCounters", "Probe",
           "ProbeUnavailable", "check_environment", "object_path"]

#: where ``build`` puts the probe object, and where it is loaded from unless
#: ``$FALCONET_SYSCALL_PROBE`` names another object file
DEFAULT_OBJECT = Path(__file__).resolve().parent / "probe.bpf.o"
OBJECT_ENV = "FALCONET_SYSCALL_PROBE"
BTF_PATH = Path("/sys/kernel/btf/vmlinux")
PROGRAMS = (b"on_sys_enter", b"on_sys_exit", b"on_exec", b"on_exit", b"on_fork")
NR_SLOTS = 1024
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


class ProbeUnavailable(Exception):
    """The probe cannot run here; the message is one line: what is missing and the fix."""


class _Desc(C.Structure):
    _fields_ = [("flags", C.c_uint8), ("nparams", C.c_uint8), ("pad", C.c_uint8 * 2),
                ("kind", C.c_uint8 * MAX_KERNEL_PARAMS), ("arg", C.c_uint8 * MAX_KERNEL_PARAMS),
                ("aux", C.c_uint8 * MAX_KERNEL_PARAMS), ("pad2", C.c_uint8 * 4)]


assert C.sizeof(_Desc) == 32


@dataclass(frozen=True)
class KernelCounters:
    """Per-CPU counts since the probe was loaded: records written to the ring buffer, and
    records lost because it was full."""

    emitted: tuple[int, ...]
    dropped: tuple[int, ...]


def _effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def _can_load_bpf() -> bool:
    caps = _effective_caps()
    has = lambda bit: bool(caps >> bit & 1)  # noqa: E731
    return has(_CAP_SYS_ADMIN) or (has(_CAP_BPF) and has(_CAP_PERFMON))


def object_path() -> Path:
    """The probe object to load: ``$FALCONET_SYSCALL_PROBE``, else the built one."""
    env = os.environ.get(OBJECT_ENV)
    return Path(env) if env else DEFAULT_OBJECT


def check_environment(obj_path: Path | None = None) -> Any:
    """Everything the probe needs, or ProbeUnavailable naming the first thing missing.
    Returns the loaded libbpf."""
    obj = obj_path or object_path()
    if not _can_load_bpf():
        raise ProbeUnavailable("run as root (loading eBPF programs needs CAP_BPF and "
                               "CAP_PERFMON, or CAP_SYS_ADMIN)")
    if not BTF_PATH.exists():
        raise ProbeUnavailable(f"kernel has no BTF ({BTF_PATH}): the probe needs a kernel "
                               "built with CONFIG_DEBUG_INFO_BTF=y")
    try:
        lib = load_libbpf()
    except OSError as exc:
        raise ProbeUnavailable(f"libbpf.so.1 not found ({exc}): apt-get install libbpf1") \
            from None
    if not obj.is_file():
        raise ProbeUnavailable(f"probe object not built ({obj}): run scripts/setup (it "
                               "installs clang, bpftool, libbpf-dev and llvm, then runs "
                               "python3 -m falconet_syscall_ebpf.build)")
    return lib


def descriptor(defn: EventDef, enabled: bool) -> _Desc:
    """The ``sc_table`` entry of one event type."""
    d = _Desc()
    if not enabled:
        return d
    d.flags = DESC_ENABLED | defn.desc_flags()
    if defn.mode == "probe":
        return d
    params = [p.source for p in defn.params if isinstance(p.source, Kernel)]
    d.nparams = len(params)
    for i, src in enumerate(params):
        assert isinstance(src, Kernel)
        d.kind[i], d.arg[i], d.aux[i] = src.kind, src.arg, src.aux
    return d


class Probe:
    """The probe loaded and attached; ``close()`` detaches and unloads it."""

    def __init__(self, *, obj_path: Path | None = None, ignore_tgid: int | None = None) -> None:
        obj_path = obj_path or object_path()
        self.lib = lib = check_environment(obj_path)
        self._obj: int | None = None
        self._links: list[int] = []
        self.enabled: frozenset[str] = frozenset()
        self.ncpus = max(1, lib.libbpf_num_possible_cpus())
        try:
            self._obj = check_ptr(lib.bpf_object__open_file(str(obj_path).encode(), None),
                                  f"opening {obj_path}")
            rc = lib.bpf_object__load(self._obj)
            if rc:
                raise LibbpfError(-rc, f"loading the probe: {strerror(-rc)}")
            for name in PROGRAMS:
                prog = check_ptr(lib.bpf_object__find_program_by_name(self._obj, name),
                                 f"program {name.decode()}")
                self._links.append(check_ptr(lib.bpf_program__attach(prog),
                                             f"attaching {name.decode()}"))
            self.events_fd = self._map_fd(b"events")
            self._table_fd = self._map_fd(b"sc_table")
            self._counters_fd = self._map_fd(b"counters")
            cfg_fd = self._map_fd(b"probe_cfg")
        except LibbpfError as exc:
            self.close()
            detail = "; ".join(line for line in libbpf_messages(4) if line.strip())
            raise ProbeUnavailable(f"could not load the eBPF probe: {exc.strerror}"
                                   + (f" (libbpf: {detail})" if detail else "")) from None
        tgid = os.getpid() if ignore_tgid is None else ignore_tgid
        self._update(cfg_fd, 0, C.c_uint32(tgid))

    def _map_fd(self, name: bytes) -> int:
        m = check_ptr(self.lib.bpf_object__find_map_by_name(self._obj, name),
                      f"map {name.decode()}")
        return int(self.lib.bpf_map__fd(m))

    def _update(self, fd: int, key: int, value: Any) -> None:
        k = C.c_uint32(key)
        rc = self.lib.bpf_map_update_elem(fd, C.byref(k), C.byref(value), 0)
        if rc:
            raise ProbeUnavailable(f"updating a probe map failed: {os.strerror(-rc or 22)}")

    def set_events(self, names: Iterable[str]) -> frozenset[str]:
        """Capture exactly these event types (unknown names are ignored); returns them."""
        wanted = frozenset(n for n in names if n in BY_NAME)
        for name, defn in BY_NAME.items():
            on = name in wanted
            if on != (name in self.enabled) or not self.enabled:
                self._update(self._table_fd, defn.nr, descriptor(defn, on))
        self.enabled = wanted
        return wanted

    def counters(self) -> KernelCounters:
        """Per-CPU emitted and dropped record counts."""
        values = []
        for key in (0, 1):
            arr = (C.c_uint64 * self.ncpus)()
            k = C.c_uint32(key)
            self.lib.bpf_map_lookup_elem(self._counters_fd, C.byref(k), arr)
            values.append(tuple(int(v) for v in arr))
        return KernelCounters(values[0], values[1])

    def close(self) -> None:
        lib = self.lib
        for link in self._links:
            lib.bpf_link__destroy(link)
        self._links = []
        if self._obj is not None:
            lib.bpf_object__close(self._obj)
            self._obj = None
