"""Operands: fields, ``val()`` and transformer chains, resolved against a field table.

An ``Operand`` is everything one side of a check extracts: a field (with its argument), a
constant used as a transformer argument, or a transformer applied to operands. It carries the
resulting type and list-ness (what libsinsp calls the *transformed field info*) and a canonical
``key`` so that the code generator extracts each distinct operand at most once per event.

Type rules and messages follow libsinsp: ``sinsp_filter_check::add_transformer`` and the
``sinsp_filter_transformer_*`` classes for ``tolower``/``toupper``/``b64``/``basename``/``len``,
``sinsp_filtercheck_multivalue_transformer.cpp`` for ``join``/``concat``/``getopt``, and
``plugin_filtercheck.cpp`` for plugin field arguments. Runtime functions take and return
``value | None`` (None = absent, which stays absent) and apply per element to list values.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from falconet.condition import ast
from falconet.condition.values import ascii_lower, ascii_upper, scan_int
from falconet.fields import ArgKind, Extractor, FieldSpec, FieldTable, FieldType, InlinePath

#: Fields whose unindexed form matches when ANY ancestor matches (``compare_full_a*``).
ANCESTOR_FIELDS = frozenset(
    {"proc.aname", "proc.apid", "proc.aexe", "proc.aexepath", "proc.acmdline", "proc.aenv"}
)
#: Syscall fields compared on both socket endpoints (``compare_ip/net/port``).
ENDPOINT_FIELDS = frozenset({"fd.ip", "fd.net", "fd.port", "fd.proto"})
SINGLE_TRANSFORMERS = ("toupper", "tolower", "b64", "storage", "basename", "len")
MULTI_TRANSFORMERS = ("join", "concat", "getopt")
#: What ``parser::supported_field_transformers(true)`` lists (used by the compiler warning).
TRANSFORMER_NAMES = (
    "val",
    "tolower",
    "toupper",
    "b64",
    "basename",
    "len",
    "join",
    "concat",
    "getopt",
)
_PLUGIN_CLASSES_IN_SYSCALL = ("container.", "k8s.")


class OperandError(ValueError):
    """An operand libsinsp refuses; ``args[0]`` is upstream's message, ``node`` the culprit."""

    def __init__(self, message: str, node: Any) -> None:
        super().__init__(message)
        self.node = node


@dataclass(frozen=True, eq=False)
class Operand:
    """One extraction: ``kind`` is ``field``, ``const``, ``apply`` (transformer over ``args``)."""

    kind: str
    key: str
    type: FieldType
    is_list: bool
    name: str  # the field name upstream prints in messages
    extract: Extractor | None = None  # kind == "field"
    value: Any = None  # kind == "const"
    fn: Callable[..., Any] | None = None  # kind == "apply": fn(*arg values) -> value | None
    args: tuple[Operand, ...] = ()
    spec: FieldSpec | None = None
    any_ancestor: bool = False
    endpoints: bool = False
    rhs_allowed: bool = True
    transformer_allowed: bool = True
    fields: tuple[str, ...] = field(default=())  # field names in order, with [arg]
    inline: InlinePath | None = None  # kind == "field": a JSON path the generator may read


# --- runtime transformer functions -----------------------------------------------------------


