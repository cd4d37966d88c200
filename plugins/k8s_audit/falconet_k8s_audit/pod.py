"""Pod fields: the per-container lists (``containers``, ``initContainers``,
``ephemeralContainers``), the deprecated first-container fields, and volumes.

Each container list is read from ``/requestObject/spec/<list>`` with upstream's fan-out walk
(``_base.values``); an ``[N]`` index selects the N-th container. Quirks of upstream are kept on
purpose (see the README): ``eff_run_as_*`` read ``runAsUser``/``runAsGroup`` on the container
and the pod spec themselves, not in their ``securityContext``; ``name``/``image`` are absent as a
whole when one container lacks them; image repositories are cut at the first ``:`` (so a
registry port cuts them short).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falconet.fields import ArgKind, Extractor, FieldSpec

from ._base import (
    MISSING,
    NO_INDEX,
    Keys,
    indexed,
    marshal,
    no_arg,
    on_doc,
    require_key,
    spec,
    text,
    values,
)

_SPEC = ("requestObject", "spec")
ListFn = Callable[[dict[str, Any], int], Any]


def repository(image: str) -> str:
    """Upstream's ``strings.Split(strings.Split(image, ":")[0], "@")[0]``."""
    return image.split(":", 1)[0].split("@", 1)[0]


def _in(lst: str, *sub: str | None) -> Keys:
    return (*_SPEC, lst, *sub)


