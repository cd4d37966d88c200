"""Rule output strings: ``%field`` tokens, ``%Nfield`` padding, ``<NA>``, and ``output_fields``.

Tokenizing follows libsinsp's ``sinsp_evt_formatter::set_format``: after ``%`` (and optional
digits) the longest text that parses as a field or transformer *and resolves to a known field* is
taken, shrinking one character at a time, so ``%proc.name_suffix`` is ``%proc.name`` followed by
the literal ``_suffix``. Falco always formats with a leading ``*``: absent values print ``<NA>``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from falconet.condition import ast
from falconet.condition.parser import ConditionSyntaxError, parse_field_or_transformer
from falconet.fields import FieldSpec, FieldTable, FieldType

NA = "<NA>"


class OutputFormatError(ValueError):
    """An output string that Falco would refuse (LOAD_ERR_COMPILE_OUTPUT)."""


@dataclass(frozen=True, slots=True)
class FieldToken:
    """One ``%field`` of an output: its text as written (the ``output_fields`` key), width, how
    to read it, and its type for rendering."""

    text: str
    width: int
    extract: Callable[[Any], Any]
    spec: FieldSpec
    has_transformer: bool


Token = str | FieldToken


def _resolve(node: ast.Field | ast.Transformer, table: FieldTable) -> FieldToken | None:
    """Bind a parsed token to an extractor; None when its field is unknown to the source."""
    if isinstance(node, ast.Transformer):
        from falconet.condition.compiler import compile_operand  # transformers live there

        try:
            extract, spec = compile_operand(node, table)
        except Exception:
            return None
        return FieldToken(ast.as_string(node), 0, extract, spec, True)
    found = table.lookup(node.name)
    if found is None:
        return None
    spec, suffix = found
    arg = node.arg if node.arg is not None else suffix
    return FieldToken(ast.as_string(node), 0, spec.extractor(arg), spec, False)


def tokenize_output(fmt: str, table: FieldTable) -> list[Token]:
    """Split an output format into literal strings and field tokens, as Falco does."""
    if not fmt:
        raise OutputFormatError("empty formatting token")
    tokens: list[Token] = []
    literal_start = 0
    j = 0
    n = len(fmt)
    while j < n:
        if fmt[j] != "%":
            j += 1
            continue
        if literal_start != j:
            tokens.append(fmt[literal_start:j])
        if j == n - 1:
            raise OutputFormatError("invalid formatting syntax: formatting cannot end with a %")
        width = 0
        k = j + 1
        while k < n and fmt[k].isdigit():
            k += 1
        if k > j + 1:
            if k == n:
                raise OutputFormatError(
                    "invalid formatting syntax: formatting cannot end with a number"
                )
            width = int(fmt[j + 1 : k])
        token, end = _longest_token(fmt, k, table)
        tokens.append(FieldToken(token.text, width, token.extract, token.spec,
                                 token.has_transformer))
        j = end
        literal_start = j
    if literal_start < n:
        tokens.append(fmt[literal_start:])
    return tokens


def _longest_token(fmt: str, start: int, table: FieldTable) -> tuple[FieldToken, int]:
    size = len(fmt) - start
    last_error = ""
    while size > 0:
        text = fmt[start : start + size]
        try:
            node, consumed = parse_field_or_transformer(text)
        except ConditionSyntaxError as exc:
            last_error = exc.message
        else:
            token = _resolve(node, table)
            if token is not None:
                return token, start + consumed
            last_error = f"filter_check called with nonexistent field {text[:consumed]}"
            size = consumed  # shorter texts parse the same until they cut into this token
        size -= 1
    raise OutputFormatError(f"unknown filter: {last_error}")


def render_value(value: Any, spec: FieldSpec) -> str:
    """A field value as Falco prints it in text output."""
    if isinstance(value, tuple):
        return "(" + ",".join(render_value(v, spec) for v in value) + ")"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, bytes):
        return "".join(chr(b) if 32 <= b < 127 else "." for b in value)
    if spec.type is FieldType.DOUBLE and isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return "<IPNET>"
    return str(value)


def json_value(value: Any, spec: FieldSpec) -> Any:
    """A field value as Falco puts it in ``output_fields`` (typed; None for absent)."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return [json_value(v, spec) for v in value]
    if isinstance(value, bytes):
        return render_value(value, spec)
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


class OutputFormatter:
    """A compiled output format for one source."""

    def __init__(self, fmt: str, table: FieldTable) -> None:
        self.format_string = fmt
        self.tokens = tokenize_output(fmt, table)
        self.field_tokens = [t for t in self.tokens if isinstance(t, FieldToken)]

    def format(self, event: Any) -> str:
        return "".join(t if isinstance(t, str) else _token_text(t, t.extract(event))
                       for t in self.tokens)

    def format_with_fields(self, event: Any) -> tuple[str, dict[str, Any]]:
        """``format`` and ``output_fields`` at once, each field extracted once (JSON alerts)."""
        parts: list[str] = []
        fields: dict[str, Any] = {}
        for token in self.tokens:
            if isinstance(token, str):
                parts.append(token)
                continue
            value = token.extract(event)
            if type(value) is str:  # the common case: the same text in both places
                text = value
                if not token.has_transformer:
                    fields[token.text] = value
            else:
                text = render_value(value, token.spec) if value is not None else NA
                if not token.has_transformer:
                    fields[token.text] = json_value(value, token.spec)
            parts.append(text[: token.width].ljust(token.width) if token.width else text)
        return "".join(parts), fields

    def output_fields(self, event: Any) -> dict[str, Any]:
        """Field name -> typed value for JSON alerts; transformer tokens are left out, as in
        Falco (which never resolves transformed fields there)."""
        return {
            t.text: json_value(t.extract(event), t.spec)
            for t in self.field_tokens
            if not t.has_transformer
        }


def _token_text(token: FieldToken, value: Any) -> str:
    """A field token's text in an output line: ``<NA>`` when absent, padded to its width."""
    text = NA if value is None else render_value(value, token.spec)
    return text[: token.width].ljust(token.width) if token.width else text
