"""Runs ``falconet.app.main`` with the ticker test plugin installed (a subprocess entry for
tests/engine; the real command is ``falconet``)."""

from __future__ import annotations

import sys

from falconet import app, plugins
from tests.engine.ticker_plugin import ticker_plugin

_real_load = plugins.load_plugins


def _load(config, available=None, **kw):  # type: ignore[no-untyped-def]
    catalogue = dict(plugins.discover() if available is None else available)
    catalogue["ticker"] = ticker_plugin()
    return _real_load(config, catalogue, **kw)


app.load_plugins = _load  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(app.main(sys.argv[1:]))
