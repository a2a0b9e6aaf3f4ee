"""moto's server, with its AWS Config answers put in the shapes AWS sends.

moto (pinned in deploy/local/test-stack.sh) answers Config calls with what
its models hold: timestamps as ISO text with a space, `configuration` and
supplementary values as JSON objects, tags as lists. Real AWS sends epoch
seconds, JSON text and maps, and the Rust SDK rejects anything else. This
launcher rewrites moto's Config responses to AWS's shapes, then runs
`moto.server` with the given arguments (`-H 127.0.0.1 -p PORT`).
"""

import json
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


patch("get_resource_config_history", "configurationItems")
patch("batch_get_resource_config", "baseConfigurationItems")
patch("batch_get_aggregate_resource_config", "BaseConfigurationItems")

if __name__ == "__main__":
    server.main(sys.argv[1:])
