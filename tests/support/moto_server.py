"""moto's server, with its AWS Config answers put in the shapes AWS sends.

moto (pinned in deploy/local/test-stack.sh) answers Config calls with what
its models hold: timestamps as ISO text with a space, `configuration` and
supplementary values as JSON objects, tags as lists. Real AWS sends epoch
seconds, JSON text and maps, and the Rust SDK rejects anything else. This
launcher rewrites moto's Config responses to AWS's shapes, then runs
`moto.server` with the given arguments (`-H 127.0.0.1 -p PORT`).

It also refuses Config calls on demand, as AWS does when a role loses a
permission or a quota is exhausted (moto enforces neither): while the JSON
file named by DRIFTLINE_MOTO_FAULTS holds
`[{"region": R, "operation": OP or "*", "code": C, "message": M}, …]`,
a matching call answers 400 with AWS's error shape.
"""

import json
import os
import sys
from datetime import datetime, timezone

from moto import server
from moto.config.responses import ConfigResponse

TIMES = ("configurationItemCaptureTime", "resourceCreationTime", "configurationItemDeliveryTime")


def epoch(v):
    if isinstance(v, str):
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return t.timestamp()
    return v


def tag_map(v):
    if isinstance(v, list):
        return {t.get("key", t.get("Key")): t.get("value", t.get("Value")) for t in v}
    if isinstance(v, dict):
        return {k: (t.get("Value", t.get("value")) if isinstance(t, dict) else t) for k, t in v.items()}
    return v


def as_text(v):
    return v if isinstance(v, str) or v is None else json.dumps(v)


def fix_item(item):
    for k in TIMES:
        if k in item:
            item[k] = epoch(item[k])
    if "configuration" in item:
        item["configuration"] = as_text(item["configuration"])
    supp = item.get("supplementaryConfiguration")
    if isinstance(supp, dict):
        item["supplementaryConfiguration"] = {k: as_text(v) for k, v in supp.items() if v is not None}
    if "tags" in item:
        item["tags"] = tag_map(item["tags"])
    return item


def patch(name, *lists):
    original = getattr(ConfigResponse, name)

    def patched(self):
        body = json.loads(original(self))
        for key in lists:
            body[key] = [fix_item(i) for i in body.get(key) or []]
        return json.dumps(body)

    setattr(ConfigResponse, name, patched)


def faults():
    path = os.environ.get("DRIFTLINE_MOTO_FAULTS")
    if not path:
        return []
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def refuse_on_demand():
    original = ConfigResponse.call_action

    def call_action(self):
        action = self._get_action()
        for f in faults():
            if f.get("region") == self.region and f.get("operation", "*") in ("*", action):
                code = f.get("code", "AccessDeniedException")
                body = json.dumps({"__type": code, "message": f.get("message", "denied")})
                return 400, {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.1"}, body
        return original(self)

    ConfigResponse.call_action = call_action


refuse_on_demand()
patch("get_resource_config_history", "configurationItems")
patch("batch_get_resource_config", "baseConfigurationItems")
patch("batch_get_aggregate_resource_config", "BaseConfigurationItems")

if __name__ == "__main__":
    server.main(sys.argv[1:])
