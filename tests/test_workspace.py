"""Workspace discovery, course.yaml checks, canonical seeds, and the batch plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_course, write_json

from freshbatch.batching import parse_batch_selection, plan_batches
from freshbatch.errors import InputError
from freshbatch.workspace import Workspace, find_workspace

VALID = {
    "code": "spa_for_eng",
    "target": "spa",
    "known": "eng",
    "target_name": "Spanish",
    "known_name": "English",
    "seeds": "seeds.json",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A bare workspace (intelligence/ and courses/ only): course.yaml checks need no phases."""
    return Workspace(make_root(tmp_path / "ws"))


def make_root(folder: Path) -> Path:
    (folder / "intelligence").mkdir(parents=True)
    (folder / "courses").mkdir()
    return folder


def write_course(
    workspace: Workspace, config: Any, code: str = "spa_for_eng", seeds: Any = None
) -> Path:
    folder = workspace.courses_dir / code
    folder.mkdir(parents=True)
    (folder / "course.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    if seeds is None:
        seeds = [
            {"seed_id": f"S{i:04d}", "canonical_id": f"C{i:04d}", "source": f"Sentence {i}."}
            for i in range(1, 6)
        ]
    if seeds is not False:
        write_json(folder / "seeds.json", seeds)
    return folder


def assert_one_line_input_error(exc: pytest.ExceptionInfo[InputError], *fragments: str) -> None:
    message = str(exc.value)
    assert exc.value.exit_code == 2
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --- root discovery ------------------------------------------------------------------------------


def test_root_flag_finds_the_workspace(tmp_path: Path) -> None:
    root = make_root(tmp_path / "ws")
    assert find_workspace(root).root == root.resolve()
    assert find_workspace(str(root)).root == root.resolve()


def test_root_flag_on_a_plain_folder_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError) as exc:
        find_workspace(tmp_path / "plain")
    assert_one_line_input_error(exc, "plain", "not a freshbatch workspace")