def _all_texts(keys: Keys) -> ListFn:
    """``arrayAsStrings``: any container lacking the value makes the whole field absent.
    The last answer is kept: ``image.repository`` is derived from ``image``, and rules read
    both of the same event."""
    last: tuple[Any, int, Any] = (None, 0, None)

    def fn(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
        nonlocal last
        memo = last
        if memo[0] is doc and memo[1] == index:
            return memo[2]
        found = values(doc, index, keys)
        if found is MISSING or not found or MISSING in found:
            out = None
        else:
            out = tuple([v if type(v) is str else marshal(v) for v in found])
        last = (doc, index, out)
        return out

    return fn


def _skip_missing(keys: Keys) -> ListFn:
    """``arrayAsStringsSkipNil`` over the containers (``texts_skip_missing``, inlined: the
    securityContext flags are what pod rules read)."""

    def fn(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
        found = values(doc, index, keys)
        if found is MISSING:
            return None
        out = [v if type(v) is str else marshal(v) for v in found if v is not MISSING]
        return tuple(out) if out else None

    return fn


def _repositories(images: ListFn) -> ListFn:
    def fn(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
        found = images(doc, index)
        return None if found is None else tuple([repository(i) for i in found])

    return fn


def _joined(keys: Keys) -> ListFn:
    """``command``/``args``: each container's argv joined by spaces; containers without it are
    skipped; a non-array, or a non-string element, is an error upstream (absent)."""

    def fn(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
        found = values(doc, index, keys)
        if found is MISSING:
            return None
        out: list[str] = []
        for argv in found:
            if argv is MISSING:
                continue
            if type(argv) is not list:
                return None
            for word in argv:
                if type(word) is not str:
                    return None
            out.append(" ".join(argv))
        return tuple(out) or None

    return fn


def _host_ports(keys: Keys) -> ListFn:
    """Every port's ``hostPort``, else its ``containerPort``, across containers."""

    def fn(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
        found = values(doc, index, keys)
        if found is MISSING:
            return None
        out: list[str] = []
        for ports in found:
            if ports is MISSING:
                continue
            if type(ports) is not list:
                return None
            for port in ports:
                if type(port) is not dict:
                    continue
                p = port.get("hostPort", MISSING)
                if p is MISSING:
                    p = port.get("containerPort", MISSING)
                    if p is MISSING:
                        continue
                out.append(text(p))
        return tuple(out) or None

    return fn


def _effective(lst: str, key: str) -> ListFn:
    """``readFromContainerEffectively``: the container's own value, else the pod's, else "0"
    (both read outside ``securityContext``, as upstream does)."""
    keys = _in(lst, key)

    def fn(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
        pod_spec = doc.get("requestObject")
        pod_value = pod_spec.get("spec") if type(pod_spec) is dict else None
        pod_value = pod_value.get(key, MISSING) if type(pod_value) is dict else MISSING
        default = "0" if pod_value is MISSING else text(pod_value)
        found = values(doc, index, keys)
        if found is MISSING or not found:
            return None
        return tuple([default if v is MISSING else text(v) for v in found])

    return fn


def _label(lst: str) -> str:
    return {"initContainers": "init containers",
            "ephemeralContainers": "ephemeral containers"}.get(lst, "containers")


def container_list_specs(lst: str) -> list[FieldSpec]:
    """The ``ka.req.pod.<lst>.*`` fields (upstream's ``containerListFields``)."""
    prefix = f"ka.req.pod.{lst}."
    label = _label(lst)
    images = _all_texts(_in(lst, "image"))
    sc = "securityContext"
    pod = "When the request object refers to a pod,"
    rows: list[tuple[str, ListFn, str]] = [
        ("name", _all_texts(_in(lst, "name")), f"{pod} the {label} names."),
        ("image", images, f"{pod} the {label} images."),
        ("image.repository", _repositories(images),
         f"The same as {prefix}image, but only the repository part (e.g. falcosecurity/falco)."),
        ("command", _joined(_in(lst, "command")), f"{pod} the {label} commands."),
        ("args", _joined(_in(lst, "args")), f"{pod} the {label} args."),
        ("privileged", _skip_missing(_in(lst, sc, "privileged")),
         f"{pod} the value of the privileged flag for all {label}."),
        ("allow_privilege_escalation", _skip_missing(_in(lst, sc, "allowPrivilegeEscalation")),
         f"{pod} the value of the allowPrivilegeEscalation flag for all {label}."),
        ("read_only_fs", _skip_missing(_in(lst, sc, "readOnlyRootFilesystem")),
         f"{pod} the value of the readOnlyRootFilesystem flag for all {label}."),
        ("run_as_user", _skip_missing(_in(lst, sc, "runAsUser")),
         f"{pod} the runAsUser uid for all {label}."),
        ("eff_run_as_user", _effective(lst, "runAsUser"),
         f"{pod} the initial uid that will be used for all {label}. This combines information "
         "from both the pod and container security contexts and uses 0 if no uid is specified."),
        ("run_as_group", _skip_missing(_in(lst, sc, "runAsGroup")),
         f"{pod} the runAsGroup gid for all {label}."),
        ("eff_run_as_group", _effective(lst, "runAsGroup"),
         f"{pod} the initial gid that will be used for all {label}. This combines information "
         "from both the pod and container security contexts and uses 0 if no gid is specified."),
        ("proc_mount", _skip_missing(_in(lst, sc, "procMount")),
         f"{pod} the procMount type for all {label}."),
        ("add_capabilities", _skip_missing(_in(lst, sc, "capabilities", "add")),
         f"{pod} the capabilities added for all {label}."),
    ]
    if lst != "ephemeralContainers":  # ephemeral containers may not declare ports
        rows.append(("host_port", _host_ports(_in(lst, "ports")),
                     f"{pod} all {label} hostPort values."))
    return [indexed(prefix + name, fn, desc) for name, fn, desc in rows]


# --- deprecated first-container fields ---------------------------------------------------------

_FIRST_IMAGE = _in("containers", "image")


def _first_image(doc: dict[str, Any]) -> str | None:
    found = values(doc, 0, _FIRST_IMAGE)
    return None if found is MISSING else text(found[0])


def _first_repository(doc: dict[str, Any]) -> str | None:
    image = _first_image(doc)
    return None if image is None else repository(image)


_PRIVILEGED = _in("containers", "securityContext", "privileged")


def _any_privileged(doc: dict[str, Any]) -> str | None:
    found = values(doc, NO_INDEX, _PRIVILEGED)
    if found is MISSING:
        return None
    return "true" if any(v is True for v in found) else "false"


# --- volumes ---------------------------------------------------------------------------------

_HOSTPATHS = _in("volumes", "hostPath", "path")


def _make_volume_hostpath(arg: str | None) -> Extractor:
    """``ka.req.volume.hostpath[P]``: "true" if a volume's hostPath equals P, or starts with
    P minus its trailing ``*``. Upstream passes key arguments with no index, so every volume
    is checked."""
    want = require_key("ka.req.volume.hostpath", arg)
    prefix = want[:-1] if want.endswith("*") else None

    def fn(doc: dict[str, Any]) -> str | None:
        found = values(doc, NO_INDEX, _HOSTPATHS)
        if found is MISSING:
            return None
        for v in found:
            if v is MISSING:
                continue
            path = text(v)
            if path == want or (prefix is not None and path.startswith(prefix)):
                return "true"
        return "false"

    return on_doc(fn)


def _volume_types(doc: dict[str, Any], index: int) -> tuple[str, ...] | None:
    found = values(doc, index, _in("volumes", None))
    if found is MISSING:
        return None
    out = [key for v in found if type(v) is dict for key in v if key != "name"]
    return tuple(out) or None


def pod_specs() -> list[FieldSpec]:
    """Every pod field: container lists, first-container and volume fields."""
    specs = [
        *container_list_specs("containers"),
        spec("ka.req.container.image", no_arg(on_doc(_first_image)),
             "Deprecated by ka.req.pod.containers.image. Returns the image of the first "
             "container only"),
        spec("ka.req.container.image.repository", no_arg(on_doc(_first_repository)),
             "Deprecated by ka.req.pod.containers.image.repository. Returns the repository of "
             "the first container only"),
        spec("ka.req.container.privileged", no_arg(on_doc(_any_privileged)),
             "Deprecated by ka.req.pod.containers.privileged. Returns true if any container has "
             "privileged=true"),
        indexed("ka.req.pod.volumes.hostpath", _skip_missing(_HOSTPATHS),
                "When the request object refers to a pod, all hostPath paths specified for all "
                "volumes"),
        spec("ka.req.volume.hostpath", _make_volume_hostpath,
             "Deprecated by ka.req.pod.volumes.hostpath. Return true if the provided (host) path "
             "prefix is used by any volume", arg=ArgKind.KEY_REQUIRED),
        indexed("ka.req.pod.volumes.flexvolume_driver",
                _skip_missing(_in("volumes", "flexVolume", "driver")),
                "When the request object refers to a pod, all flexvolume drivers specified for "
                "all volumes"),
        indexed("ka.req.pod.volumes.volume_type", _volume_types,
                "When the request object refers to a pod, all volume types for all volumes"),
        *container_list_specs("initContainers"),
        *container_list_specs("ephemeralContainers"),
    ]
    return specs
