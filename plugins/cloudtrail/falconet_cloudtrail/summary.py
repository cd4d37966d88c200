"""The computed fields a person reads: who did it (``ct.user``, ``ct.originaluser``), the one-line
summary ``ct.info`` and the event's ``evt.plugininfo`` text, as upstream builds them
(``extract.go`` ``getUser``/``getEvtInfo``, ``cloudtrail.go`` ``String``).
"""

from __future__ import annotations

from typing import Any

from ._values import MISSING, get, go_string, record, uint64

_AMAZONAWS = ".amazonaws.com"
_IDENTITY_TYPE = ("userIdentity", "type")
_USER_NAME = ("userIdentity", "userName")
_INVOKED_BY = ("userIdentity", "invokedBy")
_ISSUER_NAME = ("userIdentity", "sessionContext", "sessionIssuer", "userName")
_ARN = ("userIdentity", "arn")
_PRINCIPAL = ("userIdentity", "principalId")
_PUBLIC_ACCESS_BLOCK = ("requestParameters", "PublicAccessBlockConfiguration")


def short_source(source: str) -> str:
    """``ec2.amazonaws.com`` -> ``ec2``; anything else unchanged."""
    if len(source) > len(_AMAZONAWS) and source.endswith(_AMAZONAWS):
        return source[: -len(_AMAZONAWS)]
    return source


def _user(doc: dict[str, Any]) -> tuple[bool, str]:
    """Upstream's ``getUser``: (found, text); the text of a miss is kept because
    ``evt.plugininfo`` prints it."""
    kind = get(doc, _IDENTITY_TYPE)
    if type(kind) is not str:
        return False, ""
    if kind == "Root" or kind == "IAMUser":
        found = get(doc, _USER_NAME)
    elif kind == "AWSService":
        found = get(doc, _INVOKED_BY)
    elif kind == "AssumedRole":
        found = get(doc, _ISSUER_NAME)
        return True, "AssumedRole" if found is MISSING else go_string(found)
    elif kind == "AWSAccount" or kind == "FederatedUser":
        return True, kind
    else:
        return False, "<unknown user type>"
    return (False, "<NA>") if found is MISSING else (True, go_string(found))


def user(doc: dict[str, Any]) -> str | None:
    """``ct.user``: by identity type, the user, the invoking service, or the role a session was
    issued by; a fixed word for accounts and federated users; None for other types."""
    found, text = _user(doc)
    return text if found else None


def original_user(doc: dict[str, Any]) -> str | None:
    """``ct.originaluser``: for an assumed role, the session name (the last part of a
    three-part ARN, else what follows the ``:`` of the principal id); else the user name."""
    if get(doc, _IDENTITY_TYPE) == "AssumedRole":
        arn = get(doc, _ARN)
        if arn is not MISSING:
            parts = go_string(arn).split("/")
            if len(parts) == 3:
                return parts[2]
        principal = get(doc, _PRINCIPAL)
        if principal is not MISSING:
            parts = go_string(principal).split(":")
            if len(parts) == 2:
                return parts[1]
        return None
    found = get(doc, _USER_NAME)
    return None if found is MISSING else go_string(found)


def _string(doc: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    found = get(doc, keys)
    return None if found is MISSING else go_string(found)


def s3_bytes(doc: dict[str, Any]) -> int | None:
    """``s3.bytes``: bytes transferred in plus out, when either is given."""
    extra = doc.get("additionalEventData")
    if type(extra) is not dict:
        return None
    received = extra.get("bytesTransferredIn", MISSING)
    sent = extra.get("bytesTransferredOut", MISSING)
    if received is MISSING and sent is MISSING:
        return None
    total = (0 if received is MISSING else uint64(received)) + (
        0 if sent is MISSING else uint64(sent))
    return total & ((1 << 64) - 1)  # Go's uint64 addition wraps


def s3_uri(doc: dict[str, Any]) -> str | None:
    """``s3.uri``: ``s3://bucket/key`` when both are strings."""
    params = doc.get("requestParameters")
    if type(params) is not dict:
        return None
    bucket, key = params.get("bucketName"), params.get("key")
    if type(bucket) is not str or type(key) is not str:
        return None
    return f"s3://{bucket}/{key}"


def info(doc: dict[str, Any]) -> str:
    """``ct.info``: ``<user> via <source IP> [!]<←|→> <event name>`` and, by event, the bytes
    moved and the object, bucket, key or host acted on (``!``: the call failed; ``→``: it
    changed state)."""
    who = user(doc)
    if who is None:
        return "<invalid cloudtrail event: userIdentity field missing>"
    source_ip = _string(doc, ("sourceIPAddress",))
    if source_ip is None:
        return "<invalid cloudtrail event: eventSource field missing>"
    failed = "!" if "errorCode" in doc else ""
    read_only = doc.get("readOnly", MISSING)
    direction = "→" if read_only is not MISSING and read_only is not True else "←"
    name = _string(doc, ("eventName",))
    if name is None:
        return "<invalid cloudtrail event: eventName field missing>"
    if who == source_ip:
        text = f"{who} {failed}{direction} {name}"
    else:
        text = f"{who} via {source_ip} {failed}{direction} {name}"
    if name == "PutBucketPublicAccessBlock":
        if type(get(doc, _PUBLIC_ACCESS_BLOCK)) is dict:
            # upstream reads the four flags at the top of the record, where they never are
            flags = [f"{k}={'true' if doc.get(k) is True else 'false'}" for k in (
                "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                "RestrictPublicBuckets")]
            text += " " + " ".join(flags) + " "
        return text
    size = s3_bytes(doc)
    if size is not None:
        text += f" Size={size}"
    uri = s3_uri(doc)
    if uri is not None:
        return f"{text} URI={uri}"
    for label, keys in (("Bucket", ("requestParameters", "bucketName")),
                        ("Key", ("requestParameters", "key")),
                        ("Host", ("requestParameters", "Host"))):
        found = _string(doc, keys)
        if found is not None:
            return f"{text} {label}={found}"
    return text


def plugin_info(event: Any) -> str | None:
    """``evt.plugininfo``: ``<region>[ <user>] <short source> <event name> <ct.info>``; absent
    when the record lacks a string eventSource, awsRegion or eventName (upstream's error)."""
    doc = record(event)
    if doc is None:
        return None
    source, region, name = doc.get("eventSource"), doc.get("awsRegion"), doc.get("eventName")
    if type(source) is not str or type(region) is not str or type(name) is not str:
        return None
    found, who = _user(doc)
    if found and who:
        who = " " + who  # a miss is printed as it is, without the space (upstream's)
    return f"{region}{who} {short_source(source)} {name} {info(doc)}"
