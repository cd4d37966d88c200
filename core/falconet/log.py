"""Logging setup: structlog to stderr, so stdout stays for results (validation, alerts)."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info") -> None:
    """Route structlog to stderr at ``level`` (Falco's log_level names are accepted)."""
    names = {"emergency": "critical", "alert": "critical", "critical": "critical",
             "error": "error", "warning": "warning", "notice": "info", "info": "info",
             "debug": "debug"}
    numeric = getattr(logging, names.get(level.lower(), "info").upper())
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
