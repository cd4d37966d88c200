"""Syscall capture throughput (issue 5): how many openat+close events per second the eBPF probe
and a Python consumer take with no drops.

A compiled generator (``bench/openclose.c``, built here with ``cc``) opens and closes a temporary
file at a fixed rate while the consumer, pinned to CPU 0 (``os.sched_setaffinity``), reads the
probe's ring buffer with the syscall source's own pieces (``LiveCapture``: the probe selecting
openat and close in the kernel, plus its base set; the mmap ring-buffer reader). Two consumers:

(a) ``count``: counts the records of each read (what recording with ``-w`` costs before the file
    write). One generator thread cannot make 500,000 traced syscalls/s on this machine kind (it
    makes about 400,000 with the probe attached), so it runs a thread on every CPU, the
    consumer's included: the consumer shares its CPU with a generator thread;
(b) ``rules``: makes every read a ``SyscallBatch`` and hands it to the engine exactly as the live
    source does (``Engine.process``: event numbers, the 10-rule ruleset below on openat/close
    arguments, alert formatting for matches). The generator runs on CPU 1 only: the consumer has
    one core to itself.

For each target rate it prints: events generated (2 per openat+close pair, from the generator's
own count), events received (everything read, which also includes other processes' openat/close
and the base set: the machine is shared), events the kernel dropped because the ring buffer was
full (the probe's per-CPU counters), the received rate, received over generated (the baseline:
1.000 or a little more when nothing is lost), and the consumer's CPU use (its CPU time over the
wall time: 100% means it had no time to spare). Targets: (a) >= 500,000 events/s and
(b) >= 250,000 events/s with 0 drops on one core. No assertion: the table is the result.

Run as root after scripts/setup: python3 bench/syscall_capture.py [--seconds S]
    [--rates 100000,250000,...] [--modes count,rules]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from falconet.app import build_rules
from falconet.config import load_config
from falconet.dispatch import Dispatcher
from falconet.engine import Engine, settle_heap
from falconet.plugins import load_plugins
from falconet.stats import EngineStats

HERE = Path(__file__).resolve().parent
#: target event rates (events/s: two per openat+close pair); 0: as fast as the generator goes
RATES = (100_000, 250_000, 500_000, 750_000, 1_000_000, 0)
CONSUMER_CPU = 0
#: where the generator's threads run, per mode (one thread per CPU listed)
GENERATOR_CPUS = {"count": (0, 1), "rules": (1,)}

RULES = textwrap.dedent("""\
    - list: credential_files
      items: [/etc/shadow, /etc/gshadow, /etc/sudoers, /root/.ssh/authorized_keys]
    - macro: opened
      condition: evt.type in (open, openat)
    - rule: Credential file opened
      desc: bench rule 1
      condition: opened and evt.arg.name in (credential_files)
      output: credential file %evt.arg.name opened by %proc.name (pid=%proc.pid)
      priority: WARNING
    - rule: SSH host key read
      desc: bench rule 2
      condition: opened and evt.arg.name startswith /etc/ssh/ssh_host_
      output: ssh host key %evt.arg.name read by %proc.name
      priority: WARNING
    - rule: Write below binary dir
      desc: bench rule 3
      condition: >-
        opened and evt.arg.flags contains O_CREAT and
        (evt.arg.name startswith /bin/ or evt.arg.name startswith /usr/bin/)
      output: file %evt.arg.name created below a binary dir by %proc.name
      priority: ERROR
    - rule: Private key opened
      desc: bench rule 4
      condition: opened and (evt.arg.name endswith .pem or evt.arg.name endswith id_rsa)
      output: private key %evt.arg.name opened by %proc.name
      priority: NOTICE
    - rule: Kernel memory opened
      desc: bench rule 5
      condition: opened and evt.arg.name in (/dev/mem, /dev/kmem, /proc/kcore)
      output: kernel memory %evt.arg.name opened by %proc.name
      priority: CRITICAL
    - rule: Failed open of root home
      desc: bench rule 6
      condition: opened and evt.failed = true and evt.arg.name startswith /root/
      output: failed open of %evt.arg.name by %proc.name (res=%evt.res)
      priority: NOTICE
    - rule: Web server reads proc
      desc: bench rule 7
      condition: >-
        opened and proc.name in (nginx, httpd, apache2) and evt.arg.name contains /environ
      output: web server %proc.name read %evt.arg.name
      priority: WARNING
    - rule: Container runtime socket opened
      desc: bench rule 8
      condition: opened and evt.arg.name endswith /docker.sock and user.uid != 0
      output: runtime socket opened by %proc.name (uid=%user.uid)
      priority: ERROR
    - rule: Close of a bad descriptor by a daemon
      desc: bench rule 9
      condition: evt.type = close and evt.res < 0 and proc.name in (sshd, systemd)
      output: close failed in %proc.name (fd=%evt.arg.fd res=%evt.res)
      priority: INFO
    - rule: Descriptor closed by a shell as root
      desc: bench rule 10
      condition: >-
        evt.type = close and user.uid = 0 and
        proc.name in (nc, ncat, socat) and evt.arg.fd > 1000
      output: high descriptor %evt.arg.fd closed by %proc.name
      priority: NOTICE
    """)


@dataclass
class Row:
    mode: str
    target: int
    generated: int
    received: int
    dropped: int
    seconds: float
    cpu: float
    alerts: int


def build_generator(workdir: Path) -> Path:
    exe = workdir / "openclose"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(HERE / "openclose.c"), "-lpthread"],
                   check=True)
    return exe


def rules_engine(workdir: Path) -> tuple[Engine, EngineStats]:
    """The 10 rules loaded as falconet loads them, and an engine with no outputs."""
    rules = workdir / "bench_rules.yaml"
    rules.write_text(RULES)
    config = load_config(None, [])
    plugins = load_plugins(config)
    built = build_rules(config, [str(rules)], plugins.registry, plugins.versions(),
                        announce=False)
    assert built.enabled == 10, built.enabled
    stats = EngineStats()
    return Engine(built.state, Dispatcher({}, stats, 0), stats), stats


def consume(capture: object, handle: Callable[[bytes], None],
            generator: subprocess.Popen[str]) -> tuple[float, float]:
    """Read until the generator has exited and the ring buffer stays empty, as the live source
    reads: everything waiting, then a sleep of POLL_MIN_S after an empty read (the probe does
    not wake readers for each record). Returns (wall seconds, CPU seconds) of this process."""
    from falconet_syscall_ebpf.live import POLL_MIN_S

    read = capture.read  # type: ignore[attr-defined]
    wall, cpu = time.monotonic(), time.process_time()
    quiet_since = None
    while True:
        chunk = read()
        if len(chunk):
            handle(chunk)
            quiet_since = None
            continue
        if generator.poll() is not None:
            now = time.monotonic()
            quiet_since = quiet_since or now
            if now - quiet_since > 0.2:
                break
        time.sleep(POLL_MIN_S)
    return time.monotonic() - wall, time.process_time() - cpu


def run_one(mode: str, target: int, seconds: float, exe: Path, target_file: Path,
            capture: object, engine: Engine | None, stats: EngineStats | None) -> Row:
    from falconet_syscall_ebpf.decode import SyscallBatch

    received = [0]
    boot_ns = capture.boot_ns  # type: ignore[attr-defined]
    if mode == "count":
        def handle(chunk: bytes) -> None:
            received[0] += capture.last_count  # type: ignore[attr-defined]
    else:
        assert engine is not None
        process = engine.process

        def handle(chunk: bytes) -> None:
            batch = SyscallBatch(chunk, capture.last_offsets,  # type: ignore[attr-defined]
                                 boot_ns=boot_ns)
            received[0] += len(batch)
            process("syscall", batch)

    while len(capture.read()):  # type: ignore[attr-defined]
        pass  # start from an empty ring buffer
    before = capture.counters()  # type: ignore[attr-defined]
    alerts_before = stats.alerts_total if stats is not None else 0
    cpus = [str(cpu) for cpu in GENERATOR_CPUS[mode]]
    generator = subprocess.Popen(
        [str(exe), str(target_file), str(target / 2), str(seconds), *cpus],
        stdout=subprocess.PIPE, text=True)
    wall, cpu = consume(capture, handle, generator)
    out, _ = generator.communicate()
    pairs, elapsed_ns = (int(x) for x in out.split())
    after = capture.counters()  # type: ignore[attr-defined]
    dropped = sum(after.dropped) - sum(before.dropped)
    alerts = (stats.alerts_total - alerts_before) if stats is not None else 0
    return Row(mode, target, 2 * pairs, received[0], dropped, elapsed_ns / 1e9,
               cpu / wall if wall else 0.0, alerts)


def print_row(row: Row) -> None:
    target = f"{row.target:,}" if row.target else "max"
    print(f"{row.mode:<6} {target:>10} {row.generated:>11,} {row.generated / row.seconds:>11,.0f} "
          f"{row.received:>11,} {row.dropped:>9,} {row.received / row.seconds:>11,.0f} "
          f"{row.received / max(1, row.generated):>9.3f} {row.cpu:>6.0%} {row.alerts:>6,}",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per rate (default 3)")
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES),
                        help="target events/s, comma-separated (0: as fast as possible)")
    parser.add_argument("--modes", default="count,rules", help="count, rules or both")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/syscall_capture.py: needs root (the eBPF probe)", file=sys.stderr)
        return 1
    if len(os.sched_getaffinity(0)) < 2:
        print("bench/syscall_capture.py: needs 2 CPUs (consumer and generator apart)",
              file=sys.stderr)
        return 1
    from falconet_syscall_ebpf.live import LiveCapture, ProbeUnavailable

    rates = [int(r) for r in args.rates.split(",")]
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="syscall_capture_") as tmp:
        workdir = Path(tmp)
        exe = build_generator(workdir)
        target_file = workdir / "target"
        target_file.write_bytes(b"x")
        engine, stats = rules_engine(workdir)
        os.sched_setaffinity(0, {CONSUMER_CPU})
        try:
            capture = LiveCapture(event_types=["openat", "close"])
        except ProbeUnavailable as exc:
            print(f"bench/syscall_capture.py: {exc}", file=sys.stderr)
            return 1
        settle_heap()
        with capture:
            print(f"probe captures: {', '.join(sorted(capture.enabled))}")
            print(f"consumer on CPU {CONSUMER_CPU}; {args.seconds:g} s per rate")
            for mode in modes:
                cpus = ", ".join(str(cpu) for cpu in GENERATOR_CPUS[mode])
                print(f"\n{mode}: generator threads on CPU {cpus}")
                print(f"{'mode':<6} {'target/s':>10} {'generated':>11} {'gen/s':>11} "
                      f"{'received':>11} {'dropped':>9} {'recv/s':>11} {'recv/gen':>9} "
                      f"{'cpu':>6} {'alerts':>6}")
                for rate in rates:
                    print_row(run_one(mode, rate, args.seconds, exe, target_file, capture,
                                      engine if mode == "rules" else None,
                                      stats if mode == "rules" else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
