"""`freshbatch init` and `freshbatch new`: what they write, and every refusal writing nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from freshbatch import cli
from freshbatch.languages import LANGUAGE_NAMES
from freshbatch.phases import load_phases
from freshbatch.workspace import Settings, Workspace, find_workspace, parse_settings
from tests.bad_input_support import snapshot
from tests.conftest import DEMO, REPO, write_json

SEEDS = [{"seed_id": f"S{i:04d}", "canonical_id": f"C{i:04d}", "source": f"Seed {i}."} for i in
         range(1, 31)]  # fmt: skip


def refused(argv: list[str], where: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run argv; assert exit 2, one stderr line, and no change at all under `where`."""
    before = snapshot(where) if where.exists() else None
    code = cli.main(argv)
    err = capsys.readouterr().err.splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert (snapshot(where) if where.exists() else None) == before, "nothing is written"
    return err[0]


# --- init ----------------------------------------------------------------------------------------


def test_init_makes_an_empty_folder_a_workspace(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert cli.main(["init", str(root)]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["README.md", "courses", "freshbatch.yaml"]
    text = (root / "freshbatch.yaml").read_text("utf-8")
    for key in ("model:", "concurrency:", "max_consecutive_pauses:", "prices:"):
        assert f"# {key}" in text, key
    assert parse_settings(yaml.safe_load(text), "freshbatch.yaml") == Settings()
    assert find_workspace(root).root == root.resolve()
    assert sorted(load_phases(Workspace(root))) == [1, 3, 5]


def test_init_defaults_to_the_current_folder_and_keeps_an_existing_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "README.md").write_text("ours\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init"]) == 0
    assert (tmp_path / "README.md").read_text("utf-8") == "ours\n"
    assert "kept README.md" in capsys.readouterr().out
    assert (tmp_path / "freshbatch.yaml").is_file() and (tmp_path / "courses").is_dir()


