"""Load-time validation of rule outputs: would Falco build a formatter for this output?

Falco compiles each rule output with the formatter of the rule's source while loading
(LOAD_ERR_COMPILE_OUTPUT on failure, checked before the condition). The tokenizer is the runtime
formatter's (``formats.tokenize_output``), so load-time acceptance and alert rendering agree.
"""

from __future__ import annotations

from falconet.fields import FieldTable


def output_error(fmt: str, table: FieldTable) -> str | None:
    """The formatter's error text (e.g. "unknown filter: ...", "... cannot end with a %"), or
    None when the output is valid for the source."""
    from falconet.ruleset.formats import OutputFormatError, tokenize_output

    try:
        tokenize_output(fmt, table)
    except OutputFormatError as exc:
        return str(exc)
    return None
