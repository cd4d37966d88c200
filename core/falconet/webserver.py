"""The embedded webserver (falco.yaml ``webserver:``), as upstream's ``falco_webserver``.

Endpoints: ``k8s_healthz_endpoint`` (default ``/healthz``) answers ``{"status": "ok"}``;
``/versions`` the JSON of :func:`versions_info` (upstream's keys, compact with sorted keys, as
nlohmann's ``dump()`` writes them); ``/metrics`` the Prometheus text of
:func:`falconet.prometheus.render_prometheus`, only when ``webserver.prometheus_metrics_enabled``
*and* ``metrics.enabled`` are true (upstream requires both). With ``ssl_enabled`` the server speaks
HTTPS with ``ssl_certificate``, one PEM file holding the key and the certificate.

``threadiness`` is accepted and ignored: upstream sizes an HTTP thread pool with it, while here
every request is a read of plain counters answered on the engine's event loop, so a thread pool
would only add hand-offs.

Beyond upstream: when ``healthy()`` is false the health endpoint answers 503 with
``{"status": "unhealthy"}`` (Kubernetes then restarts the pod), and ``listen_port: 0`` binds a free
port (:attr:`WebServer.port` tells which).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from falconet import ENGINE_VERSION, __version__
from falconet.config import Metrics, Webserver
from falconet.prometheus import CONTENT_TYPE, render_prometheus
from falconet.stats import EngineStats

__all__ = ["HEALTHY_BODY", "WebServer", "WebServerError", "start_webserver", "versions_info"]

HEALTHY_BODY = b'{"status": "ok"}'  # upstream's exact bytes
UNHEALTHY_BODY = b'{"status": "unhealthy"}'
_JSON = {"Content-Type": "application/json"}  # as upstream: no charset parameter
#: the Falco plugin API version falconet's plugin contract corresponds to
PLUGIN_API_VERSION = "3.11.0"


class WebServerError(Exception):
    """The webserver could not start (address in use, bad certificate); the message says which."""


def versions_info(plugin_versions: Mapping[str, str] | None = None, *,
                  driver_api_version: str = "", driver_schema_version: str = "",
                  default_driver_version: str = "") -> dict[str, Any]:
    """What ``/versions`` answers, with upstream's keys (``versions_info::as_json``).

    falcoctl reads ``engine_version``/``engine_version_semver`` to pick compatible rules
    artifacts and ``plugin_versions`` for plugins. There is no libs nor kernel driver behind
    falconet's core: ``libs_version`` is empty, and the driver versions are the syscall plugin's
    to give (empty without it). ``plugin_versions`` appears only when a plugin is loaded, as
    upstream (nlohmann leaves the key out of an empty map).
    """
    info: dict[str, Any] = {
        "falco_version": __version__,
        "libs_version": "",
        "plugin_api_version": PLUGIN_API_VERSION,
        "driver_api_version": driver_api_version,
        "driver_schema_version": driver_schema_version,
        "default_driver_version": default_driver_version,
        "engine_version": ENGINE_VERSION.split(".")[1],
        "engine_version_semver": ENGINE_VERSION,
    }
    if plugin_versions:
        info["plugin_versions"] = dict(plugin_versions)
    return info


class WebServer:
    """A running webserver; ``stop()`` closes its socket and waits for open requests."""

    def __init__(self, runner: web.AppRunner, site: web.TCPSite, scheme: str) -> None:
        self._runner = runner
        self._site = site
        self.scheme = scheme

    @property
    def port(self) -> int:
        """The port bound (the configured one, or the one picked for ``listen_port: 0``)."""
        server = self._site._server  # aiohttp keeps the asyncio server here
        sockets = getattr(server, "sockets", None) or ()
        for sock in sockets:
            return int(sock.getsockname()[1])
        raise WebServerError("the webserver is not listening")

    async def stop(self) -> None:
        await self._runner.cleanup()


def _ssl_context(path: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile=path)  # key and certificate in the same PEM
    except FileNotFoundError:
        raise WebServerError(f"webserver.ssl_certificate: no such file: {path}") from None
    except (OSError, ssl.SSLError) as exc:
        raise WebServerError(f"webserver.ssl_certificate: cannot load a key and certificate "
                             f"from {path}: {exc}") from None
    return context


def _app(settings: Webserver, stats: EngineStats, versions: Mapping[str, Any],
         healthy: Callable[[], bool], metrics: Metrics | None) -> web.Application:
    versions_body = orjson.dumps(dict(versions), option=orjson.OPT_SORT_KEYS)
    version = str(versions.get("falco_version", __version__))
    rules_counters = metrics.rules_counters_enabled if metrics is not None else True

    async def healthz(_request: web.Request) -> web.Response:
        try:
            ok = healthy()
        except Exception:  # a failing probe reports unhealthy, not a 500
            ok = False
        return web.Response(body=HEALTHY_BODY if ok else UNHEALTHY_BODY,
                            status=200 if ok else 503, headers=_JSON)

    async def versions_handler(_request: web.Request) -> web.Response:
        return web.Response(body=versions_body, headers=_JSON)

    async def metrics_handler(_request: web.Request) -> web.Response:
        body = render_prometheus(stats, version=version, rules_counters=rules_counters)
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get(settings.k8s_healthz_endpoint, healthz)
    if settings.k8s_healthz_endpoint != "/versions":
        app.router.add_get("/versions", versions_handler)
    if settings.prometheus_metrics_enabled and metrics is not None and metrics.enabled:
        app.router.add_get("/metrics", metrics_handler)
    return app


async def start_webserver(settings: Webserver, stats: EngineStats, versions: Mapping[str, Any],
                          healthy: Callable[[], bool], *,
                          metrics: Metrics | None = None) -> WebServer:
    """Listen on ``listen_address:listen_port`` and serve until ``stop()``.

    ``versions`` is the ``/versions`` document (see :func:`versions_info`); ``metrics`` is
    falco.yaml's ``metrics:`` (``/metrics`` needs its ``enabled``). Raises
    :class:`WebServerError` naming the address when it cannot listen.
    """
    context = _ssl_context(settings.ssl_certificate) if settings.ssl_enabled else None
    runner = web.AppRunner(_app(settings, stats, versions, healthy, metrics), access_log=None,
                           handle_signals=False)
    await runner.setup()
    address = settings.listen_address.strip()
    site = web.TCPSite(runner, address, settings.listen_port, ssl_context=context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        shown = f"[{address}]" if ":" in address else address
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise WebServerError(f"webserver: cannot listen on {shown}:{settings.listen_port}: "
                             f"{reason}") from None
    return WebServer(runner, site, "https" if context is not None else "http")
