"""Local CloudTrail input: the walk of a file or directory, ``falconet --source aws_cloudtrail -e
PATH`` and the live source on a path (``open_params``), bad input counted and logged while the
rest is read, the progress bar on a terminal, and start-up errors."""

from __future__ import annotations

import asyncio
import gzip
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from falconet.api import SourceCounters
from falconet_cloudtrail.files import log_files, read_log_files
from falconet_cloudtrail.source import SourceError, open_source, replay_source

from .helpers import (
    FALCO_YAML,
    RecordingLog,
    log_file,
    parse_alerts,
    record,
    source_context,
    write_config,
    write_log,
)

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules" / "aws_cloudtrail_rules.yaml"


def names(files: list[Path], root: Path) -> list[str]:
    return [str(f.relative_to(root)) for f in files]


def test_walk_order_and_file_names(tmp_path: Path) -> None:
    """Go's filepath.Walk: names sorted per directory, each directory where it sorts; only
    *.json and *.json.gz."""
    for rel in ["b.json", "a/z.json.gz", "a/y/x.json", "a.json", "c.json.bz2", "d.txt",
                "A.json", "a/.hidden.json", "e.JSON"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"{}")
    assert names(log_files(tmp_path), tmp_path) == [
        "A.json", "a/.hidden.json", "a/y/x.json", "a/z.json.gz", "a.json", "b.json"]
    assert log_files(tmp_path / "b.json") == [tmp_path / "b.json"]


