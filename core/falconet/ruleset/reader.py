"""The reader: rules YAML -> collector calls, with upstream's structural checks and messages.

A port of ``rule_loader_reader.cpp`` behaviour: the item kind is chosen by the first key found
among required_engine_version, required_plugin_versions, list, macro and rule; every key is
decoded with yaml-cpp's conversions and upstream's error texts; the first error stops the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from falconet.ruleset import context as C
from falconet.ruleset.collector import (
    Collector,
    CondPiece,
    FieldValidator,
    ListInfo,
    MacroInfo,
    RuleInfo,
    RuleUpdate,
    Warn,
)
from falconet.ruleset.context import Ctx, LoadError
from falconet.ruleset.model import Priority
from falconet.ruleset.results import ErrorCode, WarningCode
from falconet.ruleset.rule_exceptions import Entry, ExceptionInfo
from falconet.ruleset.versions import PluginRequirement, SinspVersion
from falconet.ruleset.yaml_source import (
    MappingNode,
    Node,
    ScalarAnchor,
    ScalarNode,
    SequenceNode,
    as_text,
    decode_bool,
    decode_uint32,
    get,
    is_map,
    is_null,
    is_scalar,
    is_seq,
)

WARNING_APPEND = (
    "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under "
    "'override' instead."
)
WARNING_ENABLED = (
    "The standalone 'enabled' key usage is deprecated. The correct approach requires also a "
    "'replace' entry under the 'override' key (i.e. 'enabled: replace')."
)
ERROR_OVERRIDE_APPEND = (
    "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. "
    "'condition: append') under 'override' instead."
)
RGX_IDENTIFIER = "([a-zA-Z]+[a-zA-Z0-9_]*)"
RGX_BARESTR = "([^()\"'[:space:]=,]+)"

_LIST_KEYS = frozenset({"list", "items", "append", "override"})
_MACRO_KEYS = frozenset({"macro", "condition", "append", "override"})
_RULE_KEYS = frozenset({
    "rule", "condition", "output", "desc", "priority", "source", "enabled", "capture",
    "capture_duration", "warn_evttypes", "skip-if-unknown-filter", "tags", "exceptions",
    "override", "append",
})
_RULE_APPENDABLE = ("condition", "output", "desc", "tags", "exceptions")
_RULE_REPLACEABLE = ("condition", "output", "desc", "priority", "capture", "capture_duration",
                     "tags", "exceptions", "enabled", "warn_evttypes", "skip-if-unknown-filter")
# The order in which overridden keys are read (and so which missing one is reported first).
_RULE_OVERRIDE_ORDER = ("condition", "exceptions", "output", "desc", "tags", "priority", "capture",
                        "capture_duration", "enabled", "warn_evttypes", "skip-if-unknown-filter")
_BLANKS = " \t\n\v\f\r"
_PRIORITY_NAMES = {p.label.lower(): p for p in Priority} | {"info": Priority.INFORMATIONAL}

T = TypeVar("T")


def _invalid(message: str, ctx: Ctx) -> LoadError:
    return LoadError(ErrorCode.LOAD_ERR_YAML_VALIDATE, message, ctx)


def _is_identifier(name: str) -> bool:
    """Full match of ``[a-zA-Z]+[a-zA-Z0-9_]*`` (ASCII only, as RE2 POSIX)."""
    return bool(name) and name[0].isascii() and name[0].isalpha() and all(
        c.isascii() and (c.isalnum() or c == "_") for c in name
    )


def _is_barestr(name: str) -> bool:
    """Full match of ``[^()"'[:space:]=,]+``."""
    return bool(name) and not any(c in "()\"'=, \t\n\v\f\r" for c in name)


def _decode_str(text: str) -> str | None:
    return text


class ItemReader:
    """Reads one file's items into the collector; the loader calls ``read_item`` per item."""

    def __init__(self, collector: Collector, validator: FieldValidator, warn: Warn,
                 content: str) -> None:
        self.collector = collector
        self.validator = validator
        self.warn = warn
        self.content = content

    # --- generic decoding (decode_val_generic & co) ---------------------------------------------

    def decode(self, item: MappingNode, key: str, ctx: Ctx, conv: Callable[[str], T | None], *,
               optional: bool = False, can_be_empty: bool = False) -> T | None:
        """A scalar key: None when absent and optional (or empty and ``can_be_empty``)."""
        val = get(item, key)
        if val is None:
            if optional:
                return None
            raise _invalid(f"Item has no mapping for key '{key}'", ctx)
        if is_null(val):
            if can_be_empty:
                return None
            raise _invalid(f"Mapping for key '{key}' is empty", ctx)
        valctx = ctx.at(val, C.VALUE_FOR, key)
        if not is_scalar(val):
            raise _invalid("Value is not a scalar value", valctx)
        text = str(val.value)
        if not text:
            if can_be_empty:
                return None
            raise _invalid("Value must be non-empty", valctx)
        out = conv(text)
        if out is None:
            raise _invalid("Can't decode YAML scalar value", valctx)
        return out

    def decode_str(self, item: MappingNode, key: str, ctx: Ctx) -> str:
        out = self.decode(item, key, ctx, _decode_str)
        assert out is not None
        return out

    def decode_seq(self, item: MappingNode, key: str, ctx: Ctx, *,
                   optional: bool) -> list[str] | None:
        val = get(item, key)
        if val is None:
            if optional:
                return None
            raise _invalid(f"Item has no mapping for key '{key}'", ctx)
        valctx = ctx.at(val, C.VALUE_FOR, key)
        if not is_seq(val):
            raise _invalid("Value is not a sequence", valctx)
        out = []
        for v in val.value:
            if not is_scalar(v):
                raise _invalid("sequence value is not scalar", valctx.at(v, C.LIST_ITEM, ""))
            out.append(str(v.value))
        return out

    def decode_overrides(self, item: MappingNode, appendable: frozenset[str] | tuple[str, ...],
                         replaceable: frozenset[str] | tuple[str, ...],
                         ctx: Ctx) -> tuple[set[str], set[str]]:
        val = get(item, "override")
        out_append: set[str] = set()
        out_replace: set[str] = set()
        if val is None or not isinstance(val, MappingNode):
            if isinstance(val, SequenceNode) and val.value:
                raise LoadError(ErrorCode.LOAD_ERR_VALIDATE, "invalid node; this may result from "
                                "using a map iterator as a sequence iterator, or vice-versa",
                                Ctx.root(ctx.name))
            return out_append, out_replace
        overridectx = ctx.at(item, C.OVERRIDE, "")
        for k, v in val.value:
            key = self._as_text(k, ctx)
            operation = self._as_text(v, ctx)
            if operation == "append":
                if key not in appendable:
                    raise _invalid(f"Key '{key}' cannot be appended to, use 'replace' instead",
                                   overridectx.at(k, C.OVERRIDE, key))
                out_append.add(key)
            elif operation == "replace":
                if key not in replaceable:
                    raise _invalid(f"Key '{key}' cannot be replaced",
                                   overridectx.at(k, C.OVERRIDE, key))
                out_replace.add(key)
            else:
                allowed = ("append " if key in appendable else "") + (
                    "replace " if key in replaceable else "")
                raise _invalid(
                    f"Invalid override operation for key '{key}': '{operation}'. "
                    f"Allowed values are: {allowed}",
                    overridectx.at(v, C.VALUE_FOR, key),
                )
        return out_append, out_replace

    @staticmethod
    def _as_text(node: Node, ctx: Ctx) -> str:
        text = as_text(node)
        if text is None:  # yaml-cpp's TypedBadConversion, reported as a plain exception
            mark = node.start_mark
            raise LoadError(ErrorCode.LOAD_ERR_VALIDATE,
                            f"yaml-cpp: error at line {mark.line + 1}, column {mark.column + 1}: "
                            "bad conversion", Ctx.root(ctx.name))
        return text

    def warn_unknown_keys(self, item: MappingNode, expected: frozenset[str], ctx: Ctx) -> None:
        for k, _ in item.value:
            key = self._as_text(k, ctx)
            if key not in expected:
                self.warn(WarningCode.LOAD_UNKNOWN_KEY,
                          f"Unknown key '{key}'. The key will be ignored.", ctx)

    # --- items --------------------------------------------------------------------------------

    def read_item(self, item: Node, parent: Ctx) -> None:
        if not is_map(item):
            raise _invalid(
                "Unexpected element type. Each element should be a yaml associative array.",
                parent.at(item, C.RULES_CONTENT_ITEM, ""),
            )
        assert isinstance(item, MappingNode)
        if get(item, "required_engine_version") is not None:
            self._engine_version(item, parent)
        elif get(item, "required_plugin_versions") is not None:
            self._plugin_versions(item, parent)
        elif get(item, "list") is not None:
            self._list(item, parent)
        elif get(item, "macro") is not None:
            self._macro(item, parent)
        elif get(item, "rule") is not None:
            self._rule(item, parent)
        else:
            self.warn(WarningCode.LOAD_UNKNOWN_ITEM, "Unknown top level item",
                      parent.at(item, C.RULES_CONTENT_ITEM, ""))

    def _engine_version(self, item: MappingNode, parent: Ctx) -> None:
        ctx = parent.at(item, C.REQUIRED_ENGINE_VERSION, "")
        try:
            minor = self.decode(item, "required_engine_version", ctx, decode_uint32)
            assert minor is not None
            engine = self.collector.engine_version
            version = SinspVersion(engine.major, minor, engine.patch)
        except LoadError:
            text = self.decode_str(item, "required_engine_version", ctx)
            version = SinspVersion.parse(text)
            if not version.valid:
                raise _invalid(
                    f"Unable to parse engine version '{text}' as a semver string. Expected "
                    '"x.y.z" semver format.',
                    ctx,
                ) from None
        self.collector.define_engine_version(version, ctx)
        self.warn_unknown_keys(item, frozenset({"required_engine_version"}), ctx)

    def _plugin_versions(self, item: MappingNode, parent: Ctx) -> None:
        reqs = get(item, "required_plugin_versions")
        assert reqs is not None
        ctx = parent.at(reqs, C.REQUIRED_PLUGIN_VERSIONS, "")
        if not is_seq(reqs):
            raise _invalid("Value of required_plugin_versions must be a sequence", ctx)
        for plugin in reqs.value:
            tmp = ctx.at(plugin, C.REQUIRED_PLUGIN_VERSIONS_ENTRY, "")
            if not is_map(plugin):
                raise _invalid("Plugin version must be a mapping", tmp)
            name = self.decode_str(plugin, "name", tmp)
            pctx = ctx.at(plugin, C.REQUIRED_PLUGIN_VERSIONS_ENTRY, name)
            alternatives = [PluginRequirement(name, self.decode_str(plugin, "version", pctx))]
            alts = get(plugin, "alternatives")
            if alts is not None:
                if not is_seq(alts):
                    raise _invalid("Value of plugin version alternatives must be a sequence",
                                   pctx)
                for req in alts.value:
                    tmp = pctx.at(req, C.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE, "")
                    if not is_map(req):
                        raise _invalid("Plugin version alternative must be a mapping", tmp)
                    alt_name = self.decode_str(req, "name", tmp)
                    tmp = pctx.at(req, C.REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE, alt_name)
                    alternatives.append(
                        PluginRequirement(alt_name, self.decode_str(req, "version", tmp)))
            self.collector.define_plugin_versions(alternatives, pctx)
        self.warn_unknown_keys(item, frozenset({"required_plugin_versions"}),
                               parent.at(item, C.REQUIRED_PLUGIN_VERSIONS, ""))

    def _append_flag(self, item: MappingNode, ctx: Ctx) -> bool:
        append = bool(self.decode(item, "append", ctx, decode_bool, optional=True))
        if append:
            self.warn(WarningCode.LOAD_DEPRECATED_ITEM, WARNING_APPEND, ctx)
        return append

    def _list(self, item: MappingNode, parent: Ctx) -> None:
        name = self.decode_str(item, "list", parent.at(item, C.LIST, ""))
        ctx = parent.at(item, C.LIST, name)
        if not _is_barestr(name):
            self.warn(WarningCode.LOAD_INVALID_LIST_NAME,
                      "List has an invalid name. List names should match a regular expression: "
                      + RGX_BARESTR, ctx)
        items = self.decode_seq(item, "items", ctx, optional=False)
        info = ListInfo(ctx, name, items or [])
        append = self._append_flag(item, ctx)
        ov_append, ov_replace = self.decode_overrides(item, ("items",), ("items",), ctx)
        if append and (ov_append or ov_replace):
            raise _invalid(ERROR_OVERRIDE_APPEND, ctx)
        if append or "items" in ov_append:
            self.collector.append_list(info)
        else:
            self.collector.define_list(info)
        self.warn_unknown_keys(item, _LIST_KEYS, ctx)

    def _cond_piece(self, item: MappingNode, key: str, ctx: Ctx, item_type: str) -> CondPiece:
        node = get(item, key)
        assert isinstance(node, ScalarNode)
        return CondPiece(0, ctx.at(node, item_type, ""), ScalarAnchor.of(node, self.content))

    def _macro(self, item: MappingNode, parent: Ctx) -> None:
        name = self.decode_str(item, "macro", parent.at(item, C.MACRO, ""))
        ctx = parent.at(item, C.MACRO, name)
        if not _is_identifier(name):
            self.warn(WarningCode.LOAD_INVALID_MACRO_NAME,
                      "Macro has an invalid name. Macro names should match a regular expression: "
                      + RGX_IDENTIFIER, ctx)
        cond = self.decode_str(item, "condition", ctx)
        piece = self._cond_piece(item, "condition", ctx, C.MACRO_CONDITION)
        info = MacroInfo(ctx, piece.ctx, name, cond, [piece])
        append = self._append_flag(item, ctx)
        ov_append, ov_replace = self.decode_overrides(item, ("condition",), ("condition",), ctx)
        if append and (ov_append or ov_replace):
            raise _invalid(ERROR_OVERRIDE_APPEND, ctx)
        if append or "condition" in ov_append:
            self.collector.append_macro(info)
        else:
            self.collector.define_macro(info)
        self.warn_unknown_keys(item, _MACRO_KEYS, ctx)

    # --- rules --------------------------------------------------------------------------------

    def _rule(self, item: MappingNode, parent: Ctx) -> None:
        name = self.decode_str(item, "rule", parent.at(item, C.RULE, ""))
        ctx = parent.at(item, C.RULE, name)
        source = self.decode(item, "source", ctx, _decode_str, optional=True,
                             can_be_empty=True) or ""
        has_append = self._append_flag(item, ctx)
        ov_append, ov_replace = self.decode_overrides(item, _RULE_APPENDABLE, _RULE_REPLACEABLE,
                                                      ctx)
        if has_append and (ov_append or ov_replace):
            raise _invalid(ERROR_OVERRIDE_APPEND, ctx)
        if ov_append or ov_replace:
            self._rule_overrides(item, ctx, name, source, ov_append, ov_replace)
        elif has_append:
            self._rule_append(item, ctx, name, source)
        else:
            self._rule_define(item, ctx, name)
        self.warn_unknown_keys(item, _RULE_KEYS, ctx)

    def _rule_overrides(self, item: MappingNode, ctx: Ctx, name: str, source: str,
                        ov_append: set[str], ov_replace: set[str]) -> None:
        expected = {k for k in (*_RULE_APPENDABLE, *_RULE_REPLACEABLE) if get(item, k) is not None}

        def wanted(overrides: set[str], kind: str, key: str) -> bool:
            if key not in overrides:
                return False
            if key not in expected:
                raise _invalid(
                    f"An {kind} override for '{key}' was specified but '{key}' is not defined",
                    ctx)
            expected.discard(key)
            return True

        for kind, overrides in (("append", ov_append), ("replace", ov_replace)):
            if not overrides:
                continue
            upd = RuleUpdate(ctx, name)
            for key in _RULE_OVERRIDE_ORDER:
                if not wanted(overrides, kind, key):
                    continue
                if key == "condition":
                    upd.source = source
                    upd.cond = self.decode_str(item, "condition", ctx)
                    upd.cond_piece = self._cond_piece(item, "condition", ctx, C.RULE_CONDITION)
                elif key == "exceptions":
                    upd.exceptions = self._exceptions(item, ctx, append=kind == "append")
                else:
                    self._override_value(upd, item, key, ctx)
            if kind == "append":
                self.collector.append_rule(upd, self.validator)
            else:
                self.collector.replace_rule(upd, self.validator)
        for key in sorted(expected):
            node = get(item, key)
            raise _invalid(
                f"Unexpected key '{key}': no corresponding entry under 'override' is defined.",
                ctx.at(node, C.OVERRIDE, key),
            )

    def _override_value(self, upd: RuleUpdate, item: MappingNode, key: str, ctx: Ctx) -> None:
        """Decode one overridden rule key other than condition and exceptions into ``upd``."""
        if key in ("output", "desc"):
            setattr(upd, key, self.decode_str(item, key, ctx))
        elif key == "tags":
            upd.tags = set(self.decode_seq(item, "tags", ctx, optional=True) or ())
        elif key == "priority":
            upd.priority = self._priority(item, ctx)
        elif key == "capture_duration":
            upd.capture_duration = self.decode(item, key, ctx, decode_uint32)
        else:  # capture, enabled, warn_evttypes, skip-if-unknown-filter
            setattr(upd, key.replace("-", "_"), self.decode(item, key, ctx, decode_bool))

    def _rule_append(self, item: MappingNode, ctx: Ctx, name: str, source: str) -> None:
        upd = RuleUpdate(ctx, name, source=source)
        if get(item, "condition") is not None:
            upd.cond = self.decode_str(item, "condition", ctx)
            upd.cond_piece = self._cond_piece(item, "condition", ctx, C.RULE_CONDITION)
        if get(item, "exceptions") is not None:
            upd.exceptions = self._exceptions(item, ctx, append=True)
        self.collector.append_rule(upd, self.validator)

    def _priority(self, item: MappingNode, ctx: Ctx) -> Priority:
        text = self.decode_str(item, "priority", ctx)
        node = get(item, "priority")
        priority = _PRIORITY_NAMES.get(text.lower()) if text.isascii() else None
        if priority is None:
            raise _invalid("Invalid priority", ctx.at(node, C.RULE_PRIORITY, ""))
        return priority

    def _rule_define(self, item: MappingNode, ctx: Ctx, name: str) -> None:
        if all(get(item, k) is None for k in ("condition", "output", "desc", "priority")):
            enabled = self.decode(item, "enabled", ctx, decode_bool)
            self.warn(WarningCode.LOAD_DEPRECATED_ITEM, WARNING_ENABLED, ctx)
            assert enabled is not None
            self.collector.enable_rule(name, enabled, ctx)
            return
        cond = self.decode_str(item, "condition", ctx)
        piece = self._cond_piece(item, "condition", ctx, C.RULE_CONDITION)
        output = self.decode_str(item, "output", ctx)
        out_node = get(item, "output")
        output_ctx = ctx.at(out_node, C.RULE_OUTPUT, "")
        desc = self.decode_str(item, "desc", ctx)
        priority = self._priority(item, ctx)
        info = RuleInfo(ctx, name, piece.ctx, output_ctx, cond=cond, desc=desc,
                        output=output.strip(_BLANKS), priority=priority, pieces=[piece])

        def opt(key: str, conv: Callable[[str], Any], default: Any) -> Any:
            value = self.decode(item, key, ctx, conv, optional=True)
            return default if value is None else value

        info.source = opt("source", _decode_str, "syscall")
        info.enabled = opt("enabled", decode_bool, True)
        info.capture = opt("capture", decode_bool, False)
        info.capture_duration = opt("capture_duration", decode_uint32, 0)
        info.warn_evttypes = opt("warn_evttypes", decode_bool, True)
        info.skip_if_unknown_filter = opt("skip-if-unknown-filter", decode_bool, False)
        info.tags = set(self.decode_seq(item, "tags", ctx, optional=True) or ())
        info.exceptions = self._exceptions(item, ctx, append=False)
        self.collector.define_rule(info, self.validator, self.warn)

    # --- exceptions (read_rule_exceptions) ------------------------------------------------------

    def _exceptions(self, item: MappingNode, parent: Ctx, *, append: bool) -> list[ExceptionInfo]:
        exs = get(item, "exceptions")
        out: list[ExceptionInfo] = []
        if exs is None or is_null(exs):
            return out
        exes_ctx = parent.at(exs, C.EXCEPTIONS, "")
        if not is_seq(exs):
            raise _invalid("Rule exceptions must be a sequence", exes_ctx)
        for ex in exs.value:
            tmp = exes_ctx.at(ex, C.EXCEPTION, "")
            if not is_map(ex):
                raise _invalid("Rule exception must be a mapping", tmp)
            name = self.decode_str(ex, "name", tmp)
            ex_ctx = parent.at(ex, C.EXCEPTION, name)
            info = ExceptionInfo(ex_ctx, name)
            for _ in (e for e in out if e.name == name):
                self.warn(WarningCode.LOAD_EXCEPTION_NAME_NOT_UNIQUE,
                          f"Multiple definitions of exception '{name}' in the same rule", ex_ctx)
            self._entry(get(ex, "fields"), "fields", info.fields, ex_ctx, optional=append)
            self._entry(get(ex, "comps"), "comps", info.comps, ex_ctx, optional=True)
            values = get(ex, "values")
            if values is not None:
                vals_ctx = ex_ctx.at(values, C.EXCEPTION_VALUES, "")
                if not is_seq(values):
                    raise _invalid("Rule exception values must be a sequence", vals_ctx)
                for val in values.value:
                    entry = Entry()
                    self._entry(val, "", entry, vals_ctx.at(val, C.EXCEPTION_VALUE, ""),
                                optional=False)
                    info.values.append(entry)
            elif append:
                self.warn(WarningCode.LOAD_APPEND_NO_VALUES,
                          "Overriding/appending exception with no values", ex_ctx)
            out.append(info)
        return out

    def _entry(self, val: Node | None, key: str, out: Entry, ctx: Ctx, *, optional: bool) -> None:
        """decode_exception_info_entry: a scalar or a (nested) sequence; Null and maps leave
        the entry empty (and so invalid)."""
        if val is None:
            if optional:
                return
            raise _invalid(f"Item has no mapping for key '{key}'", ctx)
        valctx = ctx.at(val, C.VALUE_FOR, key)
        if is_scalar(val):
            if not val.value:
                raise _invalid("Value must be non-empty", valctx)
            out.is_list = False
            out.item = str(val.value)
        elif is_seq(val):
            out.is_list = True
            for v in val.value:
                sub = Entry()
                self._entry(v, "", sub, valctx.at(v, C.EXCEPTION, ""), optional=False)
                out.items.append(sub)
