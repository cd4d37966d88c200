"""Falco's operational logging (``log_level``, ``log_stderr``, ``log_syslog``), through structlog.

Why it looks the way it does:

- Levels are Falco's eight (``emergency`` .. ``debug``, numbered as syslog priorities, as
  upstream's ``falco_logger``); a record is kept when its number is <= the configured one.
- ``log_format: console`` (default) writes upstream's stderr line, ``<time>: <message>``, with the
  record's keys appended as ``key=value``; ``json`` writes one JSON document per line with
  ``timestamp``, ``level``, ``event`` and the keys. Syslog gets the line without the time, at the
  record's priority, with the ident ``falco`` (upstream never calls ``openlog``, so syslog names
  it after the program, ``falco``; falconet keeps that name for the filters users already have).
- The CLI imports this module on every run, and importing structlog costs ~200 ms (it pulls in
  rich). So nothing here imports structlog until a record passes the level filter: loggers from
  :func:`get_logger` are small proxies that compare two integers when disabled (structlog's
  filtering-bound-logger idea) and resolve one shared structlog logger on first use.
  Code that imports structlog itself still gets this configuration, as long as structlog was
  imported before :func:`configure_logging` ran or any falconet logger emitted.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falconet.config import Config

__all__ = ["LEVELS", "LOG_FORMATS", "Logger", "configure_logging", "get_logger"]

#: Falco's log levels and their syslog priorities (``falco_logger::level``).
LEVELS: dict[str, int] = {"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4,
                          "notice": 5, "info": 6, "debug": 7}
_NAMES = {n: name for name, n in LEVELS.items()}
LOG_FORMATS = ("console", "json")

# structlog's method names (for code calling structlog directly) as Falco levels
_METHOD_LEVELS = {"debug": 7, "info": 6, "msg": 6, "warning": 4, "warn": 4, "error": 3,
                  "err": 3, "exception": 3, "critical": 2, "fatal": 2}
# Falco level -> the stdlib level of structlog's filtering loggers (no notice method: warning)
_STDLIB_LEVELS = {0: 50, 1: 50, 2: 50, 3: 40, 4: 30, 5: 30, 6: 20, 7: 10}


class _State:
    """The current configuration, read on every log call (so reconfiguring applies at once)."""

    def __init__(self) -> None:
        self.threshold = LEVELS["info"]
        self.stderr = True
        self.syslog = False
        self.json = False
        self.iso_8601 = False
        self.shared: Any = None  # the structlog logger the proxies forward to, made on first use
        self.lock = threading.Lock()


_state = _State()


def configure_logging(config: Config | None = None, *, level: str | None = None) -> None:
    """Apply falco.yaml's logging keys; without ``config``: ``info`` to stderr, console lines.

    ``level`` (a Falco level name) overrides ``config.log_level``. An unknown level or format
    raises ``ValueError`` naming it.
    """
    name = level if level is not None else (config.log_level if config is not None else "info")
    threshold = LEVELS.get(name.lower())
    if threshold is None:
        raise ValueError(f"Unknown log level {name} (expected one of {', '.join(LEVELS)})")
    fmt = config.log_format if config is not None else "console"
    if fmt not in LOG_FORMATS:
        raise ValueError(f"Unknown log format {fmt} (expected one of {', '.join(LOG_FORMATS)})")
    with _state.lock:
        _state.threshold = threshold
        _state.stderr = config.log_stderr if config is not None else True
        _state.syslog = config.log_syslog if config is not None else False
        _state.json = fmt == "json"
        _state.iso_8601 = config.time_format_iso_8601 if config is not None else False
        _state.shared = None
    if _state.syslog:
        import syslog  # a C module: cheap, and only when asked for

        syslog.openlog("falco", 0, syslog.LOG_USER)
    if "structlog" in sys.modules:
        _configure_structlog()


def get_logger(**initial_values: Any) -> Logger:
    """A logger carrying ``initial_values`` as keys of every record (``source="k8s_audit"``)."""
    return Logger(initial_values)


# --------------------------------------------------------------------------------------------
# The proxy loggers


def _level_method(level: int) -> Callable[..., None]:
    def log(self: Logger, event: str, *args: Any, **kw: Any) -> None:
        if level <= _state.threshold:
            _emit(level, event, args, self._context, kw)

    log.__name__ = _NAMES[level]
    log.__doc__ = f"Log ``event`` at Falco level {_NAMES[level]!r}, with ``kw`` as its keys."
    return log


class Logger:
    """structlog's bound-logger interface with Falco's levels; disabled calls cost a compare."""

    __slots__ = ("_context",)

    def __init__(self, context: Mapping[str, Any] | None = None) -> None:
        self._context: dict[str, Any] = dict(context or {})

    emergency = _level_method(0)
    alert = _level_method(1)
    critical = _level_method(2)
    error = _level_method(3)
    warning = _level_method(4)
    notice = _level_method(5)
    info = _level_method(6)
    debug = _level_method(7)

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        """Log at ``error`` with the exception being handled (its traceback in ``exception``)."""
        if LEVELS["error"] <= _state.threshold:
            kw.setdefault("exc_info", True)
            _emit(LEVELS["error"], event, args, self._context, kw)

    def is_enabled_for(self, level: str) -> bool:
        return LEVELS[level] <= _state.threshold

    def bind(self, **kw: Any) -> Logger:
        return Logger({**self._context, **kw})

    def new(self, **kw: Any) -> Logger:
        return Logger(kw)

    def unbind(self, *keys: str) -> Logger:
        missing = [k for k in keys if k not in self._context]
        if missing:
            raise KeyError(missing[0])
        return self.try_unbind(*keys)

    def try_unbind(self, *keys: str) -> Logger:
        return Logger({k: v for k, v in self._context.items() if k not in keys})


def _emit(level: int, event: str, args: tuple[Any, ...], context: Mapping[str, Any],
          kw: Mapping[str, Any]) -> None:
    shared = _state.shared
    if shared is None:
        shared = _make_shared()
    shared.msg(event, *args, **{**context, **kw, "_falco_level": level})


def _make_shared() -> Any:
    import structlog

    with _state.lock:
        if _state.shared is None:
            _configure_structlog()
            # Unfiltered: the proxies filter with Falco's levels (notice has no structlog method).
            _state.shared = structlog.wrap_logger(
                None, wrapper_class=structlog.make_filtering_bound_logger(0))
        return _state.shared


# --------------------------------------------------------------------------------------------
# structlog's configuration: processors and the sink


def _configure_structlog() -> None:
    import structlog

    processors: list[Any] = [
        _set_level,
        structlog.processors.format_exc_info,
        _render_json if _state.json else _render_console,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_STDLIB_LEVELS[_state.threshold]),
        context_class=dict,
        logger_factory=_Sink,
        cache_logger_on_first_use=True,
    )


def _set_level(_logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
               ) -> MutableMapping[str, Any]:
    """``level`` from the proxy's Falco level, or from the structlog method that was called."""
    level = event_dict.pop("_falco_level", None)
    if level is None:
        level = _METHOD_LEVELS.get(method_name, LEVELS["info"])
    event_dict["level"] = level
    return event_dict


