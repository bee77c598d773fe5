"""Escalation: later attempts of a batch run on a stronger model, recorded and priced apart.

The real SDK against the fake Messages API: the model of each request is read at the fake.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from freshbatch import cli
from freshbatch.errors import InputError
from freshbatch.planning import plan_phase
from freshbatch.pricing import Pricing
from freshbatch.providers import Usage
from freshbatch.report import course_report
from freshbatch.runner import RunOptions, choose_escalation, run
from freshbatch.workspace import Escalation, Workspace, parse_course, parse_settings
from tests.fakes.messages_api import Reply
from tests.runner_support import (
    batch_entry,
    batch_of_request,
    fast,
    message_bodies,
    progress,
    transcript,
    use_reference,
)

BASE = "claude-sonnet-5-5"  # $2 / $10 per million tokens
STRONG = "claude-opus-5-5"  # $4 / $20


def models_sent(api: Any, phase: int, batch: int) -> list[str]:
    """The model of every request the fake received for one batch, in order."""
    bodies = message_bodies(api)
    return [b["model"] for b in bodies if batch_of_request(b) == (phase, batch)]


def run_escalated(workspace: Workspace, demo: str, **kw: Any) -> Any:
    options = fast(provider="anthropic", model=BASE, escalate_model=STRONG, **kw)
    return run(workspace, "phase1", demo, options)


def test_the_third_attempt_runs_on_the_escalation_model_and_is_priced_on_it(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    # batch 1's first two answers are not JSON; the reference answers the third
    use_reference(fake_api, demo_reference,
                  script={(1, 1): [Reply.message("not json at all")] * 2})  # fmt: skip
    assert run_escalated(workspace, demo).ok
    assert models_sent(fake_api, 1, 1) == [BASE, BASE, STRONG]
    assert models_sent(fake_api, 1, 2) == [BASE], "a batch passing at once never escalates"

    folder = workspace.courses_dir / demo
    third = transcript(folder, 1, 1, 3)
    assert (third["model"], third["escalated"]) == (STRONG, True)
    assert third["request"]["model"] == STRONG
    first = transcript(folder, 1, 1, 1)
    assert first["model"] == BASE and "escalated" not in first
    usage = Usage.from_dict(third["answer"]["usage"])
    assert usage.output_tokens > 0
    assert third["cost_usd"] == pytest.approx(Pricing().cost(usage, STRONG))
    assert third["cost_usd"] == pytest.approx(2 * (Pricing().cost(usage, BASE) or 0.0), abs=2e-6)

    entry = batch_entry(folder, 1, 1)
    assert entry["models"] == {"1": BASE, "2": BASE, "3": STRONG}
    assert entry["escalation_cost_usd"] == pytest.approx(third["cost_usd"])
    assert batch_entry(folder, 1, 2)["escalation_cost_usd"] == 0.0
    totals = progress(folder)["totals"]
    assert totals["escalation_cost_usd"] == pytest.approx(third["cost_usd"])
    assert totals["cost_usd"] > totals["escalation_cost_usd"]
    (phase,) = course_report(workspace, demo)["phases"]
    assert phase["escalation_cost_usd"] == pytest.approx(third["cost_usd"])


def test_escalate_from_two_escalates_the_second_attempt(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    use_reference(fake_api, demo_reference, script={(1, 1): [Reply.message("not json")]})
    assert run_escalated(workspace, demo, escalate_from=2).ok
    assert models_sent(fake_api, 1, 1) == [BASE, STRONG]


def test_course_yaml_escalate_is_used_without_the_option(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    config = workspace.courses_dir / demo / "course.yaml"
    config.write_text(
        config.read_text("utf-8") + f"escalate:\n  model: {STRONG}\n  from_attempt: 2\n", "utf-8"
    )
    use_reference(fake_api, demo_reference, script={(1, 1): [Reply.message("not json")]})
    assert run(workspace, "phase1", demo, fast(provider="anthropic", model=BASE)).ok
    assert models_sent(fake_api, 1, 1) == [BASE, STRONG]


def test_plan_shows_the_expected_escalation_cost_from_the_observed_retry_rate(
    workspace: Workspace, demo: str, fake_api: Any, demo_reference: Path
) -> None:
    options = RunOptions(escalate_model=STRONG)
    fresh = plan_phase(workspace, "phase1", demo, BASE, options=options)
    assert fresh.escalation[1].cost_usd == 0.0
    assert "no retries observed yet" in fresh.escalation[1].describe()

    # batches 1 and 2 merge; batch 1 needed the third attempt: a retry rate of 1/2
    use_reference(fake_api, demo_reference,
                  script={(1, 1): [Reply.message("not json at all")] * 2})  # fmt: skip
    assert run_escalated(workspace, demo, batches=(1, 2)).ok
    plan = plan_phase(workspace, "phase1", demo, BASE, options=options)
    estimate = plan.escalation[1]
    assert (estimate.observed, estimate.escalated, estimate.rate) == (2, 1, 0.5)
    (left,) = plan.batches
    assert left.batch == 3
    # the escalated attempt cannot read the other model's cache: its prefix is a cache write
    usage = replace(left.usage, cache_read_input_tokens=0,
                    cache_creation_input_tokens=left.usage.cache_creation_input_tokens
                    + left.usage.cache_read_input_tokens)  # fmt: skip
    expected = 0.5 * (Pricing().cost(usage, STRONG) or 0.0)
    assert estimate.cost_usd == pytest.approx(expected, abs=1e-6)
    assert plan.to_dict()["escalation"]["phase1"]["retry_rate"] == 0.5


def test_plan_command_prints_the_escalation_line(
    workspace: Workspace, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--root", str(workspace.root), "plan", "phase1", demo, "--escalate-model", STRONG]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"escalation to {STRONG} from attempt 3: no retries observed yet, $0" in out


def test_escalate_settings_are_checked_strictly(tmp_path: Path) -> None:
    settings = parse_settings({"escalate": {"model": STRONG}}, "freshbatch.yaml")
    assert settings.escalate == Escalation(STRONG, 3)
    with pytest.raises(InputError, match="unknown key 'from'"):
        parse_settings({"escalate": {"model": STRONG, "from": 2}}, "freshbatch.yaml")
    with pytest.raises(InputError, match="from_attempt is 1"):
        parse_settings({"escalate": {"model": STRONG, "from_attempt": 1}}, "freshbatch.yaml")
    with pytest.raises(InputError, match="missing required key 'model'"):
        parse_settings({"escalate": {"from_attempt": 2}}, "freshbatch.yaml")
    with pytest.raises(InputError, match="expected a mapping"):
        parse_settings({"escalate": STRONG}, "freshbatch.yaml")
    raw = {"code": "xx", "target": "ita", "known": "eng", "target_name": "I",
           "known_name": "E", "seeds": "s.json", "escalate": {"model": STRONG,
                                                               "from_attempt": 2}}  # fmt: skip
    assert parse_course(tmp_path / "xx", raw).escalate == Escalation(STRONG, 2)


def test_the_option_wins_over_course_yaml_and_freshbatch_yaml(tmp_path: Path) -> None:
    raw = {"code": "xx", "target": "ita", "known": "eng", "target_name": "I",
           "known_name": "E", "seeds": "s.json", "escalate": {"model": "course-model",
                                                               "from_attempt": 2}}  # fmt: skip
    course = parse_course(tmp_path / "xx", raw)
    settings = parse_settings({"escalate": {"model": "workspace-model"}}, "freshbatch.yaml")
    assert choose_escalation(RunOptions(), course, settings) == Escalation("course-model", 2)
    assert choose_escalation(RunOptions(), replace(course, escalate=None), settings) == (
        Escalation("workspace-model", 3)
    )
    chosen = choose_escalation(RunOptions(escalate_model="m", escalate_from=4), course, settings)
    assert chosen == Escalation("m", 4)
    with pytest.raises(InputError, match="--escalate-from needs"):
        choose_escalation(RunOptions(escalate_from=2), replace(course, escalate=None),
                          parse_settings({}, "freshbatch.yaml"))  # fmt: skip
