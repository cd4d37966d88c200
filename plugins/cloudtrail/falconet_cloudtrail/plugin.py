"""Registration of the ``cloudtrail`` plugin through the ``falconet`` entry point.

Identity and init_config keys follow upstream's cloudtrail plugin (0.17; upstream's
``aws_cloudtrail_rules.yaml`` requires 0.10.0 or later of the same major version), so
configurations and rules written for Falco work unchanged. The plugin brings the
``aws_cloudtrail`` event source (``source.py``) and its field table (``fields.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from falconet.api import EventSource, FieldTable, Plugin
from falconet.hookspecs import hookimpl

from .fields import PLUGIN_NAME, SOURCE, cloudtrail_field_table
from .source import open_source, replay_source

#: the upstream plugin version whose behaviour this package reproduces
COMPATIBLE_VERSION = "0.17.1"

#: Falco's plugin registry id of cloudtrail
PLUGIN_ID = 2


def _text(title: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "title": title, "description": description, "default": "",
            **extra}


def _flag(title: str, description: str, default: bool) -> dict[str, Any]:
    return {"type": "boolean", "title": title, "description": description, "default": default}


AWS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "profile": _text("AWS Profile", "If non-empty overrides the AWS shared configuration "
                         "profile (e.g. 'default') and environment variables such as "
                         "AWS_PROFILE"),
        "region": _text("AWS Region", "If non-empty overrides the AWS region specified in the "
                        "profile (e.g. 'us-east-1') and environment variables such as "
                        "AWS_REGION"),
        "config": _text("Shared AWS Config File", "If non-empty overrides the AWS shared "
                        "configuration filepath (e.g. ~/.aws/config) and env variables such as "
                        "AWS_CONFIG_FILE"),
        "credentials": _text("Shared AWS Credentials File", "If non-empty overrides the AWS "
                             "shared credentials filepath (e.g. ~/.aws/credentials) and env "
                             "variables such as AWS_SHARED_CREDENTIALS_FILE"),
        "endpointUrl": _text("AWS endpoint URL", "falconet: if non-empty, the URL of an S3 and "
                             "SQS compatible service used instead of AWS (MinIO, LocalStack, "
                             "moto_server)"),
        "maxAttempts": {
            "type": "integer", "minimum": 1, "title": "AWS request attempts",
            "description": "falconet: attempts of a throttled or failing AWS request (with "
            "exponential backoff) before the request is given up and reported",
            "default": 8,
        },
    },
    "additionalProperties": True,
}

INIT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "s3DownloadConcurrency": {
            "type": "integer", "minimum": 1, "title": "S3 download concurrency",
            "description": "Controls the number of background downloads of S3 files",
            "default": 32,
        },
        "s3Interval": _text("S3 log interval", "Download log files over the specified interval "
                            "(e.g. 5d, 2021-03-30T18:07:17Z, 5d-2d; default: no interval)"),
        "sqsDelete": _flag("Delete SQS messages", "If true then the plugin will delete SQS "
                           "messages from the queue once their log files are read", True),
        "useAsync": _flag("Use async extraction", "Accepted for compatibility (an optimisation "
                          "of upstream's Go SDK)", True),
        "useS3SNS": _flag("Use S3 SNS", "If true then the plugin will expect SQS messages to "
                          "be S3 event notifications (SNS-wrapped or not) instead of CloudTrail "
                          "SNS notifications", False),
        "s3AccountList": _text("S3 account list", "A comma separated list of account IDs for "
                               "organizational Cloudtrails", pattern=r"^(?: *\d{12} *,?)*$"),
        "sqsOwnerAccount": _text("SQS owner account", "The AWS account ID that owns the SQS "
                                 "queue in case the queue is owned by a different account"),
        "aws": AWS_SCHEMA,
        "s3PollInterval": {
            "type": "number", "minimum": 0, "title": "S3 poll interval",
            "description": "falconet: list the bucket again every this many seconds and read "
            "the log files that appeared (each once); 0 reads the bucket once and ends, as "
            "upstream",
            "default": 0,
        },
        "sqsWaitTime": {
            "type": "integer", "minimum": 0, "maximum": 20, "title": "SQS wait time",
            "description": "falconet: seconds one SQS receive waits for messages (long polling)",
            "default": 20,
        },
        "checkpoint": _flag("Checkpoint", "falconet: remember which S3 objects and SQS "
                            "messages were read, so a restart neither misses nor repeats "
                            "records (s3:// and sqs:// inputs)", True),
        "checkpointFile": _text("Checkpoint file", "falconet: where the checkpoint is kept "
                                "(default: $XDG_STATE_HOME/falconet/cloudtrail/<open_params>"
                                "-<hash>.json, ~/.local/state when XDG_STATE_HOME is unset)"),
        "since": _text("Events since", "falconet: only events at or after this time "
                       "(RFC 3339, e.g. 2024-05-01T10:00:00Z, or a duration back from now: "
                       "5d, 12h)"),
        "until": _text("Events until", "falconet: only events before this time (same forms "
                       "as since)"),
    },
    # upstream's generated schema accepts unknown keys
    "additionalProperties": True,
}


def _tables() -> Iterable[FieldTable]:
    return [cloudtrail_field_table()]


def cloudtrail_plugin() -> Plugin:
    """The ``cloudtrail`` plugin object."""
    return Plugin(
        name=PLUGIN_NAME,
        version="0.1.0",
        compatible_version=COMPATIBLE_VERSION,
        description="reads cloudtrail JSON data saved to file in the directory specified in "
                    "the settings, in S3 buckets, or announced on an SQS queue",
        contact="github.com/falcosecurity/plugins/",
        init_schema=INIT_SCHEMA,
        source=EventSource(name=SOURCE, open=open_source, replay=replay_source,
                           json_payload=True, plugin_id=PLUGIN_ID),
        fields=_tables,
    )


@hookimpl
def falconet_register_plugins(register: Callable[[Plugin], None]) -> None:
    register(cloudtrail_plugin())
