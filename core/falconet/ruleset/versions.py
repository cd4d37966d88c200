"""Engine and plugin version requirements, with libsinsp's ``sinsp_version`` semantics.

Versions parse like ``sscanf("%u.%u.%u")``: leading blanks and trailing text are accepted
(``0.10.0-rc1`` is 0.10.0). A requirement is met by a version with the same major that is not
lower (``compatible_with``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"[ \t\n\v\f\r]*([+-]?\d+)"  # what %u accepts: blanks, a sign, digits
_VERSION_RE = re.compile(_NUM + r"\." + _NUM + r"\." + _NUM)
_U32 = 1 << 32


def _u32(text: str) -> int:
    """strtoul then a cast to uint32: negatives wrap, overflow saturates."""
    value = int(text)
    if value >= 1 << 64:
        value = (1 << 64) - 1
    return value % _U32


@dataclass(frozen=True, slots=True)
class SinspVersion:
    major: int = 0
    minor: int = 0
    patch: int = 0
    valid: bool = True

    @classmethod
    def parse(cls, text: str) -> SinspVersion:
        m = _VERSION_RE.match(text)
        if m is None:
            return cls(0, 0, 0, False)
        return cls(_u32(m.group(1)), _u32(m.group(2)), _u32(m.group(3)))

    def as_string(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def compatible_with(self, requested: SinspVersion) -> bool:
        """True when this (the provider's) version satisfies ``requested``."""
        if not self.valid or not requested.valid:
            return False
        return self.major == requested.major and self.key() >= requested.key()


@dataclass(frozen=True, slots=True)
class PluginRequirement:
    name: str
    version: str


def plugin_requirement_errors(required: list[list[PluginRequirement]],
                              loaded: dict[str, str]) -> list[str]:
    """Upstream's ``check_plugin_requirements`` messages, one per unmet requirement entry
    (Falco stops at the first; we report them all, in order)."""
    errors: list[str] = []
    for alternatives in required:
        err = _check_alternatives(alternatives, loaded)
        if err is None:
            continue
        if not err:
            listed = ", ".join(f"{r.name} (>= {r.version})" for r in alternatives)
            err = "Plugin requirement not satisfied, must load one of: " + listed
        errors.append(err)
    return errors


def _check_alternatives(alternatives: list[PluginRequirement],
                        loaded: dict[str, str]) -> str | None:
    """None when satisfied; "" when no alternative is loaded; else the version mismatch."""
    for req in alternatives:
        if req.name not in loaded:
            continue
        have = loaded[req.name]
        plugin_version = SinspVersion.parse(have)
        if not plugin_version.valid:
            return f"Plugin '{req.name}' has invalid version string '{have}'"
        if not plugin_version.compatible_with(SinspVersion.parse(req.version)):
            return (f"Plugin '{req.name}' version '{have}' is not compatible with required "
                    f"plugin version '{req.version}'")
        return None
    return ""
