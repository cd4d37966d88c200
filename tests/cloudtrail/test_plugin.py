"""The ``cloudtrail`` plugin as falconet finds and loads it: the ``falconet`` entry point,
upstream's identity (so rules' ``required_plugin_versions`` resolve), its source and fields, and
``init_config`` checked against upstream's keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from falconet.config import build_config
from falconet.plugins import PluginError, discover, load_plugins
from falconet_cloudtrail import plugin as plugin_module

from .helpers import write_config

JSON = {"name": "json", "library_path": "libjson.so", "init_config": ""}


def loaded(init_config: Any) -> Any:
    entry = {"name": "cloudtrail", "library_path": "libcloudtrail.so",
             "init_config": init_config, "open_params": "/var/log/cloudtrail"}
    return load_plugins(build_config({"plugins": [entry, JSON]}), discover())


def test_found_through_the_entry_point() -> None:
    found = discover()["cloudtrail"]
    assert found == discover(entry_points=False, modules=[plugin_module])["cloudtrail"]
    assert found.compatible_version == "0.17.1" and found.falco_version == "0.17.1"
    assert found.source is not None
    assert (found.source.name, found.source.plugin_id, found.source.json_payload) == \
        ("aws_cloudtrail", 2, True)
    assert found.capabilities == ["Event Sourcing", "Field Extraction"]


def test_loaded_with_its_fields_and_json() -> None:
    plugins = loaded({"sqsDelete": False, "aws": {"region": "eu-west-1"}})
    assert "aws_cloudtrail" in plugins.sources  # beside the syscall driver
    table = plugins.registry.table("aws_cloudtrail")
    assert {"ct.name", "s3.bucket", "ec2.imageids", "json.value", "evt.plugininfo"} <= set(
        table.fields)
    assert plugins.versions()["cloudtrail"] == "0.17.1"
    ctx = plugins.sources["aws_cloudtrail"].context(None)
    assert ctx.open_params == "/var/log/cloudtrail"
    assert ctx.init_config == {"sqsDelete": False, "aws": {"region": "eu-west-1"}}


@pytest.mark.parametrize(("init_config", "message"), [
    ({"s3DownloadConcurrency": 0}, "s3DownloadConcurrency: 0 is less than the minimum of 1"),
    ({"sqsDelete": "yes"}, "sqsDelete: 'yes' is not of type 'boolean'"),
    ({"s3AccountList": "1234"}, "s3AccountList: '1234' does not match"),
    ({"aws": {"profile": 3}}, "aws.profile: 3 is not of type 'string'"),
])
def test_init_config_is_checked(init_config: dict[str, Any], message: str) -> None:
    with pytest.raises(PluginError, match="plugin 'cloudtrail' init_config: ") as info:
        loaded(init_config)
    assert message in str(info.value)


def test_upstream_configurations_are_accepted() -> None:
    """Every key of upstream's struct, a JSON string, an empty string, and unknown keys."""
    loaded('{"s3DownloadConcurrency": 8, "s3Interval": "5d-2d", "useS3SNS": true, '
           '"s3AccountList": "111122223333, 444455556666", "sqsOwnerAccount": "111122223333", '
           '"useAsync": false, "aws": {"profile": "p", "region": "r", "config": "c", '
           '"credentials": "k"}, "somethingNew": 1}')
    loaded("")


def test_listed_by_the_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "falconet.cli", "-c", str(write_config(tmp_path)),
                           "--list-plugins"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert ("Name: cloudtrail\nDescription: reads cloudtrail JSON data saved to file in the "
            "directory specified in the settings, in S3 buckets, or announced on an SQS queue\n"
            "Contact: github.com/falcosecurity/plugins/\nVersion: 0.1.0\nCapabilities:\n"
            "  - Event Sourcing (ID=2, source='aws_cloudtrail')\n  - Field Extraction\n"
            ) in proc.stdout
    fields = subprocess.run([sys.executable, "-m", "falconet.cli", "-c",
                             str(write_config(tmp_path)), "--list=aws_cloudtrail", "-N"],
                            capture_output=True, text=True, timeout=120)
    names = fields.stdout.split()
    assert len([n for n in names if n.split(".")[0] in ("ct", "s3", "ec2", "ecr", "iam")]) == 73
    assert "ct.request.documentname" in names and "json.value" in names
