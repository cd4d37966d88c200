"""The cloudtrail fields, value by value, as upstream's ``extract.go`` computes them (cloudtrail
0.17): plain paths, computed users and summaries, sub-documents, booleans, the ``s3.*``
counters, the ``ec2.*`` image and name lookups, and the two fixed upstream bugs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from falconet.fields import ArgKind, FieldType
from falconet_cloudtrail import cloudtrail_field_specs
from falconet_cloudtrail.fields import FIELD_ORDER

from .helpers import SHARED, TABLE, event, extract, record

SUPPORTED = SHARED / "upstream" / "fields" / "supported-fields.cloudtrail.md"

FULL = record(
    "RunInstances",
    errorCode="Client.UnauthorizedOperation",
    errorMessage="You are not authorized",
    requestParameters={
        "availabilityZone": "us-east-1a", "cluster": "prod", "functionName": "fn",
        "groupName": "admins", "Host": "bucket.s3.amazonaws.com", "name": "trail-1",
        "policy": "{\"Version\":\"2012-10-17\"}", "reason": "why", "target": "i-1",
        "documentName": "AWS-RunShellScript", "serialNumber": "arn:aws:iam::1:mfa/root",
        "serviceName": "web", "subnetId": "subnet-1", "taskDefinition": "td:1",
        "userName": "bob", "repositoryName": "repo", "imageTag": "v1", "roleName": "role",
        "policyName": "AdministratorAccess", "imageId": "ami-req",
    },
    responseElements={"subnetId": "subnet-2", "reservationId": "r-1",
                      "instancesSet": {"items": [{"imageId": "ami-1"}, {"imageId": "ami-2"}]}},
    additionalEventData={"bytesTransferredIn": 10, "bytesTransferredOut": 33.0},
    resources=[{"type": "AWS::EC2::Instance", "ARN": "arn:1"}, {"ARN": "arn:2"}],
    serviceEventDetails="details", sharedEventID="shared-1", vpcEndpointId="vpce-1",
    apiVersion="2016-11-15", addendum={"reason": "DELIVERY_DELAY", "updatedFields": "a,b",
                                       "originalRequestID": "oreq", "originalEventID": "oevt"},
    sessionCredentialFromConsole="true", edgeDeviceDetails="edge",
    tlsDetails={"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": "ec2.us-east-1.amazonaws.com"},
    readOnly=False,
)

EXPECTED: dict[str, Any] = {
    "ct.id": "evt-1",
    "ct.error": "Client.UnauthorizedOperation",
    "ct.errormessage": "You are not authorized",
    "ct.time": "2024-05-01T10:00:00Z",
    "ct.src": "ec2.amazonaws.com",
    "ct.shortsrc": "ec2",
    "ct.name": "RunInstances",
    "ct.user": "alice",
    "ct.originaluser": "alice",
    "ct.user.accountid": "123456789012",
    "ct.user.identitytype": "IAMUser",
    "ct.user.principalid": "AIDAEXAMPLE",
    "ct.user.arn": "arn:aws:iam::123456789012:user/alice",
    "ct.region": "us-east-1",
    "ct.response.subnetid": "subnet-2",
    "ct.response.reservationid": "r-1",
    "ct.response": '{"subnetId":"subnet-2","reservationId":"r-1","instancesSet":{"items":'
                   '[{"imageId":"ami-1"},{"imageId":"ami-2"}]}}',
    "ct.request.availabilityzone": "us-east-1a",
    "ct.request.cluster": "prod",
    "ct.request.functionname": "fn",
    "ct.request.groupname": "admins",
    "ct.request.host": "bucket.s3.amazonaws.com",
    "ct.request.name": "trail-1",
    "ct.request.policy": '{"Version":"2012-10-17"}',
    "ct.request.reason": "why",
    "ct.request.target": "i-1",
    "ct.request.documentname": "AWS-RunShellScript",
    "ct.request.serialnumber": "arn:aws:iam::1:mfa/root",
    "ct.request.servicename": "web",
    "ct.request.subnetid": "subnet-1",
    "ct.request.taskdefinition": "td:1",
    "ct.request.username": "bob",
    # compact JSON in the record's key order (the whole of requestParameters)
    "ct.request": "{" + ",".join(f'"{k}":{orjson.dumps(v).decode()}'
                                 for k, v in FULL["requestParameters"].items()) + "}",
    "ct.srcip": "203.0.113.7",
    "ct.useragent": "aws-cli/2.15.0",
    "ct.info": "alice via 203.0.113.7 !→ RunInstances Size=43 Host=bucket.s3.amazonaws.com",
    "ct.managementevent": "true",
    "ct.readonly": "false",
    "ct.requestid": "req-1",
    "ct.eventtype": "AwsApiCall",
    "ct.apiversion": "2016-11-15",
    "ct.resources": '{"type":"AWS::EC2::Instance","ARN":"arn:1"},{"ARN":"arn:2"}',
    "ct.recipientaccountid": "123456789012",
    "ct.serviceeventdetails": "details",
    "ct.sharedeventid": "shared-1",
    "ct.vpcendpointid": "vpce-1",
    "ct.eventcategory": "Management",
    "ct.addendum.reason": "DELIVERY_DELAY",
    "ct.addendum.updatedfields": "a,b",
    "ct.addendum.originalrequestid": "oreq",
    "ct.addendum.originaleventid": "oevt",
    "ct.sessioncredentialfromconsole": "true",
    "ct.edgedevicedetails": "edge",
    "ct.tlsdetails.tlsversion": "TLSv1.3",
    "ct.tlsdetails.ciphersuite": "TLS_AES_128_GCM_SHA256",
    "ct.tlsdetails.clientprovidedhostheader": "ec2.us-east-1.amazonaws.com",
    "ct.additionaleventdata": '{"bytesTransferredIn":10,"bytesTransferredOut":33.0}',
    "s3.uri": None,
    "s3.bucket": None,
    "s3.key": None,
    "s3.bytes": 43,
    "s3.bytes.in": 10,
    "s3.bytes.out": 33,
    "s3.cnt.get": None,
    "s3.cnt.put": None,
    "s3.cnt.other": 1,
    "ec2.name": None,
    "ec2.imageid": "ami-1",
    "ec2.imageids": ("ami-1", "ami-2"),
    "ecr.repository": "repo",
    "ecr.imagetag": "v1",
    "iam.role": "role",
    "iam.policy": "AdministratorAccess",
}


def test_the_table_has_upstreams_73_fields_in_order() -> None:
    names = [s.name for s in cloudtrail_field_specs()]
    assert names == list(FIELD_ORDER) == list(EXPECTED)
    assert len(names) == 73
    for spec in cloudtrail_field_specs():
        numeric = spec.name.startswith(("s3.bytes", "s3.cnt"))
        assert spec.type is (FieldType.UINT64 if numeric else FieldType.CHARBUF), spec.name
        assert spec.is_list is (spec.name == "ec2.imageids"), spec.name
        assert spec.arg is (ArgKind.INDEX if spec.name == "ec2.imageids" else ArgKind.NONE)
        assert spec.description, spec.name


@pytest.mark.skipif(not SUPPORTED.is_file(), reason=f"{SUPPORTED} not found (shared/ absent)")
def test_names_and_descriptions_are_upstreams() -> None:
    rows = [line.split("|") for line in SUPPORTED.read_text().splitlines()
            if line.startswith("| `")]
    upstream = {r[1].strip().strip("`"): r[4].strip() for r in rows}
    assert list(upstream) == list(FIELD_ORDER)
    for spec in cloudtrail_field_specs():
        assert spec.description == upstream[spec.name], spec.name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_field_on_a_full_record(name: str) -> None:
    assert extract(name, FULL) == EXPECTED[name]


def test_common_and_json_fields_are_in_the_table() -> None:
    ev = event(FULL, ts=1714557600_123456789, num=7)
    assert TABLE.fields["evt.num"].extractor(None)(ev) == 7
    assert TABLE.fields["evt.pluginname"].extractor(None)(ev) == "cloudtrail"
    assert TABLE.fields["evt.source"].extractor(None)(ev) == "aws_cloudtrail"
    assert TABLE.fields["json.value"].extractor("/userIdentity/userName")(ev) == "alice"
    assert TABLE.fields["jevt.value"].extractor("/resources/1/ARN")(ev) == "arn:2"
    assert TABLE.fields["json.value"].extractor("/readOnly")(ev) == "false"
    assert TABLE.fields["json.rawtime"].extractor(None)(ev) == "1714557600123456789"
    assert TABLE.fields["json.obj"].extractor(None)(ev).startswith(
        '{\n  "eventVersion": "1.08",\n  "userIdentity": {\n    "type": "IAMUser"')


# --- absent, and present but not a string ------------------------------------------------------


def test_missing_keys_are_absent() -> None:
    bare = {"eventVersion": "1.08", "eventTime": "2024-05-01T10:00:00Z"}
    present = {"ct.time": "2024-05-01T10:00:00Z", "s3.cnt.other": 1,
               "ct.info": "<invalid cloudtrail event: userIdentity field missing>"}
    for name in EXPECTED:
        assert extract(name, bare) == present.get(name), name


def test_non_string_values_read_as_empty_strings() -> None:
    """GetStringBytes on a number, an object or null: present, empty."""
    doc = record("X", errorCode=None, requestParameters={"name": 5, "userName": {"a": 1}},
                 serviceEventDetails={"snapshotId": "s-1"}, awsRegion=False)
    assert extract("ct.error", doc) == ""
    assert extract("ct.request.name", doc) == ""
    assert extract("ct.request.username", doc) == ""
    assert extract("ct.serviceeventdetails", doc) == ""
    assert extract("ct.region", doc) == ""
    assert extract("ct.request.policy", doc) is None


def test_null_sub_documents() -> None:
    """``requestParameters: null`` (console sign-ins): ct.request is "null", its keys absent."""
    doc = record("ConsoleLogin")
    assert extract("ct.request", doc) == "null"
    assert extract("ct.response", doc) == "null"
    assert extract("ct.request.username", doc) is None
    assert extract("ct.additionaleventdata", doc) is None


def test_a_payload_that_is_not_an_object_has_no_field() -> None:
    from falconet.event import JsonEvent

    for raw in (b"[1, 2]", b"not json", b'"text"'):
        ev = JsonEvent("aws_cloudtrail", raw)
        for name in EXPECTED:
            assert TABLE.fields[name].extractor(None)(ev) is None, (name, raw)


# --- users ----------------------------------------------------------------------------------------


def identity(**fields: Any) -> dict[str, Any]:
    return record(userIdentity=fields)


@pytest.mark.parametrize(("who", "user", "original"), [
    ({"type": "Root", "userName": "root-name"}, "root-name", "root-name"),
    ({"type": "Root"}, None, None),
    ({"type": "IAMUser", "userName": "bob"}, "bob", "bob"),
    ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, "ec2.amazonaws.com", None),
    ({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/deployer/session-7",
      "principalId": "AROA:other",
      "sessionContext": {"sessionIssuer": {"userName": "deployer"}}},
     "deployer", "session-7"),
    ({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/deployer",
      "principalId": "AROAEXAMPLE:i-0abc"}, "AssumedRole", "i-0abc"),
    ({"type": "AssumedRole", "principalId": "AROAEXAMPLE"}, "AssumedRole", None),
    ({"type": "AWSAccount", "userName": "x"}, "AWSAccount", "x"),
    ({"type": "FederatedUser"}, "FederatedUser", None),
    ({"type": "SAMLUser", "userName": "saml"}, None, "saml"),
    ({"userName": "no-type"}, None, "no-type"),
    ({"type": 7, "userName": "n"}, None, "n"),
])
def test_users(who: dict[str, Any], user: str | None, original: str | None) -> None:
    doc = identity(**who)
    assert extract("ct.user", doc) == user
    assert extract("ct.originaluser", doc) == original


def test_account_id_falls_back_to_the_recipient_account() -> None:
    assert extract("ct.user.accountid", identity(type="AWSService")) == "123456789012"
    assert extract("ct.user.accountid", identity(type="Root", accountId="999")) == "999"
    assert extract("ct.user.accountid", {"eventName": "x"}) is None


def test_short_source() -> None:
    assert extract("ct.shortsrc", record(eventSource="signin.amazonaws.com")) == "signin"
    assert extract("ct.shortsrc", record(eventSource="custom.example.com")) == \
        "custom.example.com"
    assert extract("ct.shortsrc", record(eventSource=".amazonaws.com")) == ".amazonaws.com"
    assert extract("ct.shortsrc", record(eventSource=3)) == ""


# --- booleans -------------------------------------------------------------------------------------


def test_booleans() -> None:
    assert extract("ct.readonly", record(readOnly=True)) == "true"
    assert extract("ct.readonly", record(readOnly="true")) == "false"  # only JSON true is true
    assert extract("ct.managementevent", record(managementEvent=False)) == "false"
    assert extract("ct.managementevent", {"eventName": "x"}) is None
    assert extract("ct.sessioncredentialfromconsole", record(
        sessionCredentialFromConsole=True)) == "true"
    assert extract("ct.sessioncredentialfromconsole", record(
        sessionCredentialFromConsole="false")) == "false"
    assert extract("ct.sessioncredentialfromconsole", record()) is None


def test_documentname_is_read() -> None:
    """Upstream bug fixed: its switch spells the field ``ct.request.documentName``, so the
    field is never extracted there."""
    doc = record("SendCommand", requestParameters={"documentName": "AWS-RunShellScript"})
    assert extract("ct.request.documentname", doc) == "AWS-RunShellScript"


# --- s3 -----------------------------------------------------------------------------------------


def s3(name: str, **params: Any) -> dict[str, Any]:
    return record(name, eventSource="s3.amazonaws.com", requestParameters=params)


def test_s3_fields() -> None:
    get = s3("GetObject", bucketName="b", key="k/x.txt")
    get["additionalEventData"] = {"bytesTransferredOut": 1024, "bytesTransferredIn": 0}
    assert extract("s3.uri", get) == "s3://b/k/x.txt"
    assert extract("s3.bucket", get) == "b"
    assert extract("s3.key", get) == "k/x.txt"
    assert extract("s3.bytes", get) == 1024
    assert extract("s3.cnt.get", get) == 1
    assert extract("s3.cnt.put", get) is None
    assert extract("s3.cnt.other", get) is None
    assert extract("ct.info", get) == "alice via 203.0.113.7 ← GetObject Size=1024 URI=s3://b/k/x.txt"
    put = s3("PutObject", bucketName="b")
    assert extract("s3.uri", put) is None
    assert extract("s3.cnt.put", put) == 1
    assert extract("s3.bytes", put) is None
    assert extract("ct.info", put) == "alice via 203.0.113.7 ← PutObject Bucket=b"
    assert extract("ct.info", s3("X", key="only-key")) == \
        "alice via 203.0.113.7 ← X Key=only-key"


def test_s3_bytes_as_upstream_reads_numbers() -> None:
    def size(**data: Any) -> tuple[Any, Any, Any]:
        doc = record(additionalEventData=data)
        return extract("s3.bytes", doc), extract("s3.bytes.in", doc), extract("s3.bytes.out", doc)

    assert size(bytesTransferredIn=5.9) == (5, 5, None)
    assert size(bytesTransferredOut="12") == (0, None, 0)
    assert size(bytesTransferredIn=-3, bytesTransferredOut=None) == (0, 0, 0)
    assert size(other=1) == (None, None, None)


# --- ct.info and evt.plugininfo -------------------------------------------------------------------


def plugininfo(doc: dict[str, Any]) -> Any:
    return TABLE.fields["evt.plugininfo"].extractor(None)(event(doc))


def test_info_when_the_user_is_the_source_ip() -> None:
    doc = record("Decrypt", userIdentity={"type": "AWSService", "invokedBy": "kms.amazonaws.com"},
                 sourceIPAddress="kms.amazonaws.com")
    assert extract("ct.info", doc) == "kms.amazonaws.com ← Decrypt"
    assert plugininfo(doc) == \
        "us-east-1 kms.amazonaws.com ec2 Decrypt kms.amazonaws.com ← Decrypt"


def test_info_of_put_bucket_public_access_block() -> None:
    """Upstream reads the four flags at the record's top level: false whatever was asked."""
    doc = s3("PutBucketPublicAccessBlock", bucketName="b", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True})
    assert extract("ct.info", doc) == (
        "alice via 203.0.113.7 ← PutBucketPublicAccessBlock BlockPublicAcls=false "
        "BlockPublicPolicy=false IgnorePublicAcls=false RestrictPublicBuckets=false ")
    assert extract("ct.info", s3("PutBucketPublicAccessBlock", bucketName="b")) == \
        "alice via 203.0.113.7 ← PutBucketPublicAccessBlock"


