"""Field and plugin listings as ``--list`` and ``--list-plugins`` print them, on small tables."""

from __future__ import annotations

import io

import orjson
from rich.console import Console

from falconet import listing
from falconet.api import EventSource, FieldSpec, FieldTable, FieldType, Plugin
from falconet.fields import ArgKind, FieldRegistry


def _registry() -> FieldRegistry:
    registry = FieldRegistry()
    for source in ("demo", "other"):
        table = registry.table(source)
        table.add(FieldSpec("evt.num", FieldType.UINT64, description="event number."))
        table.add(FieldSpec("evt.source", FieldType.CHARBUF, description="the source."))
    demo = registry.table("demo")
    demo.add(FieldSpec("demo.user", FieldType.CHARBUF, description="Who did it"))
    demo.add(FieldSpec("demo.tags", FieldType.CHARBUF, is_list=True, arg=ArgKind.INDEX,
                       description="Tags of the request"))
    demo.add(FieldSpec("demo.header", FieldType.CHARBUF, arg=ArgKind.KEY_REQUIRED,
                       description="A request header, by name. " + "Long words wrap. " * 8))
    demo.add(FieldSpec("demo.a_very_long_field_name_indeed", FieldType.BOOL, rhs_allowed=False))
    registry.table("other").add(FieldSpec("oth.port", FieldType.PORT, description="A port"))
    return registry


def test_classes_group_by_prefix_and_shared_classes_print_once() -> None:
    classes = listing.field_classes(_registry())
    assert [(fc.name, fc.sources) for fc in classes] == [
        ("evt", ["demo", "other"]), ("demo", ["demo"]), ("oth", ["other"])]
    only = listing.field_classes(_registry(), "other")
    assert [(fc.name, fc.sources) for fc in only] == [("evt", ["other"]), ("oth", ["other"])]


def test_classes_that_differ_between_sources_are_kept_apart() -> None:
    registry = _registry()
    registry.table("other").fields["evt.num"] = FieldSpec("evt.num", FieldType.UINT32)
    classes = listing.field_classes(registry)
    assert [(fc.name, fc.sources) for fc in classes] == [
        ("evt", ["demo"]), ("demo", ["demo"]), ("evt", ["other"]), ("oth", ["other"])]


def test_text_matches_upstream_layout() -> None:
    text = listing.fields_as_text(listing.field_classes(_registry(), "demo"))
    pad = " " * 30
    assert text == (
        "-------------------------------\n"
        f"{'Field Class:':<30}evt\n"
        f"{'Event Sources:':<30}demo\n"
        "\n"
        f"{'evt.num':<30}(Type: UINT64) event number.\n"
        f"{'evt.source':<30}(Type: CHARBUF) the source.\n"
        "\n"
        "-------------------------------\n"
        f"{'Field Class:':<30}demo\n"
        f"{'Event Sources:':<30}demo\n"
        "\n"
        f"{'demo.user':<30}(Type: CHARBUF) Who did it\n"
        f"{'demo.tags':<30}(Type: CHARBUF) (ARG_ALLOWED,ARG_INDEX,EPF_IS_LIST) Tags of the "
        "request\n"
        f"{'demo.header':<30}(Type: CHARBUF) (ARG_KEY,ARG_REQUIRED) A request header, by name. "
        "Long words wrap. Long\n"
        f"{pad}words wrap. Long words wrap. Long words wrap. Long words wrap. Long words wrap. "
        "Long\n"
        f"{pad}words wrap. Long words wrap.\n"
        "demo.a_very_long_field_name_indeed\n"
        f"{pad}(Type: BOOL) (EPF_NO_RHS)\n"
    )


