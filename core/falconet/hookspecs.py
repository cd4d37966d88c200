"""The plugin contract: the hooks a falconet plugin implements (with the types of ``falconet.api``).

Hooks are called once, at start-up, and hand the engine plain objects; nothing on the per-event
path goes through pluggy. A plugin module implements a hook with the ``hookimpl`` marker and is
found through the ``falconet`` entry-point group::

    from falconet.hookspecs import hookimpl

    @hookimpl
    def falconet_register_plugins(register):
        register(Plugin(name="demo", version="0.1.0", ...))
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from falconet.api import Plugin

#: the pluggy project name, and the entry-point group plugins are published under
PROJECT = "falconet"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "falconet_register_plugins", "hookimpl", "hookspec"]


@hookspec
def falconet_register_plugins(register: Callable[[Plugin], None]) -> None:
    """Register Plugin objects (identity, init schema, event source, field tables, parsers, outputs)
    by calling ``register(plugin)`` once per plugin."""
