"""Command line: parse arguments, make one library call, print, return an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from freshbatch.console import make_console, print_report, print_rules
from freshbatch.errors import FreshbatchError, InputError
from freshbatch.phases import load_phases
from freshbatch.validation import validate_phase
from freshbatch.workspace import find_workspace


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freshbatch", description="Run LLM course generation in fresh, validated batches."
    )
    parser.add_argument("--root", help="workspace folder (default: $FRESHBATCH_ROOT or the "
                        "nearest folder above holding intelligence/ and courses/)")  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check existing outputs against a phase's rules")
    validate.add_argument("phase", help="phase1, phase3, phase5 (or 1, 3, 5), or all")
    validate.add_argument("course", help="course code: a folder under courses/")
    validate.add_argument("--file", type=Path, help="validate this file instead of the merged one")
    validate.add_argument("--batch", type=int, help="check only batch K (earlier ones set context)")
    validate.add_argument("--json", action="store_true", help="print one JSON report")
    validate.add_argument("--limit", type=int, default=10,
                          help="issues shown per batch (0: all; default 10)")  # fmt: skip

    rules = commands.add_parser("rules", help="list every phase's rules and default severities")
    rules.add_argument("phase", nargs="?", help="only this phase")
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    workspace = find_workspace(args.root)
    if args.phase == "all":
        if args.file is not None:
            raise InputError("--file needs one phase, not 'all'")
        course = workspace.load_course(args.course)
        names = [f"phase{n}" for n, p in sorted(load_phases(workspace).items())
                 if course.output_path(p.output_file).is_file()]  # fmt: skip
    else:
        names = [args.phase]
    reports = [validate_phase(workspace, name, args.course, args.file, args.batch) for name in names]
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
    chosen = [(n, p.rules) for n, p in sorted(phases.items())
              if args.phase is None or args.phase in (str(n), f"phase{n}")]  # fmt: skip
    print_rules(make_console(), chosen)
    return 0


COMMANDS = {"validate": cmd_validate, "rules": cmd_rules}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the only place that turns FreshbatchError into an exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except FreshbatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main_entry() -> None:
    sys.exit(main())
