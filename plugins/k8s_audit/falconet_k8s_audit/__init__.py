"""falconet's k8saudit plugin: Kubernetes audit events (source ``k8s_audit``).

Registered through the ``falconet`` entry point (``plugin.py``) with its field table and its
event source (``source.py``): the webhook the API server posts to (``webhook.py``, ``tls.py``),
a followed audit log (``tail.py``) and replays of files (``files.py``), all splitting documents
into events by upstream's rules (``parse.py``). See the README.
"""

from falconet_k8s_audit.fields import (
    PLUGIN_NAME,
    SOURCE,
    k8saudit_field_specs,
    k8saudit_field_table,
)

__all__ = ["PLUGIN_NAME", "SOURCE", "k8saudit_field_specs", "k8saudit_field_table"]
