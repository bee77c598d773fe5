"""The request layout: cached prefix identical per phase, batch data after it, feedback turns."""

from __future__ import annotations

import json

import pytest

from freshbatch import cli
from freshbatch.answers import AnswerFormatError, parse_answer
from freshbatch.attempts import RetryPolicy
from freshbatch.issues import ERROR, WARNING, Issue
from freshbatch.prompts import MAX_FEEDBACK_ERRORS, feedback_message
from freshbatch.runner import RunOptions, prompt_request, run
from freshbatch.workspace import Workspace
from tests.conftest import reference_responder

FAST = RunOptions(retry=RetryPolicy(base_seconds=0.01, max_seconds=0.05))


def messages_requests(api):  # type: ignore[no-untyped-def]
    return [r for r in api.requests if r.path.endswith("/v1/messages")]


def test_every_batch_of_a_phase_sends_the_same_cached_prefix(
    workspace: Workspace, demo: str, fake_api, demo_reference
) -> None:
    fake_api.responder = reference_responder(demo_reference)
    assert run(workspace, "all", demo, FAST).ok
    by_phase: dict[int, list] = {}
    for request in messages_requests(fake_api):
        phase = int(request.body["messages"][0]["content"].split()[1])
        by_phase.setdefault(phase, []).append(request.body)
    assert sorted(by_phase) == [1, 3, 5]
    prefixes = {}
    for phase, bodies in by_phase.items():
        systems = {json.dumps(b["system"], ensure_ascii=False, sort_keys=True) for b in bodies}
        assert len(systems) == 1, f"phase {phase}: the system prefix differs between batches"
        system = bodies[0]["system"]
        assert [("cache_control" in block) for block in system] == [False, True]
        assert system[1]["cache_control"]["type"] == "ephemeral"
        text = "".join(block["text"] for block in system)
        for body in bodies:  # nothing batch-specific before the breakpoint
            header, data = body["messages"][0]["content"].split("\n\nInput:\n")
            assert header not in text and data not in text
        assert "batch 1 of" not in text and "batch 2 of" not in text
        prefixes[phase] = text
    assert len(set(prefixes.values())) == 3, "each phase has its own instructions"
    assert fake_api.cache.hits == sum(len(b) for b in by_phase.values()) - 3


def test_retry_resends_the_prefix_the_answer_and_the_errors(
    workspace: Workspace, demo: str, fake_api, demo_reference
) -> None:
    fake_api.responder = reference_responder(demo_reference, broken={(3, 2)})
    assert run(workspace, "all", demo, FAST).ok
    phase3 = [
        r.body
        for r in messages_requests(fake_api)
        if r.body["messages"][0]["content"].startswith("Phase 3")
    ]
    first, retry = [b for b in phase3 if "batch 2 of 3" in b["messages"][0]["content"]]
    assert retry["system"] == first["system"]
    assert retry["messages"][0] == first["messages"][0]
    assert [m["role"] for m in retry["messages"]] == ["user", "assistant", "user"]
    previous = json.loads(retry["messages"][1]["content"])
    assert previous["seeds"][-1]["seed_id"] == "S0040"
    feedback = retry["messages"][2]["content"]
    assert "[tiling-exact] S0040: no LEGO covers" in feedback
    assert "COMPLETE corrected batch" in feedback


def test_prompt_command_prints_exactly_what_the_run_sends(
    workspace: Workspace, demo: str, fake_api, demo_reference, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.responder = reference_responder(demo_reference)
    assert run(workspace, "phase1", demo, FAST).ok
    batch1 = RunOptions(batches=(1,), retry=FAST.retry)
    assert run(workspace, "phase3", demo, batch1).phases[0].merged == 1
    code = cli.main(["--root", str(workspace.root), "prompt", "phase3", demo, "--batch", "2"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert run(workspace, "phase3", demo, FAST).ok
    sent = [
        r.body
        for r in messages_requests(fake_api)
        if r.body["messages"][0]["content"].startswith("Phase 3 (LEGO decomposition) — batch 2")
    ]
    assert printed["request"]["system"] == sent[0]["system"]
    assert printed["request"]["messages"] == sent[0]["messages"]
    assert printed["request"]["model"] == sent[0]["model"]
    request = prompt_request(workspace, "phase3", demo, 2)
    assert printed["prefix_sha256"] == request.prefix_sha256


def test_prompt_for_a_batch_whose_input_is_missing_is_refused(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--root", str(workspace.root), "prompt", "phase3", demo, "--batch", "1"])
    assert code == 2
    assert "needs seed_pairs.json through S0020" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    [
        '{"translations": {}}',
        '```json\n{"translations": {}}\n```',
        '  \n```\n{"a": 1}\n```\n',
    ],
)
def test_parse_answer_accepts_one_object_bare_or_fenced(text: str) -> None:
    assert isinstance(parse_answer(text), dict)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("Here it is: {}", "not valid JSON"),
        ("[1, 2]", "not one object"),
        ("```json\n{}\n```\nThanks!", "not exactly one fenced"),
        ('{"a": 1} {"b": 2}', "not valid JSON"),
        ("```json\n{}\n```\n```json\n{}\n```", "fence"),
    ],
)
def test_parse_answer_rejects_anything_else(text: str, words: str) -> None:
    with pytest.raises(AnswerFormatError, match=words):
        parse_answer(text)


def test_feedback_puts_errors_first_and_caps_the_list() -> None:
    issues = [Issue(WARNING, "phrase-growth", f"w{i}") for i in range(15)]
    issues += [Issue(ERROR, "tiling-exact", f'S{i:04d}: no LEGO covers "x"') for i in range(50)]
    text = feedback_message(issues, attempt=1, max_attempts=3)
    assert text.index("Errors (50)") < text.index("Warnings (15")
    assert text.count("[tiling-exact]") == MAX_FEEDBACK_ERRORS
    assert "and 10 more errors" in text and "and 5 more warnings" in text
    assert "attempt 1 of 3" in text
