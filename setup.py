"""Build step: copy the repository's built-in phases and demo course into the wheel.

The repository's top-level intelligence/, validators/ and courses/demo_ita_for_eng/ are the one
hand-kept copy; this copies them to freshbatch/_builtin/ in the build (never into the source
tree), where freshbatch/builtin.py finds them in an installed wheel. An editable install or a
checkout reads the top-level folders in place instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DEMO = Path("courses") / "demo_ita_for_eng"


def builtin_files() -> list[Path]:
    """The files to ship, relative to the repository (demo outputs and caches left out)."""
    files = [p for top in ("intelligence", "validators") for p in sorted((HERE / top).rglob("*"))]
    files = [p for p in files if p.is_file() and "__pycache__" not in p.parts]
    files += [HERE / DEMO / "course.yaml", HERE / DEMO / "canonical_seeds.json"]
    files += sorted((HERE / DEMO / "recordings").rglob("*.json"))
    return [p.relative_to(HERE) for p in files]


class BuildPyWithBuiltins(build_py):
    """build_py, plus the built-in phase files and demo course under freshbatch/_builtin/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's folders in place
        target = Path(self.build_lib) / "freshbatch" / "_builtin"
        if target.exists():
            shutil.rmtree(target)
        for relative in builtin_files():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / relative, destination)


setup(cmdclass={"build_py": BuildPyWithBuiltins})
