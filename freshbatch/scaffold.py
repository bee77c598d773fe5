"""`freshbatch init` and `freshbatch new`: make a workspace and a course from nothing.

Both check everything before they write anything: a refusal is one InputError line and leaves
the disk as it was. A new course is written into a hidden folder first and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from freshbatch.builtin import (
    DEMO_COURSE,
    builtin_intelligence_dir,
    builtin_root,
    builtin_validators_dir,
    demo_course_dir,
    demo_course_files,
)
from freshbatch.errors import InputError, WriteError
from freshbatch.files import check_writable_dir, file_exists, problem, shown, umask
from freshbatch.languages import LANGUAGE_NAMES
from freshbatch.workspace import (
    COURSE_CODE,
    DEFAULT_MODEL,
    LANGUAGE_CODE,
    Workspace,
    load_canonical_seeds,
    parse_course,
)

SEEDS_FILE = "canonical_seeds.json"
SETTINGS_TEXT = f"""\
# freshbatch workspace settings. Every key is optional; each line shows its default.
# course.yaml and the command line override them.

# model: {DEFAULT_MODEL}        # default model (course.yaml `model:` and --model win)
# concurrency: 1                  # attempts in flight at once (--concurrency wins), 1..256
# max_consecutive_pauses: 10      # rate-limit pauses in a row before a run stops (exit 3)
# prices:                         # USD per million tokens; the longest model-name prefix wins
#   my-model: {{input: 3.0, output: 15.0}}  # also cache_write, cache_read, min_cache_tokens
# escalate:                       # later attempts on a stronger model (--escalate-model wins)
#   {{model: claude-opus-5-5, from_attempt: 3}}
# hooks:                          # commands run on run events, the event as JSON on stdin
#   - {{on: run:end, run: "notify-send freshbatch", timeout: 30}}  # shell: false unless set
"""
README_TEXT = """\
# A freshbatch workspace

- `freshbatch.yaml`: workspace defaults (every setting is listed there, commented out).
- `courses/<code>/`: one folder per course: `course.yaml`, its seeds, the merged outputs and
  `.freshbatch/` (run state). Make one with
  `freshbatch new my_course --target ita --known eng --seeds seeds.json`.
- `intelligence/` and `validators/phaseN/` (optional): your own phase files. Each one present
  replaces the built-in file of the same name; every other file stays built-in.
  `freshbatch init --phases` copies the built-in ones here for editing.

