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
for service, region, op, params in json.load(sys.stdin):
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
