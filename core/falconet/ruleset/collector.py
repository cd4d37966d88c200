"""The collector: definitions as read, after define / append / override / enable.

It persists across files (upstream's ``rule_loader::collector``): each item keeps ``index``, the
counter value at its first definition (a redefinition keeps it, so rule evaluation order is the
order of first definition), and ``visibility``, the counter value at its latest define, append
or replace (macros and lists only see items whose index is lower).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from falconet.ruleset.context import Ctx, LoadError
from falconet.ruleset.model import Priority
from falconet.ruleset.results import ErrorCode, WarningCode
from falconet.ruleset.rule_exceptions import ExceptionInfo, validate_exception_info
from falconet.ruleset.versions import PluginRequirement, SinspVersion
from falconet.ruleset.yaml_source import ScalarAnchor

ERROR_NO_PREVIOUS_MACRO = (
    "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists"
)
ERROR_NO_PREVIOUS_LIST = (
    "List uses 'append' or 'override.items: append' but no list by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_APPEND = (
    "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_REPLACE = (
    "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists"
)


@dataclass(frozen=True, slots=True)
class CondPiece:
    """A stretch of a (possibly appended-to) condition and where it was written: ``ctx`` ends
    at the condition's YAML node (or at an exception), ``anchor`` maps offsets into the file."""

    start: int
    ctx: Ctx
    anchor: ScalarAnchor | None = None


@dataclass(slots=True)
class ListInfo:
    ctx: Ctx
    name: str
    items: list[str]
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class MacroInfo:
    ctx: Ctx
    cond_ctx: Ctx
    name: str
    cond: str
    pieces: list[CondPiece] = field(default_factory=list)
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class RuleInfo:
    ctx: Ctx
    name: str
    cond_ctx: Ctx
    output_ctx: Ctx
    cond: str = ""
    source: str = "syscall"
    desc: str = ""
    output: str = ""
    tags: set[str] = field(default_factory=set)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    priority: Priority = Priority.DEBUG
    capture: bool = False
    capture_duration: int = 0
    enabled: bool = True
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    pieces: list[CondPiece] = field(default_factory=list)
    unknown_source: bool = False
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class RuleUpdate:
    """An append or a selective replace: only the keys given are set."""

    ctx: Ctx
    name: str
    cond_piece: CondPiece | None = None
    source: str = ""
    cond: str | None = None
    output: str | None = None
    desc: str | None = None
    tags: set[str] | None = None
    exceptions: list[ExceptionInfo] | None = None
    priority: Priority | None = None
    capture: bool | None = None
    capture_duration: int | None = None
    enabled: bool | None = None
    warn_evttypes: bool | None = None
    skip_if_unknown_filter: bool | None = None

    def has_any_value(self) -> bool:
        return any(v is not None for v in (
            self.cond, self.output, self.desc, self.tags, self.exceptions, self.priority,
            self.enabled, self.capture, self.capture_duration, self.warn_evttypes,
            self.skip_if_unknown_filter,
        ))


def _fail(message: str, ctx: Ctx) -> LoadError:
    return LoadError(ErrorCode.LOAD_ERR_VALIDATE, message, ctx)


Warn = Callable[[WarningCode, str, Ctx], None]
#: source name -> "is this a valid left-hand side field?" (None: the source is unknown)
FieldValidator = Callable[[str], Callable[[str], bool] | None]


