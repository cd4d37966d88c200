"""ctypes bindings for the few libbpf calls the loader needs (the system ``libbpf.so.1``).

Only object open/load/close, program attach, map lookups/updates and map fds: the ring buffer is
read by ``ringbuf.py`` straight from its mmapped pages, so libbpf is not on the per-event path.
libbpf's own messages are captured (not printed) so that a failed load can be reported in one
line with the verifier's last words; ``libbpf_messages()`` returns them.
"""

from __future__ import annotations

import ctypes as C
import ctypes.util
import os
from collections import deque
from typing import Any

__all__ = ["LibbpfError", "libbpf", "libbpf_messages", "load_libbpf"]

_vp = C.c_void_p
_PRINT_FN = C.CFUNCTYPE(C.c_int, C.c_int, C.c_char_p, _vp)  # va_list passed on as a pointer
_LIBBPF_WARN, _LIBBPF_INFO = 0, 1

_messages: deque[str] = deque(maxlen=200)
_lib: Any = None
_print_ref: Any = None


class LibbpfError(OSError):
    """A libbpf call failed; ``errno`` and the message say which and why."""


def _setup(lib: Any) -> None:
    sig = {
        "bpf_object__open_file": (_vp, [C.c_char_p, _vp]),
        "bpf_object__load": (C.c_int, [_vp]),
        "bpf_object__close": (None, [_vp]),
        "bpf_object__find_program_by_name": (_vp, [_vp, C.c_char_p]),
        "bpf_object__find_map_by_name": (_vp, [_vp, C.c_char_p]),
        "bpf_program__attach": (_vp, [_vp]),
        "bpf_link__destroy": (C.c_int, [_vp]),
        "bpf_map__fd": (C.c_int, [_vp]),
        "bpf_map__set_max_entries": (C.c_int, [_vp, C.c_uint32]),
        "bpf_map_update_elem": (C.c_int, [C.c_int, _vp, _vp, C.c_uint64]),
        "bpf_map_lookup_elem": (C.c_int, [C.c_int, _vp, _vp]),
        "libbpf_get_error": (C.c_long, [_vp]),
        "libbpf_set_print": (_vp, [_vp]),
        "libbpf_num_possible_cpus": (C.c_int, []),
        "libbpf_strerror": (C.c_int, [C.c_int, C.c_char_p, C.c_size_t]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _install_printer(lib: Any) -> None:
    """Route libbpf's messages into ``_messages`` (vsnprintf over the va_list pointer)."""
    global _print_ref
    libc = C.CDLL(None)
    vsnprintf = libc.vsnprintf
    vsnprintf.argtypes = [C.c_char_p, C.c_size_t, C.c_char_p, _vp]
    vsnprintf.restype = C.c_int
    buf = C.create_string_buffer(4096)

    def printer(level: int, fmt: bytes, args: int) -> int:
        if level <= _LIBBPF_INFO:
            vsnprintf(buf, len(buf), fmt, args)
            text = buf.value.decode("utf-8", "replace").rstrip()
            if text:
                _messages.extend(line.removeprefix("libbpf: ") for line in text.splitlines())
        return 0

    _print_ref = _PRINT_FN(printer)
    lib.libbpf_set_print(C.cast(_print_ref, _vp))


def load_libbpf() -> Any:
    """The loaded ``libbpf.so.1`` with argument types set; OSError when it is not installed."""
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("bpf") or "libbpf.so.1"
        lib = C.CDLL(name, use_errno=True)
        _setup(lib)
        _install_printer(lib)
        _lib = lib
    return _lib


def libbpf() -> Any:
    return load_libbpf()


def libbpf_messages(last: int = 8) -> list[str]:
    """libbpf's latest messages (the verifier log of a failed load ends here)."""
    return list(_messages)[-last:]


def strerror(err: int) -> str:
    """``os.strerror``, and libbpf's own texts for its codes (4000 and up)."""
    if err >= 4000 and _lib is not None:
        buf = C.create_string_buffer(256)
        if _lib.libbpf_strerror(err, buf, len(buf)) == 0:
            return buf.value.decode("utf-8", "replace")
    return os.strerror(err)


def check_ptr(ptr: int | None, what: str) -> int:
    """A pointer a libbpf call returned, or LibbpfError with errno."""
    if not ptr:
        err = C.get_errno() or 22
        raise LibbpfError(err, f"{what}: {strerror(err)}")
    return ptr


def check_rc(rc: int, what: str) -> None:
    if rc < 0:
        raise LibbpfError(-rc, f"{what}: {strerror(-rc)}")
