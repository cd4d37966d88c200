"""k8saudit fields on the recorded audit events of shared/testdata/k8s_audit (upstream's k8s audit
regression traces): exact values as upstream's Go extractor gives them, and sanity of every field
on every event."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from falconet.event import JsonEvent
from falconet.fields import ArgKind

from .helpers import SHARED, TABLE

TESTDATA = SHARED / "testdata" / "k8s_audit"
pytestmark = pytest.mark.skipif(
    not (TESTDATA / "traces").is_dir(),
    reason=f"recorded k8s audit events not found at {TESTDATA} (shared/ is not beside main)",
)


def stage_ts(doc: Any) -> int:
    """The event time upstream's source uses: stageTimestamp, in ns."""
    if not isinstance(doc, dict) or "stageTimestamp" not in doc:
        return 0
    when = datetime.fromisoformat(doc["stageTimestamp"].replace("Z", "+00:00"))
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def load(trace: str) -> list[JsonEvent]:
    """One event per JSON line, as the k8saudit source emits them (compact JSON)."""
    events = []
    lines = (TESTDATA / "traces" / trace).read_bytes().splitlines()
    for num, line in enumerate(ln for ln in lines if ln.strip()):
        doc = orjson.loads(line)
        events.append(JsonEvent("k8s_audit", orjson.dumps(doc), ts=stage_ts(doc), num=num))
    return events


def get(trace: str, field: str, arg: str | None = None, index: int = 0) -> Any:
    return TABLE.fields[field].extractor(arg)(load(trace)[index])


def all_traces() -> list[str]:
    if not (TESTDATA / "traces").is_dir():
        return []
    return sorted(p.name for p in (TESTDATA / "traces").glob("*.json"))


