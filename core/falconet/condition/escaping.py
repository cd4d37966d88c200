"""Unescaping of quoted condition strings, with libsinsp's exact rules (``filter/escaping.cpp``).

Rules files rely on these rules after YAML has removed its own layer of escaping, so any
difference would silently change what a rule matches. Upstream works on bytes; here a ``\\xHH``
run is decoded as UTF-8 with ``surrogateescape``, so ``"\\xc3\\xa9"`` is ``"é"`` and a lone
``"\\xff"`` is ``"\\udcff"`` (which encodes back to the byte 0xff).
"""

from __future__ import annotations

_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "\\": "\\", "/": "/", " ": "\\"}
_HEX = frozenset("0123456789abcdefABCDEF")
NUL_MESSAGE = "filter error: filter value cannot contain a NUL byte (\\x00)"


class EscapeError(ValueError):
    """An invalid escape sequence; the message is upstream's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NulByteError(EscapeError):
    """The value holds a NUL byte. Upstream's parser accepts it and its compiler rejects it, so
    the parser needs the value too (``value``) to report syntax errors first."""

    def __init__(self, value: str) -> None:
        super().__init__(NUL_MESSAGE)
        self.value = value


def unescape_str(body: str, quote: str) -> str:
    """Return the value of a quoted string whose text between the quotes is ``body``.

    ``quote`` is the delimiter (``"`` or ``'``): ``\\"`` is only valid inside ``"..."`` and
    ``\\'`` only inside ``'...'``. ``\\<space>`` is upstream's legacy spelling of a backslash.
    A value holding a NUL byte is rejected, as libsinsp's value parser does.
    """
    if "\\" not in body:
        return _check_nul(body)
    out: list[str] = []
    pending = bytearray()  # a run of \xHH bytes, decoded together so UTF-8 sequences survive
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            _flush(pending, out)
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:  # a dangling backslash cannot come from the lexer; upstream ignores it
            break
        e = body[i + 1]
        if e == "x":
            pending.append(_hex_byte(body, i + 1))
            i += 4
            continue
        _flush(pending, out)
        out.append(_escaped_char(e, quote))
        i += 2
    _flush(pending, out)
    return _check_nul("".join(out))


def _escaped_char(e: str, quote: str) -> str:
    simple = _SIMPLE.get(e)
    if simple is not None:
        return simple
    if e == '"':
        if quote != '"':
            raise EscapeError("invalid \\\" escape in '-quoted string")
        return e
    if e == "'":
        if quote != "'":
            raise EscapeError("invalid \\' escape in \"-quoted string")
        return e
    raise EscapeError("unsupported string escape sequence: \\" + e)


def _hex_byte(body: str, x_at: int) -> int:
    """The byte of ``\\xHH`` whose ``x`` is at ``body[x_at]``: exactly two hex digits."""
    if x_at + 2 >= len(body):
        raise EscapeError("truncated hex char escape sequence")
    digits = body[x_at + 1 : x_at + 3]
    if not (digits[0] in _HEX and digits[1] in _HEX):
        raise EscapeError("invalid hex char escape sequence: " + digits)
    return int(digits, 16)


def _flush(pending: bytearray, out: list[str]) -> None:
    if pending:
        out.append(pending.decode("utf-8", "surrogateescape"))
        pending.clear()


def _check_nul(value: str) -> str:
    if "\0" in value:
        raise NulByteError(value)
    return value
