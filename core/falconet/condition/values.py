"""Right-hand sides: literals converted to a field's type, and the pattern objects operators use.

Literal conversion mirrors ``sinsp_filter_value_parser::string_to_rawval`` and
``sinsp_numparser``: numbers are decimal integers read the way glibc ``sscanf("%d%c")`` reads
them (leading blanks and a sign allowed, nothing after the digits), then narrowed to the
field's width with C wrap-around; unsigned fields take negative literals modulo 2**N; 32-bit
and narrower fields are parsed as 32-bit first. ``DOUBLE`` is parsed as an int32. Ports accept
service names (``getservbyname``), booleans only ``true``/``false``, networks ``a.b.c.d/n``.
Every failure raises ``ValueError`` whose text is upstream's exception message; the compiler
attaches the position.

Converted values use the Python types field extractors return (see ``falconet.fields``).

Pattern objects, built once at load time, evaluate as upstream does:

* ``glob``/``iglob``: POSIX ``fnmatch(3)`` without flags (``*`` and ``?`` match ``/``, backslash
  escapes, bracket expressions with ``!``/``^``, ranges and ``[:class:]`` names, glibc's handling
  of unterminated brackets and invalid class names), translated to a Python regex that uses
  atomic groups so that no pattern backtracks catastrophically. Python's ``fnmatch`` differs
  (no backslash escapes, no POSIX classes) and is not used. Characters are code points, as in
  a UTF-8 locale; ``iglob`` folds ASCII case only.
* ``pmatch``: ``path_prefix_search``: component-wise prefix match, components may be globs.
* ``regex``: google-re2 in POSIX mode (``RE2::POSIX``: egrep syntax, leftmost-longest, no
  ``\\d``/``\\b``), anchored at both ends, linear time. Invalid UTF-8 (lone surrogates) is
  replaced by U+FFFD first, as libs master does.
* ``icontains``/``tolower``/``toupper``: C-locale ASCII case folding only.
* IP networks: containment, never mixing IPv4 and IPv6.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any

import re2

from falconet.fields import FieldType

Pred = Callable[[Any], bool]

_U64 = (1 << 64) - 1
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
# glibc's %d / %u skip leading white space (isspace), accept one sign, then decimal digits.
_SCAN_INT = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")

_SIGNED_PARSE = {
    FieldType.INT8: (32, 8),
    FieldType.INT16: (32, 16),
    FieldType.INT32: (32, 32),
    FieldType.INT64: (64, 64),
}
_UNSIGNED_PARSE = {
    FieldType.UINT8: (32, 8),
    FieldType.UINT16: (32, 16),
    FieldType.UINT32: (32, 32),
    FieldType.UINT64: (64, 64),
    FieldType.RELTIME: (64, 64),
    FieldType.ABSTIME: (64, 64),
}


def _wrap(value: int, bits: int, signed: bool) -> int:
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def scan_int(text: str, *, signed: bool, scan_bits: int) -> int:
    """``sscanf(text, "%d%c")`` (or ``%u``, ``%ld``, ``%lu``) into a ``scan_bits`` variable.

    glibc converts with ``strtol``/``strtoul`` (saturating at the 64-bit limits, ``strtoul``
    negating negative input modulo 2**64) and stores the result truncated to the variable."""
    m = _SCAN_INT.fullmatch(text)
    if m is None:
        raise ValueError(f"{text} is not a valid number")
    magnitude = int(m.group(2))
    negative = m.group(1) == "-"
    if signed:
        value = -magnitude if negative else magnitude
        value = min(max(value, _I64_MIN), _I64_MAX)
    elif magnitude > _U64:
        value = _U64
    else:
        value = (-magnitude if negative else magnitude) & _U64
    return _wrap(value, scan_bits, signed)


def parse_number(text: str, ftype: FieldType) -> int:
    """A literal for an integer or time field, wrapped to the field's width."""
    if ftype in _SIGNED_PARSE:
        scan_bits, bits = _SIGNED_PARSE[ftype]
        return _wrap(scan_int(text, signed=True, scan_bits=scan_bits), bits, True)
    scan_bits, bits = _UNSIGNED_PARSE[ftype]
    return _wrap(scan_int(text, signed=False, scan_bits=scan_bits), bits, False)


def parse_port(text: str) -> int:
    """``PT_PORT``: empty -> 0, digits -> ``stoi`` narrowed to 16 bits, else a service name."""
    if not text:
        return 0
    if text.isdigit() and text.isascii():
        value = int(text)
        if value > 0x7FFFFFFF:
            raise ValueError("stoi")  # std::out_of_range from std::stoi
        return value & 0xFFFF
    try:
        return socket.getservbyname(text)
    except (OSError, UnicodeError, ValueError):
        raise ValueError(f"unrecognized protocol {text}") from None


