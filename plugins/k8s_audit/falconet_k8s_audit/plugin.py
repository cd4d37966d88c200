"""Registration of the ``k8saudit`` plugin through the ``falconet`` entry point.

Identity and init_config keys follow upstream's k8saudit (v0.18.0, the version upstream's
``k8s_audit_rules.yaml`` requires), with falconet's own keys for what upstream lacks (TLS key and
client CA files, a bearer token, the webhook's read timeout and queue bound). The plugin brings
the ``k8s_audit`` event source (``source.py``) and its field table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from falconet.api import EventSource, FieldTable, Plugin
from falconet.hookspecs import hookimpl
from falconet_k8s_audit.fields import PLUGIN_NAME, SOURCE, k8saudit_field_table
from falconet_k8s_audit.settings import (
    DEFAULT_MAX_EVENT_SIZE,
    DEFAULT_MAX_QUEUED_EVENTS,
    DEFAULT_READ_TIMEOUT_S,
    DEFAULT_SSL_CERTIFICATE,
    DEFAULT_WEBHOOK_MAX_BATCH_SIZE,
)
from falconet_k8s_audit.source import open_source, replay_source

#: the upstream plugin version whose behaviour this package reproduces
COMPATIBLE_VERSION = "0.18.0"

#: Falco's plugin registry id of k8saudit
PLUGIN_ID = 1

INIT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "sslCertificate": {
            "type": "string",
            "title": "SSL certificate",
            "description": "PEM file holding both the certificate and the private key, used "
            "when open_params is an https:// URL; with sslKey, the certificate (chain) only",
            "default": DEFAULT_SSL_CERTIFICATE,
        },
        "sslKey": {
            "type": "string",
            "title": "SSL private key",
            "description": "falconet: PEM file of the private key, when sslCertificate holds "
            "only the certificate",
            "default": "",
        },
        "sslClientCA": {
            "type": "string",
            "title": "Client CA certificates",
            "description": "falconet: PEM file of the CA certificates that sign accepted client "
            "certificates; when set, https clients without such a certificate are refused "
            "(mutual TLS: only the API server can post)",
            "default": "",
        },
        "webhookToken": {
            "type": "string",
            "title": "Webhook bearer token",
            "description": "falconet: when set, webhook requests must carry "
            "'Authorization: Bearer <token>' (else 401); the API server's webhook kubeconfig "
            "sends it as users[].user.token",
            "default": "",
        },
        "webhookTokenFile": {
            "type": "string",
            "title": "Webhook bearer token file",
            "description": "falconet: a file holding the bearer token (read at start-up, "
            "surrounding whitespace ignored); an alternative to webhookToken",
            "default": "",
        },
        "webhookReadTimeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "title": "Webhook read timeout",
            "description": "falconet: seconds a webhook request body may take to arrive; a "
            "slower client gets 408 and is disconnected",
            "default": DEFAULT_READ_TIMEOUT_S,
        },
        "webhookMaxQueuedEvents": {
            "type": "integer",
            "minimum": 1,
            "title": "Webhook queue bound",
            "description": "falconet: most received audit events waiting for evaluation; "
            "while the engine is that far behind, webhook requests get 429 with Retry-After "
            "(the API server sends them again)",
            "default": DEFAULT_MAX_QUEUED_EVENTS,
        },
        "useAsync": {
            "type": "boolean",
            "title": "Use async extraction",
            "description": "Accepted for compatibility (an optimisation of upstream's Go SDK)",
            "default": True,
        },
        "maxEventSize": {
            "type": "integer",
            "minimum": 0,
            "title": "Maximum event size",
            "description": "Largest audit event, in bytes; larger events are dropped",
            "default": DEFAULT_MAX_EVENT_SIZE,
        },
        "webhookMaxBatchSize": {
            "type": "integer",
            "minimum": 0,
            "title": "Maximum webhook request size",
            "description": "Largest webhook request body, in bytes; larger requests get 413 "
            "(upstream: 400). In file sources, the longest line",
            "default": DEFAULT_WEBHOOK_MAX_BATCH_SIZE,
        },
    },
    # upstream's generated schema accepts unknown keys
    "additionalProperties": True,
}


def _tables() -> Iterable[FieldTable]:
    return [k8saudit_field_table()]


def k8saudit_plugin() -> Plugin:
    """The ``k8saudit`` plugin object."""
    return Plugin(
        name=PLUGIN_NAME,
        version="0.1.0",
        compatible_version=COMPATIBLE_VERSION,
        description="Read Kubernetes Audit Events and monitor Kubernetes Clusters",
        contact="github.com/falcosecurity/plugins",
        init_schema=INIT_SCHEMA,
        source=EventSource(name=SOURCE, open=open_source, replay=replay_source,
                           json_payload=True, plugin_id=PLUGIN_ID),
        fields=_tables,
    )


@hookimpl
def falconet_register_plugins(register: Callable[[Plugin], None]) -> None:
    register(k8saudit_plugin())
