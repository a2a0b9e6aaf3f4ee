"""Drives the AWS API peer for the tests: reads a JSON list of calls
[[service, region, operation, {params}], …] on stdin, makes each with boto3
against AWS_ENDPOINT_URL, and prints the answers as one JSON list.
A call whose params carry "__ignore_errors": true may fail."""

import json
import os
import sys

import boto3

clients = {}
out = []


def drop_buckets(s3, names, prefix):
    """Deletes leftovers of an earlier run (objects first), so a test can
    run again against the same peer."""
    for b in s3.list_buckets().get("Buckets", []):
        name = b["Name"]
        if name in names or (prefix and name.startswith(prefix)):
            for o in s3.list_objects_v2(Bucket=name).get("Contents", []):
                s3.delete_object(Bucket=name, Key=o["Key"])
            s3.delete_bucket(Bucket=name)
    return {}


for service, region, op, params in json.load(sys.stdin):
    if service == "driftline" and op == "drop_buckets":
        s3 = boto3.client("s3", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        out.append(drop_buckets(s3, params.get("names", []), params.get("prefix")))
        continue
    key = (service, region)
    if key not in clients:
        clients[key] = boto3.client(service, region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    ignore = params.pop("__ignore_errors", False)
    try:
        r = getattr(clients[key], op)(**params)
        r.pop("ResponseMetadata", None)
        out.append(r)
    except Exception as e:  # noqa: BLE001 - reported to the test
        if not ignore:
            sys.exit(f"{service}.{op} in {region}: {e}")
        out.append({"error": str(e)})
print(json.dumps(out, default=str))