Check the setup with `freshbatch doctor`; see where each phase's files come from with
`freshbatch rules`.
"""


@dataclass(frozen=True)
class InitResult:
    """What `init` wrote, and the files it found and left alone (an existing README.md)."""

    root: Path
    written: list[Path]
    kept: list[Path]


def init_workspace(folder: Path, *, demo: bool = False, phases: bool = False) -> InitResult:
    """Make folder a workspace: freshbatch.yaml, courses/, a README; the demo, the phase files."""
    files: dict[Path, Path | str] = {Path("freshbatch.yaml"): SETTINGS_TEXT}
    if demo:
        course = Path("courses") / DEMO_COURSE
        files.update({course / f: demo_course_dir() / f for f in demo_course_files()})
    if phases:
        for base in (builtin_intelligence_dir(), builtin_validators_dir()):
            for path in sorted(base.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    files[path.relative_to(builtin_root())] = path
    _check_init(folder, files, demo)
    kept = [folder / "README.md"] if os.path.lexists(folder / "README.md") else []
    if not kept:
        files[Path("README.md")] = README_TEXT
    try:
        (folder / "courses").mkdir(parents=True, exist_ok=True)
        for relative, source in files.items():
            _write(folder / relative, source)
    except OSError as exc:
        raise WriteError(f"{shown(folder)}: cannot write the workspace: {problem(exc)}") from exc
    return InitResult(folder, [folder / r for r in files], kept)


def _check_init(folder: Path, files: dict[Path, Path | str], demo: bool) -> None:
    check_writable_dir(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{shown(folder)}: a file stands where the workspace folder belongs")
    courses = folder / "courses"
    if os.path.lexists(courses) and not courses.is_dir():
        raise InputError(f"{shown(courses)}: a file stands where the courses folder belongs")
    if demo and os.path.lexists(courses / DEMO_COURSE):
        raise InputError(
            f"{shown(courses / DEMO_COURSE)}: already exists; init never overwrites a course "
            "(remove it, or init another folder)"
        )
    for relative in files:
        if os.path.lexists(folder / relative):
            raise InputError(
                f"{shown(folder / relative)}: already exists; init never overwrites a workspace "
                "file (remove it, or init another folder)"
            )


def _write(path: Path, source: Path | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Path):
        shutil.copyfile(source, path)
    else:
        path.write_text(source, encoding="utf-8")


@dataclass(frozen=True)
class NewCourse:
    """What `freshbatch new` was asked for."""

    code: str
    target: str
    known: str
    seeds: Path
    seed_range: tuple[int, int] | None = None
    batch_size: int | None = None
    model: str | None = None
    target_name: str | None = None
    known_name: str | None = None


def new_course(workspace: Workspace, spec: NewCourse) -> Path:
    """Write courses/<code>/ with course.yaml and a copy of the seeds; return the folder."""
    if not COURSE_CODE.fullmatch(spec.code):
        raise InputError(
            f"course '{spec.code}': a course code is lower-case letters, digits and _ only"
        )
    folder = workspace.courses_dir / spec.code
    config: dict[str, Any] = {
        "code": spec.code,
        "target": spec.target,
        "known": spec.known,
        "target_name": language_name("--target", spec.target, spec.target_name),
        "known_name": language_name("--known", spec.known, spec.known_name),
        "seeds": SEEDS_FILE,
    }
    if spec.seed_range is not None:
        config["seed_range"] = list(spec.seed_range)
    if spec.batch_size is not None:
        config["batch_size"] = spec.batch_size
    if spec.model is not None:
        config["model"] = spec.model
    _check_new(workspace, folder, config, spec.seeds)
    text = f"# made by `freshbatch new`; freshbatch's README describes every key\n{_dump(config)}"
    return _write_course(workspace.courses_dir, folder, text, spec.seeds)


def language_name(flag: str, code: str, given: str | None) -> str:
    """The language's name: --target-name/--known-name, else the table's name for the code."""
    if not LANGUAGE_CODE.fullmatch(code):
        raise InputError(f"{flag} '{code}': not an ISO 639-3 code (three letters, like 'ita')")
    if given is not None:
        if not given.strip():
            raise InputError(f"{flag}-name: the language name must not be empty")
        return given
    if code not in LANGUAGE_NAMES:
        raise InputError(
            f"{flag} '{code}': unknown ISO 639-3 code (not among the {len(LANGUAGE_NAMES)} "
            f"languages freshbatch names); check the code or give {flag}-name NAME"
        )
    return LANGUAGE_NAMES[code]


def _check_new(workspace: Workspace, folder: Path, config: dict[str, Any], seeds: Path) -> None:
    if os.path.lexists(folder):
        raise InputError(f"{shown(folder)}: already exists; choose another code or remove it")
    check_writable_dir(workspace.courses_dir)
    course = parse_course(folder, config)  # checked exactly as a hand-written course.yaml
    if not file_exists(seeds):
        raise InputError(f"{shown(seeds)}: file not found")
    load_canonical_seeds(seeds)
    replace(course, seeds_path=seeds).load_seeds()  # --range against the seeds it will copy


def _dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False, default_flow_style=None)


def _write_course(courses: Path, folder: Path, text: str, seeds: Path) -> Path:
    """Build the course in a hidden folder beside it, then rename it into place at once."""
    try:
        courses.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".new-{folder.name}-", dir=courses))
    except OSError as exc:
        raise WriteError(f"{shown(courses)}: cannot write: {problem(exc)}") from exc
    try:
        shutil.copyfile(seeds, staging / SEEDS_FILE)
        (staging / "course.yaml").write_text(text, encoding="utf-8")
        os.chmod(staging, 0o777 & ~umask())
        os.rename(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise WriteError(f"{shown(folder)}: cannot write the course: {problem(exc)}") from exc
    return folder
