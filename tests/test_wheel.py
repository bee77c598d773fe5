"""The built wheel carries everything a run needs: installed into a fresh virtual environment,
it starts a workspace from an empty folder outside the checkout and runs the demo there."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import DEMO, REPO

SEEDS = [{"seed_id": f"S{i:04d}", "canonical_id": f"C{i:04d}", "source": f"I see {i} cats."}
         for i in range(1, 26)]  # fmt: skip


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build sdist and wheel (no build isolation: offline), install the wheel in a new venv.

    The new venv finds the dependencies in this environment's site-packages through a .pth
    file added after the install (so pip never sees this checkout's editable freshbatch), and
    `pip check` confirms the wheel's requirements resolve.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)], tmp)
    (wheel,) = dist.glob("freshbatch-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python]
    run([*pip, "install", "--quiet", "--no-index", "--no-deps", str(wheel)], tmp)
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp)
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    Path(purelib.strip(), "zz_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    run([*pip, "check"], tmp)
    return venv / "bin"


def test_the_installed_wheel_starts_a_course_from_an_empty_folder(
    venv_bin: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "empty"
    outside.mkdir()
    assert REPO not in outside.resolve().parents
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "FRESHBATCH_"))}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    where = run([str(venv_bin / "python"), "-c", "import freshbatch.builtin as b, freshbatch; "
                 "print(freshbatch.__file__); print(b.builtin_root())"], outside, env)  # fmt: skip
    for path in where.split():
        assert str(REPO) not in path and str(venv_bin.parent) in path, where

    fb = str(venv_bin / "freshbatch")
    run([fb, "init", "demo-ws", "--demo"], outside, env)
    ws = outside / "demo-ws"
    run([fb, "run", "all", DEMO, "--provider", "replay"], ws, env)
    assert "valid" in run([fb, "validate", "all", DEMO], ws, env)
    status = json.loads(run([fb, "status", DEMO, "--json"], ws, env))
    assert status["status"] == "completed"
    run([fb, "status", DEMO], ws, env)

    (outside / "my_seeds.json").write_text(json.dumps(SEEDS), "utf-8")
    run([fb, "new", "spa_cats", "--target", "spa", "--known", "eng",
         "--seeds", "../my_seeds.json", "--batch-size", "10"], ws, env)  # fmt: skip
    dry = run([fb, "run", "phase1", "spa_cats", "--dry-run"], ws, env)
    assert dry.count("would run") == 3, dry
    assert "all built-in" in run([fb, "doctor", "spa_cats", "--provider", "replay"], ws, env)
    for path in ws.rglob("*"):
        if path.is_file():
            assert str(REPO) not in path.read_text("utf-8", "replace"), path
