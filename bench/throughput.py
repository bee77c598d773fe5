"""Throughput, CPU, memory and cost of `freshbatch run` on the full 668-seed spa course.

    python bench/throughput.py [--scale 0.004] [--fixed 3] [--tps 60] [--chunk 400]
                               [--concurrency 1,4,16,34] [--modes all,one-by-one]

The real CLI runs in a subprocess against a local fake Messages API (tests/fakes), which
answers from the real SSi files in ../shared/data/ssi (phase 1 from seed_pairs, phase 3
from lego_pairs, phase 5 from lego_baskets; real validation failures are repaired on the
next attempt) after a latency model: the response starts after `fixed` seconds (time to the
first token), then streams its output tokens at `tps` tokens per second in text deltas of
`chunk` characters, all times multiplied by `scale` so that a run takes seconds.

Per concurrency, for `run all` (phases pipelined) and for phases one after another, it prints:
the wall time; the ideal bound (max(work / concurrency, critical path) for the same requests
under the same latency model); their ratio; the start-up (process start to the first request
at the server) and the ratio of the rest to the bound; the ratio a zero-overhead simulation of
the runner's scheduling policy reaches on the same requests (what scheduling alone costs);
the runner's CPU per batch attempt, split into start-up (Python and imports, measured apart),
the provider call (the `anthropic` SDK, HTTP and the stream, from the transcripts'
provider_cpu_seconds) and the rest (freshbatch's own work: prompts, judging, staging,
merging, progress, transcripts); and peak RSS. Then the cache read share of instruction
tokens and the cost (total, and the instruction tokens alone) against a run without caching.
"""

from __future__ import annotations

import argparse
import heapq
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
    arrivals: list[float] = field(default_factory=list)  # perf_counter() at each request


def make_responder(model: ReferenceModel, served: Served, args: argparse.Namespace) -> Any:
    def respond(body: dict[str, Any]) -> Reply:
        arrived = time.perf_counter()
        text = model.answer(body)
        header = body["messages"][0]["content"].split()
        phase, batch = int(header[1]), int(header[header.index("batch") + 1])
        generation = (len(text) / 4) / args.tps
        with served.lock:
            served.calls.append((phase, batch, args.fixed + generation))
            served.arrivals.append(arrived)
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


@dataclass
class Measured:
    wall: float = 0.0
    cpu: float = 0.0
    peak_kib: int = 0
    spans: list[tuple[float, float]] = field(default_factory=list)  # each process: start, end


