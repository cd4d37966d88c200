"""The core's own plugins, registered through the ``falconet`` entry point like any other.

``json`` is upstream's json plugin (v0.7.4): extraction of ``json.*``/``jevt.*`` from every source
whose payload is JSON. Those fields already exist on every JSON source (``falconet.common_fields``
puts them in each table), so the plugin brings no table of its own: it exists so that falco.yaml
``load_plugins: [k8saudit, json]`` and rules files' ``required_plugin_versions: json`` resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from falconet.api import FieldTable, Plugin
from falconet.hookspecs import hookimpl

JSON_PLUGIN_NAME = "json"


def _no_tables() -> Iterable[FieldTable]:
    """The json fields are part of every JSON source's table already."""
    return ()


def json_plugin() -> Plugin:
    """Upstream's ``json`` plugin, as falconet provides it."""
    return Plugin(
        name=JSON_PLUGIN_NAME,
        version="0.7.4",
        compatible_version="0.7.4",
        description="Extract values from any JSON payload",
        contact="github.com/falcosecurity/plugins",
        init_schema={
            "type": "object",
            "properties": {
                "useAsync": {
                    "type": "boolean",
                    "description": "Accepted for compatibility; falconet extracts in-process "
                    "(upstream: the SDK's async extraction optimisation).",
                },
            },
            "additionalProperties": True,
        },
        fields=_no_tables,
    )


@hookimpl
def falconet_register_plugins(register: Callable[[Plugin], None]) -> None:
    register(json_plugin())
