"""The k8saudit field table: exactly upstream's 100 fields, and their exact values on hand-built
audit events (request, user, target, RBAC, service, URI fields; absent cases; the deviations)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from falconet.event import JsonEvent
from falconet.fields import ArgKind, FieldType, parse_fields_tsv
from falconet_k8s_audit import k8saudit_field_specs, k8saudit_field_table

from .helpers import SHARED, event, extract
from .test_pod_fields import CASES as POD_CASES
from .test_pod_fields import POD

FIELDS_TSV = SHARED / "upstream" / "fields" / "fields.tsv"
KA = {s.name: s for s in k8saudit_field_specs()}

BINDING: dict[str, Any] = {
    "kind": "Event",
    "auditID": "b-1",
    "stage": "ResponseComplete",
    "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?dryRun=All&x=a%20b+c",
    "verb": "create",
    "user": {"username": "alice", "groups": ["system:masters", "system:authenticated"]},
    "impersonatedUser": {"username": "bob"},
    "sourceIPs": ["10.0.0.1", "192.168.1.2"],
    "userAgent": "kubectl/v1.30.0",
    "objectRef": {"resource": "clusterrolebindings", "name": "rb", "namespace": "ns",
                  "subresource": "status"},
    "responseStatus": {"metadata": {}, "code": 403, "reason": "Forbidden"},
    "requestObject": {
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "ServiceAccount", "name": "sa", "namespace": "kube-system"},
            {"kind": "ServiceAccount", "name": "lost"},  # no namespace: not in ns_names
            {"kind": "Group", "name": "system:masters"},
            {"kind": "Group", "name": "devs"},
        ],
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "rules": [
            {"apiGroups": ["", "apps"], "resources": ["pods", "pods/exec"],
             "verbs": ["get", "create"]},
            {"nonResourceURLs": ["/healthz"], "verbs": ["*"]},
        ],
        "data": {"k": "v", "n": 1},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
    },
    "responseObject": {"metadata": {"name": "rb"}},
    "annotations": {
        "authorization.k8s.io/decision": "forbid",
        "authorization.k8s.io/reason": "no RBAC policy matched",
        "authentication.openshift.io/decision": "allow",
        "authentication.openshift.io/username": "oc-user",
        "validation.policy.admission.k8s.io/validation_failure": "[{\"message\":\"m\"}]",
        "pod-security.kubernetes.io/audit-violations": "privileged (container \"a\")",
        "cluster_name": "prod",
    },
}

RULE_0 = '{"apiGroups":["","apps"],"resources":["pods","pods/exec"],"verbs":["get","create"]}'
CASES: list[tuple[str, str | None, Any]] = [
    ("ka.auditid", None, "b-1"),
    ("ka.stage", None, "ResponseComplete"),
    ("ka.auth.decision", None, "forbid"),
    ("ka.auth.reason", None, "no RBAC policy matched"),
    ("ka.auth.openshift.decision", None, "allow"),
    ("ka.auth.openshift.username", None, "oc-user"),
    ("ka.validations.admission.policy.failure", None, '[{"message":"m"}]'),
    ("ka.security.pod.violations", None, 'privileged (container "a")'),
    ("ka.cluster.name", None, "prod"),
    ("ka.user.name", None, "alice"),
    ("ka.user.groups", None, ("system:masters", "system:authenticated")),
    ("ka.impuser.name", None, "bob"),
    ("ka.verb", None, "create"),
    ("ka.uri", None, BINDING["requestURI"]),
    ("ka.uri.param", "dryRun", "All"),
    ("ka.uri.param", "x", "a b c"),
    ("ka.uri.param", "missing", None),
    ("ka.target.name", None, "rb"),
    ("ka.target.namespace", None, "ns"),
    ("ka.target.resource", None, "clusterrolebindings"),
    ("ka.target.subresource", None, "status"),
    ("ka.target.pod.name", None, None),
    ("ka.req.binding.subjects", None, (
        '{"kind":"User","name":"alice"}',
        '{"kind":"ServiceAccount","name":"sa","namespace":"kube-system"}',
        '{"kind":"ServiceAccount","name":"lost"}',
        '{"kind":"Group","name":"system:masters"}',
        '{"kind":"Group","name":"devs"}',
    )),
    ("ka.req.binding.subjects.user_names", None, ("alice",)),
    ("ka.req.binding.subjects.serviceaccount_names", None, ("sa", "lost")),
    ("ka.req.binding.subjects.serviceaccount_ns_names", None, ("kube-system:sa",)),
    ("ka.req.binding.subjects.group_names", None, ("system:masters", "devs")),
    ("ka.req.binding.role", None, "cluster-admin"),
    ("ka.req.binding.subject.has_name", "devs", "true"),  # deviation: see README
    ("ka.req.binding.subject.has_name", "mallory", "false"),
    ("ka.req.configmap.name", None, "rb"),
    ("ka.req.configmap.obj", None, '{"k":"v","n":1}'),
    ("ka.req.role.rules", None, (RULE_0, '{"nonResourceURLs":["/healthz"],"verbs":["*"]}')),
    ("ka.req.role.rules.apiGroups", None, ("", "apps")),
    ("ka.req.role.rules.apiGroups", "1", None),
    ("ka.req.role.rules.resources", None, ("pods", "pods/exec")),
    ("ka.req.role.rules.verbs", None, ("get", "create", "*")),
    ("ka.req.role.rules.verbs", "1", ("*",)),
    ("ka.req.role.rules.nonResourceURLs", None, ("/healthz",)),
    ("ka.req.role.rules.nonResourceURLs", "0", None),
    ("ka.req.service.type", None, "NodePort"),
    # upstream returns the whole ports array as one JSON element, whatever the index
    ("ka.req.service.ports", None, ('[{"port":80,"nodePort":30080}]',)),
    ("ka.req.service.ports", "3", ('[{"port":80,"nodePort":30080}]',)),
    ("ka.resp.name", None, "rb"),
    ("ka.response.code", None, "403"),
    ("ka.response.reason", None, "Forbidden"),
    ("ka.useragent", None, "kubectl/v1.30.0"),
    ("ka.sourceips", None, ("10.0.0.1", "192.168.1.2")),  # deviation: see README
    ("ka.sourceips", "1", ("192.168.1.2",)),
    ("ka.sourceips", "2", None),
]


@pytest.mark.parametrize(("field", "arg", "expected"), CASES)
def test_values(field: str, arg: str | None, expected: Any) -> None:
    assert extract(field, BINDING, arg) == expected


def test_every_field_has_an_exact_value_case() -> None:
    covered = {field for field, _, _ in CASES + POD_CASES}
    assert sorted(set(KA) - covered) == []


def test_counts_types_and_arguments() -> None:
    assert len(KA) == 100
    assert sum(s.is_list for s in KA.values()) == 61
    assert all(s.type is FieldType.CHARBUF for s in KA.values())
    assert all(s.name.startswith("ka.") and s.description for s in KA.values())
    keys = {n for n, s in KA.items() if s.arg is ArgKind.KEY_REQUIRED}
    assert keys == {"ka.uri.param", "ka.req.binding.subject.has_name", "ka.req.volume.hostpath"}
    assert all(s.is_list for s in KA.values() if s.arg is ArgKind.INDEX)


def test_same_fields_lists_and_arguments_as_upstream() -> None:
    if not FIELDS_TSV.is_file():
        pytest.skip(f"upstream field list not found at {FIELDS_TSV} (shared/ is not beside main)")
    with FIELDS_TSV.open(encoding="utf-8") as fh:
        upstream = {s.name: s for src, s in parse_fields_tsv(fh) if src == "k8s_audit"}
    assert len(upstream) == 100
    assert sorted(KA) == sorted(upstream)
    for name, spec in KA.items():
        assert (spec.is_list, spec.arg) == (upstream[name].is_list, upstream[name].arg), name


def test_table_has_evt_json_and_ka_fields() -> None:
    table = k8saudit_field_table()
    assert table.source == "k8s_audit"
    assert len(table) == 100 + 6 + 15
    ev = event(BINDING, ts=1_000_000_000_123, num=3)
    assert table.fields["evt.pluginname"].extractor(None)(ev) == "k8saudit"
    assert table.fields["evt.plugininfo"].extractor(None)(ev) == ev.raw.decode()
    assert table.fields["jevt.value"].extractor("/stage")(ev) == "ResponseComplete"
    assert table.fields["jevt.rawtime"].extractor(None)(ev) == "1000000000123"
    assert table.fields["evt.time"].extractor(None)(ev) == "00:16:40.000000123"
    assert table.lookup("ka.req.pod.containers.image.repository") == (
        table.fields["ka.req.pod.containers.image.repository"], None)


def _every_extractor() -> list[tuple[str, Any]]:
    args = {ArgKind.NONE: [None], ArgKind.INDEX: [None, "0", "1"],
            ArgKind.KEY_REQUIRED: ["/proc", "alice", "dryRun"]}
    return [(f"{n}[{a}]", s.extractor(a)) for n, s in KA.items() for a in args[s.arg]]


@pytest.mark.parametrize("doc", [BINDING, POD], ids=["binding", "pod"])
def test_no_field_without_an_audit_id(doc: dict[str, Any]) -> None:
    assert any(x(event(doc)) is not None for _, x in _every_extractor())
    stripped = copy.deepcopy(doc)
    del stripped["auditID"]
    assert [n for n, x in _every_extractor() if x(event(stripped)) is not None] == []


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'"auditID"', b"", b'{"auditID":'])
def test_no_field_on_other_payloads(raw: bytes) -> None:
    ev = JsonEvent("k8s_audit", raw)
    assert [n for n, x in _every_extractor() if x(ev) is not None] == []


def test_null_audit_id_still_counts() -> None:
    """Upstream only checks that the key exists; JSON null is rendered "null"."""
    assert extract("ka.auditid", {"auditID": None}) == "null"
    assert extract("ka.verb", {"auditID": None, "verb": "get"}) == "get"


def test_absent_paths_and_wrong_types() -> None:
    doc = {"auditID": "1", "user": {"groups": "admins"}, "objectRef": ["x"],
           "requestObject": {"subjects": {"kind": "User", "name": "x"}, "rules": "r"}}
    assert extract("ka.user.groups", doc) is None  # not an array: an error upstream
    assert extract("ka.target.name", doc) is None
    assert extract("ka.req.binding.subjects.user_names", doc) is None
    assert extract("ka.req.binding.subject.has_name", doc, "x") is None
    assert extract("ka.req.role.rules", doc) is None
    assert extract("ka.req.role.rules.verbs", doc) is None
    assert extract("ka.user.name", doc) is None
    assert extract("ka.response.code", doc) is None


def test_empty_lists_are_absent() -> None:
    doc = {"auditID": "1", "user": {"groups": []}, "sourceIPs": [],
           "requestObject": {"subjects": [], "rules": [{"verbs": []}]}}
    for field in ("ka.user.groups", "ka.req.binding.subjects", "ka.sourceips",
                  "ka.req.binding.subjects.user_names", "ka.req.role.rules.verbs"):
        assert extract(field, doc) is None, field
    assert extract("ka.req.binding.subject.has_name", doc, "x") == "false"


def test_subjects_edge_cases() -> None:
    doc = {"auditID": "1", "requestObject": {"subjects": [
        "str", ["User"], {"kind": "User"}, {"name": "n"}, {"kind": "User", "name": 3},
        {"kind": "ServiceAccount", "name": "s", "namespace": None},
        {"kind": "ServiceAccount", "name": "t", "namespace": 1}]}}
    assert extract("ka.req.binding.subjects.user_names", doc) == ("3",)
    assert extract("ka.req.binding.subjects.serviceaccount_ns_names", doc) == ("null:s", "1:t")


def test_rules_fields_flatten_arrays_only() -> None:
    doc = {"auditID": "1", "requestObject": {"rules": [
        {"verbs": ["get", 1, None, ["x"]]}, {"verbs": "list"}, "str", [{"verbs": ["nested"]}]]}}
    assert extract("ka.req.role.rules.verbs", doc) == ("get", "1", "null", '["x"]', "nested")
    assert extract("ka.req.role.rules.verbs", doc, "3") is None


def test_go_escapes_in_serialised_values() -> None:
    """The API server writes JSON with Go's encoding/json, and upstream re-emits that text."""
    doc = {"auditID": "1", "requestObject": {"data": {"h": "<b>&</b>", "u": "é\u2028"}}}
    assert extract("ka.req.configmap.obj", doc) == (
        '{"h":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e","u":"é\\u2028"}')
    assert extract("ka.verb", {"auditID": "1", "verb": "<x>"}) == "<x>"  # strings stay raw


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/api?command=ls&command=rm", "ls"),  # the first value wins
        ("/api?command=x%20y+z", "x y z"),
        ("/api?command=", ""),
        ("/api?command", ""),
        ("/api?co%6dmand=enc", "enc"),
        ("/api?command=%E2%98%83", "\u2603"),
        ("/api?command=a=b=c", "a=b=c"),
        ("/api?command=1#frag", "1"),
        ("/a%2Fb?command=1", "1"),
        ("http://host:80/p?command=h", "h"),
        ("mailto:x?command=m", "m"),
        ("/api?x=1?command=2&command=3", "3"),
        ("/api", None),
        ("/api?", None),
        ("/api?command=%zz", None),  # any bad escape fails the whole parse upstream
        ("/api?x=%zz&command=ok", None),
        ("/api?a;b=1&command=ok", None),  # semicolons are rejected since Go 1.17
        ("/a%zzb?command=1", None),
        ("/api?command=1#%zz", None),
        ("/p?command=x\u0001", None),
        ("a:b/c?command=1", "1"),  # an opaque URL with a query
        ("1a:b?command=1", None),  # first path segment in URL cannot contain colon
        (":x?command=1", None),
    ],
)
def test_uri_param(uri: str, expected: str | None) -> None:
    assert extract("ka.uri.param", {"auditID": "1", "requestURI": uri}, "command") == expected


