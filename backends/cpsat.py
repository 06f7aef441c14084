"""OR-Tools CP-SAT: the classical baseline (proven optimum or best bound) and refinement stage.

Two entry points:
- :meth:`CpSatSolver.solve` takes a bare QUBO (the common interface);
- :meth:`CpSatSolver.solve_model` takes the constrained model directly (exactly-one groups and
  capacity rows as native constraints), which is far stronger than the penalised QUBO.

CP-SAT needs integer coefficients: objectives are multiplied by ``scale`` (default: the
smallest power of ten, up to 10^6, that makes every coefficient integral; otherwise 10^6) and
rounded. Reported objectives and energies are always recomputed in floating point from the
original model or QUBO; the bound is divided back and loosened by the worst-case rounding error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from optimizer.errors import MissingDependency
from optimizer.qubo.model import BinaryModel
from optimizer.qubo import Qubo
from optimizer.solve.solver import SampleSet, check_size

__all__ = ["CpSatSolver", "ModelSolution"]


@dataclass(frozen=True)
class ModelSolution:
    x: np.ndarray  # best assignment found (model variables)
    objective: float  # recomputed from the model
    bound: float  # lower bound on the model optimum (minimisation)
    optimal: bool
    status: str
    seconds: float
    info: dict[str, object] = field(default_factory=dict)


def _integer_scale(values: np.ndarray, max_power: int = 6) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[values != 0]
    for power in range(max_power + 1):
        scaled = values * 10**power
        if np.allclose(scaled, np.rint(scaled), rtol=0, atol=1e-6):
            return float(10**power)
    return float(10**max_power)


def _rounding_error(values: np.ndarray, scale: float) -> float:
    """Worst-case gap between the scaled integer objective and the true one, in original units."""
    return float(np.abs(values * scale - np.rint(values * scale)).sum() / scale)


def _proven(rounding: float, objective: float) -> bool:
    """An optimum of the scaled integer model is reported as proven when rounding the
    coefficients moved the objective by less than 1e-5 of its size (or 1e-5 absolute)."""
    return rounding <= 1e-5 * max(1.0, abs(objective))


class CpSatSolver:
    """CP-SAT on a QUBO or on the constrained model. Exact given enough time."""

    name: ClassVar[str] = "cpsat"
    heuristic: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, workers: int = 2, scale: float | None = None, max_variables: int | None = None,
                 log: bool = False):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.scale = scale
        self.max_variables = max_variables
        self.log = log

    def _cp(self):
        try:
            from ortools.sat.python import cp_model
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise MissingDependency(self.name, "ortools") from exc
        return cp_model

    def _run(self, cp_model, model, *, seed: int, time_limit: float):
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.01, float(time_limit))
        solver.parameters.num_workers = self.workers
        solver.parameters.random_seed = int(seed) % (2**31 - 1)
        # Same seed, same answer: with several workers CP-SAT is only deterministic in this mode.
        solver.parameters.interleave_search = self.workers > 1
        solver.parameters.log_search_progress = self.log
        status = solver.Solve(model)
        return solver, status

    @staticmethod
    def _products(cp_model, model, x, rows, cols, weights):
        """Boolean y_ij standing for x_i AND x_j in the objective.

        With a negative weight the minimiser wants y_ij = 1, so y_ij <= x_i and y_ij <= x_j is
        exact and keeps the relaxation small; a positive weight needs y_ij >= x_i + x_j - 1.
        """
        ys = []
        for i, j, w in zip(rows.tolist(), cols.tolist(), weights.tolist()):
            y = model.NewBoolVar(f"y{i}_{j}")
            if w < 0:
                model.AddImplication(y, x[i])
                model.AddImplication(y, x[j])
            else:
                model.AddBoolOr([x[i].Not(), x[j].Not(), y])
            ys.append(y)
        return ys

    @staticmethod
    def _minimise(model, x, linear, ys, pair_weights, scale: float, initial) -> None:
        """Integer objective sum(round(scale*w) * var), and the warm start as a hint."""
        terms = [(int(round(v * scale)), x[i]) for i, v in enumerate(linear) if round(v * scale)]
        terms += [(int(round(v * scale)), y) for v, y in zip(pair_weights, ys) if round(v * scale)]
        model.Minimize(sum(c * v for c, v in terms))
        if initial is not None:
            for i, v in enumerate(np.asarray(initial).ravel()):
                model.AddHint(x[i], int(v))

    @staticmethod
    def _pair_cuts(model, x, bm: BinaryModel, P, ys) -> None:
        """Valid cuts that tighten the relaxation of the pair products.

        Variable i can pair with at most one plan of another shipment (that shipment chooses
        exactly one), so for every i and every other group g: sum_{j in g} y_ij <= x_i.
        Without these, a fractional plan choice lets every pair saving count at once.
        """
        group_of = {}
        for g, members in enumerate(bm.groups):
            for i in members:
                group_of[i] = g
        buckets: dict[tuple[int, int], list] = {}
        for i, j, y in zip(P.row.tolist(), P.col.tolist(), ys):
            if j in group_of:
                buckets.setdefault((i, group_of[j]), []).append(y)
            if i in group_of:
                buckets.setdefault((j, group_of[i]), []).append(y)
        for (i, _), bucket in buckets.items():
            if len(bucket) > 1:
                model.Add(sum(bucket) <= x[i])

    # ------------------------------------------------------------------ QUBO
    def solve(self, qubo: Qubo, *, seed: int, time_limit: float,
              initial: np.ndarray | None = None) -> SampleSet:
        check_size(self, qubo)
        cp_model = self._cp()
        t0 = time.perf_counter()
        n = qubo.num_variables
        coo = qubo.Q.tocoo()
        scale = self.scale or _integer_scale(np.concatenate([qubo.h, coo.data]))
        model = cp_model.CpModel()
        x = [model.NewBoolVar(f"x{i}") for i in range(n)]
        ys = self._products(cp_model, model, x, coo.row, coo.col, coo.data)
        self._minimise(model, x, qubo.h, ys, coo.data, scale, initial)
        solver, status = self._run(cp_model, model, seed=seed, time_limit=time_limit)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            sample = np.zeros((1, n), dtype=np.uint8) if initial is None else np.asarray(initial, np.uint8)[None]
        else:
            sample = np.array([[solver.Value(v) for v in x]], dtype=np.uint8)
        rounding = _rounding_error(np.concatenate([qubo.h, coo.data]), scale)
        bound = solver.BestObjectiveBound() / scale + qubo.offset - rounding
        elapsed = time.perf_counter() - t0
        return SampleSet.from_samples(
            qubo, sample, solver=self.name,
            timing={"total": elapsed, "classical": elapsed},
            info={"status": solver.StatusName(status),
                  "optimal": status == cp_model.OPTIMAL and _proven(rounding, solver.ObjectiveValue() / scale),
                  "bound": float(bound), "scale": scale, "rounding_error": rounding, "workers": self.workers},
        )

    # ------------------------------------------------------------------ constrained model
    def solve_model(self, bm: BinaryModel, *, seed: int, time_limit: float,
                    initial: np.ndarray | None = None) -> ModelSolution:
        cp_model = self._cp()
        t0 = time.perf_counter()
        n = bm.num_variables
        model = cp_model.CpModel()
        x = [model.NewBoolVar(label) for label in bm.labels]
        # One plan per shipment.
        for group in bm.groups:
            model.AddExactlyOne([x[i] for i in group])
        # Capacity rows: wagons per corridor-slot and yard-slot, locomotives per hub-slot.
        A = bm.A.tocsr()
        for r in range(bm.num_rows):
            s, e = A.indptr[r], A.indptr[r + 1]
            model.Add(sum(int(round(a)) * x[i] for i, a in zip(A.indices[s:e], A.data[s:e]))
                      <= int(np.floor(bm.b[r] + 1e-9)))
        P = bm.P.tocoo()
        scale = self.scale or _integer_scale(np.concatenate([bm.c, P.data]))
        ys = self._products(cp_model, model, x, P.row, P.col, P.data)
        self._pair_cuts(model, x, bm, P, ys)
        self._minimise(model, x, bm.c, ys, P.data, scale, initial)
        solver, status = self._run(cp_model, model, seed=seed, time_limit=time_limit)
        elapsed = time.perf_counter() - t0
        found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        if found:
            sol = np.array([solver.Value(v) for v in x], dtype=np.uint8)
        elif initial is not None:
            sol = np.asarray(initial, dtype=np.uint8).ravel()
        else:
            sol = np.zeros(n, dtype=np.uint8)
        rounding = _rounding_error(np.concatenate([bm.c, P.data]), scale)
        bound = solver.BestObjectiveBound() / scale + bm.offset - rounding if found else -np.inf
        return ModelSolution(
            x=sol, objective=float(bm.objective(sol)[0]), bound=float(bound),
            optimal=status == cp_model.OPTIMAL and _proven(rounding, solver.ObjectiveValue() / scale),
            status=solver.StatusName(status),
            seconds=elapsed,
            info={"scale": scale, "rounding_error": rounding, "workers": self.workers, "branches": solver.NumBranches(),
                  "wall_time": solver.WallTime()},
        )
