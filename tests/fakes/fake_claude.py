#!/usr/bin/env python3
"""A fake `claude` for tests: records each call, answers like `claude -p --output-format json`.

Environment:
  FAKE_CLAUDE_LOG     file to append one JSON line per call: {"argv": [...], "stdin": "...", ...}
  FAKE_CLAUDE_MODE    ok (default) | error | ratelimit | overloaded | auth | notfound | server
                      | truncated | continued | garbage | sleep | exit1_ok | old
  FAKE_CLAUDE_TEXT    the answer text in ok mode (default: {"ok": true})
  FAKE_CLAUDE_VERSION what `--version` prints (default: 2.1.332 (Claude Code))

The system prompt file named by --system-prompt-file is read and logged as "system".

In sleep mode the fake starts a grandchild sleeper that shares its stdout (its pid is logged as
"grandchild") and then sleeps, so only killing the whole process group ends the call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

DURING_EXECUTION = "error_during_execution"
USAGE = {
    "input_tokens": 12,
    "output_tokens": 34,
    "cache_creation_input_tokens": 56,
    "cache_read_input_tokens": 78,
    "service_tier": "standard",
}


def result(
    text: str,
    *,
    is_error: bool = False,
    subtype: str = "success",
    status: int | None = None,
    error_type: str | None = None,
    turns: int = 1,
) -> dict[str, Any]:
    """A result object shaped like the real CLI's JSON output (2.1.332)."""
    return {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error,
        "duration_ms": 5,
        "duration_api_ms": 4,
        "num_turns": turns,
        "result": text,
        "stop_reason": "stop_sequence" if is_error else "end_turn",
        "session_id": "fake-session-0001",
        "total_cost_usd": 0.0,
        "usage": USAGE,
        "permission_denials": [],
        "api_error_status": status,
        "api_error_type": error_type,
    }


def log(entry: dict[str, Any]) -> None:
    """Append one JSON line to $FAKE_CLAUDE_LOG, if set."""
    path = os.environ.get("FAKE_CLAUDE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def sleep_forever(entry: dict[str, Any]) -> None:
    """Start a grandchild sleeper holding our stdout, log its pid, then sleep."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    log({**entry, "grandchild": sleeper.pid})
    time.sleep(120)


def main() -> int:
    """Read stdin, record the call, answer per FAKE_CLAUDE_MODE."""
    if sys.argv[1:] == ["--version"]:
        print(os.environ.get("FAKE_CLAUDE_VERSION", "2.1.332 (Claude Code)"))
        return 0
    entry: dict[str, Any] = {
        "argv": sys.argv,
        "stdin": sys.stdin.read(),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("CLAUDE", "DISABLE_"))},
        "home": os.environ.get("HOME"),
    }
    if "--system-prompt-file" in sys.argv:
        with open(sys.argv[sys.argv.index("--system-prompt-file") + 1], encoding="utf-8") as f:
            entry["system"] = f.read()
    mode = os.environ.get("FAKE_CLAUDE_MODE", "ok")
    if mode == "sleep":
        sleep_forever(entry)
        return 0
    log(entry)
    text = os.environ.get("FAKE_CLAUDE_TEXT", '{"ok": true}')
    replies = {
        "ok": (0, result(text)),
        "exit1_ok": (1, result(text)),
        "error": (0, result("Something odd happened", is_error=True, subtype=DURING_EXECUTION)),
        "ratelimit": (1, result("API Error: Request rejected (429)", is_error=True, status=429,
                                error_type="rate_limit_error")),
        "overloaded": (1, result("API Error: 529 overloaded", is_error=True, status=529,
                                 error_type="overloaded_error")),
        "auth": (1, result("Invalid API key · Please run /login", is_error=True, status=401,
                           error_type="authentication_error")),
        "notfound": (1, result("There's an issue with the selected model", is_error=True,
                               status=404, error_type="not_found_error")),
        "server": (1, result("API Error: 500 api_error", is_error=True, status=500,
                             error_type="api_error")),
        "truncated": (1, result("API Error: Claude's response exceeded the 1000 output token "
                                "maximum.", is_error=True, turns=4)),
        "continued": (0, result('"tail": 1}', turns=2)),
    }  # fmt: skip
    if mode == "garbage":
        print("this is not json at all")
        return 0
    if mode == "old":
        print("error: unknown option '--no-session-persistence'", file=sys.stderr)
        return 1
    code, reply = replies[mode]
    if "stream-json" not in sys.argv:
        print(json.dumps(reply))
        return code
    turn = {"role": "assistant", "content": [{"type": "text", "text": reply["result"]}],
            "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}  # fmt: skip
    print(json.dumps({"type": "system", "subtype": "init", "session_id": "fake-session-0001"}))
    if mode != "garbage_stream":
        print(json.dumps({"type": "assistant", "message": turn}), flush=True)
    if mode == "continued":  # the CLI continues a cut-off answer: only a kill stops it here
        print(json.dumps({"type": "user", "message": {"role": "user", "content": [
            {"type": "text", "text": "Output token limit hit. Resume directly"}]},
            "isSynthetic": True}), flush=True)  # fmt: skip
        time.sleep(60)
    print(json.dumps(reply))
    return code


if __name__ == "__main__":
    sys.exit(main())
