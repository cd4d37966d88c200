"""Load Falco rules files with upstream's semantics (``falco_engine::load_rules``).

One ``RulesLoader`` per ruleset: ``load_text``/``load_file`` is called once per file, in order.
Definitions are collected across files (later files redefine, append to or override earlier
ones) and every call recompiles everything collected so far, so a rule in file 1 that uses a
macro defined only in file 2 fails when file 1 is loaded, as in Falco. The first error stops
the file; ``rules``/``macros``/``lists`` keep the output of the last successful load.

Known differences from Falco 0.44.1, on purpose:

* Condition-expression positions are true file positions (block scalars, appended or replaced
  conditions, exception text, nodes that came from a macro: at the macro reference), and the
  caret is placed inside the condition text; upstream adds parser and YAML-mark offsets, which
  only agrees for a plain one-line condition.
* YAML is read by PyYAML: what fails to parse, and where, can differ from yaml-cpp; messages
  keep yaml-cpp's form (and its wording for the common problems).
* No rules JSON-schema validation: results carry no schema status (as Falco without a schema).
* ``check_plugin_requirements`` returns every unmet requirement (Falco stops at the first).
* Where upstream has undefined behaviour or throws out of ``load_rules`` (a replaced exception
  with fewer comps than fields; ``evt.type`` under a transformer in event-type inference), a
  load error is reported instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import falconet
from falconet.fields import FieldRegistry
from falconet.ruleset.collector import Collector
from falconet.ruleset.compile import Compiler
from falconet.ruleset.context import Ctx, LoadError, make_message
from falconet.ruleset.language import Language
from falconet.ruleset.model import CompiledList, CompiledMacro, CompiledRule
from falconet.ruleset.reader import ItemReader
from falconet.ruleset.results import ErrorCode, LoadResult, WarningCode
from falconet.ruleset.versions import PluginRequirement, SinspVersion, plugin_requirement_errors
from falconet.ruleset.yaml_source import YamlSyntaxError, compose_documents, is_map, is_null, is_seq

__all__ = ["RulesLoader"]


class RulesLoader:
    """Reads, collects and compiles rules files for one field registry (the loaded sources)."""

    def __init__(self, registry: FieldRegistry, *,
                 engine_version: str = falconet.ENGINE_VERSION) -> None:
        self.registry = registry
        self.engine_version = engine_version
        self.language = Language(registry)
        self.collector = Collector(SinspVersion.parse(engine_version))
        self.compiler = Compiler(self.language)
        #: file name -> text, for snippets (``report.py`` reads it too)
        self.contents: dict[str, str] = {}
        #: the compiled output of the last successful load, rules in evaluation order
        self.rules: list[CompiledRule] = []
        self.macros: list[CompiledMacro] = []
        self.lists: list[CompiledList] = []

    # --- loading ------------------------------------------------------------------------------

    def load_file(self, path: str | os.PathLike[str]) -> LoadResult:
        """Load one file; an unreadable file is LOAD_ERR_FILE_READ."""
        name = os.fspath(path)
        try:
            data = Path(name).read_bytes()
        except OSError:
            result = LoadResult(name)
            result.errors.append(make_message(
                ErrorCode.LOAD_ERR_FILE_READ, f"Could not open file {name} for reading",
                Ctx.root(name), self.contents))
            return result
        return self.load_text(data.decode("utf-8", errors="replace"), name)

    def load_text(self, text: str, name: str) -> LoadResult:
        """Load one file's content, named ``name`` in messages."""
        result = LoadResult(name)
        self.contents[name] = text
        contents = self.contents

        def warn(code: WarningCode, message: str, ctx: Ctx,
                 deprecated_field: str | None = None) -> None:
            result.warnings.append(make_message(code, message, ctx, contents, deprecated_field))

        root = Ctx.root(name)
        try:
            self._read(text, root, warn)
            out = self.compiler.compile(self.collector, warn)
        except LoadError as exc:
            result.errors.append(make_message(exc.code, exc.message, exc.ctx, contents))
            return result
        except YamlSyntaxError as exc:
            ctx = root.at_mark(exc.line, exc.column, exc.index)
            result.errors.append(
                make_message(ErrorCode.LOAD_ERR_YAML_PARSE, exc.message, ctx, contents))
            return result
        self.rules = out.rules
        self.macros = list(out.macros.values())
        self.lists = list(out.lists.values())
        return result

    def _read(self, text: str, root: Ctx, warn: Any) -> None:
        docs = compose_documents(text)
        reader = ItemReader(self.collector, self.language.field_validator, warn, text)
        for doc in docs:
            if doc is None or is_null(doc):
                continue
            if not is_map(doc) and not is_seq(doc):
                raise LoadError(ErrorCode.LOAD_ERR_YAML_VALIDATE, "Rules content is not yaml",
                                root)
            if not is_seq(doc):
                raise LoadError(ErrorCode.LOAD_ERR_YAML_VALIDATE,
                                "Rules content is not yaml array of objects", root)
            for item in doc.value:
                if not is_null(item):
                    reader.read_item(item, root)

    # --- requirements -------------------------------------------------------------------------

    @property
    def required_engine_version(self) -> str | None:
        """The highest ``required_engine_version`` of the files loaded (None: none declared)."""
        version = self.collector.required_engine_version
        return None if version is None else version.as_string()

    @property
    def required_plugin_versions(self) -> list[list[PluginRequirement]]:
        """One entry per requirement: the plugin first, then its alternatives."""
        return self.collector.required_plugin_versions

    def describe_plugin_versions(self) -> list[dict[str, Any]]:
        """The requirements as ``falco -L`` JSON shows them."""
        return [
            {"name": alts[0].name, "version": alts[0].version,
             "alternatives": [{"name": a.name, "version": a.version} for a in alts[1:]]}
            for alts in self.collector.required_plugin_versions
        ]

    def check_plugin_requirements(self, loaded: dict[str, str]) -> list[str]:
        """Unmet requirements given the loaded plugins (name -> version), with upstream's
        messages; empty when all are met."""
        return plugin_requirement_errors(self.collector.required_plugin_versions, loaded)