def run_cli(root: Path, phases: list[str], concurrency: int, url: str) -> Measured:
    """Wall seconds, CPU seconds and peak RSS of the freshbatch processes, one per phase."""
    env = {**os.environ, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-bench"}
    measured = Measured()
    for phase in phases:
        argv = [sys.executable, "-m", "freshbatch", "--root", str(root), "run", phase,
                "spa_for_eng", "--concurrency", str(concurrency)]  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        end = time.perf_counter()
        measured.wall += end - start
        measured.spans.append((start, end))
        if status != 0:
            raise SystemExit(f"freshbatch failed: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
        measured.cpu += usage.ru_utime + usage.ru_stime
        measured.peak_kib = max(measured.peak_kib, usage.ru_maxrss)
    return measured


def startup_wall(served: Served, spans: list[tuple[float, float]]) -> float:
    """Seconds from each process start to its first request at the server, summed."""
    total = 0.0
    for start, end in spans:
        first = min((t for t in served.arrivals if start <= t <= end), default=end)
        total += first - start
    return total


def provider_cpu(root: Path) -> float:
    """CPU seconds the workers spent inside provider calls, from the transcripts."""
    folder = root / "courses" / "spa_for_eng" / ".freshbatch" / "transcripts"
    return sum(
        json.loads(path.read_text("utf-8")).get("provider_cpu_seconds", 0.0)
        for path in folder.rglob("*.json")
    )


def startup_cpu(samples: int = 5) -> float:
    """CPU seconds a runner process spends on Python and the imports (median of samples)."""
    code = "import anthropic, freshbatch.cli, freshbatch.providers.anthropic"
    seconds = []
    for _ in range(samples):
        process = subprocess.Popen([sys.executable, "-c", code])
        _, _, usage = os.wait4(process.pid, 0)
        seconds.append(usage.ru_utime + usage.ru_stime)
    return sorted(seconds)[samples // 2]


def batch_latencies(served: Served) -> dict[tuple[int, int], float]:
    """(phase, batch) -> modelled seconds of its attempts, one after another."""
    per_batch: dict[tuple[int, int], float] = {}
    for phase, batch, latency in served.calls:
        per_batch[(phase, batch)] = per_batch.get((phase, batch), 0.0) + latency
    return per_batch


def ideal_bound(served: Served, concurrency: int, fixed: float, pipelined: bool) -> float:
    """A lower bound on wall time for the requests served, in modelled seconds.

    max(total work / concurrency, critical path), where on the critical path batch k of a
    phase starts once its input (batches 1..k of the previous phase) is merged, merges are
    in batch order, a batch's attempts run one after another, and the first request of a
    phase must have started (`fixed`) before the others go. Sequential phases add up.
    """
    per_batch = batch_latencies(served)
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


def simulated(served: Served, concurrency: int, fixed: float, pipelined: bool) -> float:
    """Wall time of the runner's scheduling policy on the same requests, with no overhead.

    The policy of freshbatch.scheduler: ready batches go earlier phases first, then lower
    batch numbers; a phase fans out only once its first request has started (`fixed`); a
    batch's attempts run one after another; merges are in batch order and take no time.
    """
    per_batch = batch_latencies(served)
    phases = sorted({p for p, _ in per_batch})
    if not pipelined:
        return sum(_schedule({k: v for k, v in per_batch.items() if k[0] == p}, [p],
                             concurrency, fixed) for p in phases)  # fmt: skip
    return _schedule(per_batch, phases, concurrency, fixed)


def _schedule(
    durations: dict[tuple[int, int], float], phases: list[int], concurrency: int, fixed: float
) -> float:
    batches = sorted({b for _, b in durations})
    now, running, done = 0.0, [], set()
    merged = dict.fromkeys(phases, 0)
    fan_out: dict[int, float] = {}  # phase -> when its first request has started
    waiting = sorted(durations)  # (phase, batch): earlier phases first, then batch order
    while waiting or running:
        for p in phases:
            while (p, batches[merged[p]] if merged[p] < len(batches) else None) in done:
                merged[p] += 1
        for key in list(waiting):
            if len(running) >= concurrency:
                break
            phase, batch = key
            before = phases.index(phase) - 1
            if before >= 0 and merged[phases[before]] < batches.index(batch) + 1:
                continue  # its input is not merged yet
            if fan_out.get(phase, 0.0) > now:
                continue  # the phase's first request has not started yet
            fan_out.setdefault(phase, now + fixed)
            waiting.remove(key)
            heapq.heappush(running, (now + durations[key], key))
        events = [running[0][0]] if running else []
        events += [t for t in fan_out.values() if t > now]
        now = min(events)
        while running and running[0][0] <= now:
            done.add(heapq.heappop(running)[1])
    return now


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
    parser.add_argument("--modes", default="all,one-by-one", help="all, one-by-one or both")
    parser.add_argument(
        "--chunk",
        type=int,
        default=400,
        help="characters per streamed text delta",
    )
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} not found", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    modes = [m for m in (("all", "run all (pipelined)", ["all"]),
                         ("one-by-one", "phases one by one", ["phase1", "phase3", "phase5"]))
             if m[0] in args.modes.split(",")]  # fmt: skip
    model = ReferenceModel(SHARED / "spa_for_eng")
    print(f"latency model: {args.fixed}s + output tokens / {args.tps} tok/s in "
          f"{args.chunk}-character deltas, time x {args.scale}")  # fmt: skip
    startup = startup_cpu()
    print(f"process start-up (Python + imports): {startup * 1000:.0f} ms CPU per process")
    print(f"{'':<21}{'':>5}{'':>8}{'':>8}{'ratio to ideal':>22}{'':>5}"
          f"{'runner CPU ms per attempt':>33}")  # fmt: skip
    print(f"{'mode':<21}{'conc':>5}{'wall s':>8}{'ideal s':>8}{'all':>6}{'start s':>8}"
          f"{'rest':>6}{'sim':>6}{'att':>5}{'total':>7}{'start-up':>9}{'SDK+HTTP':>9}"
          f"{'freshbatch':>11}{'RSS MB':>8}")  # fmt: skip
    last_progress: dict[str, Any] = {}
    for concurrency in levels:
        for _, mode, phases in modes:
            served = Served()
            with tempfile.TemporaryDirectory() as tmp, FakeMessagesAPI() as api:
                api.stream_chunk_chars = args.chunk
                api.responder = make_responder(model, served, args)
                root = workspace(Path(tmp))
                measured = run_cli(root, phases, concurrency, api.url)
                last_progress = read_progress(root)
                in_provider = provider_cpu(root)
            pipelined = mode.startswith("run all")
            ideal = ideal_bound(served, concurrency, args.fixed, pipelined) * args.scale
            sim = simulated(served, concurrency, args.fixed, pipelined) * args.scale
            start = startup_wall(served, measured.spans)
            attempts = len(served.calls)
            per = 1000 / attempts
            starting = startup * len(phases)
            own = measured.cpu - starting - in_provider
            print(f"{mode:<21}{concurrency:>5}{measured.wall:>8.2f}{ideal:>8.2f}"
                  f"{measured.wall / ideal:>6.2f}{start:>8.2f}"
                  f"{(measured.wall - start) / ideal:>6.2f}{sim / ideal:>6.2f}{attempts:>5}"
                  f"{measured.cpu * per:>7.1f}{starting * per:>9.1f}{in_provider * per:>9.1f}"
                  f"{own * per:>11.1f}{measured.peak_kib / 1024:>8.0f}")  # fmt: skip
    print(cost_report(last_progress))
    return 0


if __name__ == "__main__":
    sys.exit(main())
