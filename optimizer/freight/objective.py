"""What the operator optimises: the criteria every plan and train is measured in, and their weights.

Criteria (one column each in every objective-term matrix, in this order):

- ``cost``: CNY (fuel, train-km, dwell, lateness and berth-miss charges, deferral value), kept
  to the fen;
- ``lateness``: priority-weighted lateness, hours (priority x hours late against the due time or,
  for a berth, the vessel cut-off, whichever is later). A deferred shipment counts as one slot
  later than the latest of its candidate plans (or than the horizon end), so deferring is never
  a way to be less late;
- ``dwell``: shipment-hours at transfer yards (waiting at a transfer-yard origin included);
- ``diesel``: litres;
- ``co2``: kg (diesel x ``costs.co2_kg_per_diesel_litre`` + kWh x ``costs.co2_kg_per_kwh``).

Modes: ``weighted`` minimises ``sum(weight x criterion)``. ``service-first`` minimises
priority-weighted lateness, then the weighted sum, exactly lexicographically (CP-SAT solves the
two tiers in two phases; every other backend sees the big-M scalarisation stated in
:func:`lexicographic_scale`). ``guard_baseline`` adds three rows that keep the plan at least as
good as the best baseline's in on-time shipments, transfer-yard dwell and cost; the baseline
plan always satisfies them, so the model can never become infeasible through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CRITERIA", "CRITERIA_UNITS", "OBJECTIVE_MODES", "Objective", "lexicographic_scale"]

CRITERIA = ("cost", "lateness", "dwell", "diesel", "co2")
CRITERIA_UNITS = {"cost": "CNY", "lateness": "priority-weighted h", "dwell": "h at transfer yards",
                  "diesel": "L", "co2": "kg"}
OBJECTIVE_MODES = ("weighted", "service-first")
#: Largest weight accepted (a weight is a price: CNY per unit of its criterion, in effect).
MAX_WEIGHT = 1e6


@dataclass(frozen=True)
class Objective:
    """``[objective]`` in the config file: weights (>= 0, finite) per criterion, mode, guard."""

    cost: float = 1.0
    lateness: float = 0.0
    dwell: float = 0.0
    diesel: float = 0.0
    co2: float = 0.0
    mode: str = "weighted"
    guard_baseline: bool | None = None  # None: on in service-first mode, off in weighted mode

    def problems(self) -> list[tuple[str, str, object]]:
        """(field, message, value) for every bad setting; empty when valid."""
        out = []
        for name in CRITERIA:
            w = getattr(self, name)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0 \
                    or w > MAX_WEIGHT:
                out.append((name, f"weight must be a finite number in [0, {MAX_WEIGHT:g}]", w))
        if self.mode not in OBJECTIVE_MODES:
            out.append(("mode", f"expected one of {', '.join(repr(m) for m in OBJECTIVE_MODES)}", self.mode))
        if not out and not any(getattr(self, name) for name in CRITERIA):
            out.append(("cost", "at least one weight must be positive", 0))
        if self.guard_baseline is not None and not isinstance(self.guard_baseline, bool):
            out.append(("guard_baseline", "expected true or false", self.guard_baseline))
        return out

    @property
    def weights(self) -> np.ndarray:
        return np.array([float(getattr(self, name)) for name in CRITERIA])

    @property
    def guarded(self) -> bool:
        return self.mode == "service-first" if self.guard_baseline is None else bool(self.guard_baseline)

    @property
    def lexicographic(self) -> bool:
        return self.mode == "service-first"


def lexicographic_scale(primary_step: float, secondary_range: float) -> float:
    """Weight M of the primary tier in ``M * primary + secondary`` that makes the sum lexicographic.

    Exact when distinct primary totals differ by at least ``primary_step`` and the secondary
    objective varies by less than ``secondary_range`` over all assignments: then one step of the
    primary outweighs any change of the secondary. (CP-SAT does not use it: it solves the tiers
    in two phases, so no big-M can overflow its 64-bit integers.)
    """
    return (secondary_range + 1.0) / primary_step