class Collector:
    def __init__(self, engine_version: SinspVersion) -> None:
        self.engine_version = engine_version
        self.cur_index = 0
        self.lists: dict[str, ListInfo] = {}
        self.macros: dict[str, MacroInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.required_engine_version: SinspVersion | None = None
        self.required_plugin_versions: list[list[PluginRequirement]] = []

    def _next(self) -> int:
        i = self.cur_index
        self.cur_index += 1
        return i

    # --- versions -----------------------------------------------------------------------------

    def define_engine_version(self, version: SinspVersion, ctx: Ctx) -> None:
        if not self.engine_version.compatible_with(version):
            raise _fail(
                f"Rules require engine version {version.as_string()}, but engine version is "
                f"{self.engine_version.as_string()}",
                ctx,
            )
        current = self.required_engine_version
        if current is None or current.key() < version.key():
            self.required_engine_version = version

    def define_plugin_versions(self, alternatives: list[PluginRequirement], ctx: Ctx) -> None:
        seen: set[str] = set()
        for req in alternatives:
            if not SinspVersion.parse(req.version).valid:
                raise _fail(f"Invalid required version '{req.version}' for plugin '{req.name}'",
                            ctx)
            if req.name in seen:
                raise _fail(
                    f"Defined multiple alternative version requirements for plugin '{req.name}'",
                    ctx,
                )
            seen.add(req.name)
        self.required_plugin_versions.append(alternatives)

    # --- lists and macros ---------------------------------------------------------------------

    def define_list(self, info: ListInfo) -> None:
        _define(self.lists, info, self._next())

    def append_list(self, info: ListInfo) -> None:
        prev = self.lists.get(info.name)
        if prev is None:
            raise _fail(ERROR_NO_PREVIOUS_LIST, info.ctx)
        prev.items.extend(info.items)
        prev.visibility = self._next()

    def define_macro(self, info: MacroInfo) -> None:
        _define(self.macros, info, self._next())

    def append_macro(self, info: MacroInfo) -> None:
        prev = self.macros.get(info.name)
        if prev is None:
            raise _fail(ERROR_NO_PREVIOUS_MACRO, info.ctx)
        prev.cond += " "
        for piece in info.pieces:
            prev.pieces.append(CondPiece(len(prev.cond) + piece.start, piece.ctx, piece.anchor))
        prev.cond += info.cond
        prev.visibility = self._next()

    # --- rules --------------------------------------------------------------------------------

    def _find_prev_rule(self, name: str, source: str, ctx: Ctx) -> RuleInfo | None:
        prev = self.rules.get(name)
        if prev is not None and prev.source and source and prev.source != source:
            raise _fail("Rule has been re-defined with a different source", ctx)
        return prev

    def define_rule(self, info: RuleInfo, validator: FieldValidator, warn: Warn) -> None:
        self._find_prev_rule(info.name, info.source, info.ctx)
        valid_field = validator(info.source)
        if valid_field is None:
            info.unknown_source = True
            warn(WarningCode.LOAD_UNKNOWN_SOURCE, f"Unknown source {info.source}, skipping",
                 info.ctx)
        for ex in info.exceptions:
            if not ex.fields.is_valid():
                raise _fail("Rule exception item must have fields property with a list of fields",
                            ex.ctx)
            validate_exception_info(ex, valid_field)
        _define(self.rules, info, self._next())

    def _prev_for_update(
        self, info: RuleUpdate, missing: str, validator: FieldValidator
    ) -> tuple[RuleInfo, Callable[[str], bool] | None]:
        prev = self._find_prev_rule(info.name, info.source, info.ctx)
        if prev is None:
            raise _fail(missing, info.ctx)
        return prev, None if prev.unknown_source else validator(prev.source)

    def append_rule(self, info: RuleUpdate, validator: FieldValidator) -> None:
        prev, valid_field = self._prev_for_update(info, ERROR_NO_PREVIOUS_RULE_APPEND, validator)
        if not info.has_any_value():
            raise _fail("Appended rule must have exceptions or condition property", info.ctx)
        if info.cond:
            prev.cond += " "
            if info.cond_piece is not None:
                p = info.cond_piece
                prev.pieces.append(CondPiece(len(prev.cond) + p.start, p.ctx, p.anchor))
            prev.cond += info.cond
        if info.output:
            prev.output += " " + info.output
        if info.desc:
            prev.desc += " " + info.desc
        if info.tags is not None:
            prev.tags |= info.tags
        for ex in info.exceptions or ():
            existing = next((e for e in prev.exceptions if e.name == ex.name), None)
            if existing is None:
                if not ex.fields.is_valid():
                    raise _fail("Rule exception must have fields property with a list of fields",
                                ex.ctx)
                if not ex.values:
                    raise _fail("Rule exception must have values property with a list of values",
                                ex.ctx)
                validate_exception_info(ex, valid_field)
                prev.exceptions.append(ex)
            else:
                if ex.fields.is_valid():
                    raise _fail(
                        "Can not append exception fields to existing exception, only values",
                        ex.ctx,
                    )
                if ex.comps.is_valid():
                    raise _fail(
                        "Can not append exception comps to existing exception, only values",
                        ex.ctx,
                    )
                existing.values.extend(ex.values)
        prev.visibility = self._next()

    def replace_rule(self, info: RuleUpdate, validator: FieldValidator) -> None:
        prev, _ = self._prev_for_update(info, ERROR_NO_PREVIOUS_RULE_REPLACE, validator)
        if not info.has_any_value():
            raise _fail("The rule must have at least one field that can be replaced", info.ctx)
        if info.cond is not None:
            prev.cond = info.cond
            prev.pieces = [info.cond_piece] if info.cond_piece is not None else []
        if info.output is not None:
            prev.output = info.output
        if info.desc is not None:
            prev.desc = info.desc
        if info.tags is not None:
            prev.tags = set(info.tags)
        if info.exceptions is not None:
            prev.exceptions = list(info.exceptions)
        for attr in ("priority", "capture", "capture_duration", "enabled", "warn_evttypes",
                     "skip_if_unknown_filter"):
            value = getattr(info, attr)
            if value is not None:
                setattr(prev, attr, value)
        prev.visibility = self._next()

    def enable_rule(self, name: str, enabled: bool, ctx: Ctx) -> None:
        prev = self.rules.get(name)
        if prev is None:
            raise _fail("Rule has 'enabled' key but no rule by that name already exists", ctx)
        prev.enabled = enabled


def _define(infos: dict, info: ListInfo | MacroInfo | RuleInfo, index: int) -> None:
    """Define or redefine: a redefinition replaces everything but keeps the first index."""
    prev = infos.get(info.name)
    info.index = prev.index if prev is not None else index
    info.visibility = index
    infos[info.name] = info
