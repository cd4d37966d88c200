"""Rules YAML as position-keeping nodes, read with yaml-cpp's conventions.

Falco reads rules with yaml-cpp, where every scalar is text until a key is decoded as a string,
bool or integer. PyYAML's composer (the C one, for speed) gives the same node tree with marks, and
the helpers below decode scalars the way yaml-cpp's ``convert<T>`` does, so ``enabled: yes``,
``capture_duration: 0x10`` and ``enabled: "true"`` behave as in Falco.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # the C composer is ~10x faster; PyYAML without libyaml still works
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOLS = {"y": True, "n": False, "yes": True, "no": False, "true": True, "false": False,
          "on": True, "off": False}
_UINT_RE = re.compile(r"\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[ \t\n\r\f\v]*\Z")
_UINT32_MAX = 0xFFFFFFFF

__all__ = ["MappingNode", "Node", "ScalarNode", "SequenceNode"]


class YamlSyntaxError(Exception):
    """A document that does not parse; ``line``/``column`` 0-based, ``index`` a char offset."""

    def __init__(self, problem: str, line: int, column: int, index: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.column = column
        self.index = index

    @property
    def message(self) -> str:
        """yaml-cpp's ``ParserException`` text, with yaml-cpp's wording for the common problems
        (scripts and tests match on it) and PyYAML's for the others."""
        problem = _YAML_CPP_WORDING.get(self.problem, self.problem)
        return f"yaml-cpp: error at line {self.line + 1}, column {self.column + 1}: {problem}"


# PyYAML problem -> yaml-cpp's ErrorMsg for the same situation
_YAML_CPP_WORDING = {
    "mapping values are not allowed here": "illegal map value",
    "mapping values are not allowed in this context": "illegal map value",
    "did not find expected ',' or ']'": "end of sequence flow not found",
    "did not find expected ',' or '}'": "end of map flow not found",
    "did not find expected key": "end of map not found",
    "did not find expected '-' indicator": "end of sequence not found",
}


def compose_documents(text: str) -> list[Node | None]:
    """Every document of ``text`` (all parsed before any is used, like ``YAML::LoadAll``)."""
    try:
        return list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is None:
            raise YamlSyntaxError(problem, 0, 0, 0) from None
        raise YamlSyntaxError(problem, mark.line, mark.column, mark.index) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), 0, 0, 0) from None


def is_null(node: Node | None) -> bool:
    """yaml-cpp's Null: an empty value or a plain ``~``/``null``/``Null``/``NULL``."""
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def is_scalar(node: Node | None) -> bool:
    """yaml-cpp's IsScalar (quoted ``""`` is a scalar, Null is not)."""
    return isinstance(node, ScalarNode) and node.tag != _NULL_TAG


def is_map(node: Node | None) -> bool:
    return isinstance(node, MappingNode)


def is_seq(node: Node | None) -> bool:
    return isinstance(node, SequenceNode)


def get(node: MappingNode, key: str) -> Node | None:
    """``node[key]``: the value of the first scalar key equal to ``key`` (None if undefined).
    The key index is built once per mapping and kept on the node."""
    index = node.__dict__.get("_falconet_index")
    if index is None:
        index = {}
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.tag != _NULL_TAG:
                index.setdefault(k.value, v)
        node._falconet_index = index  # type: ignore[attr-defined]
    return index.get(key)


def keys(node: MappingNode) -> list[Node]:
    return [k for k, _ in node.value]


def as_text(node: Node) -> str | None:
    """yaml-cpp's ``as<std::string>()``: Null reads as "null", a collection cannot convert
    (None)."""
    if is_null(node):
        return "null"
    if isinstance(node, ScalarNode):
        return str(node.value)
    return None


def decode_bool(text: str) -> bool | None:
    """yaml-cpp's ``convert<bool>``: y/n, yes/no, true/false, on/off in lower, UPPER or
    Capitalized case."""
    if not _flexible_case(text):
        return None
    return _BOOLS.get(text.lower())


def _flexible_case(text: str) -> bool:
    """yaml-cpp's IsFlexibleCase: all lowercase, or a capital followed by all lower/upper."""
    if not text or _entirely(text, _LOWER):
        return True
    rest = text[1:]
    return text[0] in _UPPER and (_entirely(rest, _LOWER) or _entirely(rest, _UPPER))


_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _entirely(text: str, chars: frozenset[str]) -> bool:
    return all(c in chars for c in text)


def decode_uint32(text: str) -> int | None:
    """yaml-cpp's ``convert<uint32_t>`` (a stream read with base detection: ``0x1f``, ``017``;
    no sign, no leading blanks, trailing blanks allowed, no overflow)."""
    m = _UINT_RE.match(text)
    if m is None:
        return None
    digits = m.group(1)
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    return value if value <= _UINT32_MAX else None


@dataclass(frozen=True, slots=True)
class ScalarAnchor:
    """Maps an offset inside a scalar's value back to the file, through quotes, escapes, block
    indicators, indentation and line folding (used only to place condition errors)."""

    content: str
    start: int
    end: int
    style: str | None
    value: str

    @classmethod
    def of(cls, node: ScalarNode, content: str) -> ScalarAnchor:
        return cls(content, node.start_mark.index, node.end_mark.index, node.style or None,
                   str(node.value))

    def offset(self, i: int) -> int:
        """File offset of character ``i`` of the value (``len(value)``: just after it)."""
        src = self.content
        end = min(self.end, len(src))
        j = self.start
        if self.style in ("'", '"'):
            j += 1
        elif self.style in ("|", ">"):
            nl = src.find("\n", j, end)
            j = nl + 1 if nl >= 0 else j
        pos = j
        for k, c in enumerate(self.value):
            if k > i:
                break
            if c in " \t\n\r":
                pos = j
                if j < end and src[j] == c:
                    j += 1
            else:
                while j < end and src[j] != c:
                    j += 1
                pos = j
                j += 1
        else:
            if i >= len(self.value):
                pos = j
        return max(min(pos, len(src)), 0)


def line_col(content: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    offset = max(min(offset, len(content)), 0)
    line = content.count("\n", 0, offset) + 1
    col = offset - (content.rfind("\n", 0, offset) + 1) + 1
    return line, col
