"""The k8saudit plugin's 100 ``ka.*`` fields for the ``k8s_audit`` source.

Semantics follow upstream's ``extract.go`` (k8saudit plugin 0.18.0): every field is a string
(lists are tuples of strings), non-string JSON values are rendered as compact JSON (``true``,
``403``), and every field is absent on an event without a top-level ``auditID``. Two upstream
bugs are fixed (``ka.sourceips``, ``ka.req.binding.subject.has_name``); see the README.

``k8saudit_field_table()`` is what the engine needs for the source: these fields plus the
``evt.*`` fields and the ``json`` plugin's ``json.*``/``jevt.*`` fields, which upstream's
k8s audit rules use alongside.
"""

from __future__ import annotations

from typing import Any

from falconet.common_fields import common_field_table, json_event_text, json_field_specs
from falconet.fields import ArgKind, Extractor, FieldSpec, FieldTable

from ._base import (
    MISSING,
    get_path,
    indexed,
    list_at,
    marshal,
    no_arg,
    on_doc,
    require_key,
    scalar_at,
    spec,
    text,
    texts_skip_missing,
    values,
)
from .pod import pod_specs
from .uri import query_param

SOURCE = "k8s_audit"
PLUGIN_NAME = "k8saudit"

# name -> (JSON key path, description) for fields read with upstream's extractFromKeys.
_SCALARS: dict[str, tuple[tuple[str, ...], str]] = {
    "ka.auditid": (("auditID",), "The unique id of the audit event"),
    "ka.stage": (("stage",), "Stage of the request (e.g. RequestReceived, ResponseComplete, etc.)"),
    "ka.auth.decision": (("annotations", "authorization.k8s.io/decision"),
                         "The authorization decision"),
    "ka.auth.reason": (("annotations", "authorization.k8s.io/reason"), "The authorization reason"),
    "ka.auth.openshift.decision": (
        ("annotations", "authentication.openshift.io/decision"),
        "The authentication decision of the openshfit apiserver extention. Only available on "
        "openshift clusters"),
    "ka.validations.admission.policy.failure": (
        ("annotations", "validation.policy.admission.k8s.io/validation_failure"),
        "The validation failure reason from a Validation Admission Policy"),
    "ka.security.pod.violations": (
        ("annotations", "pod-security.kubernetes.io/audit-violations"),
        "The violation reason for pod security policy "),
    "ka.auth.openshift.username": (
        ("annotations", "authentication.openshift.io/username"),
        "The user name performing the openshift authentication operation. Only available on "
        "openshift clusters"),
    "ka.user.name": (("user", "username"), "The user name performing the request"),
    "ka.impuser.name": (("impersonatedUser", "username"), "The impersonated user name"),
    "ka.verb": (("verb",), "The action being performed"),
    "ka.uri": (("requestURI",), "The request URI as sent from client to server"),
    "ka.target.name": (("objectRef", "name"), "The target object name"),
    "ka.target.namespace": (("objectRef", "namespace"), "The target object namespace"),
    "ka.target.resource": (("objectRef", "resource"), "The target object resource"),
    "ka.target.subresource": (("objectRef", "subresource"), "The target object subresource"),
    "ka.req.binding.role": (
        ("requestObject", "roleRef", "name"),
        "When the request object refers to a cluster role binding, the role being linked by the "
        "binding"),
    "ka.req.configmap.name": (("objectRef", "name"),
                              "If the request object refers to a configmap, the configmap name"),
    "ka.req.configmap.obj": (
        ("requestObject", "data"),
        "If the request object refers to a configmap, the entire configmap object"),
    "ka.req.pod.host_ipc": (
        ("requestObject", "spec", "hostIPC"),
        "When the request object refers to a pod, the value of the hostIPC flag."),
    "ka.req.pod.host_network": (
        ("requestObject", "spec", "hostNetwork"),
        "When the request object refers to a pod, the value of the hostNetwork flag."),
    "ka.req.container.host_network": (("requestObject", "spec", "hostNetwork"),
                                      "Deprecated alias for ka.req.pod.host_network"),
    "ka.req.pod.host_pid": (
        ("requestObject", "spec", "hostPID"),
        "When the request object refers to a pod, the value of the hostPID flag."),
    "ka.req.pod.run_as_user": (
        ("requestObject", "spec", "securityContext", "runAsUser"),
        "When the request object refers to a pod, the runAsUser uid specified in the security "
        "context for the pod. See ....containers.run_as_user for the runAsUser for individual "
        "containers"),
    "ka.req.pod.run_as_group": (
        ("requestObject", "spec", "securityContext", "runAsGroup"),
        "When the request object refers to a pod, the runAsGroup gid specified in the security "
        "context for the pod. See ....containers.run_as_group for the runAsGroup for individual "
        "containers"),
    "ka.req.pod.fs_group": (
        ("requestObject", "spec", "securityContext", "fsGroup"),
        "When the request object refers to a pod, the fsGroup gid specified by the security "
        "context."),
    "ka.req.service.type": (("requestObject", "spec", "type"),
                            "When the request object refers to a service, the service type"),
    "ka.resp.name": (("responseObject", "metadata", "name"), "The response object name"),
    "ka.response.code": (("responseStatus", "code"), "The response code"),
    "ka.response.reason": (("responseStatus", "reason"),
                           "The response reason (usually present only for failures)"),
    "ka.useragent": (("userAgent",),
                     "The useragent of the client who made the request to the apiserver"),
    "ka.cluster.name": (("annotations", "cluster_name"), "The name of the k8s cluster"),
}

