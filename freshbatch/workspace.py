"""The workspace (freshbatch.yaml, courses/, and optional intelligence/ and validators/ that
override the built-in phases) and its courses, loaded and checked."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freshbatch.batching import BatchPlan, plan_batches
from freshbatch.errors import InputError
from freshbatch.files import file_exists, read_json, read_yaml, shown
from freshbatch.hooks import Hook, parse_hooks
from freshbatch.models import default_model

DEFAULT_MODEL = default_model()  # the current recommended Sonnet, from freshbatch/models.yaml
SEVERITIES = ("error", "warning", "off")
COURSE_CODE = re.compile(r"[a-z0-9_]+")
LANGUAGE_CODE = re.compile(r"[a-z]{3}")
_SEED_ID = re.compile(r"S\d{4}")
_COURSE_KEYS = {
    "thinking",
    "effort",
    "code",
    "target",
    "known",
    "target_name",
    "known_name",
    "seeds",
    "seed_range",
    "batch_size",
    "model",
    "rules",
    "hooks",
    "escalate",
}


@dataclass(frozen=True)
class Escalation:
    """Attempts from `from_attempt` on run on the stronger `model`."""

    model: str
    from_attempt: int = 3

    def model_for(self, attempt: int, model: str) -> str:
        return self.model if attempt >= self.from_attempt else model


@dataclass(frozen=True)
class Seed:
    """A canonical seed: language-neutral English with an optional {target} placeholder."""

    seed_id: str
    canonical_id: str | None
    source: str


@dataclass(frozen=True)
class Course:
    """A course folder with its checked course.yaml."""

    code: str
    folder: Path
    target: str
    known: str
    target_name: str
    known_name: str
    seeds_path: Path
    seed_range: tuple[int, int] | None = None
    batch_size: int = 20
    model: str | None = None
    rules: dict[str, str] = field(default_factory=dict)
    hooks: tuple[Hook, ...] = ()
    thinking: str | None = None  # off | adaptive, over freshbatch.yaml's
    effort: str | None = None
    escalate: Escalation | None = None  # over freshbatch.yaml's

    @property
    def config_path(self) -> Path:
        return self.folder / "course.yaml"

    @property
    def state_dir(self) -> Path:
        return self.folder / ".freshbatch"

    def output_path(self, name: str) -> Path:
        return self.folder / name

    def load_seeds(self) -> list[Seed]:
        """The seeds of this course: the seeds file cut to seed_range."""
        seeds = load_canonical_seeds(self.seeds_path)
        if self.seed_range is None:
            return seeds
        first, last = self.seed_range
        if last > len(seeds):
            raise InputError(
                f"{shown(self.config_path)}: seed_range ends at {last} but "
                f"{shown(self.seeds_path)} holds {len(seeds)} seeds"
            )
        return seeds[first - 1 : last]

    def plan(self, seeds: list[Seed] | None = None) -> BatchPlan:
        seeds = self.load_seeds() if seeds is None else seeds
        return plan_batches([s.seed_id for s in seeds], self.batch_size)


@dataclass(frozen=True)
class Settings:
    """Workspace defaults from freshbatch.yaml at the root (every key optional)."""

    model: str | None = None
    concurrency: int = 1
    max_consecutive_pauses: int = 10
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    hooks: tuple[Hook, ...] = ()
    # how the account's API charges output tokens against its per-minute limit: "reserve"
    # (max_tokens when a request starts, settled when it ends: Anthropic's API) or "actual"
    output_charge: str = "reserve"
    thinking: str | None = None  # off | adaptive (None: the documented default, off)
    effort: str | None = None  # low | medium | high | ... (None: the model's default)
    escalate: Escalation | None = None


_SETTINGS_KEYS = {
    "model", "concurrency", "max_consecutive_pauses", "prices", "output_charge", "thinking",
    "effort", "hooks", "escalate",
}  # fmt: skip
_PRICE_KEYS = {
    "input", "output", "cache_write", "cache_write_1h", "cache_read", "batch_discount",
    "min_cache_tokens",
}  # fmt: skip
OUTPUT_CHARGES = ("reserve", "actual")
THINKING = ("off", "adaptive")
EFFORTS = ("low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True)
class Workspace:
    """A folder holding freshbatch.yaml or courses/ (and optionally its own phase files)."""

    root: Path

    def settings(self) -> Settings:
        """freshbatch.yaml at the root, checked; defaults when there is none."""
        path = self.root / "freshbatch.yaml"
        if not file_exists(path):
            return Settings()
        return parse_settings(read_yaml(path), shown(path))

    @property
    def intelligence_dir(self) -> Path:
        return self.root / "intelligence"

    @property
    def validators_dir(self) -> Path:
        return self.root / "validators"

    @property
    def courses_dir(self) -> Path:
        return self.root / "courses"

    def course_codes(self) -> list[str]:
        if not self.courses_dir.is_dir():
            return []
        return sorted(p.name for p in self.courses_dir.iterdir() if (p / "course.yaml").is_file())

    def load_course(self, code: str) -> Course:
        if not COURSE_CODE.fullmatch(code):
            raise InputError(f"course '{code}': a course code is lower-case letters, digits and _")
        folder = self.courses_dir / code
        if not file_exists(folder / "course.yaml"):
            known = ", ".join(self.course_codes()) or "none"
            raise InputError(
                f"{shown(folder / 'course.yaml')}: no such course (courses here: {known})"
            )
        return parse_course(folder, read_yaml(folder / "course.yaml"))


def check_keys(raw: Any, allowed: set[str], where: str) -> None:
    """Refuse anything but a mapping whose keys are all allowed (a typo must not pass)."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - allowed)
    if unknown:
        names = ", ".join(sorted(allowed))
        raise InputError(f"{where}: unknown key '{unknown[0]}' (allowed: {names})")


