"""The instructions agree with the validators: placeholders filled from phase.yaml, and every
JSON example in intelligence/ passes its own phase's schema and rules (issue 15)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, make_course

from freshbatch.batching import Batch
from freshbatch.errors import InputError
from freshbatch.instructions import render
from freshbatch.issues import Issue, Reporter, RuleInfo
from freshbatch.phases import PhaseDef, load_phases
from freshbatch.rules.base import PhaseContext
from freshbatch.schema import check_schema
from freshbatch.text import has_script, tokens
from freshbatch.validation import make_checker
from freshbatch.workspace import Workspace

INTELLIGENCE = REPO / "intelligence"
_FENCE = re.compile(r"```json\n(.*?)\n```", re.S)
_LEGO_ID = re.compile(r"S\d{4}L\d{2}")


def blocks(name: str) -> list[tuple[int, Any]]:
    """(offset, parsed JSON) of every ```json block; shape-only blocks ("...") are skipped."""
    text = (INTELLIGENCE / name).read_text("utf-8")
    found = []
    for match in _FENCE.finditer(text):
        body = match.group(1)
        if '"..."' in body:
            continue
        found.append((match.start(), json.loads(body)))
    return found


def test_every_json_block_parses() -> None:
    for name in ("phase1.md", "phase3.md", "phase5.md"):
        text = (INTELLIGENCE / name).read_text("utf-8")
        for match in _FENCE.finditer(text):
            if '"..."' not in match.group(1):
                json.loads(match.group(1))  # raises on a broken example


# --- rendering -----------------------------------------------------------------------------------

RULES = {
    "tiling-exact": RuleInfo("tiling-exact", "error", "T1 holds"),
    "lone-function-word": RuleInfo("lone-function-word", "warning", "no lone word"),
}


def test_render_fills_rules_severities_and_words() -> None:
    text = "{{rules}}\n{{rule:tiling-exact}} / {{severity:lone-function-word}} / {{function_words}}"
    out = render(text, "x.md", RULES, {"function_words": {"spa": ["el", "la"]}}, "spa", {})
    assert "| `tiling-exact` | error | T1 holds |" in out
    assert "| `answer-truncated` | error |" in out  # the runner's rules are taught too
    assert out.endswith("T1 holds / warning / `el` `la`")


def test_render_applies_course_overrides_and_drops_off_rules() -> None:
    out = render(
        "{{rules}} {{severity:tiling-exact}}",
        "x.md",
        RULES,
        {},
        "spa",
        {"lone-function-word": "off", "tiling-exact": "warning"},
    )
    assert "lone-function-word" not in out
    assert "| `tiling-exact` | warning |" in out and out.endswith(" warning")


def test_render_without_a_list_for_the_language_says_so() -> None:
    out = render("{{function_words}}", "x.md", RULES, {"function_words": {"spa": ["el"]}}, "xho")
    assert "no list for `xho`" in out


@pytest.mark.parametrize("text", ["{{nope}}", "{{rule:no-such-rule}}", "{{ rules }}"])
def test_render_refuses_unknown_placeholders(text: str) -> None:
    with pytest.raises(InputError, match="x.md: "):
        render(text, "x.md", RULES, {}, "spa")


@pytest.mark.parametrize("target", ["spa", "ita", "cmn", "jpn", "tha", "xho"])
def test_every_phase_renders_for_every_course(workspace: Workspace, target: str) -> None:
    make_course(workspace, f"{target}_for_eng", ["Hello."], target=target, target_name="X")
    course = workspace.load_course(f"{target}_for_eng")
    for phase in load_phases(workspace).values():
        text = phase.intelligence(course)
        assert not re.search(r"\{\{[^{}\"]*\}\}", text)
        for rule in phase.rules:  # every rule the validator may name is taught by name
            if course.rules.get(rule) != "off":
                assert f"`{rule}`" in text, (phase.key, rule)


def test_phase3_prompt_holds_the_validators_function_words(workspace: Workspace) -> None:
    make_course(workspace, "spa_for_eng", ["Hello."])
    course = workspace.load_course("spa_for_eng")
    phase = load_phases(workspace)[3]
    text = phase.intelligence(course)
    for word in phase.data["function_words"]["spa"]:
        assert f"`{word}`" in text
    assert "`est\u00e1`" in text and "`soy`" in text  # the copulas the issue names


def test_phase5_prompt_states_the_gate_as_the_validator_checks_it(workspace: Workspace) -> None:
    make_course(workspace, "spa_for_eng", ["Hello."])
    phase = load_phases(workspace)[5]
    text = phase.intelligence(workspace.load_course("spa_for_eng"))
    assert phase.rules["vocabulary-gate"].checks in text
    assert "earlier seeds of this batch" in text
    assert "S0001–S0010" in text and "answer-truncated" in text


# --- every example passes its validators ---------------------------------------------------------


def _context(
    workspace: Workspace,
    phase: PhaseDef,
    code: str,
    ids: list[str],
    batch_size: int,
    sources: dict[str, str],
    inputs: dict[str, Any],
    **settings: Any,
) -> tuple[PhaseContext, list[Batch]]:
    first, last = int(ids[0][1:]), int(ids[-1][1:])
    texts = [sources.get(f"S{n:04d}", f"Sentence {n}.") for n in range(1, last + 1)]
    make_course(workspace, code, texts, seed_range=[first, last], batch_size=batch_size, **settings)
    course = workspace.load_course(code)
    seeds = tuple(course.load_seeds())
    plan = course.plan(list(seeds))
    return PhaseContext(phase, course, seeds, plan, inputs), list(plan.batches)


def _judge(context: PhaseContext, batches: list[Batch], answer: Any, earlier: Any = None) -> list:
    """The runner's judgement of one answer for the last batch (see phase_run.judge)."""
    phase = context.phase
    module = phase.module
    checker = make_checker(context)
    if earlier is not None:
        checker.absorb(earlier, batches[0])
    batch = batches[-1]
    report = Reporter(phase.rules, context.course.rules, batch.number)
    if check_schema(phase.batch_schema, answer, report):
        return report.issues
    body = module.complete(context, batch, answer, checker)
    checker.check(body, batch, report)
    return report.issues


def _languages(text: str) -> tuple[str, str, str]:
    if has_script(text, "CJK"):
        return "cmn", "Chinese", "chinese"
    return "ita", "Italian", "italian"


PHASE1_COURSES = [  # (target, known) of each phase-1 output example, in file order
    ("ita", "eng"),  # 7.1
    ("cmn", "eng"),  # 7.2
    ("cmn", "spa"),  # 7.3 Chinese for Spanish speakers
    ("eng", "ita"),  # 7.3 English for Italian speakers
    ("spa", "eng"),  # 7.4 formal you, Spanish
    ("ita", "eng"),  # 7.4 formal you, Italian
]
NAMES = {"ita": "Italian", "cmn": "Chinese", "spa": "Spanish", "eng": "English"}


def test_phase1_examples_pass(workspace: Workspace) -> None:
    phase = load_phases(workspace)[1]
    sources: dict[str, str] = {}
    outputs = []
    for _, doc in blocks("phase1.md"):
        if "seeds" in doc:
            sources = {s["seed_id"]: s["source"] for s in doc["seeds"]}
        elif "translations" in doc:
            outputs.append((dict(sources), doc))
    assert len(outputs) == len(PHASE1_COURSES), "classify the new phase-1 example here"
    for number, ((given, doc), (target, known)) in enumerate(
        zip(outputs, PHASE1_COURSES, strict=True)
    ):
        ids = list(doc["translations"])
        canon = {
            i: given.get(i) or (pair["known"] if known == "eng" else pair["target"])
            for i, pair in doc["translations"].items()
        }
        context, batches = _context(
            workspace,
            phase,
            f"ex{number}_{target}_for_{known}",
            ids,
            len(ids),
            canon,
            {},
            target=target,
            known=known,
            target_name=NAMES[target],
            known_name=NAMES[known],
        )
        assert _judge(context, batches, doc) == [], (number, ids)


def _phase3_pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    pairs, last_input = [], None
    for _, doc in blocks("phase3.md"):
        seeds = doc.get("seeds", [])
        if seeds and "seed_pair" in seeds[0]:
            last_input = doc
        elif seeds and "legos" in seeds[0]:
            assert last_input is not None
            pairs.append((last_input, doc))
    return pairs


def test_phase3_examples_pass(workspace: Workspace) -> None:
    phase = load_phases(workspace)[3]
    pairs = _phase3_pairs()
    assert len(pairs) == 3  # the output contract, 10.1 Italian, 10.2 Chinese
    for number, (given, answer) in enumerate(pairs):
        target, name, _ = _languages(json.dumps(given, ensure_ascii=False))
        earlier = given.get("earlier_legos", [])
        first = int(given["seeds"][0]["seed_id"][1:])
        earlier_ids = [f"S{first - len(earlier) + n:04d}" for n in range(len(earlier))]
        earlier_body = {
            "seeds": [
                {
                    "seed_id": i,
                    "seed_pair": pair,
                    "legos": [{"id": f"{i}L01", "type": "A", "new": True, "lego": pair}],
                }
                for i, pair in zip(earlier_ids, earlier, strict=True)
            ]
        }
        translations = {s["seed_id"]: s["seed_pair"] for s in given["seeds"]}
        translations.update({i: p for i, p in zip(earlier_ids, earlier, strict=True)})
        ids = earlier_ids + [s["seed_id"] for s in given["seeds"]]
        context, batches = _context(
            workspace,
            phase,
            f"ex{number}_{target}_for_eng",
            ids,
            max(len(earlier), 1),
            {},
            {"seed_pairs.json": {"translations": translations}},
            target=target,
            target_name=name,
        )
        if not earlier:
            batches = batches[-1:]
        issues = _judge(context, batches, answer, earlier_body if earlier else None)
        assert issues == [], number


def _phase5_pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    pairs, last_input = [], None
    for _, doc in blocks("phase5.md"):
        if "baskets_to_write" in doc:
            last_input = doc
        elif "baskets" in doc or all(_LEGO_ID.fullmatch(k) for k in doc):
            assert last_input is not None
            pairs.append((last_input, doc.get("baskets", doc)))
    return pairs


def _phase5_issues(workspace: Workspace, number: int, given: Any, baskets: Any) -> list[Issue]:
    phase = load_phases(workspace)[5]
    target, name, _ = _languages(json.dumps(given, ensure_ascii=False))
    first = given["seeds"][0]["seed_id"]
    before = f"S{int(first[1:]) - 1:04d}"
    vocabulary = " ".join(given["vocabulary"])
    earlier = {
        "seed_id": before,
        "seed_pair": {"known": "words taught so far", "target": vocabulary},
        "legos": [
            {
                "id": f"{before}L01",
                "type": "A",
                "new": True,
                "lego": {"known": "words taught so far", "target": vocabulary},
            }
        ],
    }
    lego_pairs = {"seeds": [earlier, *given["seeds"]]}
    ids = [before, *(s["seed_id"] for s in given["seeds"])]
    context, batches = _context(
        workspace,
        phase,
        f"ex{number}_{target}_for_eng",
        ids,
        1,
        {},
        {"lego_pairs.json": lego_pairs},
        target=target,
        target_name=name,
    )
    issues = _judge(context, batches, {"baskets": baskets})
    shown = set(baskets)  # an example may show some baskets only: the others are not missing
    return [i for i in issues if not (i.rule == "basket-keys" and i.lego_id not in shown)]


def test_phase5_examples_pass(workspace: Workspace) -> None:
    pairs = _phase5_pairs()
    assert len(pairs) == 4  # the output contract, 9.1 Italian, 9.2 Chinese, 9.3 a whole answer
    for number, (given, baskets) in enumerate(pairs):
        issues = _phase5_issues(workspace, number, given, baskets)
        # S0041 is past S0010, so a basket shown with fewer than 10 phrases may warn; the
        # output contract is shape only
        assert [i for i in issues if i.rule != "phrase-count-low" or number == 3] == [], number


# --- the counts the examples state are the real counts -------------------------------------------


def test_phase5_stated_lengths_are_the_real_lengths() -> None:
    text = (INTELLIGENCE / "phase5.md").read_text("utf-8")
    stated = re.findall(r"Target lengths[^:]*: ([\d, ]+)", text)
    baskets = [b for _, b in _phase5_pairs()[1:3]]
    assert len(stated) == len(baskets) == 2
    for line, basket in zip(stated, baskets, strict=True):
        phrases = next(iter(basket.values()))["practice_phrases"]
        real = [len(tokens(p["target"])) for p in phrases]
        assert [int(n) for n in line.split(", ")] == real


def test_phase3_stated_token_counts_are_the_real_counts() -> None:
    text = (INTELLIGENCE / "phase3.md").read_text("utf-8")
    targets = {
        s["seed_id"]: s["seed_pair"]["target"]
        for given, _ in _phase3_pairs()
        for s in given["seeds"]
    }
    found = re.findall(r"- (S\d{4}) `([^`]+)` \((\d+)", text)
    assert len(found) == 8
    for seed_id, spelled, count in found:
        assert (
            len(spelled.split())
            == int(count)
            == len(tokens(next(t for s, t in _all_targets() if s == seed_id and _same(t, spelled))))
        ), seed_id
    assert set(targets) >= {s for s, _, _ in found}


def _all_targets() -> list[tuple[str, str]]:
    return [
        (s["seed_id"], s["seed_pair"]["target"]) for g, _ in _phase3_pairs() for s in g["seeds"]
    ]


def _same(target: str, spelled: str) -> bool:
    return tokens(target) == tuple(spelled.split())


def test_examples_folder_is_the_repositorys() -> None:
    assert Path(INTELLIGENCE).is_dir()
