"""Throughput, CPU, memory and cost of `freshbatch run` on the full 668-seed spa course.

    python bench/throughput.py [--scale 0.002] [--fixed 3] [--tps 60] [--concurrency 1,4,16,34]

The real CLI runs in a subprocess against a local fake Messages API (tests/fakes), which
answers from the real SSi files in ../shared/data/ssi (phase 1 from seed_pairs, phase 3
from lego_pairs, phase 5 from lego_baskets; real validation failures are repaired on the
next attempt) after a latency model: the response starts after `fixed` seconds (time to the
first token), then streams its output tokens at `tps` tokens per second, all multiplied by
`scale` so that a run takes seconds. It prints wall time per concurrency
for `run all` (phases pipelined) and for phases one after another, the ideal bound from the
same latency model and the same requests, the runner's CPU time per batch attempt, its peak
RSS, the share of instruction tokens read from the cache, and the cost (total, and the
instruction tokens alone) against the same run without caching.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ssi"
sys.path.insert(0, str(REPO))

from freshbatch.pricing import Pricing  # noqa: E402
from freshbatch.providers import Usage  # noqa: E402
from tests.fakes.messages_api import FakeMessagesAPI, Reply  # noqa: E402
from tests.fakes.reference_model import ReferenceModel  # noqa: E402

MODEL = "claude-sonnet-4-6"


@dataclass
class Served:
    """What the fake server answered: per request its phase, batch and modelled latency."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[tuple[int, int, float]] = field(default_factory=list)


def make_responder(model: ReferenceModel, served: Served, args: argparse.Namespace) -> Any:
    def respond(body: dict[str, Any]) -> Reply:
        text = model.answer(body)
        header = body["messages"][0]["content"].split()
        phase, batch = int(header[1]), int(header[header.index("batch") + 1])
        generation = (len(text) / 4) / args.tps
        with served.lock:
            served.calls.append((phase, batch, args.fixed + generation))
        # the response starts after `fixed` (time to first token), then streams
        return Reply.message(
            text, delay=args.fixed * args.scale, stream_seconds=generation * args.scale
        )

    return respond


def workspace(root: Path) -> Path:
    for name in ("intelligence", "validators"):
        shutil.copytree(REPO / name, root / name)
    course = root / "courses" / "spa_for_eng"
    course.mkdir(parents=True)
    (course / "course.yaml").write_text(
        "code: spa_for_eng\ntarget: spa\nknown: eng\ntarget_name: Spanish\nknown_name: English\n"
        f"seeds: {SHARED / 'canonical_seeds.json'}\nmodel: {MODEL}\n",
        encoding="utf-8",
    )
    return root


