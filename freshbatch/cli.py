"""Command line: parse arguments, make one library call, print, return an exit code."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape

from freshbatch.batching import parse_batch_selection
from freshbatch.console import (
    RunDisplay,
    make_console,
    print_failures,
    print_models,
    print_plan,
    print_report,
    print_rules,
    print_summary,
)
from freshbatch.doctor import DoctorOptions, diagnose
from freshbatch.errors import FreshbatchError, InputError
from freshbatch.files import file_exists, shown
from freshbatch.hooks import notify_hook
from freshbatch.models import model_rows, model_table
from freshbatch.phases import load_phases, resolve_phase
from freshbatch.planning import plan_phase
from freshbatch.report import course_report
from freshbatch.report_render import render_html, render_markdown, render_short
from freshbatch.runner import RunOptions, dry_run, prompt_request, raise_if_failed, run
from freshbatch.scaffold import SEEDS_FILE, NewCourse, init_workspace, new_course
from freshbatch.server import DEFAULT_HOST, DEFAULT_PORT, serve
from freshbatch.status import course_status
from freshbatch.stopping import interrupted, stop_on_signals
from freshbatch.validation import validate_phase
from freshbatch.workspace import DEFAULT_MODEL, find_workspace


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


def check_escalate_from(args: argparse.Namespace) -> None:
    if args.escalate_from is not None and not 2 <= args.escalate_from <= 10:
        raise InputError("--escalate-from must be between 2 and 10")


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


def cmd_init(args: argparse.Namespace) -> int:
    result = init_workspace(args.dir, demo=args.demo, phases=args.phases)
    for path in result.written:
        print(f"wrote {shown(path)}")
    for path in result.kept:
        print(f"kept {shown(path)} (it exists)")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    spec = NewCourse(
        code=args.course,
        target=args.target,
        known=args.known,
        seeds=args.seeds,
        seed_range=parse_range(args.seed_range),
        batch_size=args.batch_size,
        model=args.model,
        target_name=args.target_name,
        known_name=args.known_name,
    )
    folder = new_course(find_workspace(args.root), spec)
    print(f"wrote {shown(folder / 'course.yaml')} and {shown(folder / SEEDS_FILE)}")
    return 0


def parse_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, dash, last = text.partition("-")
    if not (dash and first.strip().isdigit() and last.strip().isdigit()):
        raise InputError(f"--range {text}: expected A-B, like 1-100")
    return int(first), int(last)


def cmd_doctor(args: argparse.Namespace) -> int:
    options = DoctorOptions(args.root, args.course, args.provider, args.model, args.claude_binary)
    passed = True
    for check in diagnose(options):
        print(check.line(), flush=True)
        passed = passed and check.ok is not False
    return 0 if passed else 1


def cmd_validate(args: argparse.Namespace) -> int:
    workspace = find_workspace(args.root)
    if args.phase == "all":
        if args.file is not None:
            raise InputError("--file needs one phase, not 'all'")
        course = workspace.load_course(args.course)
        names = [
            f"phase{n}"
            for n, p in sorted(load_phases(workspace).items())
            if file_exists(course.output_path(p.output_file))
        ]
    else:
        names = [args.phase]
    reports = [
        validate_phase(workspace, name, args.course, args.file, args.batch) for name in names
    ]
    if args.json:
        data = [r.to_dict() for r in reports]
        print(json.dumps(data[0] if args.phase != "all" else data, ensure_ascii=False, indent=2))
    else:
        console = make_console()
        for report in reports:
            print_report(console, report, args.limit)
    return 0 if all(r.valid for r in reports) else 1


def cmd_rules(args: argparse.Namespace) -> int:
    phases = load_phases(find_workspace(args.root))
    chosen = [
        p for n, p in sorted(phases.items()) if args.phase is None or args.phase in (str(n), p.key)
    ]
    rules = [(p.number, p.rules) for p in chosen]
    print_rules(make_console(), rules, [p.describe_sources() for p in chosen])
    return 0


def run_options(args: argparse.Namespace, batches: int | None) -> RunOptions:
    chosen = None
    if args.batches:
        try:
            chosen = tuple(parse_batch_selection(args.batches, batches or 10**6))
        except ValueError as exc:
            raise InputError(f"--batches: {exc}") from None
    if args.concurrency is not None and not 1 <= args.concurrency <= 256:
        raise InputError("--concurrency must be between 1 and 256")
    if args.max_pauses is not None and args.max_pauses < 1:
        raise InputError("--max-pauses must be at least 1")
    if not 1 <= args.max_attempts <= 10:
        raise InputError("--max-attempts must be between 1 and 10")
    check_escalate_from(args)
    if args.batch_timeout is not None and not args.batch_timeout > 0:
        raise InputError("--batch-timeout must be a positive number of seconds")
    try:
        command = tuple(shlex.split(args.command)) if args.command else ()
    except ValueError as exc:
        raise InputError(f"--command: {exc}") from None
    return RunOptions(
        provider=args.provider,
        model=args.model,
        batches=chosen,
        max_attempts=args.max_attempts,
        dry_run=args.dry_run,
        command=command,
        claude_binary=args.claude_binary,
        replay_dir=args.replay_dir,
        timeout=args.timeout,
        concurrency=args.concurrency,
        via=args.via,
        max_consecutive_pauses=args.max_pauses,
        poll_seconds=args.poll_seconds,
        hooks=tuple(notify_hook(command) for command in args.notify),
        on_failure=args.on_failure or "stop",
        escalate_model=args.escalate_model,
        escalate_from=args.escalate_from,
        batch_timeout=args.batch_timeout,
    )


def cmd_run(args: argparse.Namespace) -> int:
    workspace = find_workspace(args.root)
    course = workspace.load_course(args.course)
    options = run_options(args, len(course.plan()))
    console = make_console()
    if options.dry_run:
        for line in dry_run(workspace, args.phase, args.course, options):
            console.print(line)
        return 0
    display = RunDisplay(console)
    try:
        result = run(workspace, args.phase, args.course, options, listen=display.attach)
    finally:
        if display.progress is not None:
            print_summary(console, display.progress.state)
            print_failures(console, display.progress.state)
    console.print(escape(render_short(course_report(workspace, args.course))))
    raise_if_failed(result)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    check_escalate_from(args)
    plan = plan_phase(
        find_workspace(args.root), args.phase, args.course, args.model, args.via,
        RunOptions(escalate_model=args.escalate_model, escalate_from=args.escalate_from),
    )  # fmt: skip
    if args.json:
        print(json.dumps(plan.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_plan(make_console(), plan)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    progress = course_status(find_workspace(args.root), args.course)
    if args.json:
        print(json.dumps(progress, ensure_ascii=False, indent=2))
        return 0
    console = make_console()
    print_summary(console, progress)
    print_failures(console, progress)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    report = course_report(find_workspace(args.root), args.course)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        text = render_html(report) if args.format == "html" else render_markdown(report)
        sys.stdout.write(text)
    return 0


def cmd_prompt(args: argparse.Namespace) -> int:
    workspace = find_workspace(args.root)
    request = prompt_request(workspace, args.phase, args.course, args.batch, args.model)
    phase = resolve_phase(load_phases(workspace), args.phase, workspace)
    if args.text:
        print(f"===== {phase.describe_sources()} =====")
        for index, block in enumerate(request.system):
            print(f"===== system block {index + 1} =====\n{block}")
        print(f"===== cache breakpoint (prefix sha256 {request.prefix_sha256}) =====")
        for message in request.messages:
            print(f"===== {message.role} =====\n{message.text}")
    else:
        print(
            json.dumps(
                {
                    "prefix_sha256": request.prefix_sha256,
                    "files": dict(phase.sources),
                    "request": request.to_dict(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    serve(find_workspace(args.root), args.host, args.port)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    rows = model_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_models(make_console(), rows, model_table().checked)
    return 0


COMMANDS = {
    "models": cmd_models,
    "validate": cmd_validate,
    "run": cmd_run,
    "plan": cmd_plan,
    "status": cmd_status,
    "prompt": cmd_prompt,
    "rules": cmd_rules,
    "report": cmd_report,
    "serve": cmd_serve,
    "init": cmd_init,
    "new": cmd_new,
    "doctor": cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the only place that turns FreshbatchError into an exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        with stop_on_signals():
            return COMMANDS[args.cmd](args)
    except FreshbatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP
        line, code = interrupted(exc)
        print(line, file=sys.stderr)
        return code


def main_entry() -> None:
    from freshbatch.entry import main_entry as entry

    entry()
