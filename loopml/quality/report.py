"""The outcome of a validation run: every failed expectation as a finding."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    expectation: str
    column: str | None
    expected: dict[str, Any]
    observed: str

    def message(self) -> str:
        col = f"column '{self.column}': " if self.column else ""
        if self.observed.startswith("declared "):  # a type failure says it all
            return f"[{self.check}] {col}{self.observed}"
        if self.check in _PLAIN and not self.observed.startswith("error"):
            observed = self.observed
            if self.check == "duplicate_rows":  # whole rows as examples would flood the log
                observed = observed.split(", e.g.")[0]
            return f"[{self.check}] {col}{observed}: {_PLAIN[self.check](self.expected)}"
        exp = ", ".join(f"{k}={short(v)}" for k, v in self.expected.items())
        return f"[{self.check}] {col}{self.expectation}({exp}) -> observed {self.observed}"


_PLAIN = {
    "finite": lambda e: "not finite numbers (inf, -inf or beyond the float range)",
    "bounds": lambda e: f"outside the declared bounds [{e.get('min_value')}, {e.get('max_value')}]",
    "duplicate_rows": lambda e: "repeat another row of the batch in every column",
}
"""Plain words for the checks of impossible values (their GX form says little)."""


@dataclass(frozen=True)
class ValidationReport:
    snapshot: str
    success: bool
    evaluated: int
    blocking: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    gx_result: dict[str, Any] = field(default_factory=dict, repr=False)
    reused: bool = False
    """Given back from an earlier run with the same inputs (:mod:`loopml.quality.reuse`)."""

    def merged(self, later: ValidationReport) -> ValidationReport:
        """This report followed by ``later`` (on the same snapshot), as one."""
        return ValidationReport(
            snapshot=self.snapshot,
            success=self.success and later.success,
            evaluated=self.evaluated + later.evaluated,
            blocking=[*self.blocking, *later.blocking],
            warnings=[*self.warnings, *later.warnings],
            seconds=self.seconds + later.seconds,
            gx_result={
                **later.gx_result,
                "results": [
                    *self.gx_result.get("results", []),
                    *later.gx_result.get("results", []),
                ],
            },
        )

    def summary(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "success": self.success,
            "evaluated": self.evaluated,
            "blocking": [f.message() for f in self.blocking],
            "warnings": [f.message() for f in self.warnings],
            "findings": [asdict(f) for f in (*self.blocking, *self.warnings)],
        }


def short(v: Any, limit: int = 8) -> str:
    if isinstance(v, list | tuple | set):
        items = list(v)
        shown = ", ".join(map(str, items[:limit]))
        return f"[{shown}{', ...' if len(items) > limit else ''}]"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
