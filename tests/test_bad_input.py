"""Bad input never costs data or shows a traceback (one table, one fixture course).

Every case starts from the same course folder: batches 1-3 of every phase merged, phase 1
batch 5 staged, progress, events, plan and transcripts present. A case breaks one thing,
runs one command in-process, and checks the exit code, that stderr is exactly one line
naming the file, and that every file and folder of the course is as it was (SHA-256, mode,
link target). A run that got past its checks would call the replay provider, which has no
recordings here, so it would write state and exit 3: the snapshot catches it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from freshbatch import cli
from tests.bad_input_support import build_course, snapshot
from tests.conftest import DEMO

Mutate = Callable[[Path, Path], None]  # (course folder, workspace root)
NOBODY = 65534


def run1(*extra: str) -> list[str]:
    return ["run", "phase1", DEMO, "--provider", "replay", "--replay-dir", "/nonexistent", *extra]


RUN1 = run1()
RUN_ALL = ["run", "all", DEMO, "--provider", "replay", "--replay-dir", "/nonexistent"]


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutate
    expect: int = 2
    names: str | None = None  # what the one stderr line must name; None: no stderr at all
    argv: tuple[str, ...] = tuple(RUN1)
    as_nobody: bool = False


# --- mutations ----------------------------------------------------------------------------


def write(rel: str, content: str | bytes) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        path = (root if rel.startswith("/") else folder) / rel.lstrip("/")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(data)

    return apply


def edit_json(rel: str, change: Callable[[Any], Any]) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        path = folder / rel
        doc = json.loads(path.read_text("utf-8"))
        path.write_text(json.dumps(change(doc), ensure_ascii=False, indent=2), "utf-8")

    return apply


def edit_course(**fields: Any) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        path = folder / "course.yaml"
        config = yaml.safe_load(path.read_text("utf-8"))
        for name, value in fields.items():
            if value is None:
                config.pop(name, None)
            else:
                config[name] = value
        path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")

    return apply


def loop(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        path = folder / rel
        path.unlink()
        path.symlink_to(path.name)  # points at itself

    return apply


def dangling(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        path = (root if rel.startswith("/") else folder) / rel.lstrip("/")
        path.unlink()
        path.symlink_to("missing-elsewhere.json")

    return apply


def to_folder(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        (folder / rel).unlink()
        (folder / rel).mkdir()

    return apply


def remove(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        path = (root if rel.startswith("/") else folder) / rel.lstrip("/")
        path.unlink()

    return apply


def truncate(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        data = (folder / rel).read_bytes()
        (folder / rel).write_bytes(data[: len(data) // 2])

    return apply


def bom(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        (folder / rel).write_bytes(b"\xef\xbb\xbf" + (folder / rel).read_bytes())

    return apply


def both(*steps: Mutate) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        for step in steps:
            step(folder, root)

    return apply


def rename_intelligence(phase: str, name: str) -> Mutate:
    """The workspace's phase.yaml names an intelligence file neither it nor the package has."""

    def apply(folder: Path, root: Path) -> None:
        path = root / "validators" / phase / "phase.yaml"
        config = yaml.safe_load(path.read_text("utf-8"))
        config["intelligence"] = name
        path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")

    return apply


def nothing(folder: Path, root: Path) -> None:
    return None


def seeds_with(change: Callable[[list[Any]], list[Any]]) -> Callable[[Any], Any]:
    def apply(doc: Any) -> Any:
        doc["seeds"] = change(doc["seeds"])
        return doc

    return apply


def swap_two(seeds: list[Any]) -> list[Any]:
    seeds[3], seeds[4] = seeds[4], seeds[3]
    return seeds


def foreign_seed(seeds: list[Any]) -> list[Any]:
    extra = json.loads(json.dumps(seeds[-1]).replace(seeds[-1]["seed_id"], "S0999"))
    return [*seeds, extra]


def translations_with(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], Any]:
    def apply(doc: Any) -> Any:
        doc["translations"] = change(doc["translations"])
        return doc

    return apply


def drop_last(items: dict[str, Any]) -> dict[str, Any]:
    return dict(list(items.items())[:-1])