def parse_settings(raw: Any, where: str) -> Settings:
    if raw is None:
        return Settings()
    check_keys(raw, _SETTINGS_KEYS, where)
    prices = raw.get("prices") or {}
    if not isinstance(prices, dict):
        raise InputError(f"{where}: prices must map model names to their prices")
    for model, price in prices.items():
        if (
            not isinstance(price, dict)
            or not set(price) <= _PRICE_KEYS
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                for v in price.values()
            )
        ):
            raise InputError(
                f"{where}: prices.{model} must give non-negative numbers for "
                "input, output, cache_write, cache_read (USD per million tokens)"
            )
    return Settings(
        model=_text(raw, "model", where) if "model" in raw else None,
        concurrency=_int(raw.get("concurrency", 1), "concurrency", where, 1, 256),
        max_consecutive_pauses=_int(
            raw.get("max_consecutive_pauses", 10), "max_consecutive_pauses", where, 1, 1000
        ),
        prices={str(k): dict(v) for k, v in prices.items()},
        hooks=parse_hooks(raw.get("hooks"), where),
        output_charge=_choice(raw, "output_charge", OUTPUT_CHARGES, where) or "reserve",
        thinking=_choice(raw, "thinking", THINKING, where),
        effort=_choice(raw, "effort", EFFORTS, where),
        escalate=parse_escalation(raw.get("escalate"), where),
    )


def parse_escalation(raw: Any, where: str) -> Escalation | None:
    """`escalate: {model: M, from_attempt: N}` (from_attempt defaults to 3)."""
    if raw is None:
        return None
    check_keys(raw, {"model", "from_attempt"}, f"{where}: escalate")
    return Escalation(
        model=_text(raw, "model", f"{where}: escalate"),
        from_attempt=_int(raw.get("from_attempt", 3), "escalate.from_attempt", where, 2, 10),
    )