def _per_value(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Lift a scalar transform to ``None``-passing and per-element on tuples."""

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is tuple:
            out = tuple(fn(v) for v in value)
            return None if None in out else out
        return fn(value)

    return apply


def _basename(s: str) -> str:
    return s[s.rfind("/") + 1 :]


def b64_decode(data: bytes) -> bytes | None:
    """``Base64::decodeWithoutPadding``: up to two trailing ``=``, strict alphabet, zero
    trailing bits; None when invalid (the extraction then fails, i.e. the value is absent)."""
    if data.endswith(b"=="):
        data = data[:-2]
    elif data.endswith(b"="):
        data = data[:-1]
    if len(data) % 4 == 1:
        return None
    try:
        out = base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    # decodeLast: the unused low bits of the last character must be zero
    if base64.b64encode(out).rstrip(b"=") != data:
        return None
    return out


def _b64_str(s: str) -> str | None:
    out = b64_decode(s.encode("utf-8", "surrogateescape"))
    if out is None:
        return None
    return out.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")  # a C string


def _b64_bytes(b: bytes) -> bytes | None:
    out = b64_decode(b.rstrip(b"\0"))
    if out is None:
        return None
    # string_transformer appends a terminator unless the result already ends with one
    return out if out.endswith(b"\0") else out + b"\0"


def _strlen(s: str) -> int:
    """``strnlen`` of the UTF-8 bytes."""
    s = s.split("\0", 1)[0]
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogateescape"))


def _len(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is tuple:
        return len(value)
    if isinstance(value, bytes):
        return len(value)
    return _strlen(value)


_SINGLE_TYPES = {
    "tolower": (FieldType.CHARBUF, FieldType.FSPATH, FieldType.FSRELPATH),
    "toupper": (FieldType.CHARBUF, FieldType.FSPATH, FieldType.FSRELPATH),
    "basename": (FieldType.CHARBUF, FieldType.FSPATH, FieldType.FSRELPATH),
    "b64": (FieldType.CHARBUF, FieldType.BYTEBUF),
    "len": (FieldType.CHARBUF, FieldType.BYTEBUF, FieldType.FSPATH, FieldType.FSRELPATH),
}


def _single_fn(name: str, ftype: FieldType) -> Callable[[Any], Any]:
    if name == "len":
        return _len
    if name == "b64":
        return _per_value(_b64_bytes if ftype is FieldType.BYTEBUF else _b64_str)
    return _per_value({"tolower": ascii_lower, "toupper": ascii_upper, "basename": _basename}[name])


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value.split("\0", 1)[0]
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _join(sep: Any, values: Any) -> Any:
    if sep is None or values is None:
        return None
    if type(sep) is tuple:
        if not sep:
            return None
        sep = sep[0]
    return _to_text(sep).join(_to_text(v) for v in values)


def _concat(*values: Any) -> Any:
    if None in values:
        return None
    return "".join(_to_text(v) for v in values)


def _flatten(*values: Any) -> Any:
    """``list_check``: every element extracted (numbers printed), lists flattened."""
    if None in values:
        return None
    out: list[str] = []
    for v in values:
        if type(v) is tuple:
            out.extend(_to_text(x) for x in v)
        else:
            out.append(_to_text(v))
    return tuple(out)


def parse_optstring(optstring: str) -> tuple[frozenset[str], frozenset[str]]:
    """getopt(3) optstring -> (valid options, options taking a value); a leading ``:`` only
    changes error reporting."""
    valid: set[str] = set()
    with_arg: set[str] = set()
    i = 1 if optstring.startswith(":") else 0
    while i < len(optstring):
        opt = optstring[i]
        if opt != ":":
            valid.add(opt)
            if i + 1 < len(optstring) and optstring[i + 1] == ":":
                with_arg.add(opt)
                i += 1
        i += 1
    return frozenset(valid), frozenset(with_arg)


def getopt_values(argv: Sequence[str], optstring: str, selector: str | None) -> Any:
    """``sinsp_filter_multivalue_transformer_getopt::extract``: the option stream as a list
    (option, then its value when it takes one; ``?`` for unknown options), or with a selector
    the last value of that option (``""`` when its value is missing); None when absent."""
    valid, with_arg = parse_optstring(optstring)
    results: list[str] = []
    selected: str | None = None
    idx = 0
    while idx < len(argv):
        arg = argv[idx]
        if arg == "--":
            break
        if len(arg) > 2 and arg.startswith("--"):
            idx += 1
            continue
        if not arg or arg[0] != "-" or len(arg) == 1:
            break
        for i in range(1, len(arg)):
            opt = arg[i]
            if opt == ":" or opt not in valid:
                if selector is None:
                    results.append("?")
                continue
            match = selector is None or opt == selector
            if opt not in with_arg:
                if match:
                    if selector is None:
                        results.append(opt)
                    else:
                        selected = opt
                continue
            if i + 1 < len(arg):
                value: str | None = arg[i + 1 :]
            elif idx + 1 < len(argv):
                idx += 1
                value = argv[idx]
            else:
                value = None
            if match:
                if selector is not None:
                    selected = "" if value is None else value
                else:
                    results.append(opt if value is not None else "")
                    if value is not None:
                        results.append(value)
            break
        idx += 1
    if selector is not None:
        return selected
    return tuple(results)


def _getopt_fn(selector: str | None) -> Callable[[Any, Any], Any]:
    def getopt(argv: Any, optstring: Any) -> Any:
        if argv is None or optstring is None:
            return None
        if type(optstring) is tuple:
            if not optstring:
                return None
            optstring = optstring[0]
        argv = argv if type(argv) is tuple else (argv,)
        return getopt_values([_to_text(a) for a in argv], _to_text(optstring), selector)

    return getopt


# --- building operands -----------------------------------------------------------------------


def field_label(name: str, arg: str | None) -> str:
    """``name[arg]`` as ``create_filtercheck_name`` writes it (empty brackets kept)."""
    return name if arg is None else f"{name}[{arg}]"


def _plugin_style(table: FieldTable, spec: FieldSpec) -> bool:
    return table.source != "syscall" or spec.name.startswith(_PLUGIN_CLASSES_IN_SYSCALL)


def check_field_arg(table: FieldTable, spec: FieldSpec, label: str, arg: str | None) -> None:
    """Field-argument rules: plugin fields raise ``plugin_filtercheck``'s messages; libsinsp
    fields whose argument does not parse are simply unknown (the name length check fails)."""
    kind = spec.arg
    if not _plugin_style(table, spec):
        bad = (
            (kind is ArgKind.NONE and arg is not None)
            or (kind in (ArgKind.INDEX_REQUIRED, ArgKind.KEY_REQUIRED) and arg is None)
            or (
                kind in (ArgKind.INDEX, ArgKind.INDEX_REQUIRED)
                and arg is not None
                and not _is_int32(arg)
            )
        )
        if bad:
            raise ValueError(f"filter_check called with nonexistent field {label}")
        return
    if arg is None:
        if kind in (ArgKind.INDEX_REQUIRED, ArgKind.KEY_REQUIRED):
            raise ValueError(
                f"filter '{label}': {spec.name} requires an argument but none provided"
            )
        return
    if kind is ArgKind.NONE:
        raise ValueError(
            f"filter '{label}': {spec.name} does not allow nor require an argument "
            f"but one is provided: {arg}"
        )
    if kind in (ArgKind.INDEX, ArgKind.INDEX_REQUIRED):
        message = ""
        if not arg or (len(arg) > 1 and arg[0] == "0"):
            message = " has an invalid index argument starting with 0: "
        if not all(c in "0123456789" for c in arg):
            message = " has an invalid index argument not composed only by digits: "
        if not message and int(arg) >= 1 << 64:
            message = " has an invalid index argument not representable on 64 bit: "
        if message:
            raise ValueError(f"filter {label} {spec.name}{message}{arg}")


def _is_int32(text: str) -> bool:
    try:
        scan_int(text, signed=True, scan_bits=32)
    except ValueError:
        return False
    return True


def resolve_field(node: ast.Field, table: FieldTable) -> Operand:
    """A plain field: lookup (longest prefix, dotted argument), argument rules, extractor."""
    label = field_label(node.name, node.arg)
    found = table.lookup(node.name)
    if found is None or (found[1] is not None and node.arg is not None):
        raise OperandError(f"filter_check called with nonexistent field {label}", node)
    spec, suffix = found
    arg = node.arg if node.arg is not None else suffix
    try:
        check_field_arg(table, spec, label, arg)
    except ValueError as exc:
        raise OperandError(str(exc), node) from None
    any_ancestor = spec.name in ANCESTOR_FIELDS and (arg is None or arg == "-1")
    try:
        extract = spec.extractor(None if any_ancestor else arg)
    except ValueError as exc:  # a source refusing the argument with its own message
        raise OperandError(str(exc), node) from None
    return Operand(
        kind="field",
        key=f"{label}@{id(spec):x}",
        type=spec.type,
        is_list=spec.is_list,
        name=spec.name,
        extract=extract,
        spec=spec,
        any_ancestor=any_ancestor,
        endpoints=table.source == "syscall" and spec.name in ENDPOINT_FIELDS,
        rhs_allowed=spec.rhs_allowed,
        transformer_allowed=spec.transformer_allowed,
        fields=(field_label(node.name, node.arg or None),),
        inline=None if spec.inline is None or any_ancestor else spec.inline(arg),
    )


def _const(value: str) -> Operand:
    return Operand(
        kind="const",
        key=f"const:{value!r}",
        type=FieldType.CHARBUF,
        is_list=False,
        name="NA",
        value=value,
    )


def _apply(
    name: str,
    key: str,
    ftype: FieldType,
    is_list: bool,
    fn: Callable[..., Any],
    args: Sequence[Operand],
    label: str = "NA",
) -> Operand:
    return Operand(
        kind="apply",
        key=key,
        type=ftype,
        is_list=is_list,
        name=label,
        fn=fn,
        args=tuple(args),
        fields=tuple(f for a in args for f in a.fields),
    )


def resolve_operand(node: Any, table: FieldTable) -> Operand:
    """Resolve a Field, Transformer (incl. ``val``), Value or TransformerList node."""
    if isinstance(node, ast.Field):
        return resolve_field(node, table)
    if isinstance(node, ast.Value):
        return _const(node.value)
    if isinstance(node, ast.TransformerList):
        elems = [resolve_operand(c, table) for c in node.children]
        if not elems:
            raise OperandError("filter error: unexpected empty transformer list element", node)
        key = "list(" + ",".join(e.key for e in elems) + ")"
        return _apply("list", key, FieldType.CHARBUF, True, _flatten, elems)
    if isinstance(node, ast.Transformer):
        return _transformer(node, table)
    raise OperandError(f"filter error: unexpected {type(node).__name__} operand", node)


def _transformer(node: ast.Transformer, table: FieldTable) -> Operand:
    args = [resolve_operand(v, table) for v in node.values]
    name = node.name
    if name == "val":
        if node.arg is not None:
            raise OperandError(
                "filter error: transformer 'val' does not support field arguments", node
            )
        if not args:
            raise OperandError("filter error: found null child node on 'val' transformer", node)
        return args[0]
    if len(args) == 1:
        if node.arg is not None:
            raise OperandError(
                f"filter error: transformer '{name}' does not support field arguments", node
            )
        return apply_single(name, args[0], node)
    return _multi(name, args, node)


def apply_single(name: str, inner: Operand, node: Any) -> Operand:
    """``add_transformer``: the field must allow transformers and the current (transformed)
    type must be one the transformer takes."""
    if name not in SINGLE_TRANSFORMERS or name == "storage":
        raise OperandError(f"unknown field transfomer '{name}'", node)
    if not inner.transformer_allowed:
        raise OperandError(f"field '{inner.name}' does not support transformers", node)
    if name == "len" and inner.is_list:
        out_type, out_list = FieldType.UINT64, False
    elif inner.type in _SINGLE_TYPES[name]:
        out_type = FieldType.UINT64 if name == "len" else inner.type
        out_list = inner.is_list
    else:
        where = "list field" if inner.is_list else "field"
        raise OperandError(
            f"can't add field transformer: type '{inner.type.value}' is not supported by "
            f"'{name}' transformer applied on {where} '{inner.name}'",
            node,
        )
    fn = _single_fn(name, inner.type)
    return Operand(
        kind="apply",
        key=f"{name}({inner.key})",
        type=out_type,
        is_list=out_list,
        name=inner.name,
        fn=fn,
        args=(inner,),
        spec=inner.spec,
        rhs_allowed=inner.rhs_allowed,
        fields=inner.fields,
    )


def _multi(name: str, args: list[Operand], node: ast.Transformer) -> Operand:
    """join/concat/getopt. Argument types are checked on the transformed types (upstream checks
    the untransformed field info, which lets ``concat(len(x), ...)`` through)."""
    key = f"{name}(" + ",".join(a.key for a in args) + f")[{node.arg}]"

    def fail(message: str) -> OperandError:
        return OperandError(message, node)

    if name == "join":
        if len(args) != 2:
            raise fail("join() requires exactly 2 arguments: separator and list")
        if args[0].is_list:
            raise fail("join() first argument (separator) must be a single value, not a list")
        if not args[1].is_list:
            raise fail("join() second argument must be a list")
        if node.arg is not None:
            raise fail("transformer 'join' does not support field arguments")
        return _apply(name, key, FieldType.CHARBUF, False, _join, args)
    if name == "concat":
        if len(args) < 2:
            raise fail("concat() requires at least 2 arguments")
        if any(a.type is not FieldType.CHARBUF or a.is_list for a in args):
            raise fail("concat() arguments must be strings")
        if node.arg is not None:
            raise fail("transformer 'concat' does not support field arguments")
        return _apply(name, key, FieldType.CHARBUF, False, _concat, args)
    if name == "getopt":
        if len(args) != 2:
            raise fail("getopt() requires exactly 2 arguments: args list and optstring")
        if not args[0].is_list:
            raise fail("getopt() first argument must be a list")
        if args[1].is_list:
            raise fail("getopt() second argument (optstring) must be a single value")
        if args[0].type is not FieldType.CHARBUF or args[1].type is not FieldType.CHARBUF:
            raise fail("getopt() arguments must be strings")
        if node.arg is not None and len(node.arg) != 1:
            raise fail("getopt() field argument must be a single option character")
        label = "NA" if node.arg is not None else "INTERNAL"
        return _apply(
            name, key, FieldType.CHARBUF, node.arg is None, _getopt_fn(node.arg), args, label
        )
    if name in SINGLE_TRANSFORMERS:
        raise fail("unknown multivalue transformer")
    raise fail(f"unknown field transfomer '{name}'")


def standalone_extractor(op: Operand) -> Extractor:
    """A plain ``event -> value | None`` for an operand (outputs, tests); the compiled matchers
    inline this with per-event caching instead."""
    if op.kind == "field":
        assert op.extract is not None
        return op.extract
    if op.kind == "const":
        value = op.value
        return lambda _event: value
    inner = [standalone_extractor(a) for a in op.args]
    fn = op.fn
    assert fn is not None
    if len(inner) == 1:
        (one,) = inner
        return lambda event: fn(one(event))
    return lambda event: fn(*[x(event) for x in inner])
