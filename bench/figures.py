"""Medians and 95th percentiles, and the table `make bench` prints."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Options:
    creates: int = 20
    execs: int = 200
    labels: dict[str, str] = field(default_factory=dict)
    """Labels for every container a suite makes itself (removed at the end of the run)."""
    only: tuple[str, ...] = ()


@dataclass
class Series:
    name: str
    unit: str = "ms"
    samples: list[float] = field(default_factory=list)
    floor: "Series | None" = None
    budget: float | None = None

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "unit": self.unit, "n": len(self.samples),
                                  "median": round(self.median, 3), "p95": round(self.p95, 3),
                                  "p99": round(self.p99, 3), "budget": self.budget}
        if self.floor is not None:
            out["floor"] = self.floor.summary()
        return out


def table(series: list[Series]) -> str:
    rows = [f"{'operation':44} {'n':>4} {'median':>9} {'p95':>9}  {'floor median':>12} {'floor p95':>10}  budget"]
    for s in series:
        floor = s.floor
        rows.append(
            f"{s.name:44} {len(s.samples):>4} {s.median:>7.1f}{s.unit:2} {s.p95:>7.1f}{s.unit:2}  "
            + (f"{floor.median:>10.1f}{floor.unit:2} {floor.p95:>8.1f}{floor.unit:2}" if floor else f"{'-':>12} {'-':>10}")
            + (f"  {s.budget:g}{s.unit}" if s.budget is not None else "")
        )
    return "\n".join(rows)
