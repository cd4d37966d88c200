"""A test plugin with a live source and an output, for running falconet in a subprocess.

Source ``ticker`` (schema-only fields ``proc.name``, ``evt.type``): ``open_params`` is JSON:
``{"names": [...], "count": N, "interval": S}`` emits ``count`` events (0: forever), one batch
each, ``interval`` seconds apart, cycling over ``names``; then waits until it is stopped, as a
live source with no more traffic does. Output ``capture``: appends each alert line to
``capture_output.path`` and flushes, so a test can watch the file while falconet runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from falconet.api import (
    Alert,
    EventBatch,
    EventSource,
    FieldSpec,
    FieldTable,
    FieldType,
    Output,
    OutputContext,
    OutputSpec,
    Plugin,
    SchemaEvent,
    SourceContext,
)

SOURCE = "ticker"


async def _open(ctx: SourceContext) -> AsyncIterator[EventBatch]:
    params = json.loads(ctx.open_params or "{}")
    names = params.get("names", ["foo"])
    count = int(params.get("count", 0))
    interval = float(params.get("interval", 0.01))
    i = 0
    while count == 0 or i < count:
        name = names[i % len(names)]
        yield [SchemaEvent(SOURCE, {"proc.name": name, "evt.type": "tick", "seq": i},
                           ts=1_714_557_600_000_000_000 + i * 1_000_000_000)]
        i += 1
        await asyncio.sleep(interval)
    await asyncio.Event().wait()


def _fields() -> Iterable[FieldTable]:
    table = FieldTable(SOURCE)
    table.add(FieldSpec("proc.name", FieldType.CHARBUF))
    table.add(FieldSpec("evt.type", FieldType.CHARBUF))
    return [table]


class CaptureOutput:
    def __init__(self, path: str) -> None:
        self.fh = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    async def send(self, alerts: Sequence[Alert]) -> None:
        self.fh.write("".join(a.line + "\n" for a in alerts))
        self.fh.flush()

    async def close(self) -> None:
        self.fh.close()


def _capture(settings: Mapping[str, Any], ctx: OutputContext) -> Output:
    return CaptureOutput(str(settings["path"]))


def ticker_plugin() -> Plugin:
    return Plugin(
        name="ticker", version="0.1.0", description="test source",
        source=EventSource(SOURCE, _open, json_payload=False),
        fields=_fields,
        outputs=[OutputSpec("capture", _capture, config_schema={
            "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})],
    )
