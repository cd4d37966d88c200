"""What a rules load produces: compiled lists, macros and rules, ready for the runtime ruleset.

The loader (``loader.py``) builds these; the runtime (``ruleset.py``), the output formatter and
``falconet -L`` read them. They hold no YAML and no parser state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from falconet.condition.ast import Expr


class Priority(IntEnum):
    """Falco priorities; a lower number is more severe (``falco_common.cpp``)."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7

    @property
    def label(self) -> str:
        """The long name Falco prints: ``Critical``, ``Informational``..."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Case-insensitive, ``info`` accepted; raises ValueError("Invalid priority")."""
        key = str(text).strip().upper()
        if key == "INFO":
            return cls.INFORMATIONAL
        try:
            return cls[key]
        except KeyError:
            raise ValueError("Invalid priority") from None


@dataclass(slots=True)
class CompiledList:
    name: str
    items: list[str]  # as written
    items_compiled: list[str]  # after one level of list-in-list expansion
    used: bool = False
    lists: list[str] = field(default_factory=list)  # lists referenced by this list


@dataclass(slots=True)
class CompiledMacro:
    name: str
    condition: str  # as written (after append/override)
    ast: Expr | None  # parsed, list-substituted, macros resolved (upstream falco_macro.condition)
    used: bool = False
    macros: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CompiledRule:
    """One rule after append/override, list and macro resolution, exceptions and type checks."""

    name: str
    index: int  # evaluation order (position of the first definition)
    source: str
    desc: str
    condition: str  # as written (after append/override)
    condition_compiled: str  # upstream's normalized AST print, exceptions included
    ast: Expr  # fully resolved (no macros), exceptions included
    checked: Any  # falconet.condition.compiler.CheckedCondition
    output: str  # as written (after append/override), trimmed
    priority: Priority
    tags: frozenset[str] = frozenset()
    enabled: bool = True
    capture: bool = False
    capture_duration: int = 0  # ms
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    exception_names: list[str] = field(default_factory=list)
    exception_fields: list[str] = field(default_factory=list)
    exception_operators: list[str] = field(default_factory=list)
    event_types: frozenset[str] | None = None  # syscall only; None = every type
    macros: list[str] = field(default_factory=list)  # macros the condition used
    lists: list[str] = field(default_factory=list)  # lists the condition used