def test_environment_variable_names_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path / "envroot")
    monkeypatch.setenv("FRESHBATCH_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    assert find_workspace().root == root.resolve()


def test_root_flag_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = make_root(tmp_path / "flag")
    env = make_root(tmp_path / "env")
    monkeypatch.setenv("FRESHBATCH_ROOT", str(env))
    assert find_workspace(flag).root == flag.resolve()


def test_environment_wins_over_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_root(tmp_path / "env")
    here = make_root(tmp_path / "here")
    monkeypatch.setenv("FRESHBATCH_ROOT", str(env))
    monkeypatch.chdir(here)
    assert find_workspace().root == env.resolve()


def test_environment_naming_a_non_workspace_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRESHBATCH_ROOT", str(tmp_path / "missing"))
    with pytest.raises(InputError) as exc:
        find_workspace()
    assert_one_line_input_error(exc, "missing", "not a freshbatch workspace")


def test_nearest_ancestor_from_a_nested_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = make_root(tmp_path / "outer")
    inner = make_root(outer / "courses" / "nested_ws")
    deep = inner / "courses" / "x" / "y"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_workspace().root == inner.resolve()  # the nearest, not the outer one
    monkeypatch.chdir(outer / "intelligence")
    assert find_workspace().root == outer.resolve()


def test_a_folder_with_only_courses_or_only_freshbatch_yaml_is_a_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = make_root(tmp_path / "outer")
    half = outer / "half"
    (half / "courses").mkdir(parents=True)
    monkeypatch.chdir(half)
    assert find_workspace().root == half.resolve()
    settings_only = outer / "settings_only"
    settings_only.mkdir()
    (settings_only / "freshbatch.yaml").write_text("concurrency: 2\n", "utf-8")
    monkeypatch.chdir(settings_only)
    assert find_workspace().root == settings_only.resolve()


def test_a_folder_with_only_intelligence_is_not_a_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = make_root(tmp_path / "outer")
    (outer / "half" / "intelligence").mkdir(parents=True)
    monkeypatch.chdir(outer / "half")
    assert find_workspace().root == outer.resolve()


def test_no_workspace_anywhere_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lonely = tmp_path / "a" / "b"
    lonely.mkdir(parents=True)
    monkeypatch.chdir(lonely)
    with pytest.raises(InputError) as exc:
        find_workspace()
    assert_one_line_input_error(exc, "no freshbatch workspace", "--root", "FRESHBATCH_ROOT")


# --- course.yaml ---------------------------------------------------------------------------------


def test_valid_course_loads_with_defaults(workspace: Workspace) -> None:
    folder = write_course(workspace, VALID)
    course = workspace.load_course("spa_for_eng")
    assert (course.code, course.target, course.known) == ("spa_for_eng", "spa", "eng")
    assert course.batch_size == 20
    assert course.seed_range is None
    assert course.rules == {}
    assert course.model is None
    assert course.seeds_path == folder / "seeds.json"
    assert len(course.load_seeds()) == 5


def test_all_optional_fields_are_read(workspace: Workspace, tmp_path: Path) -> None:
    absolute = write_json(
        tmp_path / "elsewhere.json",
        [{"seed_id": "S0001", "canonical_id": "C0001", "source": "Hi."}],
    )
    config = {
        **VALID,
        "seeds": str(absolute),
        "seed_range": [1, 1],
        "batch_size": 7,
        "model": "claude-x",
        "rules": {"new-flag": "error", "phrase-growth": "off"},
    }
    write_course(workspace, config)
    course = workspace.load_course("spa_for_eng")
    assert course.seeds_path == absolute
    assert (course.seed_range, course.batch_size, course.model) == ((1, 1), 7, "claude-x")
    assert course.rules == {"new-flag": "error", "phrase-growth": "off"}


BAD_CONFIGS = [
    ("code-int", {**VALID, "code": 5}, "code must be a non-empty string"),
    ("code-empty", {**VALID, "code": ""}, "code must be a non-empty string"),
    (
        "code-not-folder",
        {**VALID, "code": "ita_for_eng"},
        "must equal the folder name 'spa_for_eng'",
    ),
    ("code-bad-chars", {**VALID, "code": "Spa-for-eng"}, "code 'Spa-for-eng' must use only a-z"),
    ("code-space", {**VALID, "code": "spa for eng"}, "must use only a-z, 0-9 and _"),
    ("target-name-not-iso", {**VALID, "target": "Spanish"}, "target 'Spanish' is not an ISO 639-3"),
    ("target-two-letters", {**VALID, "target": "es"}, "target 'es' is not an ISO 639-3"),
    ("target-upper", {**VALID, "target": "SPA"}, "target 'SPA'"),
    ("target-list", {**VALID, "target": ["spa"]}, "target must be a non-empty string"),
    ("known-int", {**VALID, "known": 3}, "known must be a non-empty string"),
    ("known-four", {**VALID, "known": "engl"}, "known 'engl' is not an ISO 639-3"),
    ("target-name-blank", {**VALID, "target_name": "  "}, "target_name must be a non-empty string"),
    ("known-name-none", {**VALID, "known_name": None}, "known_name must be a non-empty string"),
    ("seeds-int", {**VALID, "seeds": 1}, "seeds must be a non-empty string"),
    ("model-int", {**VALID, "model": 4}, "model must be a non-empty string"),
    ("unknown-key", {**VALID, "batchsize": 20}, "unknown key 'batchsize'"),
    (
        "missing-code",
        {k: v for k, v in VALID.items() if k != "code"},
        "missing required key 'code'",
    ),
    (
        "missing-target",
        {k: v for k, v in VALID.items() if k != "target"},
        "missing required key 'target'",
    ),
    (
        "missing-seeds",
        {k: v for k, v in VALID.items() if k != "seeds"},
        "missing required key 'seeds'",
    ),
    (
        "missing-target-name",
        {k: v for k, v in VALID.items() if k != "target_name"},
        "missing required key 'target_name'",
    ),
    (
        "batch-size-zero",
        {**VALID, "batch_size": 0},
        "batch_size is 0; it must be between 1 and 1000",
    ),
    ("batch-size-huge", {**VALID, "batch_size": 1001}, "batch_size is 1001"),
    (
        "batch-size-string",
        {**VALID, "batch_size": "20"},
        "batch_size must be a whole number, got '20'",
    ),
    (
        "batch-size-true",
        {**VALID, "batch_size": True},
        "batch_size must be a whole number, got True",
    ),
    ("batch-size-float", {**VALID, "batch_size": 2.5}, "batch_size must be a whole number"),
    ("seed-range-string", {**VALID, "seed_range": "1-10"}, "seed_range must be [first, last]"),
    ("seed-range-one", {**VALID, "seed_range": [1]}, "seed_range must be [first, last]"),
    ("seed-range-three", {**VALID, "seed_range": [1, 2, 3]}, "seed_range must be [first, last]"),
    (
        "seed-range-reversed",
        {**VALID, "seed_range": [5, 2]},
        "seed_range [5, 2] ends before it starts",
    ),
    ("seed-range-zero", {**VALID, "seed_range": [0, 2]}, "seed_range[0] is 0"),
    ("seed-range-bool", {**VALID, "seed_range": [1, True]}, "seed_range[1] must be a whole number"),
    ("seed-range-text", {**VALID, "seed_range": ["1", 2]}, "seed_range[0] must be a whole number"),
    ("rules-list", {**VALID, "rules": ["new-flag"]}, "rules must map rule names"),
    (
        "rules-bad-severity",
        {**VALID, "rules": {"new-flag": "fatal"}},
        "rules.new-flag is 'fatal'; use one of error, warning, off",
    ),
    ("rules-severity-int", {**VALID, "rules": {"new-flag": 1}}, "rules.new-flag is 1"),
    ("not-a-mapping", ["code", "spa_for_eng"], "expected a mapping of settings, got list"),
]


@pytest.mark.parametrize(
    ("config", "fragment"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_course_yaml_is_a_one_line_input_error(
    workspace: Workspace, config: Any, fragment: str
) -> None:
    write_course(workspace, config)
    with pytest.raises(InputError) as exc:
        workspace.load_course("spa_for_eng")
    assert_one_line_input_error(exc, "course.yaml", fragment)


def test_invalid_yaml_names_the_file_and_line(workspace: Workspace) -> None:
    folder = workspace.courses_dir / "spa_for_eng"
    folder.mkdir()
    (folder / "course.yaml").write_text("code: spa_for_eng\ntarget: [spa\n", "utf-8")
    with pytest.raises(InputError) as exc:
        workspace.load_course("spa_for_eng")
    assert_one_line_input_error(exc, "course.yaml", "invalid YAML at line")


def test_unknown_course_names_the_missing_course_yaml(workspace: Workspace) -> None:
    write_course(workspace, VALID)
    with pytest.raises(InputError) as exc:
        workspace.load_course("ita_for_eng")
    assert_one_line_input_error(exc, "ita_for_eng", "course.yaml", "no such course", "spa_for_eng")


def test_course_code_argument_with_bad_characters(workspace: Workspace) -> None:
    with pytest.raises(InputError) as exc:
        workspace.load_course("../etc")
    assert_one_line_input_error(exc, "'../etc'", "lower-case letters, digits and _")


def test_course_codes_lists_only_folders_with_course_yaml(workspace: Workspace) -> None:
    write_course(workspace, VALID)
    (workspace.courses_dir / "junk").mkdir()
    assert workspace.course_codes() == ["spa_for_eng"]


# --- the seeds file ------------------------------------------------------------------------------


def load_seeds_error(
    workspace: Workspace, seeds: Any, raw: str | None = None, **extra: Any
) -> pytest.ExceptionInfo[InputError]:
    folder = write_course(workspace, {**VALID, **extra}, seeds=False if raw is not None else seeds)
    if raw is not None:
        (folder / "seeds.json").write_text(raw, "utf-8")
    course = workspace.load_course("spa_for_eng")
    with pytest.raises(InputError) as exc:
        course.load_seeds()
    return exc


def test_seeds_file_missing(workspace: Workspace) -> None:
    write_course(workspace, VALID, seeds=False)
    course = workspace.load_course("spa_for_eng")
    with pytest.raises(InputError) as exc:
        course.load_seeds()
    assert_one_line_input_error(exc, "seeds.json", "file not found")


def test_seeds_file_invalid_json(workspace: Workspace) -> None:
    exc = load_seeds_error(workspace, None, raw='[{"seed_id": "S0001",\n "source": }]')
    assert_one_line_input_error(exc, "seeds.json", "invalid JSON at line 2")


def test_seeds_file_not_an_array(workspace: Workspace) -> None:
    exc = load_seeds_error(workspace, {"S0001": "Hi."})
    assert_one_line_input_error(exc, "seeds.json", "non-empty JSON array")


def test_seeds_file_empty_array(workspace: Workspace) -> None:
    exc = load_seeds_error(workspace, [])
    assert_one_line_input_error(exc, "seeds.json", "non-empty JSON array")


def test_seeds_file_duplicate_ids(workspace: Workspace) -> None:
    seeds = [
        {"seed_id": "S0001", "source": "One."},
        {"seed_id": "S0002", "source": "Two."},
        {"seed_id": "S0002", "source": "Again."},
    ]
    exc = load_seeds_error(workspace, seeds)
    assert_one_line_input_error(exc, "seeds.json", "seed_id S0002 appears twice")


def test_seeds_file_bad_id(workspace: Workspace) -> None:
    exc = load_seeds_error(workspace, [{"seed_id": "S1", "source": "One."}])
    assert_one_line_input_error(exc, "seeds.json", "item 0 has no seed_id like S0001")


def test_seeds_file_item_not_an_object(workspace: Workspace) -> None:
    exc = load_seeds_error(workspace, [{"seed_id": "S0001", "source": "One."}, "S0002"])
    assert_one_line_input_error(exc, "seeds.json", "item 1 is not an object")


def test_seeds_file_missing_source(workspace: Workspace) -> None:
    exc = load_seeds_error(workspace, [{"seed_id": "S0001", "source": " "}])
    assert_one_line_input_error(exc, "seeds.json", "S0001 has no source sentence")


def test_seed_range_beyond_the_file_names_both_files(workspace: Workspace) -> None:
    exc = load_seeds_error(workspace, None, seed_range=[2, 9])
    assert_one_line_input_error(
        exc, "course.yaml", "seeds.json", "seed_range ends at 9", "holds 5 seeds"
    )


def test_seed_range_cuts_the_seed_list(workspace: Workspace) -> None:
    write_course(workspace, {**VALID, "seed_range": [2, 4]})
    seeds = workspace.load_course("spa_for_eng").load_seeds()
    assert [s.seed_id for s in seeds] == ["S0002", "S0003", "S0004"]
    assert seeds[0].canonical_id == "C0002"
    assert seeds[0].source == "Sentence 2."


def test_make_course_fixture_round_trips(workspace: Workspace) -> None:
    make_course(workspace, "ita_for_eng", ["Hello {target}."], target="ita", target_name="Italian")
    course = workspace.load_course("ita_for_eng")
    assert course.target_name == "Italian"
    assert json.loads(course.seeds_path.read_text("utf-8"))[0]["source"] == "Hello {target}."


# --- batching ------------------------------------------------------------------------------------

IDS_668 = [f"S{i:04d}" for i in range(1, 669)]


def test_668_seeds_in_batches_of_20() -> None:
    plan = plan_batches(IDS_668, 20)
    assert len(plan) == 34
    last = plan.batch(34)
    assert len(last.seed_ids) == 8
    assert last.seed_ids == tuple(f"S{i:04d}" for i in range(661, 669))
    assert last.label == "S0661-S0668"
    assert all(len(b.seed_ids) == 20 for b in plan.batches[:33])


def test_batch_k_covers_the_spec_range() -> None:
    plan = plan_batches(IDS_668, 20)
    for k in range(1, 35):
        first, last = 20 * (k - 1) + 1, min(20 * k, 668)
        assert plan.batch(k).seed_ids == tuple(f"S{i:04d}" for i in range(first, last + 1))


def test_batch_of_and_position() -> None:
    plan = plan_batches(IDS_668, 20)
    assert plan.batch_of("S0001") == 1
    assert plan.batch_of("S0020") == 1
    assert plan.batch_of("S0021") == 2
    assert plan.batch_of("S0660") == 33
    assert plan.batch_of("S0661") == 34
    assert plan.batch_of("S0669") is None
    assert plan.position("S0001") == 0
    assert plan.position("S0668") == 667
    assert plan.position("S9999") is None
    assert plan.seed_ids == tuple(IDS_668)


def test_batch_number_out_of_range() -> None:
    plan = plan_batches(IDS_668, 20)
    with pytest.raises(IndexError):
        plan.batch(0)
    with pytest.raises(IndexError):
        plan.batch(35)


def test_plan_on_a_seed_range_starts_at_the_range() -> None:
    plan = plan_batches([f"S{i:04d}" for i in range(101, 106)], 2)
    assert [b.seed_ids for b in plan] == [("S0101", "S0102"), ("S0103", "S0104"), ("S0105",)]
    assert plan.batch_of("S0105") == 3
    assert plan.position("S0101") == 0


def test_course_plan_uses_batch_size_and_seed_range(workspace: Workspace) -> None:
    write_course(workspace, {**VALID, "seed_range": [2, 5], "batch_size": 3})
    plan = workspace.load_course("spa_for_eng").plan()
    assert [b.label for b in plan] == ["S0002-S0004", "S0005-S0005"]


def test_batch_size_zero_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_batches(IDS_668, 0)


def test_parse_batch_selection() -> None:
    assert parse_batch_selection("3,7-9", 34) == [3, 7, 8, 9]
    assert parse_batch_selection(" 7-9 ,3,3", 34) == [3, 7, 8, 9]
    assert parse_batch_selection("34", 34) == [34]
    assert parse_batch_selection("1-34", 34) == list(range(1, 35))


@pytest.mark.parametrize("text", ["0", "35", "9-7", "x", "", "-3", ",", "3-40", "2-x"])
def test_parse_batch_selection_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_batch_selection(text, 34)