def test_info_of_incomplete_records() -> None:
    assert extract("ct.info", record(sourceIPAddress=None)) == \
        "alice via  ← DescribeInstances"
    doc = record()
    del doc["sourceIPAddress"]
    assert extract("ct.info", doc) == "<invalid cloudtrail event: eventSource field missing>"
    del doc["eventName"]
    doc["sourceIPAddress"] = "1.2.3.4"
    assert extract("ct.info", doc) == "<invalid cloudtrail event: eventName field missing>"


def test_plugininfo() -> None:
    assert plugininfo(record()) == \
        "us-east-1 alice ec2 DescribeInstances alice via 203.0.113.7 ← DescribeInstances"
    # upstream prints a user it could not find as it is, with no space before it
    assert plugininfo(identity(type="SAMLUser")) == (
        "us-east-1<unknown user type> ec2 DescribeInstances "
        "<invalid cloudtrail event: userIdentity field missing>")
    assert plugininfo(identity(type="AWSAccount")) == (
        "us-east-1 AWSAccount ec2 DescribeInstances AWSAccount via 203.0.113.7 ← "
        "DescribeInstances")
    for key in ("eventSource", "awsRegion", "eventName"):
        doc = record()
        doc[key] = 1
        assert plugininfo(doc) is None, key


# --- ec2 ----------------------------------------------------------------------------------------


