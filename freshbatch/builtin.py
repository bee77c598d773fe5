"""Where the built-in phase files and the demo course live: in a checkout, the repository's
own top-level folders; in an installed wheel, the copy the build put in freshbatch/_builtin/.

There is one hand-kept copy, the repository's `intelligence/`, `validators/` and
`courses/demo_ita_for_eng/`; setup.py copies them into the wheel (see BUILTIN_SOURCES).
"""

from __future__ import annotations

from pathlib import Path

DEMO_COURSE = "demo_ita_for_eng"
_PACKAGE = Path(__file__).resolve().parent
_PACKAGED = _PACKAGE / "_builtin"


def builtin_root() -> Path:
    """The folder holding the built-in intelligence/, validators/ and courses/<demo>/.

    A checkout (the package sits next to pyproject.toml and validators/) is read in place, so
    an editable install sees edits at once; otherwise the wheel's packaged copy is used.
    """
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "validators").is_dir():
        return checkout
    return _PACKAGED


def builtin_intelligence_dir() -> Path:
    return builtin_root() / "intelligence"


def builtin_validators_dir() -> Path:
    return builtin_root() / "validators"


def demo_course_dir() -> Path:
    return builtin_root() / "courses" / DEMO_COURSE


def demo_course_files() -> list[Path]:
    """The demo course's shipped files (course.yaml, seeds, recordings), relative to its folder.

    Outputs of an earlier demo run in a checkout (merged files, .freshbatch/) are not part of it.
    """
    folder = demo_course_dir()
    files = [Path("course.yaml"), Path("canonical_seeds.json")]
    recordings = folder / "recordings"
    files += sorted(p.relative_to(folder) for p in recordings.rglob("*.json") if p.is_file())
    return files
