"""Render load results exactly as Falco does (``rule_loader::result`` in rule_loader.cpp).

Three forms: the summary (``name: Ok, with warnings`` plus one line per message kind), the
verbose text ``falco --validate`` prints (each message with its location chain, a snippet with
a caret and ``CODE (description): message``), and the JSON of ``-o json_output=true``.

Falco prints YAML positions as yaml-cpp marks, 0-based, and condition-expression positions
1-based (parser position plus mark); ``Location`` holds 1-based values, converted here.
"""

from __future__ import annotations

from typing import Any

from falconet.ruleset.context import CONDITION_EXPRESSION
from falconet.ruleset.results import LoadMessage, LoadResult, Location, WarningCode

_SCHEMA_OK = "ok"


def _shown(loc: Location) -> tuple[int, int]:
    if loc.item_type == CONDITION_EXPRESSION:
        return loc.line, loc.column
    return loc.line - 1, loc.column - 1


def message_label(msg: LoadMessage) -> str:
    """The short text after the code: the code's description (plus the field for deprecated
    field warnings, as upstream's ``deprecated_field_warning::as_string``)."""
    label = msg.code.desc
    if msg.deprecated_field is not None:
        label += f": field '{msg.deprecated_field}'"
    return label


def locations_as_string(locations: list[Location]) -> str:
    """``In rule 'x': (file:line:col)`` then one indented line per deeper location."""
    lines = []
    for i, loc in enumerate(locations):
        line, col = _shown(loc)
        name = f" '{loc.item_name}'" if loc.item_name else ""
        lines.append(f"{'In ' if i == 0 else '    '}{loc.item_type}{name}: "
                     f"({loc.name}:{line}:{col})\n")
    return "".join(lines)


def _schema_invalid(result: LoadResult) -> bool:
    return bool(result.schema_warnings) and result.schema_warnings[0] != _SCHEMA_OK


def _head(result: LoadResult) -> str:
    text = f"{result.name}: " if result.name else ""
    if result.successful:
        return text + ("Ok, with warnings" if result.warnings else "Ok")
    return text + "Invalid"


def summary_string(result: LoadResult) -> str:
    """``as_summary_string``: one line, then the codes of the errors and warnings."""
    out = _head(result)
    if _schema_invalid(result):
        out += (f"\n {len(result.schema_warnings)} schema warnings: ["
                + " ".join(result.schema_warnings) + "]")
    if result.errors:
        out += (f"\n {len(result.errors)} errors: ["
                + " ".join(f"{e.code.value} ({e.code.desc})" for e in result.errors) + "]")
    if result.warnings:
        out += (f"\n {len(result.warnings)} warnings: ["
                + " ".join(f"{w.code.value} ({message_label(w)})" for w in result.warnings)
                + "]")
    return out


def _message_block(msg: LoadMessage) -> str:
    return (locations_as_string(msg.locations) + "------\n" + msg.snippet + "------\n"
            + f"{msg.code.value} ({message_label(msg)}): {msg.message}\n")


def verbose_string(result: LoadResult) -> str:
    """``as_verbose_string``: what ``falco --validate`` prints for a file."""
    out = _head(result)
    if _schema_invalid(result):
        out += f"\n{len(result.schema_warnings)} Schema warnings:\n"
        for status in result.schema_warnings:
            out += f"------\n{status}\n"
        out += "------\n"
    if result.errors:
        out += f"\n{len(result.errors)} Errors:\n" + "".join(map(_message_block, result.errors))
    if result.warnings:
        out += f"\n{len(result.warnings)} Warnings:\n" + "".join(
            map(_message_block, result.warnings))
    return out


def result_as_text(result: LoadResult, contents: dict[str, str] | None = None, *,
                   verbose: bool = False) -> str:
    """The summary or the verbose text (``contents`` is accepted for symmetry with Falco's
    API: snippets are cut when the message is made)."""
    return verbose_string(result) if verbose else summary_string(result)


def _location_json(loc: Location) -> dict[str, Any]:
    line, col = _shown(loc)
    return {
        "item_name": loc.item_name,
        "item_type": loc.item_type,
        "position": {"column": col, "line": line, "name": loc.name, "offset": loc.offset},
    }


def message_as_json(msg: LoadMessage) -> dict[str, Any]:
    """One error or warning. Keys in nlohmann's (sorted) order; a warning's ``codedesc`` is the
    long description (upstream's ``warning_desc``), an error's the short one (``error_desc``
    returns the short string upstream)."""
    code = msg.code
    out: dict[str, Any] = {
        "code": code.value,
        "codedesc": code.long_desc if isinstance(code, WarningCode) else code.desc,
        "context": {"locations": [_location_json(loc) for loc in msg.locations],
                    "snippet": msg.snippet},
    }
    if msg.deprecated_field is not None:
        out["deprecated_field"] = msg.deprecated_field
    out["message"] = msg.message
    return out


def result_as_json(result: LoadResult, contents: dict[str, str] | None = None) -> dict[str, Any]:
    """``as_json``: one entry of ``falco_load_results`` (keys sorted, as nlohmann prints them;
    the schema keys only when schema validation ran)."""
    out: dict[str, Any] = {"errors": [message_as_json(e) for e in result.errors],
                           "name": result.name}
    if result.schema_warnings:
        invalid = _schema_invalid(result)
        out["schema_valid"] = not invalid
        out["schema_warnings"] = list(result.schema_warnings) if invalid else []
    out["successful"] = result.successful
    out["warnings"] = [message_as_json(w) for w in result.warnings]
    return out
