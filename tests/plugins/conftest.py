"""Helpers for plugin tests: falco.yaml documents as Config, small real plugins, upstream data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from falconet.api import EventBatch, EventSource, FieldSpec, FieldTable, FieldType, Plugin
from falconet.config import Config, build_config
from falconet.plugins import Catalogue, discover

SHARED = Path(__file__).resolve().parents[3] / "shared"
FIELDS_TSV = SHARED / "upstream" / "fields" / "fields.tsv"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "installs_package: pip-installs a distribution into the running Python "
        "environment (uninstalled again when the test ends)")


def config(doc: dict[str, Any]) -> Config:
    """A Config from a falco.yaml document (as falco.yaml would be read)."""
    return build_config(doc)


async def _nothing(ctx: Any) -> AsyncIterator[EventBatch]:
    if False:  # pragma: no cover - an empty live stream
        yield []


def source(name: str, *, plugin_id: int = 0, json_payload: bool = True) -> EventSource:
    return EventSource(name=name, open=_nothing, json_payload=json_payload, plugin_id=plugin_id)


def table(source_name: str, *names: str) -> FieldTable:
    """A table of CHARBUF fields reading ``event.payload[<last name part>]``."""
    t = FieldTable(source_name)
    for name in names:
        key = name.rsplit(".", 1)[-1]

        def make(arg: str | None, key: str = key) -> Any:
            return lambda event: event.payload.get(key)

        t.add(FieldSpec(name, FieldType.CHARBUF, make_extractor=make))
    return t


def plugin(name: str, *, src: EventSource | None = None, tables: tuple[FieldTable, ...] = (),
           **kw: Any) -> Plugin:
    return Plugin(name=name, version=kw.pop("version", "1.0.0"), source=src,
                  fields=(lambda: tables) if tables else None, **kw)


@pytest.fixture(scope="session")
def installed() -> Catalogue:
    """The plugins the installed entry points bring."""
    return discover()


@pytest.fixture
def fields_tsv() -> Path:
    if not FIELDS_TSV.is_file():
        pytest.skip("needs ../shared/upstream/fields/fields.tsv (upstream field list)")
    return FIELDS_TSV
