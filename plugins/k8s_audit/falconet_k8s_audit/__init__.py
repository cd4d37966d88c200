"""falconet's k8saudit plugin: Kubernetes audit events (source ``k8s_audit``).

For now it brings the field table; the event source and the plugin registration come with the
plugin contract.
"""

from falconet_k8s_audit.fields import (
    PLUGIN_NAME,
    SOURCE,
    k8saudit_field_specs,
    k8saudit_field_table,
)

__all__ = ["PLUGIN_NAME", "SOURCE", "k8saudit_field_specs", "k8saudit_field_table"]
