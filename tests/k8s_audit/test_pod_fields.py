"""Pod fields of k8saudit: the three container lists, the deprecated first-container fields and
volumes, with upstream's exact values (checked against upstream's Go extractor)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .helpers import extract

POD: dict[str, Any] = {
    "kind": "Event",
    "auditID": "p-1",
    "verb": "create",
    "objectRef": {"resource": "pods", "namespace": "default"},
    "requestObject": {"kind": "Pod", "spec": {
        "runAsUser": 7,  # read by eff_run_as_user (upstream looks outside securityContext)
        "containers": [
            {"name": "web", "image": "registry.io:5000/team/web:1.2",
             "command": ["nginx", "-g", "daemon off;"], "args": ["--port", "80"],
             "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 443}],
             "securityContext": {
                 "privileged": True, "allowPrivilegeEscalation": False,
                 "readOnlyRootFilesystem": True, "runAsUser": 1000, "runAsGroup": 2000,
                 "procMount": "Unmasked", "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}}},
            {"name": "side", "image": "busybox@sha256:abcd", "runAsUser": 5, "runAsGroup": 6,
             "securityContext": {"privileged": False}},
        ],
        "initContainers": [
            {"name": "init", "image": "alpine:3", "command": ["sh", "-c", "true"],
             "ports": [{"hostPort": 9000}],
             "securityContext": {"privileged": True, "runAsUser": 0,
                                 "capabilities": {"add": ["SYS_ADMIN"]}}},
        ],
        "ephemeralContainers": [
            {"name": "debug", "image": "debian", "args": ["bash"],
             "securityContext": {"allowPrivilegeEscalation": True,
                                 "readOnlyRootFilesystem": False, "runAsGroup": 3,
                                 "procMount": "Default"}},
        ],
        "volumes": [
            {"name": "proc", "hostPath": {"path": "/proc", "type": "Directory"}},
            {"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}},
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "flex", "flexVolume": {"driver": "example/lvm"}},
        ],
        "hostIPC": True, "hostNetwork": False, "hostPID": True,
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                            "supplementalGroups": [4000, 5000]},
    }},
    "responseObject": {"metadata": {"name": "pod-abc"}},
    "responseStatus": {"code": 201},
}

C = "ka.req.pod.containers."
INIT = "ka.req.pod.initContainers."
E = "ka.req.pod.ephemeralContainers."

# (field, argument, exact value on POD)
CASES: list[tuple[str, str | None, Any]] = [
    (C + "name", None, ("web", "side")),
    (C + "name", "1", ("side",)),
    (C + "name", "2", None),
    (C + "image", None, ("registry.io:5000/team/web:1.2", "busybox@sha256:abcd")),
    (C + "image", "0", ("registry.io:5000/team/web:1.2",)),
    (C + "image.repository", None, ("registry.io", "busybox")),
    (C + "image.repository", "1", ("busybox",)),
    (C + "command", None, ("nginx -g daemon off;",)),
    (C + "command", "1", None),
    (C + "args", None, ("--port 80",)),
    (C + "host_port", None, ("8080", "443")),
    (C + "host_port", "1", None),
    (C + "privileged", None, ("true", "false")),
    (C + "privileged", "1", ("false",)),
    (C + "allow_privilege_escalation", None, ("false",)),
    (C + "read_only_fs", None, ("true",)),
    (C + "run_as_user", None, ("1000",)),
    (C + "eff_run_as_user", None, ("7", "5")),
    (C + "eff_run_as_user", "1", ("5",)),
    (C + "run_as_group", None, ("2000",)),
    (C + "eff_run_as_group", None, ("0", "6")),
    (C + "proc_mount", None, ("Unmasked",)),
    (C + "add_capabilities", None, ('["NET_ADMIN","SYS_TIME"]',)),
    (INIT + "name", None, ("init",)),
    (INIT + "image", None, ("alpine:3",)),
    (INIT + "image.repository", None, ("alpine",)),
    (INIT + "command", None, ("sh -c true",)),
    (INIT + "args", None, None),
    (INIT + "host_port", None, ("9000",)),
    (INIT + "privileged", None, ("true",)),
    (INIT + "allow_privilege_escalation", None, None),
    (INIT + "read_only_fs", None, None),
    (INIT + "run_as_user", None, ("0",)),
    (INIT + "eff_run_as_user", None, ("7",)),
    (INIT + "run_as_group", None, None),
    (INIT + "eff_run_as_group", None, ("0",)),
    (INIT + "proc_mount", None, None),
    (INIT + "add_capabilities", None, ('["SYS_ADMIN"]',)),
    (INIT + "add_capabilities", "0", ('["SYS_ADMIN"]',)),
    (E + "name", None, ("debug",)),
    (E + "image", None, ("debian",)),
    (E + "image.repository", None, ("debian",)),
    (E + "command", None, None),
    (E + "args", None, ("bash",)),
    (E + "privileged", None, None),
    (E + "allow_privilege_escalation", None, ("true",)),
    (E + "read_only_fs", None, ("false",)),
    (E + "run_as_user", None, None),
    (E + "eff_run_as_user", None, ("7",)),
    (E + "run_as_group", None, ("3",)),
    (E + "eff_run_as_group", None, ("0",)),
    (E + "proc_mount", None, ("Default",)),
    (E + "add_capabilities", None, None),
    ("ka.req.container.image", None, "registry.io:5000/team/web:1.2"),
    ("ka.req.container.image.repository", None, "registry.io"),
    ("ka.req.container.privileged", None, "true"),
    ("ka.req.container.host_network", None, "false"),
    ("ka.req.pod.host_network", None, "false"),
    ("ka.req.pod.host_ipc", None, "true"),
    ("ka.req.pod.host_pid", None, "true"),
    ("ka.req.pod.run_as_user", None, "1000"),
    ("ka.req.pod.run_as_group", None, "3000"),
    ("ka.req.pod.fs_group", None, "2000"),
    ("ka.req.pod.supplemental_groups", None, ("4000", "5000")),
    ("ka.req.pod.volumes.hostpath", None, ("/proc", "/var/run/docker.sock")),
    ("ka.req.pod.volumes.hostpath", "1", ("/var/run/docker.sock",)),
    ("ka.req.pod.volumes.hostpath", "2", None),
    ("ka.req.volume.hostpath", "/proc", "true"),
    ("ka.req.volume.hostpath", "/var/run*", "true"),
    ("ka.req.volume.hostpath", "/pro*", "true"),
    ("ka.req.volume.hostpath", "/pro", "false"),
    ("ka.req.volume.hostpath", "/etc", "false"),
    ("ka.req.pod.volumes.flexvolume_driver", None, ("example/lvm",)),
    ("ka.req.pod.volumes.volume_type", None, ("hostPath", "hostPath", "configMap", "flexVolume")),
    ("ka.req.pod.volumes.volume_type", "2", ("configMap",)),
    ("ka.target.pod.name", None, "pod-abc"),
]


@pytest.mark.parametrize(("field", "arg", "expected"), CASES)
def test_pod_values(field: str, arg: str | None, expected: Any) -> None:
    assert extract(field, POD, arg) == expected


def with_spec(**spec: Any) -> dict[str, Any]:
    return {"auditID": "x", "requestObject": {"spec": spec}}


def test_one_container_without_name_or_image_makes_the_list_absent() -> None:
    doc = with_spec(containers=[{"name": "a", "image": "x"}, {"image": "y"}])
    assert extract(C + "name", doc) is None
    assert extract(C + "name", doc, "0") == ("a",)
    assert extract(C + "image", doc) == ("x", "y")
    doc = with_spec(containers=[{"name": "a"}])
    assert extract(C + "image", doc) is None
    assert extract(C + "image.repository", doc) is None
    assert extract("ka.req.container.image", doc) is None


def test_empty_or_missing_container_lists() -> None:
    empty = with_spec(containers=[])
    assert extract(C + "name", empty) is None
    assert extract(C + "eff_run_as_user", empty) is None
    assert extract("ka.req.container.privileged", empty) == "false"
    assert extract("ka.req.container.image", empty) is None
    assert extract("ka.req.container.privileged", with_spec()) is None
    assert extract(C + "privileged", with_spec()) is None


def test_non_string_values_are_rendered_as_json() -> None:
    doc = with_spec(containers=[{"name": 5, "image": None, "securityContext": {
        "privileged": "yes", "runAsUser": 1.5, "capabilities": {"add": []}}}])
    assert extract(C + "name", doc) == ("5",)
    assert extract(C + "image", doc) == ("null",)
    assert extract(C + "privileged", doc) == ("yes",)
    assert extract("ka.req.container.privileged", doc) == "false"  # only JSON true counts
    assert extract(C + "run_as_user", doc) == ("1.5",)
    assert extract(C + "add_capabilities", doc) == ("[]",)


def test_command_and_args_errors() -> None:
    assert extract(C + "command", with_spec(containers=[{"command": "ls"}])) is None
    assert extract(C + "args", with_spec(containers=[{"args": ["a", 1]}])) is None
    assert extract(C + "command", with_spec(containers=[{"command": []}])) == ("",)


def test_host_port_skips_ports_without_a_number_and_rejects_non_arrays() -> None:
    doc = with_spec(containers=[{"ports": [{"name": "x"}, 5, {"hostPort": None}]}])
    assert extract(C + "host_port", doc) == ("null",)
    assert extract(C + "host_port", with_spec(containers=[{"ports": {"hostPort": 1}}])) is None


def test_nested_arrays_are_fanned_out_without_an_index() -> None:
    doc = with_spec(containers=[[{"name": "a"}, {"name": "b"}], {"name": "c"}])
    assert extract(C + "name", doc) == ("a", "b", "c")
    assert extract(C + "name", doc, "1") == ("c",)
    assert extract(C + "name", doc, "0") is None  # an index does not fan out again


def test_a_container_list_that_is_an_object() -> None:
    doc = with_spec(containers={"name": "solo", "image": "a:1"})
    assert extract(C + "name", doc) == ("solo",)
    assert extract("ka.req.container.image", doc) == "a:1"


def test_volume_types_and_hostpaths_on_odd_volumes() -> None:
    doc = with_spec(volumes=[{"name": "n"}, "str", {"hostPath": {"path": 5}}, {"hostPath": None}])
    assert extract("ka.req.pod.volumes.volume_type", doc) == ("hostPath", "hostPath")
    assert extract("ka.req.pod.volumes.hostpath", doc) == ("5",)
    assert extract("ka.req.volume.hostpath", doc, "5") == "true"
    assert extract("ka.req.volume.hostpath", with_spec(volumes=[]), "/") == "false"
    assert extract("ka.req.volume.hostpath", with_spec(), "/") is None
    assert extract("ka.req.pod.volumes.volume_type", with_spec(volumes=[{"name": "n"}])) is None


def test_eff_run_as_user_of_a_pod_without_any_uid_is_zero() -> None:
    doc = with_spec(containers=[{"name": "a"}, {"name": "b", "runAsUser": "1"}])
    assert extract(C + "eff_run_as_user", doc) == ("0", "1")
    doc = with_spec(runAsUser=None, containers=[{"name": "a"}])
    assert extract(C + "eff_run_as_user", doc) == ("null",)


def test_target_pod_name_needs_pods_without_subresource() -> None:
    doc = copy.deepcopy(POD)
    doc["objectRef"]["subresource"] = "exec"
    assert extract("ka.target.pod.name", doc) is None
    doc["objectRef"]["subresource"] = ""
    assert extract("ka.target.pod.name", doc) == "pod-abc"
    doc["objectRef"]["resource"] = "deployments"
    assert extract("ka.target.pod.name", doc) is None


def test_first_container_fields_read_the_first_container_only() -> None:
    doc = with_spec(containers=[{"image": "a"}, {"image": "b", "securityContext": {
        "privileged": True}}])
    assert extract("ka.req.container.image", doc) == "a"
    assert extract("ka.req.container.privileged", doc) == "true"  # any container


def test_cached_images_follow_the_event() -> None:
    """image.repository reuses the images of the same event; a new event is recomputed."""
    one = with_spec(containers=[{"image": "one:1"}])
    two = with_spec(containers=[{"image": "two@sha256:0"}])
    assert extract(C + "image", one) == ("one:1",)
    assert extract(C + "image.repository", one) == ("one",)
    assert extract(C + "image.repository", two) == ("two",)
