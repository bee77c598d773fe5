"""Command line: parse arguments, make one library call, print, return an exit code."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from rich.markup import escape

from freshbatch.batching import parse_batch_selection
from freshbatch.cli_parser import build_parser
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
from freshbatch.server import serve
from freshbatch.status import course_status
from freshbatch.stopping import interrupted, stop_on_signals
from freshbatch.validation import validate_phase
from freshbatch.workspace import find_workspace


def check_escalate_from(args: argparse.Namespace) -> None:
    if args.escalate_from is not None and not 2 <= args.escalate_from <= 10:
        raise InputError("--escalate-from must be between 2 and 10")


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