def test_uri_param_of_a_non_string_uri() -> None:
    assert extract("ka.uri.param", {"auditID": "1", "requestURI": 5}, "command") is None
    assert extract("ka.uri.param", {"auditID": "1"}, "command") is None


@pytest.mark.parametrize("arg", ["01", "-1", "x", "", "1.0", "٣"])
def test_invalid_index_is_refused_at_compile_time(arg: str) -> None:
    with pytest.raises(ValueError, match="invalid index"):
        KA["ka.req.pod.containers.image"].extractor(arg)


@pytest.mark.parametrize(
    "field", ["ka.uri.param", "ka.req.binding.subject.has_name", "ka.req.volume.hostpath"]
)
def test_key_argument_is_required(field: str) -> None:
    with pytest.raises(ValueError, match="requires an argument"):
        KA[field].extractor(None)


def test_extraction_is_per_event() -> None:
    """Fields remember the last event's document; another event must not see it."""
    one, two = event({"auditID": "1", "verb": "get"}), event({"auditID": "2"})
    verb = KA["ka.verb"].extractor(None)
    assert verb(one) == "get"
    assert verb(two) is None
    assert verb(one) == "get"
    assert KA["ka.user.name"].extractor(None)(JsonEvent("k8s_audit", b"{}")) is None
