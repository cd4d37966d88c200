"""Build the probe object: ``python3 -m falconet_syscall_ebpf.build [--force]``.

``vmlinux.h`` is generated from the running kernel's BTF with bpftool (into ``build/`` beside
the package, kept per kernel release), the probe is compiled with clang for the BPF target and
``llvm-strip -g`` drops its DWARF (the BTF that CO-RE needs stays). The object lands in the
package directory, written under a temporary name and renamed, so a process loading it never
sees half a file. Needs Debian's ``clang bpftool libbpf-dev llvm`` (``scripts/setup`` installs
them); a missing tool is named with the package that brings it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from falconet_syscall_ebpf.probe import BTF_PATH, DEFAULT_OBJECT

__all__ = ["BuildError", "build"]

PACKAGE = Path(__file__).resolve().parent
SOURCE = PACKAGE.parent / "bpf" / "probe.bpf.c"
WORK = PACKAGE.parent / "build"
TOOLS = {"clang": "clang", "bpftool": "bpftool", "llvm-strip": "llvm"}
_ARCH = {"x86_64": "x86", "aarch64": "arm64"}


class BuildError(Exception):
    """The probe could not be built; the message says what is missing."""


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise BuildError(f"{name} not found: apt-get install {TOOLS[name]} "
                         "(all of: clang bpftool libbpf-dev llvm)")
    return path


def _run(cmd: list[str], what: str, **kwargs: object) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise BuildError(f"{what} failed ({' '.join(cmd[:2])}...):\n{res.stderr.strip()}")


def vmlinux_header(work: Path = WORK) -> Path:
    """``vmlinux.h`` of the running kernel (generated once per kernel release)."""
    if not BTF_PATH.exists():
        raise BuildError(f"kernel has no BTF ({BTF_PATH}): cannot generate vmlinux.h")
    work.mkdir(parents=True, exist_ok=True)
    header = work / f"vmlinux-{platform.release()}.h"
    if not header.is_file() or header.stat().st_size == 0:
        tmp = header.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("w") as out:
            res = subprocess.run([_tool("bpftool"), "btf", "dump", "file", str(BTF_PATH),
                                  "format", "c"], stdout=out, stderr=subprocess.PIPE,
                                 text=True, check=False)
        if res.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise BuildError(f"bpftool btf dump failed: {res.stderr.strip()}")
        tmp.replace(header)
    link = work / "vmlinux.h"
    tmp_link = work / f"vmlinux.h.tmp{os.getpid()}"
    shutil.copyfile(header, tmp_link)
    tmp_link.replace(link)
    return link


def build(output: Path = DEFAULT_OBJECT, *, force: bool = False, work: Path = WORK) -> Path:
    """Compile ``bpf/probe.bpf.c`` into ``output``; skipped when the object is newer than the
    source (unless ``force``)."""
    if not SOURCE.is_file():
        raise BuildError(f"probe source not found: {SOURCE} (build from a source checkout)")
    if (not force and output.is_file()
            and output.stat().st_mtime >= SOURCE.stat().st_mtime):
        return output
    arch = _ARCH.get(platform.machine())
    if arch is None:
        raise BuildError(f"unsupported architecture {platform.machine()} (x86_64 only)")
    clang, strip = _tool("clang"), _tool("llvm-strip")
    header = vmlinux_header(work)
    if not Path("/usr/include/bpf/bpf_helpers.h").is_file():
        raise BuildError("libbpf headers not found (/usr/include/bpf): apt-get install "
                         "libbpf-dev")
    tmp = output.with_name(f".{output.name}.{os.getpid()}")
    try:
        _run([clang, "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
              "-Wno-pass-failed", f"-I{header.parent}", "-c", str(SOURCE), "-o", str(tmp)],
             "compiling the probe")
        _run([strip, "-g", str(tmp)], "stripping the probe")
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m falconet_syscall_ebpf.build",
                                     description="Build falconet's eBPF syscall probe.")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OBJECT)
    args = parser.parse_args(argv)
    try:
        out = build(args.output, force=args.force)
    except BuildError as exc:
        print(f"falconet-syscall-ebpf: {exc}", file=sys.stderr)
        return 1
    print(f"probe built: {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