def test_init_demo_writes_the_demo_course_with_its_recordings_only(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert cli.main(["init", str(root), "--demo"]) == 0
    shipped = REPO / "courses" / DEMO
    written = root / "courses" / DEMO
    names = sorted(str(p.relative_to(written)) for p in written.rglob("*") if p.is_file())
    assert "course.yaml" in names and "canonical_seeds.json" in names
    assert sum(n.startswith("recordings/") for n in names) == 11
    assert not any(n.endswith(("seed_pairs.json", "lego_pairs.json")) for n in names)
    for name in names:
        assert (written / name).read_bytes() == (shipped / name).read_bytes(), name


def test_init_phases_copies_the_built_in_phase_files_for_editing(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert cli.main(["init", str(root), "--phases"]) == 0
    for name in ("intelligence/phase3.md", "validators/phase5/phase.yaml"):
        assert (root / name).read_bytes() == (REPO / name).read_bytes()
    phases = load_phases(Workspace(root))
    assert all(o.startswith("workspace ") for p in phases.values() for _, o in p.sources)


def existing(rel: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("keep me\n", "utf-8")

    return make


INIT_REFUSALS = [
    ("freshbatch-yaml-exists", existing("freshbatch.yaml"), [], "freshbatch.yaml: already exists"),
    ("demo-course-exists", existing(f"courses/{DEMO}/notes.txt"), ["--demo"], DEMO),
    ("phase-file-exists", existing("intelligence/phase1.md"), ["--phases"], "phase1.md"),
    ("courses-is-a-file", existing("courses"), [], "courses: a file stands"),
]


@pytest.mark.parametrize(
    ("make", "flags", "names"), [c[1:] for c in INIT_REFUSALS], ids=[c[0] for c in INIT_REFUSALS]
)
def test_init_refuses_to_overwrite(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    flags: list[str],
    names: str,
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    make(root)
    assert names in refused(["init", str(root), *flags], root, capsys)


def test_init_refuses_a_file_where_the_folder_belongs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ws").write_text("a file\n", "utf-8")
    assert "a file stands" in refused(["init", str(tmp_path / "ws")], tmp_path, capsys)


# --- new -----------------------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert cli.main(["init", str(root)]) == 0
    write_json(tmp_path / "seeds.json", SEEDS)
    return root


def new(root: Path, *args: str) -> list[str]:
    return ["--root", str(root), "new", *args]


def test_new_writes_a_checked_course_and_a_copy_of_the_seeds(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = ws.parent / "seeds.json"
    argv = new(ws, "fra_for_eng", "--target", "fra", "--known", "eng", "--seeds", str(seeds),
               "--range", "1-25", "--batch-size", "10", "--model", "claude-opus-4-8")  # fmt: skip
    assert cli.main(argv) == 0
    folder = ws / "courses" / "fra_for_eng"
    config = yaml.safe_load((folder / "course.yaml").read_text("utf-8"))
    assert config == {
        "code": "fra_for_eng", "target": "fra", "known": "eng", "target_name": "French",
        "known_name": "English", "seeds": "canonical_seeds.json", "seed_range": [1, 25],
        "batch_size": 10, "model": "claude-opus-4-8",
    }  # fmt: skip
    assert (folder / "canonical_seeds.json").read_bytes() == seeds.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["canonical_seeds.json", "course.yaml"]
    assert not [p for p in (ws / "courses").iterdir() if p.name.startswith(".")]
    capsys.readouterr()
    assert cli.main(["--root", str(ws), "run", "phase1", "fra_for_eng", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would run") == 3


def test_new_takes_names_for_codes_it_does_not_know(ws: Path) -> None:
    seeds = str(ws.parent / "seeds.json")
    argv = new(ws, "gsw_for_deu", "--target", "gsw", "--target-name", "Swiss German",
               "--known", "deu", "--known-name", "Hochdeutsch", "--seeds", seeds)  # fmt: skip
    assert cli.main(argv) == 0
    config = yaml.safe_load((ws / "courses/gsw_for_deu/course.yaml").read_text("utf-8"))
    assert (config["target_name"], config["known_name"]) == ("Swiss German", "Hochdeutsch")


def test_the_language_table_names_at_least_forty_languages() -> None:
    assert len(LANGUAGE_NAMES) >= 40
    for code in ("spa", "fra", "deu", "ita", "por", "cmn", "jpn", "kor", "ara", "rus", "hin"):
        assert code in LANGUAGE_NAMES


def bad_seeds(content: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / "bad.json").write_text(content, "utf-8")
        return tmp / "bad.json"

    return make


def good_seeds(tmp: Path) -> Path:
    return tmp / "seeds.json"


NEW_REFUSALS = [
    ("unknown-target", ["x_for_eng", "--target", "xyz", "--known", "eng"], good_seeds, "'xyz'"),
    ("unknown-known", ["ita_for_x", "--target", "ita", "--known", "qqq"], good_seeds, "'qqq'"),
    ("malformed-code", ["ita", "--target", "it", "--known", "eng"], good_seeds, "'it'"),
    ("bad-course-code", ["Ita-Eng", "--target", "ita", "--known", "eng"], good_seeds, "Ita-Eng"),
    ("empty-name", ["c", "--target", "ita", "--target-name", " ", "--known", "eng"], good_seeds,
     "--target-name"),
    ("seeds-missing", ["c", "--target", "ita", "--known", "eng"],
     lambda tmp: tmp / "nowhere.json", "nowhere.json"),
    ("seeds-not-json", ["c", "--target", "ita", "--known", "eng"], bad_seeds("[{"), "bad.json"),
    ("seeds-not-a-list", ["c", "--target", "ita", "--known", "eng"], bad_seeds('{"a": 1}'),
     "bad.json"),
    ("seeds-no-id", ["c", "--target", "ita", "--known", "eng"],
     bad_seeds('[{"source": "Hi."}]'), "seed_id"),
    ("range-past-the-seeds", ["c", "--target", "ita", "--known", "eng", "--range", "1-99"],
     good_seeds, "seed_range"),
    ("range-malformed", ["c", "--target", "ita", "--known", "eng", "--range", "7"], good_seeds,
     "--range"),
    ("range-reversed", ["c", "--target", "ita", "--known", "eng", "--range", "9-3"], good_seeds,
     "ends before it starts"),
    ("batch-size-zero", ["c", "--target", "ita", "--known", "eng", "--batch-size", "0"],
     good_seeds, "batch_size"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "seeds", "names"), [c[1:] for c in NEW_REFUSALS], ids=[c[0] for c in NEW_REFUSALS]
)
def test_new_refuses_bad_input_and_writes_nothing(
    ws: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    seeds: Callable[[Path], Path],
    names: str,
) -> None:
    path = seeds(ws.parent)
    assert names in refused(new(ws, *args, "--seeds", str(path)), ws, capsys)


def test_new_refuses_an_existing_course(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seeds = str(ws.parent / "seeds.json")
    assert (
        cli.main(new(ws, "ita_for_eng", "--target", "ita", "--known", "eng", "--seeds", seeds)) == 0
    )
    (ws / "courses" / "other").mkdir()  # a folder without course.yaml is in the way too
    for code in ("ita_for_eng", "other"):
        argv = new(ws, code, "--target", "ita", "--known", "eng", "--seeds", seeds)
        assert "already exists" in refused(argv, ws, capsys)


def test_new_outside_any_workspace_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    write_json(tmp_path / "seeds.json", SEEDS)
    monkeypatch.chdir(tmp_path / "empty")
    argv = [
        "new",
        "c",
        "--target",
        "ita",
        "--known",
        "eng",
        "--seeds",
        str(tmp_path / "seeds.json"),
    ]
    assert "freshbatch init" in refused(argv, tmp_path, capsys)
    assert json.loads((tmp_path / "seeds.json").read_text("utf-8")) == SEEDS
