"""Alert text and JSON: what stdout and alert consumers (Falcosidekick) receive."""

from __future__ import annotations

import orjson
import pytest

from falconet.config import AppendOutput, load_config
from falconet.event import SchemaEvent
from falconet.ruleset.alerts import AlertFormatter, AlertOptions
from falconet.ruleset.formats import OutputFormatError, OutputFormatter

from .conftest import load_rules

TS = 1_764_187_572_123_456_789  # 2025-11-26T20:06:12.123456789Z

RULE = """
- rule: shadow read
  desc: d
  condition: evt.type = open and fd.name = /etc/shadow
  output: File opened (file=%fd.name proc=%proc.name pid=%proc.pid user=%user.name)
  priority: WARNING
  tags: [filesystem, T1003]
"""


def shadow_event(**extra) -> SchemaEvent:
    fields = {"evt.type": "open", "fd.name": "/etc/shadow", "proc.name": "cat", "proc.pid": 42}
    fields.update(extra)
    return SchemaEvent("syscall", fields, ts=TS)


def formatter(registry, options: AlertOptions | None = None, text: str = RULE) -> AlertFormatter:
    loader = load_rules(registry, text)
    return AlertFormatter(loader.rules[0], registry.table("syscall"),
                          options or AlertOptions(hostname="node-1"))


def test_text_line_has_time_priority_and_na_for_absent_fields(registry) -> None:
    line = formatter(registry).text(shadow_event())
    assert line == (
        "20:06:12.123456789: Warning File opened "
        "(file=/etc/shadow proc=cat pid=42 user=<NA>)"
    )


def test_text_line_iso8601_time(registry) -> None:
    opts = AlertOptions(hostname="node-1", time_format_iso_8601=True)
    line = formatter(registry, opts).text(shadow_event())
    assert line.startswith("2025-11-26T20:06:12.123456789Z: Warning File opened")


def test_control_characters_in_values_are_escaped_in_text(registry) -> None:
    line = formatter(registry).text(shadow_event(**{"proc.name": "evil\nFAKE ALERT"}))
    assert "proc=evil\\nFAKE ALERT" in line
    assert "\n" not in line


def test_json_alert_matches_falco_shape(registry) -> None:
    doc = orjson.loads(formatter(registry).json(shadow_event()))
    assert doc == {
        "hostname": "node-1",
        "output": "20:06:12.123456789: Warning File opened "
                  "(file=/etc/shadow proc=cat pid=42 user=<NA>)",
        "output_fields": {
            "evt.time": TS,
            "fd.name": "/etc/shadow",
            "proc.name": "cat",
            "proc.pid": 42,
            "user.name": None,
        },
        "priority": "Warning",
        "rule": "shadow read",
        "source": "syscall",
        "tags": ["T1003", "filesystem"],
        "time": "2025-11-26T20:06:12.123456789Z",
    }


def test_json_keys_are_sorted_like_nlohmann(registry) -> None:
    raw = formatter(registry).json(shadow_event())
    assert list(orjson.loads(raw)) == sorted(orjson.loads(raw))


def test_json_optional_properties(registry) -> None:
    opts = AlertOptions(hostname="h", json_include_output_property=False,
                        json_include_tags_property=False, json_include_message_property=True,
                        json_include_output_fields_property=False)
    doc = formatter(registry, opts).as_dict(shadow_event())
    assert sorted(doc) == ["hostname", "message", "priority", "rule", "source", "time"]
    assert doc["message"] == "File opened (file=/etc/shadow proc=cat pid=42 user=<NA>)"


def test_append_output_extra_output_and_fields_apply_by_tag(registry) -> None:
    ao = AppendOutput(tags=("filesystem",), extra_output="on %evt.type",
                      extra_fields=("proc.pid", ("who", "%proc.name/%proc.pid")))
    other = AppendOutput(rule="some other rule", extra_output="NEVER")
    opts = AlertOptions(hostname="h", append_output=(ao, other))
    f = formatter(registry, opts)
    doc = f.as_dict(shadow_event())
    assert doc["output"].endswith("user=<NA>) on open")
    assert doc["output_fields"]["who"] == "cat/42"
    assert doc["output_fields"]["proc.pid"] == 42
    assert "NEVER" not in doc["output"]


def test_append_output_from_config_requires_all_tags(registry) -> None:
    config = load_config(None, ["append_output[]={match: {tags: [filesystem, network]}, "
                                "extra_output: X}"], env={})
    opts = AlertOptions(append_output=config.append_output)
    assert formatter(registry, opts).text(shadow_event()).endswith("user=<NA>)")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%proc.name_suffix", "cat_suffix"),  # greedy, then shrink to a known field
        ("[%5proc.name]", "[cat  ]"),  # %N pads
        ("[%2proc.name]", "[ca]"),  # %N truncates
        ("%proc.name%proc.pid", "cat42"),
        ("100%%proc.name", None),
        ("pid=%proc.pid)", "pid=42)"),
    ],
)
def test_output_tokens(registry, fmt, expected) -> None:
    table = registry.table("syscall")
    if expected is None:
        with pytest.raises(OutputFormatError):
            OutputFormatter(fmt, table)
        return
    assert OutputFormatter(fmt, table).format(shadow_event()) == expected


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("ends with %", "invalid formatting syntax: formatting cannot end with a %"),
        ("ends with %12", "invalid formatting syntax: formatting cannot end with a number"),
        ("", "empty formatting token"),
    ],
)
def test_output_format_errors(registry, fmt, message) -> None:
    with pytest.raises(OutputFormatError) as err:
        OutputFormatter(fmt, registry.table("syscall"))
    assert str(err.value) == message


def test_unknown_output_field_is_an_unknown_filter(registry) -> None:
    with pytest.raises(OutputFormatError) as err:
        OutputFormatter("x=%nosuch.field", registry.table("syscall"))
    assert str(err.value).startswith("unknown filter: ")


def test_list_values_render_in_parentheses(registry) -> None:
    f = OutputFormatter("types=%fd.types", registry.table("syscall"))
    ev = SchemaEvent("syscall", {"fd.types": ("file", "ipv4")})
    assert f.format(ev) == "types=(file,ipv4)"
    assert f.output_fields(ev) == {"fd.types": ["file", "ipv4"]}