# name -> (JSON key path of an array, description): extractFromKeys on list fields.
_LISTS: dict[str, tuple[tuple[str, ...], str]] = {
    "ka.user.groups": (("user", "groups"), "The groups to which the user belongs"),
    "ka.req.binding.subjects": (
        ("requestObject", "subjects"),
        "When the request object refers to a cluster role binding, the subject (e.g. "
        "account/users) being linked by the binding"),
    "ka.req.role.rules": (
        ("requestObject", "rules"),
        "When the request object refers to a role/cluster role, the rules associated with the "
        "role"),
    "ka.req.pod.supplemental_groups": (
        ("requestObject", "spec", "securityContext", "supplementalGroups"),
        "When the request object refers to a pod, the supplementalGroup gids specified by the "
        "security context."),
}

_SUBJECTS = ("requestObject", "subjects")


def _subject_names(kind: str, namespaced: bool = False) -> Extractor:
    """``readSubjectNamesByKind``: names of the binding's subjects of ``kind``
    (``namespace:name`` for namespaced service accounts); subjects lacking a part are skipped."""

    def fn(doc: dict[str, Any]) -> tuple[str, ...] | None:
        subjects = get_path(doc, _SUBJECTS)
        if type(subjects) is not list:
            return None
        out: list[str] = []
        for subject in subjects:
            if type(subject) is not dict:
                continue
            k = subject.get("kind", MISSING)
            name = subject.get("name", MISSING)
            if k is MISSING or name is MISSING or text(k) != kind:
                continue
            if namespaced:
                ns = subject.get("namespace", MISSING)
                if ns is MISSING:
                    continue
                out.append(f"{text(ns)}:{text(name)}")
            else:
                out.append(text(name))
        return tuple(out) or None

    return on_doc(fn)


def _make_has_name(arg: str | None) -> Extractor:
    """Fixed: "true" if a binding subject is named ``arg``, else "false" (the original Falco
    k8s audit semantics; upstream's plugin answers "true" whatever the event)."""
    want = require_key("ka.req.binding.subject.has_name", arg)

    def fn(doc: dict[str, Any]) -> str | None:
        subjects = get_path(doc, _SUBJECTS)
        if type(subjects) is not list:
            return None
        for subject in subjects:
            if type(subject) is dict and subject.get("name") == want:
                return "true"
        return "false"

    return on_doc(fn)


def _make_uri_param(arg: str | None) -> Extractor:
    key = require_key("ka.uri.param", arg)

    def fn(doc: dict[str, Any]) -> str | None:
        uri = doc.get("requestURI", MISSING)
        return None if uri is MISSING else query_param(text(uri), key)

    return on_doc(fn)


def _target_pod_name(doc: dict[str, Any]) -> str | None:
    """The response object's name, for requests on pods themselves (no subresource)."""
    ref = doc.get("objectRef")
    if type(ref) is not dict or ref.get("resource") != "pods":
        return None
    sub = ref.get("subresource")
    if type(sub) is str and sub:
        return None
    name = get_path(doc, ("responseObject", "metadata", "name"))
    return None if name is MISSING else text(name)