GROUPS = ("system:masters", "system:authenticated")
EXPECTED: dict[str, dict[str, Any]] = {
    "create_nginx_pod_privileged.json": {
        "ka.auditid": "a362d22b-db3c-4590-9505-23782f12925f",
        "ka.stage": "ResponseComplete",
        "ka.auth.decision": "allow",
        "ka.user.name": "system:serviceaccount:kube-system:replicaset-controller",
        "ka.user.groups": ("system:serviceaccounts", "system:serviceaccounts:kube-system",
                           "system:authenticated"),
        "ka.verb": "create",
        "ka.uri": "/api/v1/namespaces/default/pods",
        "ka.target.namespace": "default",
        "ka.target.resource": "pods",
        "ka.target.name": None,
        "ka.target.pod.name": "nginx-deployment-5cdcc99dbf-rgw6z",
        "ka.resp.name": "nginx-deployment-5cdcc99dbf-rgw6z",
        "ka.response.code": "201",
        "ka.req.pod.containers.name": ("nginx",),
        "ka.req.pod.containers.image": ("nginx",),
        "ka.req.pod.containers.image.repository": ("nginx",),
        "ka.req.pod.containers.privileged": ("true",),
        "ka.req.pod.containers.eff_run_as_user": ("0",),
        "ka.req.container.image": "nginx",
        "ka.req.container.privileged": "true",
        "ka.req.pod.initContainers.image": None,
        "ka.req.pod.host_network": None,
        "ka.sourceips": ("::1",),
        "evt.time": "14:09:12.581541000",
        "evt.datetime.s": "2018-10-25 14:09:12",
        "jevt.value[/stage]": "ResponseComplete",
        "jevt.rawtime": "1540476552581541000",
        "evt.pluginname": "k8saudit",
    },
    "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json": {
        "ka.req.pod.containers.name": ("nginx1", "mysql"),
        "ka.req.pod.containers.name[1]": ("mysql",),
        "ka.req.pod.containers.image": ("nginx", "mysql:latest"),
        "ka.req.pod.containers.image.repository": ("nginx", "mysql"),
        "ka.req.pod.containers.privileged": ("true",),
        "ka.req.pod.containers.privileged[1]": ("true",),
        "ka.req.pod.containers.privileged[0]": None,
        "ka.req.pod.containers.eff_run_as_user": ("0", "0"),
        "ka.req.container.privileged": "true",
        "ka.req.container.image.repository": "nginx",
    },
    "create_nginx_pod_sensitive_mount.json": {
        "ka.req.pod.volumes.hostpath": ("/etc",),
        "ka.req.pod.volumes.volume_type": ("hostPath",),
        "ka.req.volume.hostpath[/etc]": "true",
        "ka.req.volume.hostpath[/e*]": "true",
        "ka.req.volume.hostpath[/var/run/docker.sock]": "false",
        "ka.req.container.privileged": "false",
        "ka.req.pod.containers.privileged": None,
    },
    "create_cluster_role_wildcard_resources.json": {
        "ka.user.name": "minikube-user",
        "ka.user.groups": GROUPS,
        "ka.target.name": "some-reader",
        "ka.target.resource": "clusterroles",
        "ka.req.role.rules": (
            '{"apiGroups":[""],"resources":["*"],"verbs":["get","list"]}',
            '{"nonResourceURLs":["/api","/api/*","/apis","/apis/*","/healthz","/openapi",'
            '"/openapi/*","/swagger-2.0.0.pb-v1","/swagger.json","/swaggerapi","/swaggerapi/*",'
            '"/version","/version/"],"verbs":["get"]}',
        ),
        "ka.req.role.rules.apiGroups": ("",),
        "ka.req.role.rules.resources": ("*",),
        "ka.req.role.rules.verbs": ("get", "list", "get"),
        "ka.req.role.rules.verbs[1]": ("get",),
        "ka.req.role.rules.nonResourceURLs[1]": (
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/openapi", "/openapi/*",
            "/swagger-2.0.0.pb-v1", "/swagger.json", "/swaggerapi", "/swaggerapi/*", "/version",
            "/version/"),
        "ka.req.role.rules.nonResourceURLs[0]": None,
    },
    "attach_cluster_admin_role.json": {
        "ka.target.resource": "clusterrolebindings",
        "ka.req.binding.role": "cluster-admin",
        "ka.req.binding.subjects": (
            '{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"minikube"}',),
        "ka.req.binding.subjects.user_names": ("minikube",),
        "ka.req.binding.subjects.group_names": None,
        "ka.req.binding.subject.has_name[minikube]": "true",
        "ka.req.binding.subject.has_name[cluster-admin]": "false",
    },
    "attach_pod.json": {
        "ka.stage": "ResponseStarted",
        "ka.uri": "/api/v1/namespaces/default/pods/nginx-deployment-7998647bdf-phvq7/attach"
                  "?container=nginx1&stderr=true&stdin=true&stdout=true",
        "ka.uri.param[container]": "nginx1",
        "ka.uri.param[stdin]": "true",
        "ka.uri.param[command]": None,
        "ka.target.subresource": "attach",
        "ka.target.pod.name": None,
        "ka.response.code": "101",
        "ka.sourceips[0]": ("192.168.99.1",),
    },
    "create_nginx_service_nodeport.json": {
        "ka.req.service.type": "NodePort",
        "ka.req.service.ports": (
            '[{"nodePort":30080,"port":80,"protocol":"TCP","targetPort":80}]',),
        "ka.target.name": "nginx",
    },
    "create_configmap_sensitive_values.json": {
        "ka.req.configmap.name": "my-config",
        "ka.req.configmap.obj": (
            '{"access.properties":"aws_access_key_id = MY-ID\\naws_secret_access_key = MY-KEY\\n",'
            '"ui.properties":"color.good=purple\\ncolor.bad=yellow\\nallow.textmode=true\\n"}'),
        "ka.target.namespace": "default",
    },
    "anonymous_creates_namespace_foo.json": {
        "ka.user.name": "system:anonymous",
        "ka.auth.decision": "allow",
        "ka.target.resource": "namespaces",
        "ka.target.name": "foo",
    },
}


def _split(field: str) -> tuple[str, str | None]:
    name, _, arg = field.partition("[")
    return name, (arg[:-1] if arg else None)


@pytest.mark.parametrize(
    ("trace", "field", "expected"),
    [(t, f, v) for t, fields in EXPECTED.items() for f, v in fields.items()],
)
def test_recorded_values(trace: str, field: str, expected: Any) -> None:
    name, arg = _split(field)
    assert get(trace, name, arg) == expected


def _every_extractor() -> list[tuple[str, Any]]:
    args = {ArgKind.NONE: [None], ArgKind.INDEX: [None, "0", "1"],
            ArgKind.KEY_REQUIRED: ["/etc", "minikube", "container"]}
    return [(f"{s.name}[{a}]", s.extractor(a)) for s in TABLE for a in args[s.arg]]


@pytest.mark.parametrize("trace", all_traces())
def test_every_field_on_every_event(trace: str) -> None:
    """Every field gives None, a string, or a non-empty tuple of strings (evt.* typed), and
    every audit event yields its own auditID."""
    for ev in load(trace):
        doc = ev.payload
        has_id = isinstance(doc, dict) and "auditID" in doc
        for name, extract in _every_extractor():
            value = extract(ev)
            if name.startswith("ka.") and not has_id:
                assert value is None, name
            if isinstance(value, tuple):
                assert value and all(type(v) is str for v in value), name
            elif name.startswith(("ka.", "json.", "jevt.")):
                assert value is None or type(value) is str, name
        if has_id:
            assert TABLE.fields["ka.auditid"].extractor(None)(ev) == doc["auditID"]


def test_event_that_is_not_an_audit_event() -> None:
    """fal_01_003 is {"kind": 0}: no ka.* field, though json fields still apply."""
    (ev,) = load("fal_01_003.json")
    assert [n for n, x in _every_extractor() if n.startswith("ka.") and x(ev) is not None] == []
    assert TABLE.fields["jevt.value"].extractor("/kind")(ev) == "0"


def test_cases_file_names_existing_traces() -> None:
    cases = yaml.safe_load((TESTDATA / "cases.yaml").read_text(encoding="utf-8"))
    traces = {c["trace"] for c in cases}
    assert traces <= set(all_traces())
    assert set(EXPECTED) <= set(all_traces())


def test_trace_path_is_relative_to_the_checkout() -> None:
    assert Path(__file__).resolve().parents[3] / "shared" == SHARED
