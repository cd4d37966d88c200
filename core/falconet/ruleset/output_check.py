"""Load-time validation of rule outputs: would Falco build a formatter for this output?

Falco compiles each rule output with the formatter of the rule's source while loading
(LOAD_ERR_COMPILE_OUTPUT on failure, checked before the condition). The reference tokenizer is
the runtime formatter's (``formats.tokenize_output``), so load-time acceptance and alert rendering
agree. Outputs are mostly plain ``%class.field`` / ``%class.field[arg]`` tokens, which a regex
settles (the longest prefix of the name that is a known field, as the formatter's shrinking
search finds it); any other token goes to the formatter itself.
"""

from __future__ import annotations

import re

from falconet.fields import ArgKind, FieldTable

_NAME = r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+"
_TOKEN = re.compile(r"(\d*)(" + _NAME + r")(\[[^\]\[\"'\s]+\])?")
_FULL_NAME = re.compile(_NAME + r"\Z")


def _plain_tokens_ok(fmt: str, table: FieldTable) -> bool:
    """True when every ``%`` starts a plain field token that resolves; False means "ask the
    formatter" (an error, a transformer, or anything unusual)."""
    n = len(fmt)
    j = fmt.find("%")
    while j != -1:
        m = _TOKEN.match(fmt, j + 1)
        if m is None or (m.group(1) and m.end(1) == n):
            return False
        name, bracket = m.group(2), m.group(3)
        if bracket:
            found = table.lookup(name)
            if found is None or found[0].arg is ArgKind.NONE or found[1] is not None:
                return False
            end = m.end(3)
        else:
            cut = _longest_known_prefix(name, table)
            if cut == 0 or (cut == len(name) and fmt.startswith("[", m.end(2))):
                return False
            end = m.start(2) + cut
        j = fmt.find("%", end)
    return True


def _longest_known_prefix(name: str, table: FieldTable) -> int:
    """Length of the longest prefix of ``name`` that is itself a field name and resolves."""
    for cut in range(len(name), 0, -1):
        prefix = name[:cut]
        if _FULL_NAME.match(prefix) and table.lookup(prefix) is not None:
            return cut
    return 0


def output_error(fmt: str, table: FieldTable) -> str | None:
    """The formatter's error text (e.g. "unknown filter: ...", "... cannot end with a %"), or
    None when the output is valid for the source."""
    if fmt and _plain_tokens_ok(fmt, table):
        return None
    from falconet.ruleset.formats import OutputFormatError, tokenize_output

    try:
        tokenize_output(fmt, table)
    except OutputFormatError as exc:
        return str(exc)
    return None
