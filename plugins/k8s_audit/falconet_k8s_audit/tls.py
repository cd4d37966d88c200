"""The webhook's server TLS context: upstream's single PEM, or separate certificate and key files,
and optionally client certificates checked against a CA (mutual TLS, so that only the API
server can post).

Failed handshakes (a plain-HTTP client, a client without an accepted certificate) never reach
the HTTP handler; asyncio drops them silently. The context's ``sslobject_class`` (the documented
hook for a custom ``SSLObject``) reports them, so they are counted and logged like any other
refused request.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path

from .settings import Settings, SourceError

__all__ = ["server_context"]


def server_context(settings: Settings,
                   on_handshake_error: Callable[[ssl.SSLError], None] | None = None
                   ) -> ssl.SSLContext:
    """A server context (TLS 1.2 or later) from ``sslCertificate`` (+ ``sslKey``, when the key
    is a separate file) and ``sslClientCA``. Raises SourceError naming the key and the file."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = settings.ssl_certificate, settings.ssl_key or None
    for name, path in (("sslCertificate", cert), ("sslKey", key)):
        if path is not None and not Path(path).is_file():
            raise SourceError(f"{name}: no such file: {path}")
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        what = f"{cert} and {key}" if key else f"{cert} (certificate and key in one PEM)"
        raise SourceError(f"sslCertificate: cannot load a certificate and key from {what}: "
                          f"{exc}") from None
    if settings.ssl_client_ca:
        try:
            context.load_verify_locations(cafile=settings.ssl_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"sslClientCA: cannot load CA certificates from "
                              f"{settings.ssl_client_ca}: {exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    if on_handshake_error is not None:
        context.sslobject_class = _reporting_sslobject(on_handshake_error)
    return context


def _reporting_sslobject(report: Callable[[ssl.SSLError], None]) -> type[ssl.SSLObject]:
    class ReportingSSLObject(ssl.SSLObject):
        """An SSLObject that tells ``report`` why a handshake failed, then fails as before."""

        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # not a failure: the handshake waits for more bytes
            except ssl.SSLError as exc:
                with contextlib.suppress(Exception):  # counting must not change the outcome
                    report(exc)
                raise

    return ReportingSSLObject
