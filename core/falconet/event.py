"""The event model shared by every source.

This is the minimal form the rule engine needs: a source name and a way for field extractors to
reach the payload. ``SchemaEvent`` carries pre-extracted field values by name; it is what the
schema-only field tables read (see ``fields.FieldSpec.extractor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SchemaEvent:
    """An event whose field values are given directly: ``{"proc.name": "bash", ...}``.

    Keys are field names as written in conditions, with the argument in brackets when there is
    one (``proc.aname[2]``); list-valued fields hold tuples.
    """

    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    evt_type: str | None = None
    ts: int = 0
    num: int = 0
