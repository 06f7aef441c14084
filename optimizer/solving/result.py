"""What a run returns: a typed status, the objective and bound, the checked plan with its KPIs,
and typed stage records that credit every improvement to the stage that produced it.

Conventions: objectives are minimised, in the problem's money unit (CNY) for freight problems
and in QUBO energy for bare QUBOs; times are seconds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optimizer.freight.evaluate import Kpis, Plan

__all__ = ["Status", "PieceRecord", "StageRecord", "Result", "STANDINS"]

#: The trivial stand-ins a device-solved piece is measured against, at the same budget:
#: the incumbent alone, local search (the backend's own post-processing where it has one)
#: from the incumbent alone, uniformly random samples of the device's count and sizes with the
#: same post-processing, and simulated annealing.
STANDINS = ("incumbent", "local_search", "random", "anneal")


class Status(str, enum.Enum):
    """How a run ended. ``optimal`` and ``feasible`` are given only when the independent check agrees."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"  # the budget ran out before any checked plan existed
    INTERRUPTED = "interrupted"  # Ctrl-C; the best plan so far is kept
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PieceRecord:
    """One neighbourhood a device solved, and what the stand-ins reached on it."""

    names: tuple[str, ...]  # what was freed: shipment ids, or QUBO variable labels
    variables: int  # variables the device saw (the piece's QUBO)
    current: float  # full objective with the incumbent's choice for the piece
    device: float | None  # best full objective among the device's feasible samples (None: none feasible)
    device_origin: str | None  # origin of that sample ("device" raw, or "postprocessed")
    device_seconds: float
    standins: Mapping[str, float | None] = field(default_factory=dict)  # STANDINS -> best full objective
    standin_seconds: float = 0.0
    contribution: float = 0.0  # max(0, best stand-in - device): what only the device found
    accepted_from: str | None = None  # "device", a stand-in's name, or None (the incumbent stayed)
    strategy: str | None = None  # how the neighbourhood was chosen (energy-impact, resource, window, ...)

    @property
    def device_beat_standins(self) -> bool:
        return self.contribution > 0


@dataclass(frozen=True)
class StageRecord:
    """One stage of a run: the warm start, a decomposition round, or the refinement."""

    stage: str  # "warm_start" | "round" | "refine" | "solve"
    objective: float | None  # best objective after the stage
    seconds: float
    accepted: bool  # the stage moved the incumbent
    round: int | None = None
    gain: float = 0.0  # objective drop this stage caused
    solver: str | None = None
    source: str | None = None  # the warm start's origin (a baseline's name, "anneal", "initial")
    subproblem_size: int = 0  # the largest piece's variables
    pieces: tuple[PieceRecord, ...] = ()
    credited: bool = False  # a round whose improvement the device is credited with

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["pieces"] = [asdict(p) | {"piece_shipments": list(p.names)} for p in self.pieces]
        return out


@dataclass(frozen=True, eq=False)
class Result:
    """The answer of :func:`optimizer.solving`: typed, frozen, JSON-serialisable with :meth:`to_json`."""

    status: Status
    backend: str
    seed: int
    objective: float | None  # minimised; CNY for freight problems, QUBO energy for bare QUBOs
    bound: float | None = None  # a proven lower bound of the optimum, when the solver gives one
    feasible: bool = False  # passed the independent check (freight: the problem's own constraints)
    plan: Plan | None = None
    kpis: Kpis | None = None
    baseline: str | None = None  # name of the best baseline dispatcher
    baseline_objective: float | None = None
    baseline_kpis: Kpis | None = None
    violations: tuple[str, ...] = ()
    energy: float | None = None  # QUBO energy of the chosen sample, recomputed
    stages: tuple[StageRecord, ...] = ()
    timing: Mapping[str, float] = field(default_factory=dict)  # seconds: prepare, solve, evaluate, total
    problem: str = ""
    message: str = ""  # why, for time_limit / interrupted / error
    details: Mapping[str, Any] = field(default_factory=dict)  # the full results document (to_json)

    @property
    def optimal(self) -> bool:
        return self.status is Status.OPTIMAL

    @property
    def device_contribution(self) -> float:
        """Objective gained beyond every stand-in on device-solved pieces (0 without a device)."""
        return float(sum(p.contribution for s in self.stages for p in s.pieces))

    def summary(self) -> str:
        objective = "-" if self.objective is None else f"{self.objective:,.2f}"
        return f"{self.problem}: {self.backend} {self.status.value}, objective {objective}"

    def to_json(self) -> dict[str, Any]:
        doc = dict(self.details)
        doc.update({
            "status": self.status.value,
            "backend": self.backend,
            "seed": self.seed,
            "objective": self.objective,
            "bound": self.bound,
            "feasible": self.feasible,
            "energy": self.energy,
            "baseline": self.baseline,
            "baseline_objective": self.baseline_objective,
            "kpis": None if self.kpis is None else self.kpis.as_dict(),
            "baseline_kpis": None if self.baseline_kpis is None else self.baseline_kpis.as_dict(),
            "violations": list(self.violations),
            "stages": [s.to_json() for s in self.stages],
            "device_contribution": self.device_contribution,
            "timing": dict(self.timing),
            "message": self.message,
        })
        return doc