def test_walk_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        log_files(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no json files found in .* \(\*\.json"):
        log_files(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"notes.txt is not a CloudTrail log file"):
        log_files(tmp_path / "notes.txt")


def bad_tree(root: Path) -> None:
    """Good files around each kind of bad input."""
    write_log(root / "a.json", record("StopLogging", eventID="good-1",
                                      requestParameters={"name": "main"}))
    good = gzip.compress(log_file(record("CreateUser", eventID="lost")))
    (root / "sub").mkdir()
    (root / "sub" / "b.json.gz").write_bytes(good[:-20])  # truncated
    (root / "sub" / "c.json").write_bytes(b'{"Digest": "not a log"}')
    no_time = record("DeleteTrail", eventID="no-time")
    del no_time["eventTime"]
    write_log(root / "sub" / "d.json", no_time, record("DeleteTrail", eventID="good-2"))
    (root / "sub" / "e.txt").write_text("ignored")
    unreadable = root / "sub" / "f.json"
    unreadable.write_bytes(b"")
    unreadable.chmod(0)


def test_bad_input_is_counted_and_the_rest_read(tmp_path: Path) -> None:
    bad_tree(tmp_path)
    counters, log = SourceCounters(), RecordingLog()
    batches = list(read_log_files(log_files(tmp_path), counters, log))
    events = [e for b in batches for e in b]
    assert [e.payload["eventID"] for e in events] == ["good-1", "good-2"]
    as_root = os.geteuid() == 0  # root reads a file without permissions
    assert counters.rejected == {"unreadable_gzip": 1, "not_cloudtrail": 1, "bad_event_time": 1,
                                 **({"invalid_json": 1} if as_root else {"unreadable_file": 1})}
    assert counters.malformed == 4
    files = [kw["file"] for level, _, kw in log.records if level == "warning"]
    assert files == [str(tmp_path / "sub" / n) for n in ("b.json.gz", "c.json", "d.json",
                                                         "f.json")]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "falconet.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_replay_through_falconet_keeps_going_past_bad_input(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    bad_tree(logs)
    proc = run_cli("-c", str(write_config(tmp_path)), "-r", str(RULES),
                   "--source", "aws_cloudtrail", "-e", str(logs), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    alerts = parse_alerts(proc.stdout)
    assert [(a["rule"], a["output_fields"]["ct.id"]) for a in alerts] == [
        ("AWS CloudTrail logging stopped", "good-1"), ("AWS CloudTrail logging stopped", "good-2")]
    err = proc.stderr
    assert (f"unreadable gzip file skipped source=aws_cloudtrail reason=unreadable_gzip "
            f"file={logs}/sub/b.json.gz error='compressed file ended before the end-of-stream "
            "marker was reached'") in err
    assert (f"not a CloudTrail log file (no \"Records\" list), skipped source=aws_cloudtrail "
            f"reason=not_cloudtrail file={logs}/sub/c.json") in err
    assert (f"record without an RFC 3339 eventTime, skipped source=aws_cloudtrail "
            f"reason=bad_event_time file={logs}/sub/d.json record=1 eventID=no-time") in err
    assert "source input lost component=engine source=aws_cloudtrail malformed=4 dropped=0" in err


def test_the_live_source_reads_a_directory_then_ends(tmp_path: Path) -> None:
    """``open_params`` a path: the source reads it once and falconet stops at its end."""
    logs = tmp_path / "trail"
    write_log(logs / "2024" / "a.json.gz", record("DeleteTrail", eventID="t-1"))
    write_log(logs / "2024" / "b.json", record("DescribeInstances", eventID="t-2"),
              record("StopLogging", eventID="t-3"))
    config = FALCO_YAML.replace('open_params: ""', f'open_params: "{logs}"').replace(
        "rules_files: []", f"rules_files: [{RULES}]")
    proc = run_cli("-c", str(write_config(tmp_path, config)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [a["output_fields"]["ct.id"] for a in parse_alerts(proc.stdout)] == ["t-1", "t-3"]
    assert "Opening 'aws_cloudtrail' source with plugin 'cloudtrail'" in proc.stderr


@pytest.mark.parametrize(("params", "message"), [
    ("", "open_params is empty: give s3://bucket/prefix, sqs://queue-name, or the path of a "
         "CloudTrail log file or directory"),
    ("/nonexistent/trail", "cannot open /nonexistent/trail: no such file or directory"),
])
def test_start_up_errors(tmp_path: Path, params: str, message: str) -> None:
    config = FALCO_YAML.replace('open_params: ""', f'open_params: "{params}"').replace(
        "rules_files: []", f"rules_files: [{RULES}]")
    proc = run_cli("-c", str(write_config(tmp_path, config)), cwd=tmp_path)
    assert proc.returncode == 1
    assert f"Error: Could not open source 'aws_cloudtrail': {message}" in proc.stderr


def test_open_source_and_replay_give_the_same_events(tmp_path: Path) -> None:
    write_log(tmp_path / "x.json", record("A", eventID="1"), record("B", eventID="2"))
    write_log(tmp_path / "y.json.gz", record("C", eventID="3"))

    async def collect() -> list[str]:
        out = []
        async for batch in open_source(source_context(str(tmp_path))):
            out += [e.payload["eventID"] for e in batch]
        return out

    assert asyncio.run(collect()) == ["1", "2", "3"]
    ctx = source_context(str(tmp_path))
    assert [e.payload["eventID"] for b in replay_source(tmp_path, ctx) for e in b] == \
        ["1", "2", "3"]
    with pytest.raises(SourceError, match="open_params is empty"):
        open_source(source_context("  "))


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal stderr, the replay shows a bar counting files; piped, nothing."""
    logs = tmp_path / "logs"
    for n in range(3):
        write_log(logs / f"{n}.json", record(eventID=str(n)))
    args = [sys.executable, "-m", "falconet.cli", "-c", str(write_config(tmp_path)),
            "-r", str(RULES), "--source", "aws_cloudtrail", "-e", str(logs)]
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            cwd=tmp_path)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=60) == 0
    assert proc.stdout is not None
    proc.stdout.close()
    text = seen.decode("utf-8", "replace")
    assert "aws_cloudtrail" in text and "3/3" in text and " files " in text
    piped = run_cli(*args[3:], cwd=tmp_path)
    assert piped.returncode == 0 and "3/3" not in piped.stderr
