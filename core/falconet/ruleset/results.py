"""Load results: the errors and warnings of loading one rules file, with upstream's codes.

The codes and their short descriptions are Falco's (``falco_load_result``), so scripts that grep
``falco --validate`` output keep working. Rendering to text and JSON lives in ``report.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorCode(StrEnum):
    LOAD_ERR_FILE_READ = "LOAD_ERR_FILE_READ"
    LOAD_ERR_YAML_PARSE = "LOAD_ERR_YAML_PARSE"
    LOAD_ERR_YAML_VALIDATE = "LOAD_ERR_YAML_VALIDATE"
    LOAD_ERR_COMPILE_CONDITION = "LOAD_ERR_COMPILE_CONDITION"
    LOAD_ERR_COMPILE_OUTPUT = "LOAD_ERR_COMPILE_OUTPUT"
    LOAD_ERR_VALIDATE = "LOAD_ERR_VALIDATE"
    LOAD_ERR_EXTENSION = "LOAD_ERR_EXTENSION"

    @property
    def desc(self) -> str:
        return _ERROR_DESCS[self]


class WarningCode(StrEnum):
    LOAD_UNKNOWN_SOURCE = "LOAD_UNKNOWN_SOURCE"
    LOAD_UNSAFE_NA_CHECK = "LOAD_UNSAFE_NA_CHECK"
    LOAD_NO_EVTTYPE = "LOAD_NO_EVTTYPE"
    LOAD_UNKNOWN_FILTER = "LOAD_UNKNOWN_FILTER"
    LOAD_UNUSED_MACRO = "LOAD_UNUSED_MACRO"
    LOAD_UNUSED_LIST = "LOAD_UNUSED_LIST"
    LOAD_UNKNOWN_ITEM = "LOAD_UNKNOWN_ITEM"
    LOAD_DEPRECATED_ITEM = "LOAD_DEPRECATED_ITEM"
    LOAD_WARNING_EXTENSION = "LOAD_WARNING_EXTENSION"
    LOAD_APPEND_NO_VALUES = "LOAD_APPEND_NO_VALUES"
    LOAD_EXCEPTION_NAME_NOT_UNIQUE = "LOAD_EXCEPTION_NAME_NOT_UNIQUE"
    LOAD_INVALID_MACRO_NAME = "LOAD_INVALID_MACRO_NAME"
    LOAD_INVALID_LIST_NAME = "LOAD_INVALID_LIST_NAME"
    LOAD_COMPILE_CONDITION = "LOAD_COMPILE_CONDITION"
    LOAD_UNKNOWN_KEY = "LOAD_UNKNOWN_KEY"

    @property
    def desc(self) -> str:
        return _WARNING_DESCS[self]

    @property
    def long_desc(self) -> str:
        """Upstream's ``warning_desc``: what the JSON form prints as ``codedesc``."""
        return _WARNING_LONG_DESCS[self]


_ERROR_DESCS = {
    ErrorCode.LOAD_ERR_FILE_READ: "File read error",
    ErrorCode.LOAD_ERR_YAML_PARSE: "YAML parse error",
    ErrorCode.LOAD_ERR_YAML_VALIDATE: "Error validating internal structure of YAML file",
    ErrorCode.LOAD_ERR_COMPILE_CONDITION: "Error compiling condition",
    ErrorCode.LOAD_ERR_COMPILE_OUTPUT: "Error compiling output",
    ErrorCode.LOAD_ERR_VALIDATE: "Error validating rule/macro/list/exception objects",
    ErrorCode.LOAD_ERR_EXTENSION: "Error in extension item",
}
_WARNING_DESCS = {
    WarningCode.LOAD_UNKNOWN_SOURCE: "Unknown event source",
    WarningCode.LOAD_UNSAFE_NA_CHECK: "Unsafe <NA> comparison in condition",
    WarningCode.LOAD_NO_EVTTYPE: "Condition has no event-type restriction",
    WarningCode.LOAD_UNKNOWN_FILTER: "Unknown field or event-type in condition or output",
    WarningCode.LOAD_UNUSED_MACRO: "Unused macro",
    WarningCode.LOAD_UNUSED_LIST: "Unused list",
    WarningCode.LOAD_UNKNOWN_ITEM: "Unknown rules file item",
    WarningCode.LOAD_DEPRECATED_ITEM: "Used deprecated item",
    WarningCode.LOAD_WARNING_EXTENSION: "Warning in extension item",
    WarningCode.LOAD_APPEND_NO_VALUES: "Overriding/appending with no values",
    WarningCode.LOAD_EXCEPTION_NAME_NOT_UNIQUE: "Multiple exceptions defined with the same name",
    WarningCode.LOAD_INVALID_MACRO_NAME: "Invalid macro name",
    WarningCode.LOAD_INVALID_LIST_NAME: "Invalid list name",
    WarningCode.LOAD_COMPILE_CONDITION: "Warning in rule condition",
    WarningCode.LOAD_UNKNOWN_KEY: "Unknown key in item definition",
}