def _render_json(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]
                 ) -> tuple[tuple[str, str, int], dict[str, Any]]:
    import orjson

    level = event_dict.pop("level")
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    doc = {"timestamp": stamp, "level": _NAMES[level], "event": event_dict.pop("event", ""),
           **event_dict}
    line = orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return (line, line, level), {}


def _render_console(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]
                    ) -> tuple[tuple[str, str, int], dict[str, Any]]:
    level = event_dict.pop("level")
    text = str(event_dict.pop("event", ""))
    trace = event_dict.pop("exception", None)
    for key, value in event_dict.items():
        text += f" {key}={_kv_value(value)}"
    if trace:
        text += "\n" + str(trace).rstrip("\n")
    now = time.time()
    if _state.iso_8601:  # upstream: gmtime, "%FT%T%z"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now))
    else:  # upstream: localtime, "%a %b %d %H:%M:%S %Y"
        stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now))
    return (f"{stamp}: {text}", text, level), {}


def _kv_value(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in "\"'=" for c in text):
        return repr(text)
    return text


class _Sink:
    """Where rendered records go: stderr and/or syslog, as configured when written.

    ``sys.stderr`` is looked up per record, so redirected or captured stderr is honoured. A
    failing write is dropped: logging must never take down the component that logs.
    """

    def __init__(self, *_args: Any) -> None:
        pass

    def write(self, line: str, syslog_line: str, level: int) -> None:
        if _state.stderr:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
        if _state.syslog:
            import syslog

            with contextlib.suppress(OSError, ValueError):
                syslog.syslog(level, syslog_line)

    msg = info = debug = warning = warn = error = err = critical = fatal = exception = write