def parse_bool(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(f"filter error: unrecognized boolean value {text}")


def _inet_pton4(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"unrecognized IPv4 address {text}") from None


def _inet_pton6(text: str, message: str) -> ipaddress.IPv6Address:
    if "%" in text:  # Python accepts scope ids, inet_pton does not
        raise ValueError(message)
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(message) from None


def parse_ipaddr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``PT_IPADDR``: a dot anywhere means IPv4 (so ``::ffff:1.2.3.4`` is refused, as upstream)."""
    if "." in text:
        return _inet_pton4(text)
    return _inet_pton6(text, f"unrecognized IPv6 address {text}")


def parse_ipnet(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``PT_IPNET``: ``a.b.c.d/n`` (n parsed as uint8, so 256 wraps to 0) or ``v6addr/n``."""
    if "." in text:
        if "/" not in text:
            raise ValueError(f"unrecognized IP network {text}")
        ip, _, mask = text.partition("/")
        mask = mask.split("\n", 1)[0]
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            raise ValueError(f"unrecognized IP address {text}") from None
        bits = _wrap(scan_int(mask, signed=False, scan_bits=32), 8, False)
        if bits > 32:
            raise ValueError(f"invalid netmask {mask}")
        return ipaddress.IPv4Network((int(addr), bits), strict=False)
    if "/" not in text:
        raise ValueError(f"invalid v6 netmask: {text}")
    ip, _, mask = text.partition("/")
    mask = mask.split("\n", 1)[0]
    addr6 = _inet_pton6(ip, f"unrecognized IPv6 address {text}")
    bits = _wrap(scan_int(mask, signed=False, scan_bits=32), 8, False)
    if bits == 0 or bits > 128:
        raise ValueError(f"invalid v6 netmask {mask}")
    return ipaddress.IPv6Network((int(addr6), bits), strict=False)


def literal_bytes(text: str) -> bytes:
    """A literal as the raw bytes libsinsp copies for ``BYTEBUF`` fields."""
    return text.encode("utf-8", "surrogateescape")


def unhex(text: str) -> bytes | None:
    """``sinsp_utils::unhex``: an even number of hex digits, else None."""
    if len(text) % 2 or not all(c in "0123456789abcdefABCDEF" for c in text):
        return None
    return bytes.fromhex(text)


def parse_dynamic(text: str) -> Any:
    """``DYNAMIC`` fields (``evt.rawarg``) take the type of the event parameter, unknown in a
    schema-only table: a decimal literal becomes an int, anything else stays a string."""
    try:
        return scan_int(text, signed=True, scan_bits=64)
    except ValueError:
        return text


def convert_literal(text: str, ftype: FieldType) -> Any:
    """Convert one literal to ``ftype`` (``string_to_rawval``); raises ValueError(upstream text).

    ``BYTEBUF`` values are copied raw (no NUL check), as ``parse_filter_value`` does."""
    if ftype is FieldType.BYTEBUF:
        return literal_bytes(text)
    if "\0" in text:
        raise ValueError("filter error: filter value cannot contain a NUL byte (\\x00)")
    if ftype.is_string:
        return text
    if ftype in _SIGNED_PARSE or ftype in _UNSIGNED_PARSE:
        return parse_number(text, ftype)
    if ftype is FieldType.PORT:
        return parse_port(text)
    if ftype is FieldType.BOOL:
        return parse_bool(text)
    if ftype is FieldType.DOUBLE:
        return float(scan_int(text, signed=True, scan_bits=32))
    if ftype is FieldType.IPADDR:
        return parse_ipaddr(text)
    if ftype is FieldType.IPNET:
        return parse_ipnet(text)
    if ftype is FieldType.DYNAMIC:
        return parse_dynamic(text)
    raise ValueError(f"wrong parameter type {ftype.value}")


# --- ASCII case folding (C locale tolower/toupper, strcasestr) ----------------------------------

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def ascii_lower(s: str) -> str:
    """``tolower`` per character in the C locale: only A-Z change."""
    return s.lower() if s.isascii() else s.translate(_ASCII_LOWER)


def ascii_upper(s: str) -> str:
    return s.upper() if s.isascii() else s.translate(_ASCII_UPPER)


# --- glob (fnmatch(3)) ---------------------------------------------------------------------------

_CLASSES = {
    "alpha": "A-Za-z",
    "digit": "0-9",
    "alnum": "0-9A-Za-z",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": "!-/:-@\\[-`{-~",
    "print": " -~",
    "graph": "!-~",
    "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f",
}
_FAIL = "(?!)"


def _bracket(p: str, i: int) -> tuple[str | None, int]:
    """Scan a bracket expression starting after ``[`` at ``p[i]`` as glibc's ``fnmatch`` does.

    Returns (class regex, index after ``]``) for a usable bracket, (``_FAIL``, end) when it
    can never match, or (None, i) when the ``[`` is an ordinary character (unterminated
    bracket that ``[`` itself does not satisfy)."""
    n = len(p)
    negated = i < n and p[i] in "!^"
    j = i + 1 if negated else i
    items: list[str] = []  # regex class fragments, in scan order
    members: list[tuple[str, str]] = []  # (lo, hi) ranges to test "[" against
    invalid = False
    first = True
    while True:
        if j >= n:  # unterminated
            if invalid or any(lo <= "[" <= hi for lo, hi in members):
                return _FAIL, n
            return None, i
        c = p[j]
        if c == "]" and not first:
            break
        first = False
        if c == "\\":
            if j + 1 >= n:
                invalid = True
                j += 1
                continue
            c = p[j + 1]
            j += 2
        elif c == "[" and j + 1 < n and p[j + 1] == ":":
            end = p.find(":]", j + 2)
            name = p[j + 2 : end] if end >= 0 else ""
            if end >= 0 and all("a" <= ch < "z" for ch in name):
                if name not in _CLASSES:
                    invalid = True  # glibc: FNM_NOMATCH once the scan reaches it
                elif not invalid:
                    items.append(_CLASSES[name])
                j = end + 2
                continue
            j += 1  # not a class name: "[" is an ordinary member
        elif (
            c == "["
            and j + 1 < n
            and p[j + 1] in "=."
            and j + 4 < n
            and p[j + 3] == p[j + 1]
            and p[j + 4] == "]"
        ):
            c = p[j + 2]  # [=c=] / [.c.]: one character in the C locale
            j += 5
        else:
            j += 1
        # c is a member; is it the start of a range?
        if j + 1 == n and p[j] == "-":
            invalid = True  # "[a-" : the range end is the NUL, FNM_NOMATCH
            j += 1
            continue
        if j + 1 < n and p[j] == "-" and p[j + 1] != "]":
            hi = p[j + 1]
            j += 2
            if hi == "\\":
                if j >= n:
                    invalid = True
                    continue
                hi = p[j]
                j += 1
            if not invalid:
                members.append((c, hi))
                if c <= hi:
                    items.append(re.escape(c) + "-" + re.escape(hi))
            continue
        if not invalid:
            members.append((c, c))
            items.append(re.escape(c))
    if invalid and negated:
        return _FAIL, j + 1
    if not items:
        return (".", j + 1) if negated else (_FAIL, j + 1)
    return ("[^" if negated else "[") + "".join(items) + "]", j + 1


def _glob_atoms(pattern: str) -> list[str]:
    """Split a glob into regex atoms; ``*`` stays as the marker ``"*"``."""
    atoms: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if not atoms or atoms[-1] != "*":
                atoms.append("*")
            i += 1
        elif c == "?":
            atoms.append(".")
            i += 1
        elif c == "\\":
            if i + 1 >= n:
                atoms.append(_FAIL)  # "trailing \ loses"
                i += 1
            else:
                atoms.append(re.escape(pattern[i + 1]))
                i += 2
        elif c == "[":
            frag, end = _bracket(pattern, i + 1)
            if frag is None:
                atoms.append(re.escape("["))
                i += 1
            else:
                atoms.append(frag)
                i = end
        else:
            atoms.append(re.escape(c))
            i += 1
    return atoms


def glob_regex(pattern: str, casefold: bool = False) -> re.Pattern[str] | None:
    """The compiled equivalent of ``fnmatch(pattern, s, casefold ? FNM_CASEFOLD : 0) == 0`` for
    ``fullmatch``; None if the pattern can never match. Each ``*`` segment is an atomic lazy
    group (the CPython ``fnmatch.translate`` technique), so matching is polynomial-free."""
    atoms = _glob_atoms(pattern)
    if _FAIL in atoms:
        return None
    pieces: list[list[str]] = [[]]
    for atom in atoms:
        if atom == "*":
            pieces.append([])
        else:
            pieces[-1].append(atom)
    parts = ["".join(pieces[0])]
    for middle in pieces[1:-1]:
        parts.append("(?>.*?" + "".join(middle) + ")")
    if len(pieces) > 1:
        parts.append(".*" + "".join(pieces[-1]))
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if casefold else 0)
    return re.compile("".join(parts), flags)


def make_glob(pattern: str, casefold: bool = False) -> Pred:
    """A predicate ``value -> bool`` for ``value glob pattern``."""
    rx = glob_regex(pattern, casefold)
    if rx is None:
        return never
    fullmatch = rx.fullmatch
    return lambda value: fullmatch(value) is not None


def never(_value: Any) -> bool:
    return False


_GLOB_CACHE: dict[tuple[str, bool], Pred] = {}


def glob_match(pattern: str, value: str, casefold: bool = False) -> bool:
    """``glob`` with a pattern only known at run time (field-vs-field), compiled once."""
    pred = _GLOB_CACHE.get((pattern, casefold))
    if pred is None:
        if len(_GLOB_CACHE) > 4096:
            _GLOB_CACHE.clear()
        pred = _GLOB_CACHE[(pattern, casefold)] = make_glob(pattern, casefold)
    return pred(value)


# --- pmatch (path_prefix_search) -----------------------------------------------------------------

_GLOB_CHARS = frozenset("?*[")


class PathPrefixSet:
    """``path_prefix_search``: does any search path prefix ``path`` on component boundaries?

    Paths split on ``/`` with empty components dropped (``/var//run`` = ``var/run``); a search
    path that is a prefix of another absorbs it; a component containing ``?*[`` is a glob
    matched against one path component. (Upstream's glob-branch loop also advances its component
    iterator across failed glob entries, an order-dependent bug not reproduced here.)"""

    __slots__ = ("_root",)

    def __init__(self, paths: Sequence[str]) -> None:
        self._root: dict[str, Any] = {}
        for path in paths:
            self._add(["root", *[c for c in path.split("/") if c]])

    def _add(self, comps: list[str]) -> None:
        node = self._root
        for k, comp in enumerate(comps):
            last = k == len(comps) - 1
            entry = node.get(comp)
            if entry is None:
                if last:
                    node[comp] = None  # terminal
                    return
                sub: dict[str, Any] = {}
                node[comp] = sub
                node = sub
            elif last:
                node[comp] = None  # a shorter path absorbs the longer ones
                return
            elif entry is None:
                return  # already covered by a shorter path
            else:
                node = entry

    def match(self, path: str) -> bool:
        comps = ["root", *[c for c in path.split("/") if c]]
        return self._match(self._root, comps, 0)

    def _match(self, node: dict[str, Any], comps: list[str], k: int) -> bool:
        comp = comps[k]
        if comp in node and self._descend(node[comp], comps, k + 1):
            return True
        for key, sub in node.items():
            if (
                _GLOB_CHARS.intersection(key)
                and glob_match(key, comp)
                and self._descend(sub, comps, k + 1)
            ):
                return True
        return False

    def _descend(self, sub: dict[str, Any] | None, comps: list[str], k: int) -> bool:
        if sub is None:
            return True  # /foo/bar under prefix /foo, or /foo itself
        if k == len(comps):
            return False  # /var does not match the search path /var/lib
        return self._match(sub, comps, k)


# --- regex ---------------------------------------------------------------------------------------

_ANCHOR_BOTH = re2._Anchor.ANCHOR_BOTH


def _re2_options() -> Any:
    opts = re2.Options()
    opts.posix_syntax = True
    opts.longest_match = True
    opts.log_errors = False
    opts.never_capture = True
    return opts


def make_regex(pattern: str) -> Pred:
    """Compile ``pattern`` like ``RE2(pattern, RE2::POSIX)``; the predicate is a full match.
    Raises ValueError("invalid regex pattern: <re2 error>")."""
    try:
        compiled = re2.compile(pattern, _re2_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(f"invalid regex pattern: {detail}") from None
    match = compiled._regexp.Match

    def fullmatch(value: str) -> bool:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            data = _sanitize(value)
        return match(_ANCHOR_BOTH, data, 0, len(data))[0][0] >= 0

    return fullmatch


def _sanitize(value: str) -> bytes:
    """UTF-8 with invalid sequences replaced by U+FFFD (``utf8::sanitize``); raw bytes carried
    as surrogate escapes are restored first so that each invalid byte is replaced once."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace").encode("utf-8")


# --- IP networks ---------------------------------------------------------------------------------


def make_net_contains(nets: Sequence[Any]) -> Pred:
    """``addr`` is inside any of ``nets`` (same IP version only), ``flt_compare_ipv*net``."""
    specs = tuple((n.version, int(n.netmask), int(n.network_address)) for n in nets)
    if len(specs) == 1:
        ver, mask, net = specs[0]
        return lambda a: a.version == ver and (int(a) & mask) == net
    return lambda a: any(a.version == v and (int(a) & m) == n for v, m, n in specs)


def make_net_list_in(nets: Sequence[Any]) -> Pred:
    """List-valued IPNET ``in``: every address inside some network."""
    contains = make_net_contains(nets)
    return lambda values: all(contains(a) for a in values)


def make_net_list_intersects(nets: Sequence[Any]) -> Pred:
    contains = make_net_contains(nets)
    return lambda values: any(contains(a) for a in values)
