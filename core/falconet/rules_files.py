"""Turning ``rules_files`` entries (files and directories) into the ordered list Falco loads."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from falconet.log import get_logger

log = get_logger()

RULES_SUFFIXES = (".yml", ".yaml")


def expand_rules_paths(entries: Iterable[str | Path]) -> list[Path]:
    """Files as given; directories expanded to their ``.yml``/``.yaml`` files in alphabetical
    order (Falco >= 0.41). Missing entries are skipped, as Falco does, with a warning so that a
    typo does not go unnoticed."""
    out: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.suffix in RULES_SUFFIXES)
            )
        elif path.exists():
            out.append(path)
        else:
            log.warning("rules file not found, skipping", path=str(path))
    return out
