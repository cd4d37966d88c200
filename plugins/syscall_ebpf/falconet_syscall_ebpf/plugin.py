"""Registration of the ``syscall`` plugin through the ``falconet`` entry point (in progress)."""

from __future__ import annotations

from collections.abc import Callable

from falconet.api import Plugin
from falconet.hookspecs import hookimpl


@hookimpl
def falconet_register_plugins(register: Callable[[Plugin], None]) -> None:
    """Nothing registered until the source is complete."""