def run_cli(root: Path, phases: list[str], concurrency: int, url: str) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of the freshbatch processes."""
    env = {**os.environ, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-bench"}
    wall = cpu = 0.0
    peak = 0
    for phase in phases:
        argv = [sys.executable, "-m", "freshbatch", "--root", str(root), "run", phase,
                "spa_for_eng", "--concurrency", str(concurrency)]  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        wall += time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"freshbatch failed: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, usage.ru_maxrss)
    return wall, cpu, peak


def startup_cpu() -> float:
    """CPU seconds a runner process spends before its first batch: Python, the imports."""
    code = "import anthropic, freshbatch.cli, freshbatch.providers.anthropic"
    process = subprocess.Popen([sys.executable, "-c", code])
    _, _, usage = os.wait4(process.pid, 0)
    return usage.ru_utime + usage.ru_stime


def ideal_bound(served: Served, concurrency: int, fixed: float, pipelined: bool) -> float:
    """A lower bound on wall time for the requests served, in modelled seconds.

    max(total work / concurrency, critical path), where on the critical path batch k of a
    phase starts once its input (batches 1..k of the previous phase) is merged, merges are
    in batch order, a batch's attempts run one after another, and the first request of a
    phase must have started (`fixed`) before the others go. Sequential phases add up.
    """
    per_batch: dict[tuple[int, int], float] = {}
    for phase, batch, latency in served.calls:
        per_batch[(phase, batch)] = per_batch.get((phase, batch), 0.0) + latency
    phases = sorted({p for p, _ in per_batch})
    batches = sorted({b for _, b in per_batch})
    total = sum(per_batch.values())
    ready = dict.fromkeys(batches, 0.0)
    phase_spans = []
    for phase in phases:
        merged, start_all = 0.0, None
        finish: dict[int, float] = {}
        for batch in batches:
            start = ready[batch] if pipelined else 0.0
            if start_all is None:
                start_all = start + fixed
            else:
                start = max(start, start_all)
            merged = max(merged, start + per_batch.get((phase, batch), 0.0))
            finish[batch] = merged
        phase_spans.append(merged)
        ready = finish
    if pipelined:
        return max(total / concurrency, ready[batches[-1]])
    work = {p: sum(v for (q, _), v in per_batch.items() if q == p) for p in phases}
    return sum(
        max(work[p] / concurrency, span) for p, span in zip(phases, phase_spans, strict=True)
    )


def read_progress(root: Path) -> dict[str, Any]:
    path = root / "courses" / "spa_for_eng" / ".freshbatch" / "progress.json"
    return json.loads(path.read_text(encoding="utf-8"))


def cost_report(progress: dict[str, Any]) -> str:
    tokens = progress["totals"]["tokens"]
    pricing = Pricing()
    price = pricing.price(MODEL)
    cached = Usage(tokens["input"], tokens["output"], tokens["cache_write"], tokens["cache_read"])
    uncached = Usage(tokens["input"] + tokens["cache_write"] + tokens["cache_read"],
                     tokens["output"])  # fmt: skip
    instructions = tokens["cache_write"] + tokens["cache_read"]
    with_cache = (tokens["cache_write"] * price.cache_write + tokens["cache_read"] *
                  price.cache_read) / 1e6  # fmt: skip
    without = instructions * price.input / 1e6
    share = tokens["cache_read"] / instructions if instructions else 0.0
    return (
        f"cache reads: {share:.1%} of {instructions:,} instruction tokens\n"
        f"cost: ${pricing.cost(cached, MODEL):.2f} with caching, "
        f"${pricing.cost(uncached, MODEL):.2f} without\n"
        f"instruction tokens alone: ${with_cache:.2f} with caching vs ${without:.2f} "
        f"without = {with_cache / without:.1%}"
        if without
        else "no instruction tokens"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.004, help="modelled seconds x scale")
    parser.add_argument("--fixed", type=float, default=3.0, help="seconds per request")
    parser.add_argument("--tps", type=float, default=60.0, help="output tokens per second")
    parser.add_argument("--concurrency", default="1,4,16,34")
    parser.add_argument(
        "--chunk",
        type=int,
        default=400,
        help="characters per streamed text delta (the API sends a few tokens)",
    )
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} not found", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    model = ReferenceModel(SHARED / "spa_for_eng")
    print(f"latency model: {args.fixed}s + output tokens / {args.tps} tok/s, time x {args.scale}")
    startup = startup_cpu()
    print(f"process start-up (Python + imports): {startup * 1000:.0f} ms CPU per process")
    print(f"{'mode':<22}{'conc':>5}{'wall s':>9}{'ideal s':>9}{'ratio':>7}{'attempts':>10}"
          f"{'CPU ms/att':>12}{'w/o start-up':>14}{'peak RSS MB':>13}")  # fmt: skip
    last_progress: dict[str, Any] = {}
    for concurrency in levels:
        for mode, phases in (("run all (pipelined)", ["all"]),
                             ("phases one by one", ["phase1", "phase3", "phase5"])):  # fmt: skip
            served = Served()
            with tempfile.TemporaryDirectory() as tmp, FakeMessagesAPI() as api:
                api.stream_chunk_chars = args.chunk
                api.responder = make_responder(model, served, args)
                root = workspace(Path(tmp))
                wall, cpu, peak = run_cli(root, phases, concurrency, api.url)
                last_progress = read_progress(root)
            ideal = ideal_bound(served, concurrency, args.fixed, mode.startswith("run all"))
            ideal *= args.scale
            attempts = len(served.calls)
            net = (cpu - startup * len(phases)) * 1000 / attempts
            print(f"{mode:<22}{concurrency:>5}{wall:>9.2f}{ideal:>9.2f}{wall / ideal:>7.2f}"
                  f"{attempts:>10}{cpu * 1000 / attempts:>12.1f}{net:>14.1f}"
                  f"{peak / 1024:>13.0f}")  # fmt: skip
    print(cost_report(last_progress))
    return 0


if __name__ == "__main__":
    sys.exit(main())
