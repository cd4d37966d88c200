"""CloudTrail replay throughput benchmark (issue 6: the cloudtrail plugin).

Records flow exactly as in ``falconet --source aws_cloudtrail -e DIR``: the cloudtrail plugin's
replay (a recursive walk of ``.json.gz`` log files, each read whole, gunzipped, decoded once,
its records cut into events) -> the engine's source task (event numbers, the rule index keyed
on ``ct.name``) -> alert formatting (JSON, ``json_output: true``) -> the per-output queue -> the
built-in file output, writing to a temporary file. The rules are upstream's
``aws_cloudtrail_rules.yaml`` (from ``../shared``), first match as Falco's default.

The input is a directory tree of generated CloudTrail log files as AWS writes them (compact
JSON, gzip, ``AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/``), at least 200,000
records by default: mostly the read-only calls and data events a real account is made of
(Describe/Get/List, AssumeRole, KMS Decrypt, S3 GetObject/PutObject...), with a few percent of
the calls upstream's rules report (RunInstances, CreateUser, PutBucketPolicy, StopLogging,
console sign-ins without MFA...).

Printed, in one run on one machine: records/s through the pipeline, records/s of bare
``zlib`` gunzip + ``orjson.loads`` of the same files (read from disk the same way), and the ratio
pipeline/baseline (target >= 0.5: the whole pipeline costs at most twice decoding the files).
Rounds are interleaved (pipeline, then baseline), times are the process's CPU time (the file
output's thread included), the ratio is the median of the per-round ratios, printed with their
range and with the ratio of the two best times, as ``bench/pipeline.py`` does.

Run: python3 bench/cloudtrail.py [--records N] [--per-file N] [--repeat R] [--profile]
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
from paired import paired_rounds, print_ratio, profile, rules_state, run_pipeline

from falconet.api import SourceContext
from falconet.engine import RulesState
from falconet.fields import FieldRegistry
from falconet.stats import EngineStats
from falconet_cloudtrail import cloudtrail_field_table
from falconet_cloudtrail.source import replay_source

SOURCE = "aws_cloudtrail"
UPSTREAM_RULES = (Path(__file__).resolve().parents[2] / "shared" / "upstream" / "rules"
                  / "aws_cloudtrail_rules.yaml")
ACCOUNT = "111122223333"
REGIONS = ["us-east-1", "us-east-1", "us-east-1", "eu-west-1", "us-west-2"]

# (weight, event source, event name, read only, data event): the routine traffic
_ROUTINE: list[tuple[int, str, str, bool, bool]] = [
    (14, "s3", "GetObject", True, True), (8, "s3", "PutObject", False, True),
    (4, "s3", "HeadObject", True, True), (3, "s3", "ListObjects", True, True),
    (10, "sts", "AssumeRole", True, False), (9, "kms", "Decrypt", True, False),
    (4, "kms", "GenerateDataKey", True, False), (6, "ec2", "DescribeInstances", True, False),
    (3, "ec2", "DescribeSecurityGroups", True, False), (2, "ec2", "DescribeVolumes", True, False),
    (4, "logs", "PutLogEvents", False, False), (3, "logs", "CreateLogStream", False, False),
    (3, "dynamodb", "GetItem", True, True), (3, "dynamodb", "PutItem", False, True),
    (3, "lambda", "Invoke", False, True), (2, "lambda", "GetFunction", True, False),
    (3, "iam", "GetRole", True, False), (2, "iam", "ListRoles", True, False),
    (3, "secretsmanager", "GetSecretValue", True, False), (2, "ssm", "GetParameter", True, False),
    (2, "ecr", "GetAuthorizationToken", True, False),
    (2, "ecr", "BatchGetImage", True, False), (2, "sqs", "ReceiveMessage", True, True),
    (1, "cloudtrail", "LookupEvents", True, False), (1, "ecs", "DescribeTasks", True, False),
    (1, "ec2", "CreateTags", False, False), (1, "signin", "ConsoleLogin", False, False),
    (1, "ec2", "StartInstances", False, False),
]
# the calls upstream's rules report
_NOTABLE: list[tuple[str, str]] = [
    ("ec2", "RunInstances"), ("iam", "CreateUser"), ("iam", "CreateGroup"),
    ("iam", "DeleteGroup"), ("s3", "PutBucketPolicy"), ("s3", "PutBucketAcl"),
    ("s3", "DeleteBucketEncryption"), ("cloudtrail", "StopLogging"),
    ("cloudtrail", "CreateTrail"), ("lambda", "CreateFunction20150331"),
    ("lambda", "UpdateFunctionCode20150331v2"), ("ecs", "RunTask"), ("ecs", "CreateService"),
    ("signin", "ConsoleLogin"),
]


def _identity(rnd: random.Random) -> dict[str, Any]:
    if rnd.random() < 0.75:
        role = rnd.choice(["app-backend", "data-pipeline", "ci-deployer", "eks-node",
                           "AWSReservedSSO_Admin_0123456789abcdef"])
        session = rnd.choice(["i-0abc12345def67890", "alice@example.com", "botocore-session",
                              "gitlab-runner-42"])
        return {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{role[:4].upper()}:{session}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
                "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLEKEY000001",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                      "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                                      "accountId": ACCOUNT, "userName": role},
                    "webIdFederationData": {},
                    "attributes": {"creationDate": "2024-05-01T09:00:00Z",
                                   "mfaAuthenticated": "false"}}}
    if rnd.random() < 0.8:
        user = rnd.choice(["alice", "bob", "terraform", "backup"])
        return {"type": "IAMUser", "principalId": "AIDAEXAMPLE" + user.upper(),
                "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
                "accessKeyId": "AKIAEXAMPLEKEY000001", "userName": user}
    return {"type": "AWSService", "invokedBy": rnd.choice(
        ["ec2.amazonaws.com", "lambda.amazonaws.com", "cloudtrail.amazonaws.com"])}


def _parameters(rnd: random.Random, source: str, name: str) -> dict[str, Any] | None:
    if source == "s3":
        bucket = rnd.choice(["finance-reports", "app-assets", "logs-archive", "ml-datasets"])
        params: dict[str, Any] = {"bucketName": bucket,
                                  "Host": f"{bucket}.s3.us-east-1.amazonaws.com"}
        if name in ("GetObject", "PutObject", "HeadObject"):
            params["key"] = f"data/2024/05/01/part-{rnd.randrange(100000):05d}.parquet"
        if name == "PutBucketPolicy":
            params["bucketPolicy"] = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                 "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}
        return params
    if source == "sts":
        return {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/app-backend",
                "roleSessionName": "botocore-session", "durationSeconds": 3600}
    if source == "kms":
        return {"encryptionContext": {"aws:s3:arn": "arn:aws:s3:::app-assets/x"},
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    if source == "ec2" and name in ("RunInstances", "StartInstances"):
        return {"instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890",
                                            "minCount": 1, "maxCount": 1}]},
                "instanceType": "m5.large", "availabilityZone": "us-east-1a",
                "subnetId": "subnet-0123456789abcdef0"}
    if source == "ec2":
        return {"filterSet": {}, "maxResults": 1000}
    if source == "iam":
        return {"userName": "new-user", "groupName": "ops", "roleName": "app-backend"}
    if source == "logs":
        return {"logGroupName": "/aws/lambda/payments", "logStreamName": "2024/05/01/[$LATEST]"}
    if source in ("lambda", "ecs"):
        return {"functionName": "payments", "cluster": "prod", "serviceName": "web",
                "taskDefinition": "web:42"}
    if source == "cloudtrail":
        return {"name": "main"}
    return {"key": rnd.randrange(1 << 30)}


def make_record(rnd: random.Random, i: int, notable: bool, when: str) -> dict[str, Any]:
    """One CloudTrail record (``eventVersion`` first, as AWS writes it)."""
    if notable:
        source, name = rnd.choice(_NOTABLE)
        read_only, data = False, False
    else:
        (_w, source, name, read_only, data), = rnd.choices(_ROUTINE, [r[0] for r in _ROUTINE])
    doc: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": _identity(rnd), "eventTime": when,
        "eventSource": f"{source}.amazonaws.com", "eventName": name,
        "awsRegion": rnd.choice(REGIONS),
        "sourceIPAddress": rnd.choice(["10.1.2.3", "203.0.113.9", "198.51.100.23",
                                       "ec2.amazonaws.com"]),
        "userAgent": rnd.choice(["aws-sdk-go-v2/1.25.0 os/linux lang/go#1.22.1 md/GOOS#linux",
                                 "Boto3/1.34.90 md/Botocore#1.34.90 ua/2.0 os/linux#6.5.0",
                                 "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64"]),
        "requestParameters": _parameters(rnd, source, name),
        "responseElements": None,
        "requestID": f"{rnd.getrandbits(64):016X}",
        "eventID": f"{rnd.getrandbits(128):032x}",
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": not data,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data" if data else "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"{source}.us-east-1.amazonaws.com"},
    }
    if name == "ConsoleLogin":
        doc["eventType"] = "AwsConsoleSignIn"
        doc["responseElements"] = {"ConsoleLogin": "Success"}
        doc["additionalEventData"] = {"LoginTo": "https://console.aws.amazon.com/",
                                      "MobileVersion": "No",
                                      "MFAUsed": "No" if notable else "Yes"}
    elif data and source == "s3":
        doc["additionalEventData"] = {"SignatureVersion": "SigV4",
                                      "bytesTransferredIn": 0 if name != "PutObject" else 4096,
                                      "bytesTransferredOut": 4096 if name == "GetObject" else 0}
        doc["resources"] = [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::app-assets/x"}]
    if rnd.random() < 0.02:
        doc["errorCode"] = "AccessDenied"
        doc["errorMessage"] = "User is not authorized to perform this operation"
    return doc


def write_logs(root: Path, records: int, per_file: int, notable_share: float,
               seed: int = 7) -> int:
    """The log tree; returns the number of files."""
    rnd = random.Random(seed)
    files = 0
    for start in range(0, records, per_file):
        hour, minute = divmod(start // per_file * 5, 60)
        when = f"2024-05-01T{hour % 24:02d}:{minute:02d}:00Z"
        recs = [make_record(rnd, i, rnd.random() < notable_share, when)
                for i in range(start, min(records, start + per_file))]
        region = rnd.choice(REGIONS)
        name = (f"{ACCOUNT}_CloudTrail_{region}_20240501T{hour % 24:02d}{minute:02d}Z_"
                f"{rnd.getrandbits(64):016x}.json.gz")
        path = root / "AWSLogs" / ACCOUNT / "CloudTrail" / region / "2024" / "05" / "01" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(orjson.dumps({"Records": recs}), compresslevel=6))
        files += 1
    return files


def load_rules(reg: FieldRegistry) -> RulesState:
    if not UPSTREAM_RULES.is_file():
        sys.exit(f"upstream rules not found at {UPSTREAM_RULES} (../shared beside the repo)")
    return rules_state(reg, UPSTREAM_RULES.read_text(), str(UPSTREAM_RULES), SOURCE)


def run_baseline(files: list[Path]) -> tuple[int, int]:
    """(CPU ns, records) of reading, gunzipping and decoding every file, nothing else."""
    loads, decompress = orjson.loads, zlib.decompress
    start = time.process_time_ns()
    count = 0
    for file in files:
        count += len(loads(decompress(file.read_bytes(), 31))["Records"])
    return time.process_time_ns() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--per-file", type=int, default=500,
                        help="records per log file (default 500)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--notable-share", type=float, default=0.03,
                        help="share of records of the calls upstream's rules report")
    parser.add_argument("--profile", action="store_true", help="cProfile one pipeline run")
    args = parser.parse_args()
    reg = FieldRegistry()
    reg.add_table(cloudtrail_field_table())
    state = load_rules(reg)
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "logs"
        nfiles = write_logs(logs, args.records, args.per_file, args.notable_share)
        files = sorted(logs.rglob("*.json.gz"))
        stored = sum(f.stat().st_size for f in files)
        alerts = Path(tmp) / "alerts.json"

        def pipeline() -> tuple[int, EngineStats]:
            return run_pipeline(SOURCE, lambda counters: replay_source(
                logs, SourceContext(str(logs), {}, counters)), alerts, state)

        if args.profile:
            profile(pipeline, "tottime")
            return
        records: list[int] = []

        def baseline() -> int:
            ns, count = run_baseline(files)
            records.append(count)
            return ns

        pipe, base, stats = paired_rounds(args.repeat, pipeline, baseline)
        written = sum(1 for _ in alerts.open("rb"))
    n = records[-1]
    counters = stats.source(SOURCE).counters
    print(f"records: {n} in {nfiles} .json.gz files ({stored / n:.0f} bytes each stored), "
          f"rules: {len(state.formatters)} (upstream aws_cloudtrail_rules.yaml, index "
          f"{state.ruleset.index_summary()[SOURCE]['index_field']}), events: "
          f"{stats.source(SOURCE).events}, alerts: {stats.alerts_total} "
          f"({stats.alerts_total / n:.1%}; {written} lines in the file output), "
          f"malformed: {counters.malformed}")
    print_ratio(n, "record", pipe, base,
                ("pipeline (replay -> rules -> JSON alerts -> file)",
                 "gunzip + orjson.loads alone, same files"),
                "pipeline/baseline", "0.5", stats)

if __name__ == "__main__":
    main()
