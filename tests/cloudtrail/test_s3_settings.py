"""The S3/SQS settings read from ``init_config``: upstream's ``s3Interval`` forms, falconet's
``since``/``until`` (which also bound a local replay), which log files a window keeps by the
time in their names, and the errors that stop start-up with what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from falconet_cloudtrail.remote import RemoteError, RemoteSettings
from falconet_cloudtrail.timebounds import (
    TimeBoundError,
    TimeBounds,
    parse_endpoint,
    parse_interval,
)

from .helpers import FALCO_YAML, parse_alerts, record, write_log

NOW = datetime(2024, 5, 10, 18, 30, 45, tzinfo=UTC)


def window(**config: Any) -> Any:
    return RemoteSettings.from_init_config(config).bounds.at(NOW)


@pytest.mark.parametrize(("interval", "start", "end"), [
    ("", "", ""),
    ("5d", "20240505T1830", ""),
    ("90m", "20240510T1700", ""),
    ("1w", "20240503T1830", ""),
    ("2021-03-30T18:07:17Z", "20210330T1807", ""),  # 18h: upstream's 12-hour layout refuses it
    ("5d-2d", "20240505T1830", "20240508T1830"),
    ("2023-04-05T06:00:00Z-2023-04-05T12:00:10Z", "20230405T0600", "20230405T1200"),
    ("2023-04-05T06:00:00Z-5d", "20230405T0600", "20240505T1830"),
    ("3d - 1d", "20240507T1830", "20240509T1830"),
])
def test_s3_interval_forms_select_file_name_times(interval: str, start: str, end: str) -> None:
    bounds = window(s3Interval=interval)
    assert (bounds.name_start, bounds.name_end) == (start, end)
    assert bounds.since_ns is None and bounds.until_ns is None


def test_a_window_keeps_files_by_the_time_in_their_names() -> None:
    bounds = window(s3Interval="2024-05-01T10:00:00Z-2024-05-01T11:00:00Z")
    name = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/" \
           "123456789012_CloudTrail_us-east-1_{}Z_x.json.gz"
    assert [bounds.accepts_key(name.format(t)) for t in
            ("20240501T0959", "20240501T1000", "20240501T1100", "20240501T1101")] == \
        [False, True, True, False]
    assert bounds.accepts_key("logs/not-named-by-cloudtrail.json")  # kept: no time to judge
    assert bounds.start_after_day() == "2024/05/01/"


def test_since_and_until_bound_events_and_prune_files() -> None:
    """A file written before ``since`` holds only earlier events; one written more than an
    hour after ``until`` is taken to hold only later ones."""
    bounds = window(since="2024-05-01T10:00:00Z", until="2024-05-01T12:30:00.5+02:00")
    assert bounds.since_ns == 1714557600_000000000
    assert bounds.until_ns == 1714559400_500000000
    assert (bounds.name_start, bounds.name_end) == ("20240501T1000", "20240501T1130")
    relative = window(since="2d")
    assert relative.name_start == "20240508T1830" and relative.until_ns is None


def test_the_narrower_of_s3_interval_and_since_wins() -> None:
    bounds = window(s3Interval="10d", since="2024-05-08T00:00:00Z")
    assert bounds.name_start == "20240508T0000"
    assert window(s3Interval="1d", since="10d").name_start == "20240509T1830"


@pytest.mark.parametrize(("config", "message"), [
    ({"s3Interval": "tomorrow"}, "invalid s3Interval \"tomorrow\": 'tomorrow' is neither a "
     "duration (5d, 12h, 30m: w d h m s) nor a time like 2021-03-30T18:07:17Z"),
    ({"s3Interval": "2024-05-01T10:00:00+02:00"}, "invalid s3Interval \"2024-05-01T10:00:00"
     "+02:00\": '2024-05-01T10:00:00+02:00' is neither a duration (5d, 12h, 30m: w d h m s) "
     "nor a time like 2021-03-30T18:07:17Z"),
    ({"s3Interval": "2024-05-08T00:00:00Z-2024-05-05T00:00:00Z"}, "s3Interval: start time "
     "2024-05-08T00:00:00Z must be before end time 2024-05-05T00:00:00Z"),
    ({"since": "2024-05-01T10:00:00"}, "invalid since \"2024-05-01T10:00:00\": "
     "'2024-05-01T10:00:00' has no time zone: end it with Z or an offset (+02:00)"),
    ({"until": "soon"}, "invalid until \"soon\": 'soon' is neither a duration (5d, 12h, 30m: "
     "w d h m s) nor an RFC 3339 time like 2024-05-01T10:00:00Z"),
    ({"since": "2024-05-08T12:00:00+02:00", "until": "2024-05-08T10:00:00Z"},
     "since 2024-05-08T10:00:00Z must be before until 2024-05-08T10:00:00Z"),
])
def test_bad_time_bounds_are_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(TimeBoundError) as caught:
        TimeBounds.from_init_config(config)
    assert str(caught.value) == message


def test_relative_ranges_are_checked_when_resolved() -> None:
    bounds = TimeBounds(interval=parse_interval("2d-5d"))
    with pytest.raises(TimeBoundError) as caught:
        bounds.at(NOW)
    assert str(caught.value) == ("s3Interval: start time 2024-05-08T18:30:45Z must be before "
                                 "end time 2024-05-05T18:30:45Z")
    with pytest.raises(TimeBoundError) as caught:
        TimeBounds(since=parse_endpoint("1d", strict=False),
                   until=parse_endpoint("2d", strict=False)).at(NOW)
    assert str(caught.value) == ("since 2024-05-09T18:30:45Z must be before until "
                                 "2024-05-08T18:30:45Z")


@pytest.mark.parametrize(("config", "message"), [
    ({"s3DownloadConcurrency": 0}, "invalid s3DownloadConcurrency: 0 (at least 1)"),
    ({"s3AccountList": "12345,678"}, "invalid s3AccountList \"12345,678\": give 12-digit "
     "account ids separated by commas"),
    ({"sqsWaitTime": 30}, "invalid sqsWaitTime: 30 (0 to 20 seconds)"),
    ({"s3PollInterval": -1}, "invalid s3PollInterval: -1.0 (seconds, 0: read once)"),
    ({"aws": {"maxAttempts": 0}}, "aws.maxAttempts must be at least 1"),
    ({"aws": "default"}, "init_config: aws must be an object ({profile, region, config, "
     "credentials, endpointUrl})"),
])
def test_bad_settings_stop_start_up(config: dict[str, Any], message: str) -> None:
    with pytest.raises(RemoteError) as caught:
        RemoteSettings.from_init_config(config)
    assert str(caught.value) == f"cloudtrail: {message}"


def test_defaults_are_upstreams() -> None:
    settings = RemoteSettings.from_init_config({"s3AccountList": " 111111111111 ,222222222222"})
    assert (settings.download_concurrency, settings.sqs_delete, settings.use_s3_sns,
            settings.poll_interval_s, settings.sqs_wait_s, settings.checkpoint) == \
        (32, True, False, 0.0, 20, True)
    assert settings.accounts == ("111111111111", "222222222222")


@pytest.mark.parametrize("bounds", [
    ["-o", "plugins[0].init_config.since=2024-05-01T10:01:00Z",
     "-o", "plugins[0].init_config.until=2024-05-01T10:03:00Z"],
    ["--since", "2024-05-01T10:01:00Z", "--until", "2024-05-01T12:03:00+02:00"],
], ids=["init_config", "command_line"])
def test_since_and_until_bound_a_local_replay_too(bounds: list[str], tmp_path: Path) -> None:
    """``falconet --source aws_cloudtrail -e DIR`` bounded by the plugin's ``init_config`` keys
    (given with ``-o``) or by falconet's ``--since``/``--until``: the same window."""
    write_log(tmp_path / "logs" / "a.json.gz", *[
        record("DescribeInstances", eventID=f"e{minute}",
               eventTime=f"2024-05-01T10:0{minute}:00Z") for minute in range(5)])
    (tmp_path / "rules.yaml").write_text(
        "- rule: Described\n  desc: d\n  condition: ct.name = DescribeInstances\n"
        "  output: described (id=%ct.id)\n  priority: NOTICE\n  source: aws_cloudtrail\n")
    config = tmp_path / "falco.yaml"
    config.write_text(FALCO_YAML.replace('init_config: ""', "init_config: {}").replace(
        "rules_files: []", f"rules_files: [{tmp_path / 'rules.yaml'}]"))
    result = subprocess.run(
        [sys.executable, "-m", "falconet.cli", "-c", str(config), "--source", "aws_cloudtrail",
         "-e", str(tmp_path / "logs"), *bounds],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    assert [a["output_fields"]["ct.id"] for a in parse_alerts(result.stdout)] == ["e1", "e2"]
