"""falconet's k8saudit plugin: Kubernetes audit events (source ``k8s_audit``).

Registered through the ``falconet`` entry point (``plugin.py``) with its field table; the webhook
event source comes next. Until then ``falconet --source k8s_audit -e FILE`` replays JSON lines of
audit events through the core's generic reader.
"""

from falconet_k8s_audit.fields import (
    PLUGIN_NAME,
    SOURCE,
    k8saudit_field_specs,
    k8saudit_field_table,
)

__all__ = ["PLUGIN_NAME", "SOURCE", "k8saudit_field_specs", "k8saudit_field_table"]
