"""Rate-limited runs: pacing from the headers against a fake API with an output bucket.

    python bench/ratelimited.py [--streams 4] [--tps 200] [--concurrency 16] [--batch-size 3]

The demo course (45 seeds; batches of `batch-size`, so 15 batches a phase) runs `run all`
in-process against tests/fakes/messages_api.py, whose output-tokens bucket holds what
`streams` answers streaming at `tps` tokens per second produce in a minute, and starts empty
(so the limit binds from the first request). Answers come from the demo's recorded course
and stream at `tps`. Printed per variant: wall seconds, the floor (total output tokens ÷ the
output limit), their ratio, and the 429s (all, and after the first).

Variants: `actual` (the API charges what was generated; freshbatch paces from each phase's
observed output), `reserve` (the API reserves max_tokens when a request starts, as
Anthropic's does; phases keep their max_tokens, 8000-64000, far above the bucket, so they
are capped and each request waits for a whole bucket), and `two runs` (two courses at once
on one `actual` bucket; the floor is their joint output ÷ the limit).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from freshbatch.runner import RunOptions, run  # noqa: E402
from freshbatch.workspace import Workspace  # noqa: E402
from tests.fakes.messages_api import FakeMessagesAPI, Reply  # noqa: E402
from tests.fakes.ratelimits import RateLimiter  # noqa: E402
from tests.fakes.reference_model import ReferenceModel  # noqa: E402

DEMO = "demo_ita_for_eng"


def make_workspace(root: Path, batch_size: int, settings: dict[str, Any]) -> Workspace:
    root.mkdir(parents=True)
    for name in ("intelligence", "validators"):
        shutil.copytree(REPO / name, root / name)
    folder = root / "courses" / DEMO
    shutil.copytree(REPO / "courses" / DEMO, folder, ignore=shutil.ignore_patterns(
        "recordings", ".freshbatch", "seed_pairs.json", "lego_pairs.json", "lego_baskets.json"))  # fmt: skip
    config = yaml.safe_load((folder / "course.yaml").read_text("utf-8"))
    config["batch_size"] = batch_size
    (folder / "course.yaml").write_text(yaml.safe_dump(config), "utf-8")
    (root / "freshbatch.yaml").write_text(yaml.safe_dump(settings), "utf-8")
    return Workspace(root)


def reference(tmp: Path) -> Path:
    """The demo's merged files, made by replaying its recordings."""
    root = tmp / "reference"
    root.mkdir()
    for name in ("intelligence", "validators"):
        shutil.copytree(REPO / name, root / name)
    shutil.copytree(REPO / "courses" / DEMO, root / "courses" / DEMO,
                    ignore=shutil.ignore_patterns(".freshbatch"))  # fmt: skip
    assert run(Workspace(root), "all", DEMO, RunOptions(provider="replay")).ok
    return root / "courses" / DEMO


def output_tokens(workspace: Workspace) -> int:
    total = 0
    for path in (workspace.courses_dir / DEMO / ".freshbatch" / "transcripts").rglob("*.json"):
        answer = json.loads(path.read_text("utf-8")).get("answer") or {}
        total += int((answer.get("usage") or {}).get("output_tokens") or 0)
    return total


def variant(args: argparse.Namespace, ref: Path, tmp: Path, charge: str, runs: int) -> str:
    limit = int(args.streams * args.tps * 60)
    model = ReferenceModel(ref)
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> Reply:
        with lock:
            text = model.answer(body)
        return Reply.message(text, stream_seconds=(len(text) / 4) / args.tps)

    with FakeMessagesAPI() as api:
        api.stream_chunk_chars = 1 << 20
        api.responder = respond
        api.rate_limiter = RateLimiter(output_tokens_per_minute=limit, output_charge=charge,
                                       initial=0.0)  # fmt: skip
        import os

        os.environ["ANTHROPIC_BASE_URL"], os.environ["ANTHROPIC_API_KEY"] = api.url, "bench"
        settings = {"output_charge": charge, "concurrency": args.concurrency}
        spaces = [make_workspace(tmp / f"{charge}-{runs}-{i}", args.batch_size, settings)
                  for i in range(runs)]  # fmt: skip
        first_429: list[float] = []
        started = time.monotonic()
        threads = [threading.Thread(target=lambda ws=ws: run(ws, "all", DEMO, RunOptions(
            provider="anthropic", max_consecutive_pauses=50)).ok) for ws in spaces]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        refused = api.rate_limiter.refused
        del first_429
    total = sum(output_tokens(ws) for ws in spaces)
    floor = total / limit * 60
    name = {("actual", 1): "actual", ("reserve", 1): "reserve max_tokens"}.get(
        (charge, runs), f"{runs} runs, {charge}")
    return (f"{name:<22}{wall:>8.1f}{floor:>8.1f}{wall / floor:>7.2f}{refused:>6}"
            f"{max(refused - 1, 0):>8}{total:>9}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=float, default=4.0)
    parser.add_argument("--tps", type=float, default=200.0, help="output tokens per second")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--variants", default="actual,reserve,two")
    args = parser.parse_args()
    limit = int(args.streams * args.tps * 60)
    print(f"output limit {limit}/min ({args.streams:g} streams at {args.tps:g} tok/s), "
          f"concurrency {args.concurrency}, batches of {args.batch_size}, bucket starts empty")  # fmt: skip
    print(f"{'variant':<22}{'wall s':>8}{'floor s':>8}{'ratio':>7}{'429s':>6}"
          f"{'after 1':>8}{'output':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ref = reference(tmp)
        wanted = args.variants.split(",")
        for key, charge, runs in (("actual", "actual", 1), ("reserve", "reserve", 1),
                                  ("two", "actual", 2)):  # fmt: skip
            if key in wanted:
                print(variant(args, ref, tmp, charge, runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
