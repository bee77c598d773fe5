"""A hook for tests: appends its stdin (one JSON event) and what it saw of the key to a file."""

import json
import os
import sys

event = json.loads(sys.stdin.read())
event["saw_api_key"] = "ANTHROPIC_API_KEY" in os.environ
event["env_event"] = os.environ.get("FRESHBATCH_EVENT")
with open(sys.argv[1], "a", encoding="utf-8") as handle:
    handle.write(json.dumps(event) + "\n")
