"""OR-Tools CP-SAT: the classical baseline (proven optimum or best bound) and refinement stage.

Two entry points:
- :meth:`CpSatSolver.solve` takes a bare QUBO (the common interface);
- :meth:`CpSatSolver.solve_model` takes the constrained model directly (exactly-one groups and
  capacity rows as native constraints), which is far stronger than the penalised QUBO.

The CP-SAT model is written in bulk into its protocol buffer (one repeated-field extend per
constraint, no Python expression objects), so building it is linear in the number of terms with
a small constant, and it counts toward the time limit. CP-SAT needs integer coefficients:
objectives are multiplied by ``scale`` (default: the smallest power of ten, up to 10^6, that
makes every coefficient integral; otherwise 10^6) and rounded; capacity rows must be integral
after the same kind of scaling. Reported objectives and energies are always recomputed in
floating point from the original model or QUBO; the bound is divided back and loosened by the
worst-case rounding error.

Contracts: the warm start (``initial``) is given to CP-SAT as a complete hint, product
variables included, and an answer worse than it is never returned (the hint is returned
instead). Ctrl-C stops the search and returns the best answer so far with ``interrupted``
set. With ``work_limit`` the search is bounded by CP-SAT's deterministic time instead of the
wall clock, so the same seed gives the same answer on any machine and load.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from optimizer.errors import MissingDependency, SolverError
from optimizer.qubo.model import BinaryModel
from optimizer.qubo.qubo import Qubo
from optimizer.solving.solver import SampleSet, check_size

__all__ = ["CpSatSolver", "ModelSolution"]

_INT_MIN = -(2**62)


@dataclass(frozen=True)
class ModelSolution:
    x: np.ndarray  # best assignment found (model variables)
    objective: float  # recomputed from the model
    bound: float  # lower bound on the model optimum (minimisation)
    optimal: bool
    status: str
    seconds: float
    info: dict[str, object] = field(default_factory=dict)
    interrupted: bool = False


def _integer_scale(values: np.ndarray, max_power: int = 6) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[values != 0]
    for power in range(max_power + 1):
        scaled = values * 10**power
        if np.allclose(scaled, np.rint(scaled), rtol=0, atol=1e-6):
            return float(10**power)
    return float(10**max_power)


def _row_scales(A: sp.csr_array, max_power: int = 6) -> np.ndarray:
    """Per row, the smallest power of ten (up to ``10**max_power``) that makes its coefficients
    integral within 1e-6, as :func:`_integer_scale` finds for one row, for all rows at once."""
    m = A.shape[0]
    rows = np.repeat(np.arange(m), np.diff(A.indptr))
    scales = np.full(m, float(10**max_power))
    open_ = np.ones(m, dtype=bool)
    for power in range(max_power + 1):
        scaled = A.data * 10**power
        bad = np.bincount(rows, weights=np.abs(scaled - np.rint(scaled)) > 1e-6, minlength=m) > 0
        now = open_ & ~bad
        scales[now] = float(10**power)
        open_ &= bad
        if not open_.any():
            break
    return scales


def _rounding_error(values: np.ndarray, scale: float) -> float:
    """Worst-case gap between the scaled integer objective and the true one, in original units."""
    return float(np.abs(values * scale - np.rint(values * scale)).sum() / scale)


def _proven(rounding: float, objective: float) -> bool:
    """An optimum of the scaled integer model is reported as proven when rounding the
    coefficients moved the objective by less than 1e-5 of its size (or 1e-5 absolute)."""
    return rounding <= 1e-5 * max(1.0, abs(objective))


def _solution(solver, n: int) -> np.ndarray:
    """The first ``n`` variables of CP-SAT's answer, read from its response in one go."""
    return np.fromiter(solver.response_proto.solution, dtype=np.int64)[:n].astype(np.uint8)


class _Builder:
    """A CP-SAT model written straight into its protocol buffer."""

    def __init__(self, cp_model, n: int):
        self.model = cp_model.CpModel()
        self.proto = self.model.proto
        for _ in range(n):
            self.proto.variables.add().domain.extend((0, 1))
        self.n = n

    def new_bools(self, count: int) -> np.ndarray:
        start = len(self.proto.variables)
        for _ in range(count):
            self.proto.variables.add().domain.extend((0, 1))
        return np.arange(start, start + count)

    def exactly_one(self, literals) -> None:
        self.proto.constraints.add().exactly_one.literals.extend(literals)

    def linear_le(self, variables, coeffs, upper: int, lower: int = _INT_MIN) -> None:
        lin = self.proto.constraints.add().linear
        lin.vars.extend(variables)
        lin.coeffs.extend(coeffs)
        lin.domain.extend((lower, upper))

    def minimise(self, variables: np.ndarray, coeffs: np.ndarray) -> None:
        keep = coeffs != 0
        obj = self.proto.objective
        obj.vars.extend(variables[keep].tolist())
        obj.coeffs.extend(coeffs[keep].tolist())

    def hint(self, variables: np.ndarray, values: np.ndarray) -> None:
        self.proto.solution_hint.vars.extend(np.asarray(variables).tolist())
        self.proto.solution_hint.values.extend(np.asarray(values, dtype=np.int64).tolist())


