"""The source's settings, read once from ``init_config`` (validated by the plugin's schema).

Upstream's keys keep upstream's defaults (``sslCertificate``, ``maxEventSize``,
``webhookMaxBatchSize``; ``useAsync`` is accepted and means nothing here). The other keys are
falconet's: TLS with separate key and client-CA files, a bearer token, the webhook's read timeout
and the bound on events waiting for evaluation. Defaults are filled here, not in the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_QUEUED_EVENTS",
    "DEFAULT_READ_TIMEOUT_S",
    "DEFAULT_SSL_CERTIFICATE",
    "DEFAULT_WEBHOOK_MAX_BATCH_SIZE",
    "Settings",
    "SourceError",
]

#: upstream's defaults (``config.go``)
DEFAULT_SSL_CERTIFICATE = "/etc/falco/falco.pem"
DEFAULT_MAX_EVENT_SIZE = 262144
DEFAULT_WEBHOOK_MAX_BATCH_SIZE = 12582912
#: falconet's: how long one request body may take to arrive, and how many received events may
#: wait for the engine (upstream buffers 50 requests; the API server batches up to 400 events)
DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_MAX_QUEUED_EVENTS = 20000


class SourceError(Exception):
    """The source cannot be opened as configured; the message says what to fix."""


@dataclass(frozen=True)
class Settings:
    """What the readers and the webhook need, with defaults filled in."""

    ssl_certificate: str = DEFAULT_SSL_CERTIFICATE
    ssl_key: str = ""
    ssl_client_ca: str = ""
    #: the bearer token a webhook client must send ("" accepts any client)
    webhook_token: str = ""
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    max_batch_size: int = DEFAULT_WEBHOOK_MAX_BATCH_SIZE
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS

    @classmethod
    def from_init_config(cls, config: Mapping[str, Any]) -> Settings:
        """Settings of a validated ``init_config``. Reads ``webhookTokenFile`` now, so a
        missing or empty token file stops start-up instead of letting every client in."""
        token = str(config.get("webhookToken", "") or "")
        token_file = str(config.get("webhookTokenFile", "") or "")
        if token and token_file:
            raise SourceError("init_config: set webhookToken or webhookTokenFile, not both")
        if token_file:
            try:
                token = Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SourceError(f"webhookTokenFile: cannot read {token_file}: "
                                  f"{exc.strerror or exc}") from None
            if not token:
                raise SourceError(f"webhookTokenFile: {token_file} is empty")
        return cls(
            ssl_certificate=str(config.get("sslCertificate") or DEFAULT_SSL_CERTIFICATE),
            ssl_key=str(config.get("sslKey", "") or ""),
            ssl_client_ca=str(config.get("sslClientCA", "") or ""),
            webhook_token=token,
            max_event_size=int(config.get("maxEventSize", DEFAULT_MAX_EVENT_SIZE)),
            max_batch_size=int(config.get("webhookMaxBatchSize",
                                          DEFAULT_WEBHOOK_MAX_BATCH_SIZE)),
            read_timeout_s=float(config.get("webhookReadTimeout", DEFAULT_READ_TIMEOUT_S)),
            max_queued_events=int(config.get("webhookMaxQueuedEvents",
                                             DEFAULT_MAX_QUEUED_EVENTS)),
        )