def test_ec2_name_from_the_instance_tags() -> None:
    doc = record("RunInstances", requestParameters={"tagSpecificationSet": {"items": [
        {"resourceType": "volume", "tags": [{"key": "Name", "value": "vol"}]},
        {"resourceType": "instance", "tags": [{"key": "env", "value": "prod"},
                                              {"key": "Name", "value": "web-1"}]},
    ]}})
    assert extract("ec2.name", doc) == "web-1"
    doc["requestParameters"]["tagSpecificationSet"]["items"].pop()
    assert extract("ec2.name", doc) is None


def test_ec2_image_ids() -> None:
    images = {"instancesSet": {"items": [{"imageId": "ami-1"}, {"x": 1}, {"imageId": "ami-3"}]}}
    doc = record("RunInstances", responseElements=images)
    assert extract("ec2.imageids", doc) == ("ami-1", "ami-3")
    assert extract("ec2.imageids", doc, "2") == ("ami-3",)
    assert extract("ec2.imageids", doc, "1") is None
    assert extract("ec2.imageids", doc, "3") is None
    assert extract("ec2.imageid", doc) == "ami-1"
    request = record("RunInstances", requestParameters={"imageId": "ami-r"})
    assert extract("ec2.imageids", request) == ("ami-r",)
    assert extract("ec2.imageids", request, "0") == ("ami-r",)
    assert extract("ec2.imageids", request, "1") is None
    fast = record(requestParameters={"DescribeFastLaunchImagesRequest": {
        "ImageId": {"content": "ami-f"}}})
    assert extract("ec2.imageid", fast) == "ami-f"
    spot = record(requestParameters={"launchSpecification": {"imageId": "ami-s"}})
    assert extract("ec2.imageids", spot) == ("ami-s",)
    assert extract("ec2.imageids", record()) is None


def test_ec2_imageids_index_is_checked_when_compiled() -> None:
    for bad in ("01", "x", "-1", ""):
        with pytest.raises(ValueError, match="invalid index argument"):
            TABLE.fields["ec2.imageids"].extractor(bad)
