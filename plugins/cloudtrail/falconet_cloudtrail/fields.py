"""The cloudtrail plugin's 73 fields (``ct.*``, ``s3.*``, ``ec2.*``, ``ecr.*``, ``iam.*``) for the
``aws_cloudtrail`` source, with upstream's semantics (cloudtrail 0.17, ``extract.go``).

Every field but the ``s3.*`` counters is a string; ``ec2.imageids`` is a list. A plain key
path is read as upstream's ``GetStringBytes`` does: the string, an empty string for any other
JSON value present there, absent when a key is missing. Those fields carry their path
(``InlinePath``), so conditions read them in place and the rule index can key on them
(``ct.name`` for upstream's rules). Deviations from upstream are listed in the README
(``ct.request.documentname``, ``ct.sessioncredentialfromconsole``).

``cloudtrail_field_table()`` is what the engine needs for the source: these fields plus the
``evt.*`` fields and the ``json`` plugin's ``json.*``/``jevt.*`` fields.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from falconet.common_fields import common_field_table, json_field_specs, json_object
from falconet.fields import ArgKind, Extractor, FieldSpec, FieldTable, FieldType, InlinePath

from . import summary
from ._values import (
    MISSING,
    bool_at,
    empty_string,
    get,
    go_string,
    json_at,
    marshal,
    record,
    string_at,
    uint64,
)

SOURCE = "aws_cloudtrail"
PLUGIN_NAME = "cloudtrail"

_REQ = "requestParameters"

# name -> (key path, description): string fields read with GetStringBytes at a path.
_PATHS: dict[str, tuple[tuple[str, ...], str]] = {
    "ct.id": (("eventID",), "the unique ID of the cloudtrail event (eventID in the json)."),
    "ct.error": (("errorCode",), 'The error code from the event. Will be "<NA>" (e.g. the '
                 "NULL/empty/none value) if there was no error."),
    "ct.errormessage": (("errorMessage",), 'The description of an error. Will be "<NA>" (e.g. '
                        "the NULL/empty/none value) if there was no error."),
    "ct.time": (("eventTime",), "the timestamp of the cloudtrail event (eventTime in the json)."),
    "ct.src": (("eventSource",),
               "the source of the cloudtrail event (eventSource in the json)."),
    "ct.name": (("eventName",), "the name of the cloudtrail event (eventName in the json)."),
    "ct.user.identitytype": (("userIdentity", "type"), "the kind of user identity (e.g. Root, "
                             "IAMUser,AWSService, etc.)"),
    "ct.user.principalid": (("userIdentity", "principalId"),
                            "A unique identifier for the user that made the request."),
    "ct.user.arn": (("userIdentity", "arn"),
                    "the Amazon Resource Name (ARN) of the user that made the request."),
    "ct.region": (("awsRegion",), "the region of the cloudtrail event (awsRegion in the json)."),
    "ct.response.subnetid": (("responseElements", "subnetId"),
                             "the subnet ID included in the response."),
    "ct.response.reservationid": (("responseElements", "reservationId"),
                                  "the reservation ID included in the response."),
    "ct.request.availabilityzone": ((_REQ, "availabilityZone"),
                                    "the availability zone included in the request."),
    "ct.request.cluster": ((_REQ, "cluster"), "the cluster included in the request."),
    "ct.request.functionname": ((_REQ, "functionName"),
                                "the function name included in the request."),
    "ct.request.groupname": ((_REQ, "groupName"), "the group name included in the request."),
    "ct.request.host": ((_REQ, "Host"), "the host included in the request"),
    "ct.request.name": ((_REQ, "name"), "the name of the entity being acted on in the request."),
    "ct.request.policy": ((_REQ, "policy"), "the policy included in the request"),
    "ct.request.reason": ((_REQ, "reason"), "the reason included in the request."),
    "ct.request.target": ((_REQ, "target"), "the target included in the request."),
    # upstream never extracts it (its switch spells the name "documentName"): fixed here
    "ct.request.documentname": ((_REQ, "documentName"),
                                "the document name included in the request."),
    "ct.request.serialnumber": ((_REQ, "serialNumber"),
                                "the serial number provided in the request."),
    "ct.request.servicename": ((_REQ, "serviceName"),
                               "the service name provided in the request."),
    "ct.request.subnetid": ((_REQ, "subnetId"), "the subnet ID provided in the request."),
    "ct.request.taskdefinition": ((_REQ, "taskDefinition"),
                                  "the task definition prrovided in the request."),
    "ct.request.username": ((_REQ, "userName"), "the username provided in the request."),
    "ct.srcip": (("sourceIPAddress",),
                 "the IP address generating the event (sourceIPAddress in the json)."),
    "ct.useragent": (("userAgent",),
                     "the user agent generating the event (userAgent in the json)."),
    "ct.requestid": (("requestID",), "The value that identifies the request."),
    "ct.eventtype": (("eventType",),
                     "Identifies the type of event that generated the event record."),
    "ct.apiversion": (("apiVersion",),
                      "The API version associated with the AwsApiCall eventType value."),
    "ct.recipientaccountid": (("recipientAccountId",),
                              "The account ID that received this event."),
    "ct.serviceeventdetails": (("serviceEventDetails",), "Identifies the service event, "
                               "including what triggered the event and the result."),
    "ct.sharedeventid": (("sharedEventID",),
                         "GUID generated by CloudTrail to uniquely identify CloudTrail events."),
    "ct.vpcendpointid": (("vpcEndpointId",),
                         "Identifies the VPC endpoint in which requests were made."),
    "ct.eventcategory": (("eventCategory",),
                         "Shows the event category that is used in LookupEvents calls."),
    "ct.addendum.reason": (("addendum", "reason"),
                           "The reason that the event or some of its contents were missing."),
    "ct.addendum.updatedfields": (("addendum", "updatedFields"),
                                  "The event record fields that are updated by the addendum."),
    "ct.addendum.originalrequestid": (("addendum", "originalRequestID"),
                                      "The original unique ID of the request."),
    "ct.addendum.originaleventid": (("addendum", "originalEventID"), "The original event ID."),
    "ct.edgedevicedetails": (("edgeDeviceDetails",),
                             "Information about edge devices that are targets of a request."),
    "ct.tlsdetails.tlsversion": (("tlsDetails", "tlsVersion"), "The TLS version of a request."),
    "ct.tlsdetails.ciphersuite": (("tlsDetails", "cipherSuite"), "The cipher suite "
                                  "(combination of security algorithms used) of a request."),
    "ct.tlsdetails.clientprovidedhostheader": (
        ("tlsDetails", "clientProvidedHostHeader"),
        "The client-provided host name used in the service API call."),
    "s3.bucket": ((_REQ, "bucketName"), "the bucket name for s3 events."),
    "s3.key": ((_REQ, "key"), "the S3 key name."),
    "ecr.repository": ((_REQ, "repositoryName"),
                       "the name of the ecr Repository specified in the request."),
    "ecr.imagetag": ((_REQ, "imageTag"), "the tag of the image specified in the request."),
    "iam.role": ((_REQ, "roleName"), "the IAM role specified in the request."),
    "iam.policy": ((_REQ, "policyName"), "the IAM policy specified in the request."),
}

# name -> (key path, description): sub-documents as compact JSON.
_DOCUMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "ct.response": (("responseElements",), "All response elements."),
    "ct.request": ((_REQ,), "All request parameters."),
    "ct.additionaleventdata": (("additionalEventData",),
                               "All additional event data attributes."),
}

_NAMES = ("GetObject", "PutObject")


def _on_record(fn: Callable[[dict[str, Any]], Any]) -> Extractor:
    def extract(event: Any) -> Any:
        doc = record(event)
        return None if doc is None else fn(doc)

    return extract


def _short_source(doc: dict[str, Any]) -> str | None:
    found = doc.get("eventSource", MISSING)
    return None if found is MISSING else summary.short_source(go_string(found))


def _account_id(doc: dict[str, Any]) -> str | None:
    found = get(doc, ("userIdentity", "accountId"))
    if found is MISSING:
        found = doc.get("recipientAccountId", MISSING)
    return None if found is MISSING else go_string(found)


def _resources(doc: dict[str, Any]) -> str | None:
    """Each resource as compact JSON, joined with commas; absent when there are none."""
    found = doc.get("resources")
    if type(found) is not list or not found:
        return None
    return ",".join([marshal(r) for r in found]) or None


def _bytes_key(key: str) -> Callable[[dict[str, Any]], int | None]:
    def extract(doc: dict[str, Any]) -> int | None:
        found = get(doc, ("additionalEventData", key))
        return None if found is MISSING else uint64(found)

    return extract


def _count(doc: dict[str, Any], wanted: str | None) -> int | None:
    name = doc.get("eventName")
    name = name if type(name) is str else ""
    if wanted is None:
        return None if name in _NAMES else 1
    return 1 if name == wanted else None


def _ec2_name(doc: dict[str, Any]) -> str | None:
    """The ``Name`` tag of the instances being tagged at launch (the last one given wins)."""
    items = get(doc, (_REQ, "tagSpecificationSet", "items"))
    if type(items) is not list:
        return None
    name = ""
    for item in items:
        if type(item) is not dict or item.get("resourceType") != "instance":
            continue
        tags = item.get("tags")
        for tag in tags if type(tags) is list else ():
            if type(tag) is dict and tag.get("key") == "Name":
                name = go_string(tag.get("value"))
                break
    return name or None


_IMAGE_SCALARS = ((_REQ, "imageId"), (_REQ, "DescribeFastLaunchImagesRequest", "ImageId",
                                      "content"), (_REQ, "launchSpecification", "imageId"))


def image_ids(doc: dict[str, Any], index: int | None) -> tuple[str, ...] | None:
    """``ec2.imageids[index]``: the images of the instances in the response; else the one image
    named in the request (only index 0 then)."""
    items = get(doc, ("responseElements", "instancesSet", "items"))
    if items is not MISSING:
        items = items if type(items) is list else []
        if index is None:
            ids = tuple(i for i in (go_string(x.get("imageId")) if type(x) is dict else ""
                                    for x in items) if i)
            return ids or None
        if index >= len(items) or type(items[index]) is not dict:
            return None
        found = items[index].get("imageId", MISSING)
        return None if found is MISSING else (go_string(found),)
    if index is not None and index != 0:
        return None
    for keys in _IMAGE_SCALARS:
        found = get(doc, keys)
        if found is not MISSING:
            return (go_string(found),)
    return None


def _image_id(doc: dict[str, Any]) -> str | None:
    found = image_ids(doc, 0)
    return None if found is None else found[0]


def _parse_index(name: str, arg: str | None) -> int | None:
    """An ``Index`` argument as libsinsp accepts it: digits only, no leading zero."""
    if arg is None:
        return None
    if not arg or not arg.isascii() or not arg.isdigit() or (len(arg) > 1 and arg[0] == "0"):
        raise ValueError(f"filter {name}[{arg}]: {name} has an invalid index argument: {arg}")
    return int(arg)


def _make_image_ids(arg: str | None) -> Extractor:
    index = _parse_index("ec2.imageids", arg)

    def extract(event: Any) -> tuple[str, ...] | None:
        doc = record(event)
        return None if doc is None else image_ids(doc, index)

    return extract


# name -> (type, function of the record, description): computed fields.
_COMPUTED: dict[str, tuple[FieldType, Callable[[dict[str, Any]], Any], str]] = {
    "ct.shortsrc": (FieldType.CHARBUF, _short_source, "the source of the cloudtrail event "
                    "(eventSource in the json, without the '.amazonaws.com' trailer)."),
    "ct.user": (FieldType.CHARBUF, summary.user, "the user of the cloudtrail event "
                "(userIdentity.userName in the json). For AssumedRole events, this is the role "
                "name from sessionContext.sessionIssuer.userName."),
    "ct.originaluser": (FieldType.CHARBUF, summary.original_user, "the user name as seen in "
                        "CloudTrail. For AssumedRole events, this is the session name extracted "
                        "from userIdentity.arn or userIdentity.principalId. For all other "
                        "identity types, this is userIdentity.userName."),
    "ct.user.accountid": (FieldType.CHARBUF, _account_id,
                          "the account id of the user of the cloudtrail event."),
    "ct.info": (FieldType.CHARBUF, summary.info, "summary information about the event. This "
                "varies depending on the event type and, for some events, it contains "
                "event-specific details."),
    "ct.resources": (FieldType.CHARBUF, _resources, "A list of resources accessed in the event."),
    "s3.uri": (FieldType.CHARBUF, summary.s3_uri, "the s3 URI (s3://<bucket>/<key>)."),
    "s3.bytes": (FieldType.UINT64, summary.s3_bytes,
                 "the size of an s3 download or upload, in bytes."),
    "s3.bytes.in": (FieldType.UINT64, _bytes_key("bytesTransferredIn"),
                    "the size of an s3 upload, in bytes."),
    "s3.bytes.out": (FieldType.UINT64, _bytes_key("bytesTransferredOut"),
                     "the size of an s3 download, in bytes."),
    "s3.cnt.get": (FieldType.UINT64, functools.partial(_count, wanted="GetObject"),
                   "the number of get operations. This field is 1 for GetObject events, 0 "
                   "otherwise."),
    "s3.cnt.put": (FieldType.UINT64, functools.partial(_count, wanted="PutObject"),
                   "the number of put operations. This field is 1 for PutObject events, 0 "
                   "otherwise."),
    "s3.cnt.other": (FieldType.UINT64, functools.partial(_count, wanted=None),
                     "the number of non I/O operations. This field is 0 for GetObject and "
                     "PutObject events, 1 for all the other events."),
    "ec2.name": (FieldType.CHARBUF, _ec2_name,
                 "the name of the ec2 instances, typically stored in the instance tags."),
    "ec2.imageid": (FieldType.CHARBUF, _image_id, "(Deprecated) the ID for the image used to "
                    "run the ec2 instance in the response. Replace with ec2.imageids[0]."),
}

_BOOLS: dict[str, tuple[str, bool, str]] = {
    "ct.managementevent": ("managementEvent", False, "'true' if the event is a management "
                           "event (AwsApiCall, AwsConsoleAction, AwsConsoleSignIn, or "
                           "AwsServiceEvent), 'false' otherwise."),
    "ct.readonly": ("readOnly", False, "'true' if the event only reads information (e.g. "
                    "DescribeInstances), 'false' if the event modifies the state (e.g. "
                    "RunInstances, CreateLoadBalancer...)."),
    # CloudTrail writes it as the string "true", which upstream reads as false: fixed here
    "ct.sessioncredentialfromconsole": ("sessionCredentialFromConsole", True, "Shows whether "
                                        "or not an event originated from an AWS Management "
                                        "Console session."),
}

#: the order of upstream's field list (``falconet --list=aws_cloudtrail`` shows this order)
FIELD_ORDER = (
    "ct.id", "ct.error", "ct.errormessage", "ct.time", "ct.src", "ct.shortsrc", "ct.name",
    "ct.user", "ct.originaluser", "ct.user.accountid", "ct.user.identitytype",
    "ct.user.principalid", "ct.user.arn", "ct.region", "ct.response.subnetid",
    "ct.response.reservationid", "ct.response", "ct.request.availabilityzone",
    "ct.request.cluster", "ct.request.functionname", "ct.request.groupname", "ct.request.host",
    "ct.request.name", "ct.request.policy", "ct.request.reason", "ct.request.target",
    "ct.request.documentname", "ct.request.serialnumber", "ct.request.servicename",
    "ct.request.subnetid", "ct.request.taskdefinition", "ct.request.username", "ct.request",
    "ct.srcip", "ct.useragent", "ct.info", "ct.managementevent", "ct.readonly",
    "ct.requestid", "ct.eventtype", "ct.apiversion", "ct.resources", "ct.recipientaccountid",
    "ct.serviceeventdetails", "ct.sharedeventid", "ct.vpcendpointid", "ct.eventcategory",
    "ct.addendum.reason", "ct.addendum.updatedfields", "ct.addendum.originalrequestid",
    "ct.addendum.originaleventid", "ct.sessioncredentialfromconsole", "ct.edgedevicedetails",
    "ct.tlsdetails.tlsversion", "ct.tlsdetails.ciphersuite",
    "ct.tlsdetails.clientprovidedhostheader", "ct.additionaleventdata", "s3.uri", "s3.bucket",
    "s3.key", "s3.bytes", "s3.bytes.in", "s3.bytes.out", "s3.cnt.get", "s3.cnt.put",
    "s3.cnt.other", "ec2.name", "ec2.imageid", "ec2.imageids", "ecr.repository",
    "ecr.imagetag", "iam.role", "iam.policy",
)


def _fixed(fn: Extractor) -> Callable[[str | None], Extractor]:
    def make(arg: str | None) -> Extractor:
        return fn

    return make


def _same(path: InlinePath, arg: str | None) -> InlinePath:
    return path


def _path_spec(name: str, keys: tuple[str, ...], desc: str) -> FieldSpec:
    # json_object is the json fields' document function too: one document read per event
    # serves both kinds of field.
    inline = InlinePath(json_object, keys, render=empty_string)
    return FieldSpec(name, FieldType.CHARBUF, description=desc,
                     make_extractor=_fixed(string_at(keys)),
                     inline=functools.partial(_same, inline))


def cloudtrail_field_specs() -> list[FieldSpec]:
    """The 73 fields, in upstream's order."""
    specs: dict[str, FieldSpec] = {}
    for name, (keys, desc) in _PATHS.items():
        specs[name] = _path_spec(name, keys, desc)
    for name, (keys, desc) in _DOCUMENTS.items():
        specs[name] = FieldSpec(name, FieldType.CHARBUF, description=desc,
                                make_extractor=_fixed(json_at(keys)))
    for name, (key, strings, desc) in _BOOLS.items():
        specs[name] = FieldSpec(name, FieldType.CHARBUF, description=desc,
                                make_extractor=_fixed(bool_at(key, strings=strings)))
    for name, (ftype, fn, desc) in _COMPUTED.items():
        specs[name] = FieldSpec(name, ftype, description=desc,
                                make_extractor=_fixed(_on_record(fn)))
    specs["ec2.imageids"] = FieldSpec(
        "ec2.imageids", FieldType.CHARBUF, is_list=True, arg=ArgKind.INDEX,
        description="the list of image IDs for the ec2 instances involved.",
        make_extractor=_make_image_ids)
    return [specs[name] for name in FIELD_ORDER]


def cloudtrail_field_table() -> FieldTable:
    """The ``aws_cloudtrail`` table: ``evt.*`` (``evt.plugininfo`` is upstream's summary line),
    the plugin's fields, and the ``json`` plugin's."""
    table = common_field_table(SOURCE, plugin_name=PLUGIN_NAME, plugin_info=summary.plugin_info)
    for spec in [*cloudtrail_field_specs(), *json_field_specs()]:
        table.add(spec)
    return table