_WARNING_LONG_DESCS = {
    WarningCode.LOAD_UNKNOWN_SOURCE: "A rule has a unknown event source. This can occur when "
    "reading rules content without having a corresponding plugin loaded, etc. The rule will be "
    "silently ignored.",
    WarningCode.LOAD_UNSAFE_NA_CHECK: "Comparing a field value with <NA> is unsafe and can lead "
    "to unpredictable behavior of the rule condition. If you need to check for the existence of "
    "a field, consider using the 'exists' operator instead.",
    WarningCode.LOAD_NO_EVTTYPE: "A rule condition matches too many evt.type values. This has a "
    "significant performance penalty. Make the condition more specific by adding an evt.type "
    "field or further restricting the number of evt.type values in the condition.",
    WarningCode.LOAD_UNKNOWN_FILTER: "A rule condition or output refers to a field or evt.type "
    "that does not exist. This is normally an error, but if a rule has a skip-if-unknown-filter "
    "property, the error is downgraded to a warning.",
    WarningCode.LOAD_UNUSED_MACRO: "A macro is defined in the rules content but is not used by "
    "any other macro or rule.",
    WarningCode.LOAD_UNUSED_LIST: "A list is defined in the rules content but is not used by any "
    "other list, macro, or rule.",
    WarningCode.LOAD_UNKNOWN_ITEM: "An unknown top-level object is in the rules content. It will "
    "be ignored.",
    WarningCode.LOAD_DEPRECATED_ITEM: "A deprecated item is employed by lists, macros, or rules.",
    WarningCode.LOAD_WARNING_EXTENSION: "An extension item has a warning",
    WarningCode.LOAD_APPEND_NO_VALUES: "A rule exception is overriding/appending with no values",
    WarningCode.LOAD_EXCEPTION_NAME_NOT_UNIQUE: "A rule is defining multiple exceptions with the "
    "same name",
    WarningCode.LOAD_INVALID_MACRO_NAME: "A macro is defined with an invalid name",
    WarningCode.LOAD_INVALID_LIST_NAME: "A list is defined with an invalid name",
    WarningCode.LOAD_COMPILE_CONDITION: "A rule condition or output have been parsed with a "
    "warning",
    WarningCode.LOAD_UNKNOWN_KEY: "An item in the rules content contains an unrecognized key. The "
    "key will be ignored. This may indicate a typo or a property placed on the wrong item type.",
}


@dataclass(frozen=True, slots=True)
class Location:
    """One link of upstream's location chain: which file position, inside which item."""

    name: str  # file name
    line: int  # 1-based
    column: int  # 1-based
    offset: int  # 0-based character offset in the file
    item_type: str  # "rules content", "rule", "macro", "list", "condition", "exception"...
    item_name: str


@dataclass(slots=True)
class LoadMessage:
    """An error or a warning with where it happened and a snippet of the rules text."""

    code: ErrorCode | WarningCode
    message: str
    locations: list[Location] = field(default_factory=list)
    snippet: str = ""
    #: for LOAD_DEPRECATED_ITEM about a field (``evt.dir``...): upstream's
    #: ``deprecated_field_warning`` prints it in the summary and adds it to the JSON
    deprecated_field: str | None = None

    @property
    def codedesc(self) -> str:
        return self.code.desc

    @property
    def is_error(self) -> bool:
        return isinstance(self.code, ErrorCode)


@dataclass(slots=True)
class LoadResult:
    """What loading one rules file produced."""

    name: str
    errors: list[LoadMessage] = field(default_factory=list)
    warnings: list[LoadMessage] = field(default_factory=list)
    schema_valid: bool = True
    schema_warnings: list[str] = field(default_factory=list)

    @property
    def successful(self) -> bool:
        return not self.errors

    def has_warnings(self) -> bool:
        return bool(self.warnings)
