"""A fake `command` provider program: `python fake_command.py MODE [LOG]`.

It reads the request JSON from stdin, writes it to LOG (if given), and answers per MODE:
ok (an answer echoing meta), tempfail (exit 75), fatal (exit 2 with a stderr message),
garbage (non-JSON stdout), notext (a JSON object without "text"), slow:SECONDS (sleeps,
then answers as ok).
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    """Answer one request per the mode in argv[1]."""
    mode = argv[1] if len(argv) > 1 else "ok"
    received = sys.stdin.read()
    if len(argv) > 2:
        with open(argv[2], "w", encoding="utf-8") as handle:
            handle.write(received)
    if mode.startswith("slow:"):
        time.sleep(float(mode.split(":", 1)[1]))
    if mode == "tempfail":
        print("upstream busy, try later", file=sys.stderr)
        return 75
    if mode == "fatal":
        print("starting up\nbad configuration: no model", file=sys.stderr)
        return 2
    if mode == "garbage":
        print("<html>not json</html>")
        return 0
    if mode == "notext":
        print(json.dumps({"answer": "wrong key"}))
        return 0
    meta = json.loads(received)["meta"]
    answer = {
        "text": json.dumps({"batch": meta["batch"], "attempt": meta["attempt"]}),
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 4},
        "model": "local-model",
    }
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