def reorder(items: dict[str, Any]) -> dict[str, Any]:
    pairs = list(items.items())
    pairs[0], pairs[1] = pairs[1], pairs[0]
    return dict(pairs)


def foreign_basket(doc: Any) -> Any:
    first = next(iter(doc["baskets"].values()))
    doc["baskets"]["S0999L01"] = first
    return doc


def duplicate_seed(raw: list[Any]) -> list[Any]:
    raw[1] = dict(raw[1], seed_id=raw[0]["seed_id"])
    return raw


def hold_lock(folder: Path, root: Path) -> None:
    handle = (folder / ".freshbatch" / "run.lock").open("a")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    HELD.append(handle)  # released after the case


HELD: list[Any] = []


def state_is_file(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        path = folder / ".freshbatch" / rel
        shutil.rmtree(path)
        path.write_text("not a folder\n", "utf-8")

    return apply


def state_gone_file(folder: Path, root: Path) -> None:
    shutil.rmtree(folder / ".freshbatch")
    (folder / ".freshbatch").write_text("a file\n", "utf-8")


def owned_by_nobody(folder: Path, root: Path) -> None:
    for top, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.lchown(Path(top) / name, NOBODY, NOBODY)
    os.chown(folder, NOBODY, NOBODY)


def read_only_folder(folder: Path, root: Path) -> None:
    owned_by_nobody(folder, root)
    folder.chmod(0o555)


def unreadable(rel: str) -> Mutate:
    def apply(folder: Path, root: Path) -> None:
        owned_by_nobody(folder, root)
        os.chown(folder / rel, 0, 0)
        (folder / rel).chmod(0o600)

    return apply


def closed_state(folder: Path, root: Path) -> None:
    owned_by_nobody(folder, root)
    os.chown(folder / ".freshbatch", 0, 0)
    (folder / ".freshbatch").chmod(0o700)


BIG = b"[" + b"7, " * (50 * 2**20 // 3)  # 50 MB, never closed

CASES = [
    # course.yaml
    Case("course-not-yaml", write("course.yaml", "code: [unclosed\n"), names="course.yaml"),
    Case("course-a-list", write("course.yaml", "- a\n- b\n"), names="course.yaml"),
    Case("course-empty", write("course.yaml", ""), names="course.yaml"),
    Case("course-binary", write("course.yaml", bytes(range(256))), names="course.yaml"),
    Case(
        "course-latin1",
        write("course.yaml", "code: caf\xe9\n".encode("latin-1")),
        names="course.yaml",
    ),  # fmt: skip
    Case("course-unknown-key", edit_course(colour="red"), names="course.yaml"),
    Case("course-code-not-folder", edit_course(code="other_course"), names="course.yaml"),
    Case("course-code-bad-chars", edit_course(code="Demo-Ita"), names="course.yaml"),
    Case("course-target-not-iso", edit_course(target="italian"), names="course.yaml"),
    Case("course-name-not-string", edit_course(target_name=7), names="course.yaml"),
    Case("course-seeds-key-missing", edit_course(seeds=None), names="course.yaml"),
    Case("batch-size-0", edit_course(batch_size=0), names="course.yaml"),
    Case("batch-size-negative", edit_course(batch_size=-5), names="course.yaml"),
    Case("batch-size-huge", edit_course(batch_size=10**9), names="course.yaml"),
    Case("batch-size-text", edit_course(batch_size="twenty"), names="course.yaml"),
    Case("batch-size-changed", edit_course(batch_size=10), names="course.yaml"),
    Case("seed-range-reversed", edit_course(seed_range=[10, 1]), names="course.yaml"),
    Case("seed-range-beyond", edit_course(seed_range=[1, 999]), names="course.yaml"),
    Case("seed-range-changed", edit_course(seed_range=[1, 40]), names="course.yaml"),
    Case("seed-range-shape", edit_course(seed_range="1-45"), names="course.yaml"),
    Case("rule-unknown", edit_course(rules={"no-such-rule": "off"}), names="course.yaml"),
    Case("rule-bad-severity", edit_course(rules={"placeholder": "loud"}), names="course.yaml"),
    Case("rule-schema-off", edit_course(rules={"schema": "off"}), names="course.yaml"),
    Case("course-symlink-loop", loop("course.yaml"), names="course.yaml"),
    Case("course-is-folder", to_folder("course.yaml"), names="course.yaml"),
    Case(
        "course-loop-status", loop("course.yaml"), names="course.yaml", argv=("status", DEMO)
    ),  # fmt: skip
    Case(
        "course-loop-validate",
        loop("course.yaml"),
        names="course.yaml",
        argv=("validate", "phase1", DEMO),
    ),  # fmt: skip
    # the seeds file
    Case("seeds-missing", remove("canonical_seeds.json"), names="canonical_seeds.json"),
    Case("seeds-not-json", write("canonical_seeds.json", "[{"), names="canonical_seeds.json"),
    Case(
        "seeds-not-utf8",
        write("canonical_seeds.json", b'["\xff\xfe"]'),
        names="canonical_seeds.json",
    ),  # fmt: skip
    Case("seeds-empty-file", write("canonical_seeds.json", ""), names="canonical_seeds.json"),
    Case("seeds-empty-list", write("canonical_seeds.json", "[]"), names="canonical_seeds.json"),
    Case(
        "seeds-wrong-shape",
        write("canonical_seeds.json", '{"S0001": "x"}'),
        names="canonical_seeds.json",
    ),  # fmt: skip
    Case(
        "seeds-duplicate-id",
        edit_json("canonical_seeds.json", duplicate_seed),
        names="canonical_seeds.json",
    ),  # fmt: skip
    Case("seeds-bom", bom("canonical_seeds.json"), names="canonical_seeds.json"),
    Case("seeds-symlink-loop", loop("canonical_seeds.json"), names="canonical_seeds.json"),
    Case(
        "seeds-loop-status",
        loop("canonical_seeds.json"),
        names="canonical_seeds.json",
        argv=("validate", "phase1", DEMO),
    ),  # fmt: skip
    # seed_pairs.json
    Case("pairs-truncated", truncate("seed_pairs.json"), names="seed_pairs.json"),
    Case("pairs-bom", bom("seed_pairs.json"), names="seed_pairs.json"),
    Case("pairs-a-list", write("seed_pairs.json", "[]"), names="seed_pairs.json"),
    Case("pairs-binary", write("seed_pairs.json", bytes(range(256)) * 4), names="seed_pairs.json"),
    Case("pairs-50mb", write("seed_pairs.json", BIG), names="seed_pairs.json"),
    Case(
        "pairs-partial-batch",
        edit_json("seed_pairs.json", translations_with(drop_last)),
        names="seed_pairs.json",
    ),  # fmt: skip
    Case(
        "pairs-out-of-order",
        edit_json("seed_pairs.json", translations_with(reorder)),
        names="seed_pairs.json",
    ),  # fmt: skip
    Case("pairs-symlink-loop", loop("seed_pairs.json"), names="seed_pairs.json"),
    Case("pairs-dangling-link", dangling("seed_pairs.json"), names="seed_pairs.json"),
    Case("pairs-is-folder", to_folder("seed_pairs.json"), names="seed_pairs.json"),
    Case(
        "pairs-missing-run-phase3",
        remove("seed_pairs.json"),
        names="seed_pairs.json",
        argv=("run", "phase3", DEMO, "--provider", "replay"),
    ),  # fmt: skip
    # lego_pairs.json
    Case("legos-symlink-loop", loop("lego_pairs.json"), names="lego_pairs.json"),
    Case(
        "legos-loop-batch-4",
        loop("lego_pairs.json"),
        names="lego_pairs.json",
        argv=("run", "phase3", DEMO, "--batches", "4", "--provider", "replay"),
    ),  # fmt: skip
    Case(
        "legos-loop-status",
        loop("lego_pairs.json"),
        names="lego_pairs.json",
        argv=("validate", "all", DEMO),
    ),  # fmt: skip
    Case(
        "legos-seeds-nope", write("lego_pairs.json", '{"seeds": "nope"}'), names="lego_pairs.json"
    ),  # fmt: skip
    Case(
        "legos-out-of-order",
        edit_json("lego_pairs.json", seeds_with(swap_two)),
        names="lego_pairs.json",
    ),  # fmt: skip
    Case(
        "legos-batch-twice",
        edit_json("lego_pairs.json", seeds_with(lambda s: s + s[10:15])),
        names="lego_pairs.json",
    ),  # fmt: skip
    Case(
        "legos-foreign-seed",
        edit_json("lego_pairs.json", seeds_with(foreign_seed)),
        names="lego_pairs.json",
    ),  # fmt: skip
    Case(
        "legos-partial-batch",
        edit_json("lego_pairs.json", seeds_with(lambda s: s[:-1])),
        names="lego_pairs.json",
    ),  # fmt: skip
    Case("legos-truncated", truncate("lego_pairs.json"), names="lego_pairs.json"),
    Case(
        "legos-out-of-order-run-all",
        edit_json("lego_pairs.json", seeds_with(swap_two)),
        names="lego_pairs.json",
        argv=tuple(RUN_ALL),
    ),  # fmt: skip
    # validate still reports on such a file in full (exit 1, no error line)
    Case(
        "legos-out-of-order-validate",
        edit_json("lego_pairs.json", seeds_with(swap_two)),
        expect=1,
        argv=("validate", "phase3", DEMO),
    ),  # fmt: skip
    Case(
        "legos-batch-twice-validate",
        edit_json("lego_pairs.json", seeds_with(lambda s: s + s[10:15])),
        expect=1,
        argv=("validate", "phase3", DEMO),
    ),  # fmt: skip
    # lego_baskets.json
    Case("baskets-not-json", write("lego_baskets.json", "{]"), names="lego_baskets.json"),
    Case(
        "baskets-foreign", edit_json("lego_baskets.json", foreign_basket), names="lego_baskets.json"
    ),  # fmt: skip
    # run state
    Case("state-is-a-file", state_gone_file, names=".freshbatch"),
    Case("transcripts-is-a-file", state_is_file("transcripts"), names="transcripts"),
    Case("staging-is-a-file", state_is_file("staging"), names="staging"),
    Case("plan-record-not-json", write(".freshbatch/plan.json", "{"), names="plan.json"),
    Case("plan-record-a-list", write(".freshbatch/plan.json", "[1]"), names="plan.json"),
    Case("lock-held", hold_lock, names="run.lock"),
    # run state that is derived, or a log: read gracefully, nothing refused or lost
    Case(
        "progress-corrupt-status",
        write(".freshbatch/progress.json", "{\x00"),
        expect=0,
        argv=("status", DEMO),
    ),  # fmt: skip
    Case(
        "events-garbage-status",
        write(".freshbatch/events.jsonl", b"\x00\xff{not json"),
        expect=0,
        argv=("status", DEMO),
    ),  # fmt: skip
    Case(
        "staged-corrupt-status",
        write(".freshbatch/staging/phase1/batch_005.json", "{"),
        expect=0,
        argv=("status", DEMO),
    ),  # fmt: skip
    # phase files
    Case(
        "phase-yaml-broken",
        write("/validators/phase1/phase.yaml", "phase: [\n"),
        names="phase.yaml",
    ),  # fmt: skip
    Case(
        "phase-yaml-unknown-key",
        write("/validators/phase3/phase.yaml", "colour: red\n"),
        names="phase.yaml",
    ),  # fmt: skip
    Case(
        "batch-schema-not-json",
        write("/validators/phase1/batch.schema.json", "{"),
        names="batch.schema.json",
    ),  # fmt: skip
    Case(
        "merged-schema-invalid",
        write("/validators/phase1/merged.schema.json", '{"type": 5}'),
        names="merged.schema.json",
    ),  # fmt: skip
    Case("intelligence-dangling", dangling("/intelligence/phase1.md"), names="phase1.md"),
    Case(
        "intelligence-missing-everywhere",
        both(remove("/intelligence/phase1.md"), rename_intelligence("phase1", "absent.md")),
        names="absent.md",
    ),  # fmt: skip
    Case(
        "workspace-settings-broken",
        write("/freshbatch.yaml", "model: [\n"),
        names="freshbatch.yaml",
    ),  # fmt: skip
    Case(
        "workspace-settings-bad-value",
        write("/freshbatch.yaml", "concurrency: -1\n"),
        names="freshbatch.yaml",
    ),  # fmt: skip
    # the command line
    Case(
        "unknown-phase",
        nothing,
        names="phase9",
        argv=("run", "phase9", DEMO, "--provider", "replay"),
    ),  # fmt: skip
    Case(
        "unknown-course",
        nothing,
        names="course.yaml",
        argv=("run", "phase1", "nope", "--provider", "replay"),
    ),  # fmt: skip
    Case(
        "bad-course-code",
        nothing,
        names="Bad-Code",
        argv=("run", "phase1", "Bad-Code", "--provider", "replay"),
    ),  # fmt: skip
    Case("batches-garbage", nothing, names="--batches", argv=tuple(run1("--batches", "x"))),
    Case("batches-beyond", nothing, names="--batches", argv=tuple(run1("--batches", "99"))),
    Case("concurrency-0", nothing, names="--concurrency", argv=tuple(run1("--concurrency", "0"))),
    Case(
        "max-attempts-0", nothing, names="--max-attempts", argv=tuple(run1("--max-attempts", "0"))
    ),  # fmt: skip
    Case(
        "provider-unknown",
        nothing,
        names="--provider",
        argv=("run", "phase1", DEMO, "--provider", "nope"),
    ),  # fmt: skip
    Case(
        "prompt-batch-beyond",
        nothing,
        names="--batch",
        argv=("prompt", "phase1", DEMO, "--batch", "99"),
    ),  # fmt: skip
    Case(
        "validate-file-missing",
        nothing,
        names="nowhere.json",
        argv=("validate", "phase1", DEMO, "--file", "/nowhere.json"),
    ),  # fmt: skip
    # permissions, for real: the command runs as nobody in a forked child
    Case("read-only-course-folder", read_only_folder, names=DEMO, as_nobody=True),
    Case(
        "merged-unreadable", unreadable("lego_pairs.json"), names="lego_pairs.json", as_nobody=True
    ),  # fmt: skip
    Case("state-folder-closed", closed_state, names=".freshbatch", as_nobody=True),
]


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory: pytest.TempPathFactory, demo_reference: Path) -> Path:
    root = tmp_path_factory.mktemp("bad_input") / "ws"
    root.mkdir()
    build_course(root, demo_reference)
    return root


@pytest.fixture
def case_root(fixture_root: Path) -> Iterator[Path]:
    """A copy of the fixture workspace in a folder nobody may traverse (for the nobody cases)."""
    base = Path(tempfile.mkdtemp(prefix="freshbatch-bad-"))
    base.chmod(0o755)
    root = base / "ws"
    shutil.copytree(fixture_root, root, symlinks=True)
    yield root
    for handle in HELD:
        handle.close()
    HELD.clear()
    for top, dirs, _ in os.walk(base):
        for name in dirs:
            os.chmod(Path(top) / name, 0o755)
    base.chmod(0o755)
    shutil.rmtree(base)


def run_as_nobody(argv: list[str]) -> tuple[int, str]:
    """cli.main in a forked child that dropped root for nobody; its code and stderr."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 99
        try:
            os.close(read_end)
            sys.stderr = os.fdopen(write_end, "w", encoding="utf-8")
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = cli.main(argv)
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        err = handle.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, case_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = case_root / "courses" / DEMO
    case.mutate(folder, case_root)
    before = snapshot(folder)
    argv = ["--root", str(case_root), *case.argv]
    if case.as_nobody:
        if os.geteuid() != 0:
            pytest.skip("needs root to drop to nobody (as a user, these folders are just yours)")
        code, err = run_as_nobody(argv)
    else:
        code = cli.main(argv)
        err = capsys.readouterr().err
    lines = err.splitlines()
    if case.names is None:
        assert lines == [], err
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ") and case.names in lines[0], lines[0]
    assert "Traceback" not in err
    assert code == case.expect, err
    assert snapshot(folder) == before, "a bad input must not change a single file"


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60
