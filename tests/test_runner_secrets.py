"""No credentials on disk or in `status --json` (RUNNER §6); what transcripts must hold."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.runner import run
from freshbatch.workspace import Workspace
from tests.conftest import TEST_KEY
from tests.fakes.messages_api import Reply
from tests.runner_support import (
    fast,
    load,
    message_bodies,
    requested,
    snapshot,
    transcript,
    transcripts,
    use_reference,
)

USAGE_FIELDS = {
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
}
SECRET_KEYS = re.compile(r"api[-_]?key|authorization|x-api-key|secret|bearer", re.IGNORECASE)


@pytest.fixture
def full_run(workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path) -> Path:
    """All phases through the fake server: one transport retry, one batch retried for errors."""
    use_reference(fake_api, demo_reference, broken={(3, 2)})
    fake_api.enqueue(Reply.error(429, headers={"retry-after": "0.01"}))
    assert run(workspace, "all", demo, fast()).ok
    assert requested(fake_api).count((3, 2)) == 2
    return workspace.courses_dir / demo


def credentials_sent(api: Any) -> set[str]:
    """Every credential header value the server saw (x-api-key, authorization)."""
    values = set()
    for request in api.message_requests():
        for name in ("x-api-key", "authorization"):
            if name in request.headers:
                values.add(request.headers[name])
    assert TEST_KEY in {v.removeprefix("Bearer ") for v in values}, "the SDK must send the key"
    return values


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_no_file_under_the_course_holds_the_key(full_run: Path, fake_api: Any) -> None:
    secrets = {TEST_KEY, TEST_KEY[-16:], *credentials_sent(fake_api)}
    files = snapshot(full_run)
    assert any(name.startswith(".freshbatch/transcripts/") for name in files)
    assert ".freshbatch/events.jsonl" in files and ".freshbatch/progress.json" in files
    for name, data in files.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{name} holds a credential"


def test_transcripts_hold_request_usage_prefix_hash_and_validation(
    full_run: Path, fake_api: Any
) -> None:
    paths = transcripts(full_run)
    assert len(paths) == 10  # 9 batches, phase 3 batch 2 twice
    sent = {(b["messages"][0]["content"], len(b["messages"])): b for b in message_bodies(fake_api)}
    prefixes: dict[int, set[str]] = {}
    for path in paths:
        data = load(path)
        request = data["request"]
        assert not {k for k in keys_of(request) if SECRET_KEYS.search(k)}, path.name
        assert request["model"] and request["messages"] and request["system"]
        assert request["system"][-1].get("cache_control"), "the breakpoint is on the last block"
        body = sent[(request["messages"][0]["content"], len(request["messages"]))]
        assert {k: v for k, v in body.items() if k != "stream"} == request, (
            "the transcript keeps the request as it was sent"
        )
        usage = data["answer"]["usage"]
        assert USAGE_FIELDS <= set(usage) and usage["output_tokens"] > 0
        assert re.fullmatch(r"[0-9a-f]{64}", data["prefix_sha256"])
        prefixes.setdefault(data["phase"], set()).add(data["prefix_sha256"])
        system = json.dumps([b["text"] for b in request["system"]], ensure_ascii=False)
        assert data["prefix_sha256"] == hashlib.sha256(system.encode()).hexdigest()
        assert isinstance(data["validation"]["valid"], bool)
        assert isinstance(data["validation"]["issues"], list)
        assert 0 < data["provider_cpu_seconds"] <= data["seconds"] + 0.01, "CPU inside the call"
    assert set(prefixes) == {1, 3, 5}
    assert all(len(hashes) == 1 for hashes in prefixes.values()), (
        "one phase of one course has one cached prefix for all batches"
    )
    retried = transcript(full_run, 3, 2, 1)["validation"]
    assert retried["valid"] is False and any(i["severity"] == "error" for i in retried["issues"])
    assert transcript(full_run, 3, 2, 2)["validation"]["valid"] is True
    assert transcript(full_run, 1, 1, 1)["transport_retries"] == 1


def test_status_json_has_no_key(
    full_run: Path, workspace: Workspace, fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = {TEST_KEY, TEST_KEY[-16:], *credentials_sent(fake_api)}
    capsys.readouterr()
    assert cli.main(["--root", str(workspace.root), "status", full_run.name, "--json"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["status"] == "completed" and shown["course"] == full_run.name
    for secret in secrets:
        assert secret not in out
