"""`freshbatch doctor`: one line per check of the set-up, each with the fix when it fails.

The offline checks read files only; the online ones (the API reachable, the model known) run
only with an API key, through the SDK's models list. The key itself is never shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from freshbatch.errors import FreshbatchError
from freshbatch.phases import PhaseDef, check_course_rules, load_phases
from freshbatch.pricing import PRICE_HINT, Pricing
from freshbatch.prompts import system_blocks
from freshbatch.workspace import DEFAULT_MODEL, Course, Workspace, find_workspace

CHARS_PER_TOKEN = 4  # a cautious estimate offline: English prose runs about 4 characters a token


@dataclass(frozen=True)
class Check:
    """One line of the report: passed (True), failed (False) or skipped (None)."""

    ok: bool | None
    text: str

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "-"}[self.ok]
        return f"{mark} {self.text}"


@dataclass(frozen=True)
class DoctorOptions:
    root: str | None = None
    course: str | None = None
    provider: str | None = None
    model: str | None = None
    claude_binary: str = "claude"
    timeout: float = 20.0


def diagnose(options: DoctorOptions) -> Iterator[Check]:
    """Every check, in order; a check that cannot run (no workspace) is reported, not raised."""
    try:
        workspace = find_workspace(options.root)
        settings = workspace.settings()
    except FreshbatchError as exc:
        yield Check(False, f"workspace: {exc}")
        return
    yield Check(True, f"workspace {workspace.root}: freshbatch.yaml valid")
    courses = _courses(workspace, options.course)
    phases: dict[int, PhaseDef] = {}
    yield from _attempt("phase files", lambda: _check_phases(workspace, phases))
    checked: list[Course] = []
    for code in courses:
        yield from _attempt(f"course {code}", _course_checker(workspace, code, checked))
    course = checked[0] if options.course is not None and checked else None
    model = options.model or (course.model if course else None) or settings.model or DEFAULT_MODEL
    pricing = Pricing.with_overrides(settings.prices)
    yield price_check(pricing, model)
    provider = options.provider or ("anthropic" if os.environ.get("ANTHROPIC_API_KEY") else None)
    yield from _provider_checks(provider, model, options)
    for phase in phases.values():
        yield prefix_check(phase, course, pricing, model)


def _courses(workspace: Workspace, code: str | None) -> list[str]:
    return [code] if code is not None else workspace.course_codes()


def _attempt(label: str, check: Callable[[], str]) -> Iterator[Check]:
    try:
        yield Check(True, f"{label}: {check()}")
    except FreshbatchError as exc:
        yield Check(False, f"{label}: {exc}")


def _check_phases(workspace: Workspace, into: dict[int, PhaseDef]) -> str:
    phases = load_phases(workspace)
    for phase in phases.values():
        phase.intelligence()
        _ = phase.batch_schema, phase.merged_schema, phase.module
    into.update(phases)
    own = sum(o != "built-in" for p in phases.values() for _, o in p.sources)
    where = f"{own} files from the workspace, the rest built-in" if own else "all built-in"
    return f"{', '.join(p.key for p in phases.values())} valid ({where}; see 'freshbatch rules')"


def _course_checker(workspace: Workspace, code: str, into: list[Course]) -> Callable[[], str]:
    return lambda: _check_course(workspace, code, into)


def _check_course(workspace: Workspace, code: str, into: list[Course]) -> str:
    course = workspace.load_course(code)
    check_course_rules(course, load_phases(workspace))
    seeds = course.load_seeds()
    into.append(course)
    return f"course.yaml and {len(seeds)} seeds valid, {len(course.plan(seeds))} batches"


def price_check(pricing: Pricing, model: str) -> Check:
    """Whether the model table (or freshbatch.yaml's prices:) gives this model a price."""
    price = pricing.price(model)
    if price is None:
        return Check(False, f"price for {model}: unknown, costs would show as unknown; "
                     f"{PRICE_HINT}")  # fmt: skip
    return Check(True, f"price for {model}: ${price.input:g} in, ${price.output:g} out per M")


def prefix_check(phase: PhaseDef, course: Course | None, pricing: Pricing, model: str) -> Check:
    """Is the cached prefix (framing and intelligence) long enough for the model to cache it?"""
    try:
        text = "".join(system_blocks(phase, course)) if course else phase.intelligence()
    except FreshbatchError as exc:
        return Check(False, f"{phase.key} cached prefix: {exc}")
    tokens = len(text) // CHARS_PER_TOKEN
    needed = pricing.min_cache_tokens(model)
    label = f"{phase.key} cached prefix: about {tokens} tokens"
    if needed is None:
        return Check(True, f"{label} ({model}'s minimum cacheable length is not known)")
    if tokens < needed:
        return Check(
            False,
            f"{label}, below {model}'s minimum of {needed}: it would not be cached; "
            "lengthen the phase's intelligence or choose another model",
        )
    return Check(True, f"{label}, above {model}'s minimum of {needed}")


def _provider_checks(provider: str | None, model: str, options: DoctorOptions) -> Iterator[Check]:
    has_key = bool(os.environ.get("ANTHROPIC_API_KEY"))
    if provider in (None, "anthropic"):
        if has_key:
            yield Check(True, "ANTHROPIC_API_KEY is set")
        else:
            yield Check(
                False,
                "ANTHROPIC_API_KEY is not set: export ANTHROPIC_API_KEY=... "
                "(or pass --provider claude-cli, command or replay)",
            )
    if provider == "claude-cli":
        yield claude_check(options.claude_binary, options.timeout)
    if not has_key:
        yield Check(None, "API reachable and model known: skipped (no key)")
        return
    yield models_check(model, options.timeout)


def claude_check(binary: str, timeout: float) -> Check:
    from freshbatch.providers.claude_cli import check_version

    try:
        version = check_version(binary, timeout)
    except FreshbatchError as exc:
        return Check(False, f"claude binary: {exc}; install it or pass --claude-binary PATH")
    return Check(True, f"claude binary {binary}: Claude Code {version}")


def models_check(model: str, timeout: float) -> Check:
    """List the API's models through the SDK (honours ANTHROPIC_BASE_URL); is the model there?"""
    import anthropic

    try:
        client = anthropic.Anthropic(max_retries=0, timeout=timeout)
        listed = [info.id for info in client.models.list(limit=100)]
    except anthropic.AuthenticationError:
        return Check(False, "API: the key was refused (401); check ANTHROPIC_API_KEY")
    except anthropic.APIStatusError as exc:
        return Check(False, f"API: models list answered HTTP {exc.status_code}; try again later")
    except anthropic.APIConnectionError as exc:
        return Check(False, f"API: cannot reach it ({type(exc).__name__}); check the network")
    if any(name == model or name.startswith(model + "-") for name in listed):
        return Check(True, f"API reachable; model {model} known")
    shown = ", ".join(listed[:5]) or "none"
    return Check(
        False,
        f"API reachable, but model {model} is not in its models list ({shown}, ...); "
        "fix model: in course.yaml or freshbatch.yaml, or pass --model",
    )
