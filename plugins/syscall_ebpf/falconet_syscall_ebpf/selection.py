"""Kernel-side selection: which event types the probe writes, from what the rules can match.

Like upstream's adaptive syscalls: the union of the event types of the enabled ``syscall``
rules (the rule engine's inference, ``CompiledRule.event_types``), plus a base set the state
engine needs to follow processes and file descriptors even when no rule names them:

- processes: ``execve``, ``execveat``, ``clone``, ``clone3``, ``fork``, ``vfork``, and
  ``procexit`` (the scheduler's process exit: upstream's state engine removes threads on it);
- file descriptors: ``open``, ``openat``, ``openat2``, ``creat``, ``close``, ``dup``,
  ``dup2``, ``dup3``.

A rule that can match every event type (no ``evt.type`` restriction) selects every event type
the probe supports. Names the probe does not capture are ignored (their rules never match a
live event); ``unsupported`` lists them for the start-up log.
"""

from __future__ import annotations

from collections.abc import Iterable

from falconet_syscall_ebpf.syscalls import BY_NAME

__all__ = ["BASE_EVENTS", "SUPPORTED", "kernel_events", "unsupported"]

BASE_EVENTS = frozenset({
    "execve", "execveat", "clone", "clone3", "fork", "vfork", "procexit",
    "open", "openat", "openat2", "creat", "close", "dup", "dup2", "dup3",
})
SUPPORTED = frozenset(BY_NAME)


def rule_event_types(rules: Iterable[object] | None) -> frozenset[str] | None:
    """The union of the rules' event types; None when one of them (or the unknown set of
    rules: ``rules`` is None) can match any type."""
    if rules is None:
        return None
    out: set[str] = set()
    for rule in rules:
        types = getattr(rule, "event_types", None)
        if types is None:
            return None
        out.update(types)
    return frozenset(out)


def kernel_events(wanted: Iterable[str] | None) -> frozenset[str]:
    """The event types to enable in the probe for rules that can match ``wanted`` (None: any)."""
    if wanted is None:
        return SUPPORTED
    return frozenset(n for n in wanted if n in SUPPORTED) | BASE_EVENTS


def unsupported(wanted: Iterable[str] | None) -> list[str]:
    """Event types the rules name that the probe does not capture, sorted."""
    return [] if wanted is None else sorted(n for n in set(wanted) if n not in SUPPORTED)
