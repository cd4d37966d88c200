"""Falco's operational logging: level filter, console and JSON lines, destinations, laziness."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from falconet.config import load_config
from falconet.log import LEVELS, configure_logging, get_logger

CTIME = r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \d{4}"
ISO_UTC_MICROS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    configure_logging()


def json_config(*options: str) -> None:
    configure_logging(load_config(None, ["log_format=json", "log_syslog=false", *options],
                                  env={}))


def records(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines()]


def log_every_level() -> None:
    log = get_logger()
    for name in LEVELS:
        getattr(log, name)(f"at {name}")


@pytest.mark.parametrize("level, shown", [
    ("emergency", ["emergency"]),
    ("error", ["emergency", "alert", "critical", "error"]),
    ("notice", ["emergency", "alert", "critical", "error", "warning", "notice"]),
    ("debug", list(LEVELS)),
])
def test_log_level_keeps_that_level_and_more_severe(
        level: str, shown: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    json_config(f"log_level={level}")
    log_every_level()
    out = capsys.readouterr()
    assert [r["event"] for r in records(out.err)] == [f"at {n}" for n in shown]
    assert [r["level"] for r in records(out.err)] == shown
    assert out.out == ""  # stdout stays for alerts and results


def test_level_argument_overrides_config(capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(None, ["log_format=json", "log_syslog=false", "log_level=debug"], env={})
    configure_logging(config, level="critical")
    log_every_level()
    assert [r["level"] for r in records(capsys.readouterr().err)] == [
        "emergency", "alert", "critical"]


def test_unknown_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown log level verbose"):
        configure_logging(level="verbose")


def test_json_lines_have_timestamp_level_event_then_keys(
        capsys: pytest.CaptureFixture[str]) -> None:
    json_config()
    log = get_logger(source="k8s_audit").bind(plugin="k8saudit")
    log.warning("dropped %d events", 3, reason="oversized", sizes=[1, 2], path=None)
    (line,) = capsys.readouterr().err.splitlines()
    doc = json.loads(line)
    assert list(doc) == ["timestamp", "level", "event", "source", "plugin", "reason", "sizes",
                         "path"]
    assert re.fullmatch(ISO_UTC_MICROS, str(doc.pop("timestamp")))
    assert doc == {"level": "warning", "event": "dropped 3 events", "source": "k8s_audit",
                   "plugin": "k8saudit", "reason": "oversized", "sizes": [1, 2], "path": None}


def test_json_exception_carries_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    json_config()
    table: dict[str, int] = {}
    try:
        table["missing"]
    except KeyError:
        get_logger().exception("lookup failed")
    (doc,) = records(capsys.readouterr().err)
    assert doc["level"] == "error" and doc["event"] == "lookup failed"
    trace = str(doc["exception"])
    assert trace.startswith("Traceback (most recent call last):")
    assert trace.endswith("KeyError: 'missing'")


def test_console_line_is_upstreams_time_colon_message(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    get_logger(source="k8s_audit").info("listening", port=9765, path="/k8s audit")
    get_logger().debug("not at info")
    (line,) = capsys.readouterr().err.splitlines()
    assert re.fullmatch(CTIME + r": listening source=k8s_audit port=9765 path='/k8s audit'", line)


def test_console_iso_8601_time(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_config(None, ["time_format_iso_8601=true", "log_syslog=false"],
                                  env={}))
    get_logger().error("bad")
    (line,) = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000: bad", line)


def test_log_stderr_false_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_config(None, ["log_stderr=false", "log_syslog=false"], env={}))
    get_logger().emergency("nowhere")
    assert capsys.readouterr().err == ""


def test_reconfiguring_applies_to_existing_loggers(capsys: pytest.CaptureFixture[str]) -> None:
    log = get_logger(k=1)
    json_config("log_level=error")
    log.warning("hidden")
    json_config("log_level=warning")
    log.warning("shown")
    assert [r["event"] for r in records(capsys.readouterr().err)] == ["shown"]


def test_structlog_used_directly_follows_the_configuration(
        capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    json_config("log_level=warning")
    structlog.get_logger().info("hidden")
    structlog.get_logger().error("direct", n=2)
    (doc,) = records(capsys.readouterr().err)
    assert {k: v for k, v in doc.items() if k != "timestamp"} == {
        "level": "error", "event": "direct", "n": 2}


def test_bind_unbind() -> None:
    log = get_logger(a=1).bind(b=2)
    assert log.try_unbind("a", "zz").bind(c=3)._context == {"b": 2, "c": 3}
    with pytest.raises(KeyError):
        log.unbind("zz")
    assert log.new(x=0)._context == {"x": 0}


def test_structlog_is_imported_only_when_a_record_is_written() -> None:
    code = ("import sys; from falconet.log import configure_logging, get_logger; "
            "configure_logging(); log = get_logger(); log.debug('filtered'); "
            "print('structlog' in sys.modules); log.info('kept'); "
            "print('structlog' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "True"]
    assert re.fullmatch(CTIME + r": kept\n", done.stderr)


def test_log_syslog_sends_falco_priorities_with_ident_falco(tmp_path: Path) -> None:
    """syslog(3) writes to /dev/log: a private mount namespace points it at our socket."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to give syslog(3) a private /dev/log")
    sock_path = tmp_path / "log"
    code = ("from falconet.config import load_config; "
            "from falconet.log import configure_logging, get_logger; "
            "configure_logging(load_config(None, ['log_stderr=false'], env={})); "
            "log = get_logger(source='k8s_audit'); "
            "log.warning('dropped', n=1); log.debug('filtered'); log.info('started'); "
            "log.emergency('last')")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(sock_path))
        receiver.settimeout(60)
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", f"mount -t tmpfs none /dev && ln -s {sock_path} "
             f"/dev/log && exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}"],
            capture_output=True, text=True)
        if done.returncode != 0 and "mount" in done.stderr + done.stdout:
            pytest.skip(f"no private mount namespace here: {done.stderr.strip()}")
        assert done.returncode == 0, done.stderr
        received = [receiver.recv(4096).decode() for _ in range(3)]
    stamp = r"[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}"
    # <facility user (8) + Falco's level>; no time in the message itself, unlike stderr
    expected = [r"<12>{} falco: dropped source=k8s_audit n=1", r"<14>{} falco: started "
                r"source=k8s_audit", r"<8>{} falco: last source=k8s_audit"]
    assert [bool(re.fullmatch(e.format(stamp), r)) for e, r in zip(expected, received,
                                                                     strict=True)] == [
        True, True, True], received
