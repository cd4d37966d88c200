"""The ``k8s_audit`` event source: ``open_params`` picks the reader, as upstream's ``Open``.

| ``open_params``               | stream                                                     |
|-------------------------------|------------------------------------------------------------|
| ``http://host:port/path``     | webhook server (``webhook.py``), never ends                |
| ``https://host:port/path``    | the same over TLS (``tls.py``)                             |
| ``file://PATH``               | follows the file from its end (``tail.py``), never ends    |
| ``PATH`` (no scheme)          | reads the file or directory once (``files.py``), then ends |

``open_source`` does everything that can fail before returning (settings, certificates, binding
the port, finding the file), so a misconfiguration stops falconet at start-up with a message.
``replay_source`` is the reader behind ``falconet --source k8s_audit -e PATH``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from falconet.api import EventBatch, SourceContext
from falconet.log import get_logger

from .files import audit_files, read_audit_files, replay_stream
from .parse import AuditParser, Reporter
from .settings import Settings, SourceError
from .tail import FileFollower, follow_stream
from .webhook import WebhookStream

__all__ = ["open_source", "replay_source"]


def _log(ctx: SourceContext) -> Any:
    if ctx.log is None:
        ctx.log = get_logger(source="k8s_audit")
    return ctx.log


def _file_url_path(url: str) -> Path:
    """``file:///abs/path`` -> ``/abs/path``; ``file://rel/path`` -> ``rel/path``."""
    parts = urlsplit(url)
    return Path(parts.netloc + parts.path)


def open_source(ctx: SourceContext) -> AsyncIterator[EventBatch]:
    """The live stream ``ctx.open_params`` names (see the module docstring)."""
    _log(ctx)
    settings = Settings.from_init_config(ctx.init_config)
    params = ctx.open_params.strip()
    if not params:
        raise SourceError("open_params is empty: give http(s)://host:port/path for the "
                          "webhook, file://PATH to follow a log, or PATH to read files")
    scheme = urlsplit(params).scheme.lower()
    if scheme in ("http", "https"):
        return WebhookStream(params, settings, ctx)
    parser = AuditParser(settings.max_event_size)
    reporter = Reporter(ctx.counters, ctx.log)
    if scheme == "file":
        follower = FileFollower(_file_url_path(params), settings.max_batch_size, reporter)
        follower.start()
        return follow_stream(follower, parser)
    path = Path(params)
    audit_files(path)  # FileNotFoundError now, not when the first batch is read
    return replay_stream(path, parser, reporter)


def replay_source(path: Path, ctx: SourceContext) -> Iterator[EventBatch]:
    """``falconet --source k8s_audit -e PATH``: the events of a file or directory."""
    _log(ctx)
    settings = Settings.from_init_config(ctx.init_config)
    return read_audit_files(path, AuditParser(settings.max_event_size),
                            Reporter(ctx.counters, ctx.log))
