"""progress.json and events.jsonl: the run's state, kept apart from any rendering.

progress.json is rewritten atomically after every change of state, so a poller never reads
half a file. events.jsonl gets one line per event. Listeners (the console) are told of
every event after the state changed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from freshbatch.batching import BatchPlan
from freshbatch.clock import now_iso
from freshbatch.files import append_text, dump_json, write_atomic
from freshbatch.providers import Usage

SCHEMA_VERSION = 1
BATCH_STATES = ("pending", "running", "staged", "merged", "failed")
Listener = Callable[[str, dict[str, Any]], None]


def _tokens(usage: Usage) -> dict[str, int]:
    return {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "cache_read": usage.cache_read_input_tokens,
        "cache_write": usage.cache_creation_input_tokens,
    }


def _add_tokens(into: dict[str, int], usage: Usage) -> None:
    for name, value in _tokens(usage).items():
        into[name] = into.get(name, 0) + value


class Progress:
    """The state of every batch of every phase of one course, persisted on each change."""

    def __init__(self, state_dir: Path, course: str, plan: BatchPlan, phases: Iterable[int]):
        self.path = state_dir / "progress.json"
        self.events_path = state_dir / "events.jsonl"
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._started = time.monotonic()
        self._merged_this_run = 0
        self._ended = False
        self._needs_newline = _ends_unfinished(self.events_path)
        self._pacing_written = 0.0
        old = _read(self.path)
        old_batches = {(b["phase"], b["batch"]): b for b in old.get("batches", [])}
        self.state: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "course": course,
            "updated_at": now_iso(),
            "status": "idle",
            "pid": None,
            "total_seeds": len(plan.seed_ids),
            "total_batches": len(plan),
            "batch_size": plan.batch_size,
            "current": None,
            "run": None,
            "warnings": [],
            "phases": {},
            "batches": [],
            "totals": {},
            "eta": None,
        }
        for phase in sorted(set(phases) | {b["phase"] for b in old_batches.values()}):
            for batch in plan:
                previous = old_batches.get((phase, batch.number), {})
                self.state["batches"].append(
                    {
                        "phase": phase,
                        "batch": batch.number,
                        "first_seed": batch.first_seed,
                        "last_seed": batch.last_seed,
                        "status": "pending",
                        "attempts": previous.get("attempts", 0),
                        "last_errors": previous.get("last_errors", []),
                        "tokens": previous.get("tokens", _tokens(Usage())),
                        "cost_usd": previous.get("cost_usd", 0.0),
                        "escalation_cost_usd": previous.get("escalation_cost_usd", 0.0),
                        "models": previous.get("models", {}),
                        "started_at": previous.get("started_at"),
                        "finished_at": previous.get("finished_at"),
                    }
                )
        self._index: dict[tuple[int, int], dict[str, Any]] = {
            (b["phase"], b["batch"]): b for b in self.state["batches"]
        }
        self._encoded: dict[tuple[int, int], str] = {}  # each batch entry's JSON, until it changes

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def batch(self, phase: int, number: int) -> dict[str, Any]:
        return self._index[(phase, number)]

    def set_batch_status(self, phase: int, number: int, status: str, **fields: Any) -> None:
        """Set a batch's state without an event (used when rebuilding state from disk)."""
        with self._lock:
            self._index[(phase, number)].update(status=status, **fields)
            self._encoded.pop((phase, number), None)

    def start_run(self, info: dict[str, Any]) -> None:
        with self._lock:
            self.state.update(
                status="running", pid=os.getpid(), run={**info, "started_at": now_iso()}
            )
        self.event("run:start", info)

    def end_run(self, status: str, **info: Any) -> None:
        """The run's last word: its status stays, whatever threads still in flight report."""
        with self._lock:
            self._ended = True
            self.state.update(status=status, current=None, pid=None)
            for entry in self.state["batches"]:
                if entry["status"] == "running":
                    entry["status"] = "pending"
                    self._encoded.pop((entry["phase"], entry["batch"]), None)
        self.event("run:end", {"status": status, **info})

    def warn(self, phase: int, message: str) -> None:
        """A problem the user should see that does not stop the run (e.g. no prompt cache)."""
        with self._lock:
            self.state.setdefault("warnings", []).append(message)
        self.event("run:warning", {"phase": phase, "message": message})

    def cost_unknown(self, model: str) -> None:
        """The model has no price: costs are shown as unknown (the sums count only 0)."""
        with self._lock:
            if self.state.get("cost_unknown"):
                return
            self.state["cost_unknown"] = {
                "model": model,
                "hint": f"no price for {model}; add its price under prices: in freshbatch.yaml",
            }

    def set_pacing(self, info: dict[str, Any]) -> None:
        """The pacer's state (allowed concurrency and why); written at most once a second,
        or at once when the allowed concurrency changed."""
        with self._lock:
            if self._ended:
                return
            before = self.state.get("pacing") or {}
            self.state["pacing"] = info
            now = time.monotonic()
            due = now - self._pacing_written >= 1.0 or before.get("allowed") != info["allowed"]
            if due:
                self._pacing_written = now
        if due:
            self.events([])

    def pause(self, status: int | None, seconds: float) -> None:
        """A rate limit: every worker waits; status `paused` until resume()."""
        with self._lock:
            if self._ended:
                return
            self.state["status"] = "paused"
        self.event("ratelimit:pause", {"status": status, "seconds": round(seconds, 3)})

    def resume(self) -> None:
        with self._lock:
            if self._ended:
                return
            self.state["status"] = "running"
        self.event("ratelimit:resume", {})

    def batch_started(self, phase: int, number: int) -> None:
        with self._lock:
            entry = self._index[(phase, number)]
            entry.update(status="running", started_at=now_iso(), finished_at=None)
            entry["attempts"] = 0
            entry["models"] = {}
            self._encoded.pop((phase, number), None)
            self.state["current"] = {"phase": phase, "batch": number}
        self.event("batch:start", {"phase": phase, "batch": number})

    def attempt_done(
        self,
        phase: int,
        number: int,
        attempt: int,
        usage: Usage,
        cost: float,
        errors: list[dict[str, Any]],
        model: str | None = None,
        escalated: bool = False,
    ) -> None:
        """One attempt ended: its tokens, cost (apart too when escalated), model, errors."""
        with self._lock:
            entry = self._index[(phase, number)]
            entry["attempts"] = attempt
            _add_tokens(entry["tokens"], usage)
            entry["cost_usd"] = round(entry["cost_usd"] + cost, 6)
            if model is not None:
                entry.setdefault("models", {})[str(attempt)] = model
            if escalated:
                before = entry.get("escalation_cost_usd", 0.0)
                entry["escalation_cost_usd"] = round(before + cost, 6)
            entry["last_errors"] = errors
            self._encoded.pop((phase, number), None)
        happened = [
            (
                "batch:attempt",
                {
                    "phase": phase,
                    "batch": number,
                    "attempt": attempt,
                    "errors": len(errors),
                    **_tokens(usage),
                },
            )
        ]
        if errors:
            happened.append(
                (
                    "batch:invalid",
                    {
                        "phase": phase,
                        "batch": number,
                        "attempt": attempt,
                        "first_error": errors[0]["message"],
                    },
                )
            )
        self.events(happened)

    def batch_finished(
        self,
        phase: int,
        number: int,
        status: str,
        last_errors: list[dict[str, Any]] | None = None,
        **info: Any,
    ) -> None:
        """status: staged, merged or failed (with the errors it failed on, when given)."""
        with self._lock:
            entry = self._index[(phase, number)]
            entry.update(status=status, finished_at=now_iso())
            if last_errors is not None:
                entry["last_errors"] = last_errors
            self._encoded.pop((phase, number), None)
            if status == "merged":
                self._merged_this_run += 1
        self.event(f"batch:{status}", {"phase": phase, "batch": number, **info})

    def event(self, name: str, data: dict[str, Any]) -> None:
        """Persist progress.json, append the event line, then tell listeners."""
        self.events([(name, data)])

    def events(self, happened: list[tuple[str, dict[str, Any]]]) -> None:
        """Events of one change of state: progress.json is written once, then one line each."""
        with self._lock:
            self.refresh()
            write_atomic(self.path, self._dump(), durable=False)
            stamp = self.state["updated_at"]
            lines = "".join(
                json.dumps({"time": stamp, "event": name, **data}, ensure_ascii=False) + "\n"
                for name, data in happened
            )
            if self._needs_newline:  # a line left unfinished (by hand, or a full disk)
                lines = "\n" + lines
                self._needs_newline = False
            if lines:
                append_text(self.events_path, lines)
        for name, data in happened:
            for listener in self._listeners:
                listener(name, data)

    def _dump(self) -> str:
        """The state as dump_json writes it, re-encoding only the batch entries that changed."""
        parts = []
        for entry in self.state["batches"]:
            key = (entry["phase"], entry["batch"])
            text = self._encoded.get(key)
            if text is None:
                text = self._encoded[key] = json.dumps(entry, ensure_ascii=False)
            parts.append(text)
        return dump_json(self.state, {"batches": "[" + ", ".join(parts) + "]"})

    def refresh(self) -> None:
        """Recompute the per-phase summaries, the totals and the ETA from the batches."""
        self.state["updated_at"] = now_iso()
        phases: dict[str, Any] = {}
        names = ("input", "output", "cache_read", "cache_write")
        for entry in self.state["batches"]:
            key = f"phase{entry['phase']}"
            summary = phases.get(key)
            if summary is None:
                summary = phases[key] = {
                    **dict.fromkeys(BATCH_STATES, 0),
                    "attempts": 0,
                    "tokens": dict.fromkeys(names, 0),
                    "cost": 0.0,
                    "escalation_cost": 0.0,
                }
            summary[entry["status"]] += 1
            summary["attempts"] += entry["attempts"]
            tokens, add = summary["tokens"], entry["tokens"]
            for name in names:
                tokens[name] += add.get(name, 0)
            summary["cost"] += entry["cost_usd"]
            summary["escalation_cost"] += entry.get("escalation_cost_usd", 0.0)
        totals: dict[str, Any] = {
            "tokens": dict.fromkeys(names, 0), "cost_usd": 0.0, "escalation_cost_usd": 0.0
        }  # fmt: skip
        for summary in phases.values():
            summary["cost_usd"] = round(summary.pop("cost"), 6)
            summary["escalation_cost_usd"] = round(summary.pop("escalation_cost"), 6)
            totals["cost_usd"] += summary["cost_usd"]
            totals["escalation_cost_usd"] += summary["escalation_cost_usd"]
            for name in names:
                totals["tokens"][name] += summary["tokens"][name]
        totals["cost_usd"] = round(totals["cost_usd"], 6)
        totals["escalation_cost_usd"] = round(totals["escalation_cost_usd"], 6)
        self.state["phases"] = phases
        self.state["totals"] = totals
        self.state["eta"] = self._eta()

    def _eta(self) -> dict[str, Any] | None:
        if self.state["status"] != "running" or not self._merged_this_run:
            return None
        remaining = sum(1 for b in self.state["batches"] if b["status"] in ("pending", "running"))
        per_batch = (time.monotonic() - self._started) / self._merged_this_run
        seconds = round(per_batch * remaining, 1)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        return {"seconds": seconds, "at": at}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _ends_unfinished(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:
        return False


def read_progress(state_dir: Path) -> dict[str, Any] | None:
    data = _read(state_dir / "progress.json")
    return data or None


class ReadOnlyProgress(Progress):
    """Progress that never writes: for commands that only look (status, prompt)."""

    def events(self, happened: list[tuple[str, dict[str, Any]]]) -> None:
        return None
