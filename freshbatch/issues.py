"""Issue records: what a validator found, shared by reports, feedback and progress."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """One finding. `rule` is a stable kebab-case name; ids are None where they do not apply."""

    severity: str
    rule: str
    message: str
    batch: int | None = None
    seed_id: str | None = None
    lego_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: data[k] for k in ("severity", "rule", "batch", "seed_id", "lego_id", "message")}


@dataclass(frozen=True)
class RuleInfo:
    """A rule as a phase declares it: default severity and one line on what it checks."""

    name: str
    severity: str
    checks: str


class Reporter:
    """Collects issues for one batch, applying the course's severity overrides."""

    def __init__(
        self, rules: Mapping[str, RuleInfo], overrides: Mapping[str, str], batch: int | None
    ):
        self._rules = rules
        self._overrides = overrides
        self.batch = batch
        self.issues: list[Issue] = []

    def severity(self, rule: str) -> str:
        if rule not in self._rules:
            raise KeyError(f"rule '{rule}' is not declared by this phase")
        return self._overrides.get(rule, self._rules[rule].severity)

    def add(
        self, rule: str, message: str, *, seed_id: str | None = None, lego_id: str | None = None
    ) -> None:
        severity = self.severity(rule)
        if severity == "off":
            return
        self.issues.append(Issue(severity, rule, message, self.batch, seed_id, lego_id))

    def is_on(self, rule: str) -> bool:
        return self.severity(rule) != "off"

    @property
    def has_errors(self) -> bool:
        return any(i.severity == ERROR for i in self.issues)


def count_errors(issues: Iterable[Issue]) -> int:
    return sum(1 for i in issues if i.severity == ERROR)