def test_markdown() -> None:
    text = listing.fields_as_markdown(listing.field_classes(_registry(), "other"))
    assert text == (
        "## Field Class: evt\n\nEvent Sources: other\n\n"
        "Name | Type | Description\n:----|:-----|:-----------\n"
        "`evt.num` | UINT64 | event number.\n"
        "`evt.source` | CHARBUF | the source.\n"
        "\n"
        "## Field Class: oth\n\nEvent Sources: other\n\n"
        "Name | Type | Description\n:----|:-----|:-----------\n"
        "`oth.port` | PORT | A port\n"
    )


def test_json_has_upstream_keys_and_argument_shapes() -> None:
    doc = orjson.loads(listing.fields_as_json(listing.field_classes(_registry())))
    evt, demo, oth = doc["fieldclasses"]
    assert evt == {"name": "evt", "event_sources": ["demo", "other"], "fields": [
        {"name": "evt.num", "type": "UINT64", "desc": "event number.", "is_list": False,
         "argument": None},
        {"name": "evt.source", "type": "CHARBUF", "desc": "the source.", "is_list": False,
         "argument": None}]}
    by_name = {f["name"]: f for f in demo["fields"]}
    assert by_name["demo.tags"]["is_list"] is True
    assert by_name["demo.tags"]["argument"] == {"required": False, "type": ["INDEX"]}
    assert by_name["demo.header"]["argument"] == {"required": True, "type": ["KEY"]}
    assert oth["fields"][0]["type"] == "PORT"


def test_json_names_only() -> None:
    text = listing.fields_as_json(listing.field_classes(_registry()), names_only=True)
    assert orjson.loads(text) == {"fieldnames": [
        "evt.num", "evt.source", "demo.user", "demo.tags", "demo.header",
        "demo.a_very_long_field_name_indeed", "oth.port"]}
    assert text.startswith('{\n  "fieldnames": [\n    "evt.num",')


def test_rich_tables_show_every_field() -> None:
    out = io.StringIO()
    listing.print_fields_rich(listing.field_classes(_registry(), "demo"),
                              Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "Field Class: demo  (sources: demo)" in text
    assert "demo.header" in text and "key (required)" in text
    assert "LIST(CHARBUF)" in text


async def _no_events(_ctx: object) -> None:  # pragma: no cover - never opened
    return None


def _plugin() -> Plugin:
    return Plugin(
        name="demo", version="1.2.3", description="Demo events", contact="example.org/demo",
        init_schema={"type": "object", "properties": {"depth": {"type": "integer"}}},
        source=EventSource(name="demo", open=_no_events,  # type: ignore[arg-type]
                           plugin_id=999),
        fields=lambda: [FieldTable("demo")],
    )


def test_plugins_text() -> None:
    assert listing.plugins_as_text([_plugin()]) == (
        "1 Plugins Loaded:\n\n"
        "Name: demo\nDescription: Demo events\nContact: example.org/demo\nVersion: 1.2.3\n"
        "Capabilities:\n  - Event Sourcing (ID=999, source='demo')\n  - Field Extraction\n\n")
    assert listing.plugins_as_text([]) == "0 Plugins Loaded:\n\n"


def test_plugin_info_text() -> None:
    text = listing.plugin_info_as_text(_plugin(), "http://:9765/k8s-audit")
    assert text.endswith(
        "Init config schema type: JSON\n"
        '{\n  "type": "object",\n  "properties": {\n    "depth": {\n      "type": "integer"\n'
        "    }\n  }\n}\n\n"
        "Configured open params:\nhttp://:9765/k8s-audit\n\n")
    bare = Plugin(name="bare", version="0.1.0")
    assert listing.plugin_info_as_text(bare, None) == (
        "Name: bare\nDescription: \nContact: \nVersion: 0.1.0\nCapabilities:\n\n"
        "Init config schema type: Not available, plugin does not implement the init config "
        "schema functionality\n\n")


def test_rich_plugins_table() -> None:
    out = io.StringIO()
    listing.print_plugins_rich([_plugin()], Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "1 Plugins Loaded" in text
    assert "Event Sourcing (ID=999, source='demo')" in text
