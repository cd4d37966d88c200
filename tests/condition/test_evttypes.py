"""Event-type inference (ppm_codes.cpp semantics), code counts, and pinned values."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from falconet.condition import ast as A
from falconet.condition import event_names
from falconet.condition._gen_event_names import parse_markdown, render
from falconet.condition.compiler import check_condition, compile_predicate
from falconet.condition.evttypes import (
    ALL_EVENT_TYPES,
    EventTypeError,
    count_event_codes,
    event_code_count,
    event_types,
    is_known_event_type,
    pinned_values,
    warns_no_evttype,
)
from falconet.condition.parser import parse
from falconet.event import SchemaEvent
from falconet.fields import find_upstream_fields_tsv, schema_registry

GENERIC = event_names.GENERIC_SYSCALLS | event_names.SC_ONLY_NAMES | {"syscall"}
ALL = ALL_EVENT_TYPES


def types(cond: str, **kw: bool) -> frozenset[str]:
    return event_types(parse(cond), **kw)


def codes(cond: str, **kw: bool) -> int:
    return event_code_count(parse(cond), **kw)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("evt.type = open", {"open"}),
        ("evt.type == open", {"open"}),
        ("syscall.type = open", {"open"}),
        ("evt.type in (open, openat)", {"open", "openat"}),
        ("evt.type = open and proc.name = cat", {"open"}),
        ("evt.type in (open, openat) and evt.type in (openat, close)", {"openat"}),
        ("evt.type = open and evt.type = close", set()),
        ("evt.type = open or evt.type = close", {"open", "close"}),
        ("(evt.type = open or evt.type = close) and proc.name = x", {"open", "close"}),
        ("not (evt.type != open)", {"open"}),
        ("not not evt.type = open", {"open"}),
        ("not (evt.type != open or evt.type != close)", set()),
        ("not (evt.type != open and evt.type != close)", {"open", "close"}),
        ("not evt.type exists", set()),
        ("evt.type = nosuchevent", set()),  # unknown names add nothing (the compiler refuses them)
        ("evt.type = syscall", set()),  # names the generic pair, which upstream's lookup skips
    ],
)
def test_exact_sets(cond: str, expected: set[str]) -> None:
    assert types(cond) == frozenset(expected)


@pytest.mark.parametrize(
    "cond",
    [
        "proc.name = cat",
        "evt.type exists",
        "evt.type startswith open",
        "evt.type = open or proc.name = cat",
        "not (evt.type = open and proc.name = cat)",
        "not proc.name = cat",
        "evt.num = 0",  # neutral in libs 0.25.4
    ],
)
def test_neutral_conditions_match_all_types(cond: str) -> None:
    assert types(cond) == ALL
    assert codes(cond) == event_names.TOTAL_EVENT_CODES


def test_negations_complement_exact_sets() -> None:
    assert types("evt.type != open") == ALL - {"open"}
    assert types("not evt.type = open") == ALL - {"open"}
    assert types("not evt.type in (open, close)") == ALL - {"open", "close"}
    assert codes("evt.type != open") == event_names.TOTAL_EVENT_CODES - 2


def test_generic_syscalls_share_the_generic_pair() -> None:
    assert types("evt.type = removexattrat") == GENERIC
    assert codes("evt.type = removexattrat") == 2
    assert codes("evt.type in (removexattrat, acct, open)") == 4
    assert types("not evt.type = removexattrat") == ALL - GENERIC
    assert types("evt.type = removexattrat and evt.type = acct") == GENERIC


def test_code_counts_include_every_event_version() -> None:
    assert codes("evt.type = execve") == 16
    assert codes("evt.type in (open, openat, close)") == 2 + 4 + 2
    assert count_event_codes({"execve", "nosuch"}) == 16
    assert count_event_codes(ALL) == event_names.TOTAL_EVENT_CODES == 454
    assert count_event_codes(set()) == 0


def test_load_no_evttype_thresholds() -> None:
    assert warns_no_evttype(codes("proc.name = x")) is True
    assert warns_no_evttype(codes("evt.type = execve")) is False
    assert warns_no_evttype(100) is False
    assert warns_no_evttype(101) is True
    assert warns_no_evttype(codes("evt.type = open and evt.type = close")) is True  # 0.44.1
    assert warns_no_evttype(0, warn_empty=False) is False  # Falco master


def test_transformers_and_fields_on_evt_type_are_refused() -> None:
    with pytest.raises(EventTypeError) as info:
        types("tolower(evt.type) = open")
    assert (
        str(info.value) == "event code search does not support `evt.type` checks with transformers"
    )
    with pytest.raises(EventTypeError) as info:
        types("evt.type = val(proc.name)")
    assert (
        str(info.value) == "right-hand field comparisons on `evt.type`/`syscall.type` checks "
        "are not supported by event code search"
    )
    with pytest.raises(EventTypeError, match="with transformers"):
        types("evt.type = val(evt.type)")
    with pytest.raises(EventTypeError, match="with transformers"):
        types("tolower(evt.type) exists")
    assert types("tolower(evt.type) contains open") == ALL  # not an evt.type operator: not visited


def test_upstream_quirk_negated_transformer_with_literal_is_empty() -> None:
    assert types("concat(proc.name, 'x') = y") == ALL
    assert types("not concat(proc.name, 'x') = y") == frozenset()
    assert types("not concat('x', proc.name) = y") == ALL


def test_evt_num_invariants_of_libs_master() -> None:
    assert types("evt.num = 0", evt_num_invariants=True) == frozenset()
    assert types("evt.num in (0, 0)", evt_num_invariants=True) == frozenset()
    assert types("evt.num > 0 and evt.type = open", evt_num_invariants=True) == {"open"}
    assert types("not evt.num = 0", evt_num_invariants=True) == ALL
    assert types("evt.num < 1", evt_num_invariants=True) == frozenset()
    assert types("evt.num = 5", evt_num_invariants=True) == ALL


def test_known_event_types() -> None:
    assert is_known_event_type("open") and is_known_event_type("execve")
    assert is_known_event_type("removexattrat") and is_known_event_type("syscall")
    assert is_known_event_type("container") and is_known_event_type("procexit")
    assert is_known_event_type("pread64") and is_known_event_type("sched_process_exit")
    assert not is_known_event_type("opne")
    assert types("evt.type = sched_process_exit") == GENERIC  # a PPM_SC name: generic pair


def test_deep_negation_and_nesting_do_not_recurse() -> None:
    node: A.Expr = A.BinaryCheck(A.Field("evt.type"), "=", A.Value("open"))
    for _ in range(5001):
        node = A.Not(node)
    assert event_types(node) == ALL - {"open"}
    for i in range(3000):
        node = A.And((node, A.BinaryCheck(A.Field("proc.pid"), "=", A.Value(str(i)))))
    assert event_types(node) == ALL - {"open"}


def test_generated_event_names_match_the_markdown() -> None:
    tsv = find_upstream_fields_tsv()
    if tsv is None:
        pytest.skip("shared/upstream not found")
    md = (Path(tsv).parent / "supported-events.md").read_text(encoding="utf-8")
    schema, _categories, rows, generic = parse_markdown(md)
    assert schema == event_names.SCHEMA_VERSION
    assert generic - set(rows) == set(event_names.GENERIC_SYSCALLS)
    assert set(rows) <= set(event_names.EVENT_CODES)
    assert all(event_names.EVENT_CODES[n] >= count for n, count in rows.items())
    assert "open = 2" not in render(md, None)  # names are repr()'d data, never code
    assert '"open": 2,' in render(md, None)


# --- pinned values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("ka.verb = get", {"get"}),
        ("ka.verb in (get, list)", {"get", "list"}),
        ("ka.verb intersects (get, list)", {"get", "list"}),
        ("ka.verb = anyof (get, list)", {"get", "list"}),
        ("ka.verb = oneof (get, list)", {"get", "list"}),
        ("ka.verb = get or ka.verb = list", {"get", "list"}),
        ("ka.verb = get and ka.user.name = bob", {"get"}),
        ("ka.verb in (get, list) and not ka.verb = list", {"get"}),
        ("ka.verb in (get, list) and ka.verb != list", {"get"}),
        ("ka.verb startswith g and ka.verb in (get, put)", {"get", "put"}),
        ("not ka.verb != get and ka.verb exists", {"get"}),
        ("not (ka.verb != get or ka.verb = x)", None),  # ka.verb absent makes both false
        ("ka.verb = get and ka.verb = list", set()),
        ("ka.verb in ()", set()),
        ("ka.verb != get", None),
        ("not ka.verb = get", None),
        ("not ka.verb != get", None),  # true when ka.verb is absent
        ("ka.verb exists", None),
        ("ka.verb startswith g", None),
        ("tolower(ka.verb) = get", None),
        ("ka.verb = val(ka.user.name)", None),
        ("ka.verb = get or ka.user.name = bob", None),
        ("ka.user.name = bob", None),
        ("ka.target.name = get", None),
    ],
)
def test_pinned_values(cond: str, expected: set[str] | None) -> None:
    got = pinned_values(parse(cond), "ka.verb")
    assert got == (None if expected is None else frozenset(expected))


def test_pinned_values_of_list_fields_are_not_exact() -> None:
    cond = parse("ka.user.groups in (a, b)")
    assert pinned_values(cond, "ka.user.groups", is_list=True) is None


def test_pinned_values_are_sound_on_random_conditions_and_absent_fields() -> None:
    """Whenever a condition matches an event, the event's ka.verb is in the pinned set (and
    present). Conditions and events are random; half the events lack ka.verb."""
    try:
        table = schema_registry().table("k8s_audit")
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("fields.tsv not found")
    rng = random.Random(3)
    verbs = ["get", "list", "put"]

    def leaf() -> str:
        field = rng.choice(["ka.verb", "ka.verb", "ka.user.name"])
        op = rng.choice(["=", "!=", "in", "exists", "startswith", "= anyof"])
        if op == "exists":
            return f"{field} exists"
        if op in ("in", "= anyof"):
            return f"{field} {op} ({', '.join(rng.sample(verbs, rng.randint(1, 2)))})"
        return f"{field} {op} {rng.choice(verbs)}"

    def expr(depth: int) -> str:
        if depth == 0 or rng.random() < 0.3:
            text = leaf()
        else:
            text = f"({expr(depth - 1)} {rng.choice(['and', 'or'])} {expr(depth - 1)})"
        return f"not {text}" if rng.random() < 0.3 else text

    events = []
    for verb in [*verbs, "other", None]:
        for user in [*verbs, None]:
            fields = {"ka.verb": verb, "ka.user.name": user}
            events.append(SchemaEvent("k8s_audit", {k: v for k, v in fields.items() if v}))
    pinned_count = 0
    for _ in range(300):
        text = expr(3)
        node = parse(text)
        pins = pinned_values(node, "ka.verb")
        pinned_count += pins is not None
        match = compile_predicate(check_condition(node, table))
        for event in events:
            if match(event) and pins is not None:
                assert event.fields.get("ka.verb") in pins, (text, event.fields)
    assert pinned_count > 30  # the property is not vacuous