def _choice(raw: dict[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str | None:
    """An optional setting that must be one of `allowed`."""
    if key not in raw:
        return None
    value = raw[key]
    if value is False and key == "thinking":
        value = "off"  # YAML reads a bare `off` as false
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{where}: {key} is {value!r}; use one of {', '.join(allowed)}")
    return value


def is_workspace(folder: Path) -> bool:
    return (folder / "freshbatch.yaml").is_file() or (folder / "courses").is_dir()


def find_workspace(root: str | Path | None = None, cwd: Path | None = None) -> Workspace:
    """--root, else $FRESHBATCH_ROOT, else the nearest folder up with freshbatch.yaml, courses/."""
    chosen = root if root is not None else os.environ.get("FRESHBATCH_ROOT") or None
    if chosen is not None:
        folder = Path(chosen).expanduser().resolve()
        if not is_workspace(folder):
            raise InputError(
                f"{folder}: not a freshbatch workspace (needs freshbatch.yaml or courses/); "
                f"make one with 'freshbatch init {folder}'"
            )
        return Workspace(folder)
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if is_workspace(folder):
            return Workspace(folder)
    raise InputError(
        f"{start}: no freshbatch workspace here or above (a folder with freshbatch.yaml or "
        "courses/); run 'freshbatch init', pass --root DIR or set FRESHBATCH_ROOT"
    )


def parse_course(folder: Path, raw: Any) -> Course:
    """Check every field of a course.yaml and build the Course, or raise a one-line InputError."""
    where = shown(folder / "course.yaml")
    check_keys(raw, _COURSE_KEYS, where)
    code = _text(raw, "code", where)
    if not COURSE_CODE.fullmatch(code):
        raise InputError(f"{where}: code '{code}' must use only a-z, 0-9 and _")
    if code != folder.name:
        raise InputError(f"{where}: code '{code}' must equal the folder name '{folder.name}'")
    for lang in ("target", "known"):
        if not LANGUAGE_CODE.fullmatch(_text(raw, lang, where)):
            raise InputError(f"{where}: {lang} '{raw[lang]}' is not an ISO 639-3 code like 'ita'")
    seeds = Path(_text(raw, "seeds", where))
    return Course(
        code=code,
        folder=folder,
        target=raw["target"],
        known=raw["known"],
        target_name=_text(raw, "target_name", where),
        known_name=_text(raw, "known_name", where),
        seeds_path=seeds if seeds.is_absolute() else folder / seeds,
        seed_range=_seed_range(raw.get("seed_range"), where),
        batch_size=_int(raw.get("batch_size", 20), "batch_size", where, 1, 1000),
        model=_text(raw, "model", where) if "model" in raw else None,
        rules=_rules(raw.get("rules"), where),
        hooks=parse_hooks(raw.get("hooks"), where),
        thinking=_choice(raw, "thinking", THINKING, where),
        effort=_choice(raw, "effort", EFFORTS, where),
        escalate=parse_escalation(raw.get("escalate"), where),
    )


def _text(raw: dict[str, Any], name: str, where: str) -> str:
    if name not in raw:
        raise InputError(f"{where}: missing required key '{name}'")
    value = raw[name]
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: {name} must be a non-empty string, got {value!r}")
    return value


def _int(value: Any, name: str, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: {name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{where}: {name} is {value}; it must be between {low} and {high}")
    return value


def _seed_range(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(f"{where}: seed_range must be [first, last], got {value!r}")
    first = _int(value[0], "seed_range[0]", where, 1, 10**6)
    last = _int(value[1], "seed_range[1]", where, 1, 10**6)
    if first > last:
        raise InputError(f"{where}: seed_range [{first}, {last}] ends before it starts")
    return first, last


def _rules(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: rules must map rule names to error, warning or off")
    rules: dict[str, str] = {}
    for name, severity in value.items():
        severity = "off" if severity is False else severity  # YAML 1.1 reads a bare off as false
        if severity not in SEVERITIES:
            raise InputError(
                f"{where}: rules.{name} is {severity!r}; use one of error, warning, off"
            )
        if name == "schema":
            raise InputError(
                f"{where}: rules.schema cannot be changed: the other rules need well-formed data"
            )
        rules[str(name)] = str(severity)
    return rules


def load_canonical_seeds(path: Path) -> list[Seed]:
    """Read a canonical seeds file: a JSON array of {seed_id, canonical_id, source}."""
    raw = read_json(path)
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{shown(path)}: expected a non-empty JSON array of seeds")
    seeds: list[Seed] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InputError(f"{shown(path)}: item {index} is not an object")
        seed_id, source = item.get("seed_id"), item.get("source")
        if not isinstance(seed_id, str) or not _SEED_ID.fullmatch(seed_id):
            raise InputError(f"{shown(path)}: item {index} has no seed_id like S0001")
        if seed_id in seen:
            raise InputError(f"{shown(path)}: seed_id {seed_id} appears twice")
        if not isinstance(source, str) or not source.strip():
            raise InputError(f"{shown(path)}: {seed_id} has no source sentence")
        seen.add(seed_id)
        canonical = item.get("canonical_id")
        seeds.append(Seed(seed_id, canonical if isinstance(canonical, str) else None, source))
    return seeds
