"""``ka.uri.param[key]``: Go's ``url.Parse(requestURI)`` then ``url.ParseQuery(RawQuery)``.

Reimplemented rather than borrowed from ``urllib.parse`` because the two disagree on what is an
error, and upstream makes the field absent on any error: a control character in the URI, a bad
``%`` escape anywhere, a ``;`` in the query (Go >= 1.17), a colon in a scheme-less first path
segment. The first value of the key wins.
"""

from __future__ import annotations

import re

_HEX = frozenset(b"0123456789abcdefABCDEF")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_CTL = re.compile(r"[\x00-\x1f\x7f]")


def _unescape(s: str, query: bool) -> str | None:
    """Go's ``unescape`` (path/fragment mode, or query-component mode where ``+`` is a space);
    None on a malformed ``%`` escape."""
    if "%" not in s:
        return s.replace("+", " ") if query else s
    raw = s.encode()
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25:  # %
            if i + 2 >= n or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                return None
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(0x20 if query and c == 0x2B else c)
        i += 1
    return out.decode("utf-8", "replace")


def _raw_query(uri: str) -> str | None:
    """The RawQuery ``url.Parse`` would give, or None where it returns an error."""
    before, _, fragment = uri.partition("#")
    if _CTL.search(before):
        return None
    if fragment and _unescape(fragment, False) is None:
        return None
    rest = before
    if before != "*":
        if before[:1] == ":":
            return None  # "missing protocol scheme"
        m = _SCHEME.match(before)
        scheme = m is not None
        if m is not None:
            rest = before[m.end():]
    else:
        return ""
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return query  # opaque URL
        if ":" in rest.partition("/")[0]:
            return None  # "first path segment in URL cannot contain colon"
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        rest = rest[2:]
        slash = rest.find("/")
        rest = rest[slash:] if slash >= 0 else ""
    if _unescape(rest, False) is None:
        return None
    return query


def query_param(uri: str, key: str) -> str | None:
    """The first value of query parameter ``key`` in ``uri``, or None (absent or any error)."""
    if "?" not in uri:
        return None
    query = _raw_query(uri)
    if not query:
        return None
    found: str | None = None
    for part in query.split("&"):
        if ";" in part:
            return None
        if not part:
            continue
        k, _, v = part.partition("=")
        k_text = _unescape(k, True)
        v_text = _unescape(v, True)
        if k_text is None or v_text is None:
            return None
        if found is None and k_text == key:
            found = v_text
    return found
