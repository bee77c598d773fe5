"""Time the validators on the real spa_for_eng course (../shared/data/ssi), in one process.

    python bench/validate.py [--repeat N]

Prints, per phase, seconds (best of N) and the issue counts; then the total. The course
folder is built in a temporary workspace with links to ../shared (nothing is copied).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from freshbatch.validation import validate_phase
from freshbatch.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ssi"


def build_workspace(root: Path) -> Workspace:
    for name in ("intelligence", "validators"):
        shutil.copytree(REPO / name, root / name)
    folder = root / "courses" / "spa_for_eng"
    folder.mkdir(parents=True)
    config = {"code": "spa_for_eng", "target": "spa", "known": "eng", "target_name": "Spanish",
              "known_name": "English", "seeds": str(SHARED / "canonical_seeds.json")}
    (folder / "course.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    for name in ("seed_pairs.json", "lego_pairs.json", "lego_baskets.json"):
        (folder / name).symlink_to(SHARED / "spa_for_eng" / name)
    return Workspace(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        workspace = build_workspace(Path(tmp))
        total_first = total_best = 0.0
        for phase in ("phase1", "phase3", "phase5"):
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                report = validate_phase(workspace, phase, "spa_for_eng")
                times.append(time.perf_counter() - start)
            total_first += times[0]
            total_best += min(times)
            print(f"{phase}: first {times[0]:.3f} s, best {min(times):.3f} s  "
                  f"errors {report.stats['errors']:>4}  warnings {report.stats['warnings']:>5}  "
                  f"{report.stats['by_rule']}")
        print(f"total: first run {total_first:.3f} s, best {total_best:.3f} s "
              f"(best of {args.repeat}; goal: under 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
