"""The real Claude Code CLI for tests: installed from npm into a folder of this checkout.

    python -m tests.real_claude install     # what .ci/run does; prints the binary's path

The version is pinned (CLAUDE_CODE below, the release these tests were written against);
`npm install --prefix .cache/claude-code` keeps it out of the global npm tree. The tests
that use it skip only where npm is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.332"
PREFIX = REPO / ".cache" / "claude-code"
BINARY = PREFIX / "node_modules" / ".bin" / "claude"
_LABELS = re.compile(r"\n\n(\[your previous answer\]|\[validator feedback\])\n")


def install() -> Path:
    """The pinned CLI's binary, installed with npm on first use."""
    if BINARY.exists() and _version_ok():
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed")
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", "--loglevel=error",
         CLAUDE_CODE],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    if not _version_ok():
        raise RuntimeError(f"{BINARY} does not run as {CLAUDE_CODE}")
    return BINARY


def _version_ok() -> bool:
    wanted = CLAUDE_CODE.rsplit("@", 1)[1]
    try:
        out = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return out.stdout.startswith(wanted + " ")


def as_api_turns(body: dict[str, Any]) -> dict[str, Any]:
    """A CLI request body as freshbatch's own turns: the stdin prompt split at its labels.

    The CLI sends one user message (text blocks) holding freshbatch's rendered prompt; the
    reference model reads turns, so the labelled previous answer and feedback become the
    assistant and user turns they stand for.
    """
    user = [m for m in body["messages"] if m.get("role") == "user"]
    text = "".join(
        block.get("text", "") if isinstance(block, dict) else str(block)
        for message in user
        for block in (
            message["content"] if isinstance(message["content"], list) else [message["content"]]
        )
    )
    parts = _LABELS.split(text)
    turns = [{"role": "user", "content": parts[0]}]
    for label, content in zip(parts[1::2], parts[2::2], strict=True):
        role = "assistant" if label == "[your previous answer]" else "user"
        turns.append({"role": role, "content": content})
    return {**body, "messages": turns}


def sent_system(body: dict[str, Any]) -> list[str]:
    """The system blocks' texts of a request, in order."""
    system = body.get("system") or []
    return [system] if isinstance(system, str) else [block.get("text", "") for block in system]


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        print(__doc__)
        sys.exit(2)
    print(install())
    print(json.dumps({"claude_code": CLAUDE_CODE}))