class CpSatSolver:
    """CP-SAT on a QUBO or on the constrained model. Exact given enough time."""

    name: ClassVar[str] = "cpsat"
    heuristic: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, workers: int = 2, scale: float | None = None, max_variables: int | None = None,
                 log: bool = False, work_limit: float | None = None):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if work_limit is not None and not work_limit > 0:
            raise ValueError("work_limit must be > 0 (CP-SAT deterministic time units)")
        self.workers = workers
        self.scale = scale
        self.max_variables = max_variables
        self.log = log
        self.work_limit = work_limit

    def _cp(self):
        try:
            from ortools.sat.python import cp_model
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise MissingDependency(self.name, "ortools") from exc
        return cp_model

    def _run(self, cp_model, model, *, seed: int, time_limit: float, work_limit: float | None):
        """Solve in a worker thread so that Ctrl-C reaches Python: the main thread stops the
        search, waits for CP-SAT to return its best answer and reports the interruption."""
        solver = cp_model.CpSolver()
        params = solver.parameters
        params.num_workers = self.workers
        params.random_seed = int(seed) % (2**31 - 1)
        # Same seed, same answer: with several workers CP-SAT is only deterministic in this mode.
        params.interleave_search = self.workers > 1
        params.log_search_progress = self.log
        params.catch_sigint_signal = False
        if work_limit is not None:
            params.max_deterministic_time = float(work_limit)
        else:
            params.max_time_in_seconds = max(0.01, float(time_limit))
        out: dict[str, object] = {}
        finished = threading.Event()

        def run() -> None:
            try:
                out["status"] = solver.Solve(model)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                out["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=run, name="cpsat", daemon=True).start()
        interrupted = False
        while not finished.is_set():
            try:
                finished.wait(0.05)
            except KeyboardInterrupt:
                interrupted = True
                solver.StopSearch()
        if "error" in out:
            raise SolverError(f"cpsat: {out['error']}")
        return solver, out["status"], interrupted

    # ------------------------------------------------------------------ products
    @staticmethod
    def _products(b: _Builder, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Booleans y_ij standing for x_i AND x_j in the objective.

        With a negative weight the minimiser wants y_ij = 1, so y_ij <= x_i and y_ij <= x_j is
        exact and keeps the relaxation small; a positive weight needs y_ij >= x_i + x_j - 1.
        """
        ys = b.new_bools(rows.size)
        for y, i, j, w in zip(ys.tolist(), rows.tolist(), cols.tolist(), weights.tolist()):
            if w < 0:
                b.linear_le((y, i), (1, -1), 0)
                b.linear_le((y, j), (1, -1), 0)
            else:
                b.linear_le((i, j, y), (1, 1, -1), 1)
        return ys

    @staticmethod
    def _pair_cuts(b: _Builder, bm: BinaryModel, rows: np.ndarray, cols: np.ndarray, ys: np.ndarray) -> None:
        """Valid cuts that tighten the relaxation of the pair products.

        Variable i can pair with at most one plan of another shipment (that shipment chooses
        exactly one), so for every i and every other group g: sum_{j in g} y_ij <= x_i.
        Without these, a fractional plan choice lets every pair saving count at once.
        """
        if ys.size == 0:
            return
        group_of = -np.ones(bm.num_variables, dtype=np.int64)
        for g, members in enumerate(bm.groups):
            group_of[list(members)] = g
        # Each product appears in two buckets: (i, group of j) and (j, group of i).
        var = np.concatenate([rows, cols])
        other = np.concatenate([group_of[cols], group_of[rows]])
        y = np.concatenate([ys, ys])
        ok = other >= 0
        var, other, y = var[ok], other[ok], y[ok]
        order = np.lexsort((other, var))
        var, other, y = var[order], other[order], y[order]
        starts = np.flatnonzero(np.r_[True, (var[1:] != var[:-1]) | (other[1:] != other[:-1])])
        ends = np.r_[starts[1:], var.size]
        for s, e in zip(starts.tolist(), ends.tolist()):
            if e - s > 1:
                b.linear_le([*y[s:e].tolist(), int(var[s])], [1] * (e - s) + [-1], 0)

    # ------------------------------------------------------------------ QUBO
    def solve(self, qubo: Qubo, *, seed: int, time_limit: float,
              initial: np.ndarray | None = None) -> SampleSet:
        check_size(self, qubo)
        cp_model = self._cp()
        t0 = time.perf_counter()
        n = qubo.num_variables
        coo = qubo.Q.tocoo()
        weights = np.concatenate([qubo.h, coo.data])
        scale = self.scale or _integer_scale(weights)
        b = _Builder(cp_model, n)
        ys = self._products(b, coo.row, coo.col, coo.data)
        b.minimise(np.concatenate([np.arange(n), ys]), np.rint(weights * scale).astype(np.int64))
        if initial is not None:
            x0 = np.asarray(initial, dtype=np.int64).ravel()
            b.hint(np.concatenate([np.arange(n), ys]), np.concatenate([x0, x0[coo.row] * x0[coo.col]]))
        remaining = time_limit - (time.perf_counter() - t0)
        solver, status, interrupted = self._run(cp_model, b.model, seed=seed, time_limit=remaining,
                                                work_limit=self.work_limit)
        found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        rows, origins = [], []
        if found:
            rows.append(_solution(solver, n))
            origins.append("device")
        if initial is not None:
            rows.append(np.asarray(initial, dtype=np.uint8).ravel())
            origins.append("initial")
        if not rows:
            rows.append(np.zeros(n, dtype=np.uint8))
            origins.append("device")
        rounding = _rounding_error(weights, scale)
        bound = solver.BestObjectiveBound() / scale + qubo.offset - rounding if found else -np.inf
        elapsed = time.perf_counter() - t0
        return SampleSet.from_samples(
            qubo, np.stack(rows), solver=self.name, origins=origins,
            timing={"total": elapsed, "classical": elapsed},
            info={"status": solver.StatusName(status),
                  "optimal": bool(status == cp_model.OPTIMAL and not interrupted
                                  and _proven(rounding, solver.ObjectiveValue() / scale)),
                  "bound": float(bound), "scale": scale, "rounding_error": rounding, "workers": self.workers,
                  "interrupted": interrupted, "deterministic_time": solver.deterministic_time},
        )

    # ------------------------------------------------------------------ constrained model
    def solve_model(self, bm: BinaryModel, *, seed: int, time_limit: float,
                    initial: np.ndarray | None = None) -> ModelSolution:
        """Solve the constrained model (one-hot groups and rows as native constraints).

        A model with lexicographic ``tiers`` is solved tier by tier: each phase minimises its
        tier with the earlier tiers held at the values reached (so no big-M scalarisation can
        overflow CP-SAT's 64-bit integers); the phases share the time (or work) limit, each
        taking an equal share of what is left. The answer is never worse than ``initial``.
        """
        cp_model = self._cp()
        t0 = time.perf_counter()
        n = bm.num_variables
        b = _Builder(cp_model, n)
        # One plan per shipment.
        for group in bm.groups:
            b.exactly_one(list(group))
        # Capacity rows (train batches, yards, locomotive balances, guards), made integral.
        A = bm.A.tocsr()
        row_scale = _row_scales(A)
        scaled = A.data * np.repeat(row_scale, np.diff(A.indptr))
        coeffs = np.rint(scaled).astype(np.int64)
        off = np.abs(coeffs - scaled) > 1e-6
        if off.any():
            r = int(np.searchsorted(A.indptr, np.flatnonzero(off)[0], side="right") - 1)
            raise SolverError(f"cpsat: row {bm.row_names[r]!r} has coefficients that are not integral "
                              "after scaling by 10^6")
        # Clipped into CP-SAT's range: a bound past any reachable activity binds nothing either way.
        uppers = np.clip(np.floor(bm.b * row_scale + 1e-9), -(2.0**62), 2.0**62).astype(np.int64).tolist()
        indices, coeffs, ptr = A.indices.tolist(), coeffs.tolist(), A.indptr.tolist()
        for r in range(bm.num_rows):
            b.linear_le(indices[ptr[r]:ptr[r + 1]], coeffs[ptr[r]:ptr[r + 1]], uppers[r])
        P = bm.P.tocoo()
        ys = self._products(b, P.row, P.col, P.data)
        self._pair_cuts(b, bm, P.row, P.col, ys)
        variables = np.concatenate([np.arange(n), ys])

        def full(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, dtype=np.int64).ravel()
            return np.concatenate([x, x[P.row] * x[P.col]])

        tiers = list(bm.tiers) if bm.tiers else [bm.c]
        hint = None if initial is None else np.asarray(initial, dtype=np.uint8).ravel()
        best = hint
        phases: list[dict] = []
        optimal, interrupted, rounding_total = True, False, 0.0
        solver = status = None
        for k, tier in enumerate(tiers):
            pair = P.data if not bm.tiers else np.zeros(0)
            weights = np.concatenate([tier, pair])
            scale = self.scale or _integer_scale(weights)
            b.model.clear_objective()
            b.proto.clear_solution_hint()
            b.minimise(variables[: weights.size], np.rint(weights * scale).astype(np.int64))
            if best is not None:
                b.hint(variables, full(best))
            share = len(tiers) - k
            remaining = time_limit - (time.perf_counter() - t0)
            work = None if self.work_limit is None else self.work_limit / len(tiers)
            solver, status, stopped = self._run(cp_model, b.model, seed=seed, time_limit=remaining / share,
                                                work_limit=work)
            interrupted = interrupted or stopped
            rounding = _rounding_error(weights, scale)
            rounding_total += rounding
            if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                optimal = False
                break
            values = _solution(solver, n)
            optimal = optimal and status == cp_model.OPTIMAL and not stopped and \
                _proven(rounding, solver.ObjectiveValue() / scale)
            phases.append({"objective": float(tier @ values), "bound": solver.BestObjectiveBound() / scale - rounding,
                           "status": solver.StatusName(status), "seconds": solver.wall_time,
                           "deterministic_time": solver.deterministic_time})
            best = values
            if stopped:
                break
            if k < len(tiers) - 1:
                # Hold this tier at the value reached while the next one is optimised.
                b.linear_le(np.arange(n).tolist(), np.rint(tier * scale).astype(np.int64).tolist(),
                            int(np.rint(float(tier @ values) * scale)))
        complete = len(phases) == len(tiers)
        if best is None:
            best = np.zeros(n, dtype=np.uint8)
        sol = best.astype(np.uint8)
        if initial is not None and bm.is_feasible(initial)[0] and \
                bm.objective(initial)[0] < bm.objective(sol)[0] - 1e-9 * max(1.0, abs(bm.objective(sol)[0])):
            sol = np.asarray(initial, dtype=np.uint8).ravel()  # never worse than the warm start
        bound = -np.inf
        if phases and not bm.tiers:
            bound = phases[0]["bound"] + bm.offset
        elif complete:
            bound = self._scalarised_bound(bm, phases)
        elapsed = time.perf_counter() - t0
        return ModelSolution(
            x=sol, objective=float(bm.objective(sol)[0]), bound=float(bound),
            optimal=bool(complete and optimal),
            status=solver.StatusName(status) if solver is not None else "UNKNOWN",
            seconds=elapsed,
            info={"scale": self.scale or _integer_scale(np.concatenate([tiers[-1], P.data])),
                  "rounding_error": rounding_total, "workers": self.workers,
                  "branches": solver.NumBranches() if solver is not None else 0, "wall_time": elapsed,
                  "deterministic_time": sum(p["deterministic_time"] for p in phases),
                  **({"phases": phases} if bm.tiers else {})},
            interrupted=interrupted,
        )

    @staticmethod
    def _scalarised_bound(bm: BinaryModel, phases: list[dict]) -> float:
        """A lower bound on ``c.x`` from the phase results, when ``c = M * tier0 + tier1``.

        With the primary tier proven at its optimum t0*, every assignment costs at least
        ``M * t0* + bound(tier1)`` (a larger primary value costs more, by the choice of M);
        without that proof nothing finite is certain.
        """
        if len(bm.tiers) != 2 or phases[0]["status"] != "OPTIMAL":
            return -np.inf
        t0, t1 = bm.tiers
        nz = np.flatnonzero(t0)
        if nz.size == 0:
            return phases[1]["bound"] + bm.offset
        M = (bm.c[nz[0]] - t1[nz[0]]) / t0[nz[0]]
        if not np.allclose(bm.c, M * t0 + t1, rtol=1e-12, atol=1e-6):
            return -np.inf
        return M * phases[0]["objective"] + phases[1]["bound"] + bm.offset
