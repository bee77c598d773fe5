"""The argument parser of `freshbatch`: every command and option (cli.py runs them)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from freshbatch.server import DEFAULT_HOST, DEFAULT_PORT
from freshbatch.workspace import DEFAULT_MODEL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freshbatch", description="Run LLM course generation in fresh, validated batches."
    )
    parser.add_argument(
        "--root",
        help="workspace folder (default: $FRESHBATCH_ROOT or the "
        "nearest folder at or above this one holding freshbatch.yaml or courses/)",
    )
    commands = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check existing outputs against a phase's rules"
    )
    validate.add_argument("phase", help="phase1, phase3, phase5 (or 1, 3, 5), or all")
    validate.add_argument("course", help="course code: a folder under courses/")
    validate.add_argument("--file", type=Path, help="validate this file instead of the merged one")
    validate.add_argument("--batch", type=int, help="check only batch K (earlier ones set context)")
    validate.add_argument("--json", action="store_true", help="print one JSON report")
    validate.add_argument(
        "--limit", type=int, default=10, help="issues shown per batch (0: all; default 10)"
    )

    run = commands.add_parser("run", help="run or resume a phase (or all) of a course")
    run.add_argument("phase", help="phase1, phase3, phase5 (or 1, 3, 5), or all")
    run.add_argument("course", help="course code: a folder under courses/")
    run.add_argument(
        "--provider",
        help="anthropic (default with ANTHROPIC_API_KEY), claude-cli, command or replay",
    )
    run.add_argument(
        "--model", help=f"model name (default: course.yaml model, else {DEFAULT_MODEL})"
    )
    run.add_argument("--batches", help="only these batches, e.g. 3,7-9")
    run.add_argument(
        "--concurrency",
        type=int,
        help="attempts in flight at once (default: freshbatch.yaml concurrency, else 1)",
    )
    run.add_argument("--max-attempts", type=int, default=3, help="attempts per batch (default 3)")
    run.add_argument(
        "--via", choices=("messages", "batches"), default="messages",
        help="messages: one request per attempt (default); batches: Message Batches, one "
        "per round, half price, results within hours",
    )  # fmt: skip
    run.add_argument(
        "--max-pauses", type=int,
        help="stop after this many rate-limit pauses in a row (default: freshbatch.yaml, else 10)",
    )  # fmt: skip
    run.add_argument("--poll-seconds", type=float, default=30.0,
                     help="--via batches: seconds between status polls (30)")  # fmt: skip
    run.add_argument("--dry-run", action="store_true", help="show what would run; call nothing")
    run.add_argument(
        "--command",
        help="command provider: the program and its arguments "
        "(split like a shell would, but run without one)",
    )
    run.add_argument("--claude-binary", default="claude", help="claude-cli provider: the binary")
    run.add_argument(
        "--replay-dir",
        type=Path,
        help="replay provider: recordings folder (default: the course's recordings/)",
    )
    run.add_argument("--timeout", type=float, default=600.0, help="seconds per request (600)")
    run.add_argument(
        "--batch-timeout", type=float, metavar="SECONDS",
        help="wall-clock seconds for all the attempts of one batch; past it the batch fails "
        "(rule batch-timeout) and the failure policy applies (default: no limit)",
    )  # fmt: skip
    add_escalation_options(run)
    policy = run.add_mutually_exclusive_group()
    policy.add_argument("--fail-fast", action="store_const", dest="on_failure", const="fail-fast",
                        help="stop at once when a batch used all its attempts")  # fmt: skip
    policy.add_argument("--keep-going", action="store_const", dest="on_failure",
                        const="keep-going", help="after a failed batch, still run the later "
                        "ones; merge up to the gap")  # fmt: skip
    run.add_argument(
        "--notify", action="append", default=[], metavar="CMD",
        help="run CMD (no shell) when the run ends, the run:end event as JSON on stdin",
    )  # fmt: skip

    plan = commands.add_parser("plan", help="batches, tokens and cost to expect, before any run")
    plan.add_argument("phase", help="phase1, phase3, phase5 (or 1, 3, 5), or all")
    plan.add_argument("course", help="course code")
    plan.add_argument("--model", help="model name (prices come from it)")
    plan.add_argument(
        "--via", choices=("messages", "batches"), default="messages",
        help="price for the Messages API (default) or Message Batches (half price, 1h cache)",
    )  # fmt: skip
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_escalation_options(plan)

    status = commands.add_parser("status", help="show a course's progress")
    status.add_argument("course", help="course code")
    status.add_argument("--json", action="store_true", help="print progress.json")

    prompt = commands.add_parser("prompt", help="print the exact request batch K would send")
    prompt.add_argument("phase", help="phase1, phase3, phase5 (or 1, 3, 5)")
    prompt.add_argument("course", help="course code")
    prompt.add_argument("--batch", type=int, required=True, help="batch number K (from 1)")
    prompt.add_argument("--model", help="model name")
    prompt.add_argument("--text", action="store_true", help="print the blocks as plain text")

    report = commands.add_parser(
        "report", help="how a course's batches went, and whether the output drifted"
    )
    report.add_argument("course", help="course code")
    report.add_argument(
        "--format", choices=("md", "html", "json"), default="md", help="md (default), html, json"
    )

    rules = commands.add_parser("rules", help="list every phase's rules and default severities")
    rules.add_argument("phase", nargs="?", help="only this phase")

    add_setup_commands(commands)

    page = commands.add_parser("serve", help="serve the read-only status page in the browser")
    page.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    page.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}; any other is reachable from the network)",
    )
    return parser


def add_escalation_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--escalate-model", metavar="M",
        help="run the later attempts of a batch on model M (over the escalate: setting)",
    )  # fmt: skip
    command.add_argument(
        "--escalate-from", type=int, metavar="N",
        help="the first attempt run on the escalation model (default: escalate: setting, else 3)",
    )  # fmt: skip


def add_setup_commands(commands: Any) -> None:
    """init, new and doctor: the commands that make and check a workspace."""
    init = commands.add_parser("init", help="make a folder a workspace (freshbatch.yaml, courses/)")
    init.add_argument("dir", nargs="?", default=".", type=Path, help="the folder (default: .)")
    init.add_argument("--demo", action="store_true", help="also write the demo course")
    init.add_argument("--phases", action="store_true", help="copy the built-in phase files here")

    new = commands.add_parser("new", help="make a course: courses/COURSE/course.yaml and seeds")
    new.add_argument("course", help="course code: lower-case letters, digits and _")
    new.add_argument("--target", required=True, help="ISO 639-3 code of the language learned")
    new.add_argument("--known", required=True, help="ISO 639-3 code of the learner's language")
    new.add_argument("--seeds", required=True, type=Path, help="canonical seeds file (JSON)")
    new.add_argument("--range", dest="seed_range", help="only seeds A-B of the file, e.g. 1-100")
    new.add_argument("--batch-size", type=int, help="seeds per batch (default 20)")
    new.add_argument("--model", help=f"model for this course (default {DEFAULT_MODEL})")
    new.add_argument("--target-name", help="the target language's name (default: from the code)")
    new.add_argument("--known-name", help="the known language's name (default: from the code)")

    doctor = commands.add_parser("doctor", help="check the set-up: key, API, model, price, files")
    doctor.add_argument("course", nargs="?", help="check this course (default: every course)")
    doctor.add_argument("--provider", help="the provider to check (default as for run)")
    doctor.add_argument("--model", help="the model to check (default as for run)")
    doctor.add_argument("--claude-binary", default="claude", help="claude-cli: the binary")

    models = commands.add_parser("models", help="the model table: prices, limits, thinking")
    models.add_argument("--json", action="store_true", help="print the table as JSON")