def _rules_field(key: str) -> Any:
    """``extractRulesField``: the arrays at ``rules[*].<key>`` flattened (``[N]``: rule N)."""
    keys = ("requestObject", "rules", key)

    def fn(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
        found = values(doc, index, keys)
        if found is MISSING:
            return None
        out = [e if type(e) is str else marshal(e) for v in found if type(v) is list for e in v]
        return tuple(out) or None

    return fn


def _service_ports(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
    """Upstream walks to the ``ports`` array and returns it whole: one element holding the
    JSON array of every port (an index only applies to arrays met before ``ports``)."""
    found = values(doc, index, ("requestObject", "spec", "ports"))
    return None if found is MISSING else texts_skip_missing(found)


def _source_ips(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
    """Fixed: the top-level ``sourceIPs`` (upstream reads ``requestObject.rules[*].sourceIPs``,
    which audit events never have)."""
    found = values(doc, index, ("sourceIPs", None))
    return None if found is MISSING else texts_skip_missing(found)


_ROLE = "When the request object refers to a role/cluster role,"
_BINDING = "When the request object refers to a cluster role binding,"


def _other_specs() -> list[FieldSpec]:
    return [
        spec("ka.uri.param", _make_uri_param,
             "The value of a given query parameter in the uri (e.g. when uri=/foo?key=val, "
             "ka.uri.param[key] is val).", arg=ArgKind.KEY_REQUIRED),
        spec("ka.target.pod.name", no_arg(on_doc(_target_pod_name)), "The target pod name"),
        spec("ka.req.binding.subjects.user_names", no_arg(_subject_names("User")),
             f"{_BINDING} the subject user names being linked by the binding", is_list=True),
        spec("ka.req.binding.subjects.serviceaccount_names",
             no_arg(_subject_names("ServiceAccount")),
             f"{_BINDING} the subject service account names being linked by the binding",
             is_list=True),
        spec("ka.req.binding.subjects.serviceaccount_ns_names",
             no_arg(_subject_names("ServiceAccount", namespaced=True)),
             f"{_BINDING} the subject serviceaccount namespaced names being linked by the "
             "binding, e.g. a list containing: mynamespace:myserviceaccount", is_list=True),
        spec("ka.req.binding.subjects.group_names", no_arg(_subject_names("Group")),
             f"{_BINDING} the subject group names being linked by the binding", is_list=True),
        spec("ka.req.binding.subject.has_name", _make_has_name,
             f"{_BINDING} return true if a subject with the provided name exists",
             arg=ArgKind.KEY_REQUIRED),
        indexed("ka.req.role.rules.apiGroups", _rules_field("apiGroups"),
                f"{_ROLE} the api groups associated with the role's rules"),
        indexed("ka.req.role.rules.nonResourceURLs", _rules_field("nonResourceURLs"),
                f"{_ROLE} the non resource urls associated with the role's rules"),
        indexed("ka.req.role.rules.verbs", _rules_field("verbs"),
                f"{_ROLE} the verbs associated with the role's rules"),
        indexed("ka.req.role.rules.resources", _rules_field("resources"),
                f"{_ROLE} the resources associated with the role's rules"),
        indexed("ka.req.service.ports", _service_ports,
                "When the request object refers to a service, the service's ports"),
        indexed("ka.sourceips", _source_ips,
                "The IP addresses of the client who made the request to the apiserver"),
    ]


def k8saudit_field_specs() -> list[FieldSpec]:
    """The 100 ``ka.*`` fields, in no particular order."""
    specs = [spec(name, no_arg(scalar_at(keys)), desc, path=keys)
             for name, (keys, desc) in _SCALARS.items()]
    specs += [spec(name, no_arg(list_at(keys)), desc, is_list=True)
              for name, (keys, desc) in _LISTS.items()]
    return specs + _other_specs() + pod_specs()


def k8saudit_field_table() -> FieldTable:
    """Everything a ``k8s_audit`` rule can read: ``evt.*``, ``json.*``/``jevt.*`` and ``ka.*``."""
    table = common_field_table(SOURCE, plugin_name=PLUGIN_NAME, plugin_info=json_event_text)
    for s in json_field_specs():
        table.add(s)
    for s in k8saudit_field_specs():
        table.add(s)
    return table


__all__ = ["PLUGIN_NAME", "SOURCE", "k8saudit_field_specs", "k8saudit_field_table"]
