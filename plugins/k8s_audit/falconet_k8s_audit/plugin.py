"""Registration of the ``k8saudit`` plugin through the ``falconet`` entry point.

Identity and init_config keys follow upstream's k8saudit (v0.18.0, the version upstream's
``k8s_audit_rules.yaml`` requires). The field table is registered now; the ``k8s_audit`` event
source (webhook and file reader) is added to this Plugin when it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from falconet.api import FieldTable, Plugin
from falconet.hookspecs import hookimpl
from falconet_k8s_audit.fields import PLUGIN_NAME, k8saudit_field_table

#: the upstream plugin version whose behaviour this package reproduces
COMPATIBLE_VERSION = "0.18.0"

#: upstream's defaults (``config.go``), for documentation: defaults are not filled in
DEFAULT_MAX_EVENT_SIZE = 262144
DEFAULT_WEBHOOK_MAX_BATCH_SIZE = 12582912

INIT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "sslCertificate": {
            "type": "string",
            "title": "SSL certificate",
            "description": "PEM file holding both the certificate and the private key, used "
            "when open_params is an https:// URL",
            "default": "/etc/falco/falco.pem",
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
            "description": "Largest webhook request body, in bytes; larger requests get 400",
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
        fields=_tables,
    )


@hookimpl
def falconet_register_plugins(register: Callable[[Plugin], None]) -> None:
    register(k8saudit_plugin())
