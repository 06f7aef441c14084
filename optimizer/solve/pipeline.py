"""Problem -> candidates -> model -> QUBO -> backend -> checked plan with KPIs.

A backend that can take the constrained model directly (CP-SAT's ``solve_model``) gets it;
its answer is lifted into the QUBO (slack bits set) so its energy is recomputed from the QUBO
like every other backend's. Every other backend gets the QUBO.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from backends import create_solver
from optimizer.freight.candidates import CandidateOptions, CandidateSet, generate_candidates
from optimizer.solve.config import Config
from optimizer.qubo.encoding import Encoding, encode
from optimizer.freight.evaluate import Kpis, Plan, check_plan, decode, kpi_deltas, plan_table, simulate
from optimizer.freight.baselines import BASELINES, best_baseline
from optimizer.freight.model import add_guard, build_model
from optimizer.freight.problem import Problem
from optimizer.solve.solver import SampleSet

__all__ = ["Prepared", "Outcome", "prepare", "solve_problem"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything derived from a problem before any backend runs.

    ``model`` is the BinaryModel (plan variables first, candidate i = variable i, then the train
    counts); ``baselines`` maps each dispatcher in :data:`~optimizer.freight.baselines.BASELINES`
    to its full model assignment, and ``best_baseline`` names the one with the lowest model
    objective: it is the ``reference`` for the penalty rule, the warm start of every backend and
    what KPI deltas are measured against. The QUBO (``encoding``) is built on first use.
    """

    problem: Problem
    candidates: CandidateSet
    model: object  # BinaryModel
    baselines: dict[str, np.ndarray]
    best_baseline: str
    timing: dict[str, float]
    inequality: str = "slack"
    penalty: float | None = None

    @property
    def reference(self) -> np.ndarray:
        return self.baselines[self.best_baseline]

    @property
    def greedy(self) -> np.ndarray:
        """The warm start (the best baseline's assignment; kept under its old name for callers)."""
        return self.reference

    @cached_property
    def encoding(self) -> Encoding:
        t = time.perf_counter()
        enc = encode(self.model, reference=self.reference, inequality=self.inequality, penalty=self.penalty)
        self.timing["encode"] = time.perf_counter() - t
        return enc

    @property
    def qubo(self):
        return self.encoding.qubo


def prepare(problem: Problem, config: Config) -> Prepared:
    """Candidates, the model (with the ``[objective]`` settings), every baseline; guard rows
    against the best baseline when ``[objective]`` asks for them."""
    timing = {}
    t = time.perf_counter()
    m = config.model
    cset = generate_candidates(problem, CandidateOptions(m.k_routes, m.max_departure_slots, m.light_engines))
    timing["candidates"] = time.perf_counter() - t
    t = time.perf_counter()
    model = build_model(cset, config.objective)
    timing["model"] = time.perf_counter() - t
    t = time.perf_counter()
    baselines = {name: dispatch(cset, model) for name, dispatch in BASELINES.items()}
    best, reference = best_baseline(cset, model, baselines)
    if config.objective.guarded:
        model = add_guard(model, cset, reference)
    timing["baselines"] = time.perf_counter() - t
    return Prepared(problem, cset, model, baselines, best, timing, m.inequality, m.penalty)


@dataclass(frozen=True, eq=False)
class Outcome:
    prepared: Prepared
    backend: str
    seed: int
    sampleset: SampleSet
    x: np.ndarray  # chosen model assignment
    energy: float  # QUBO energy of the chosen sample, recomputed
    objective: float  # model objective (CNY)
    feasible: bool
    violations: tuple[str, ...]
    plan: Plan
    kpis: Kpis | None  # None when the plan is infeasible: KPIs of an infeasible plan mislead
    baseline_kpis: Kpis  # of the best baseline (prepared.best_baseline)
    bound: float | None = None
    optimal: bool | None = None
    timing: dict[str, float] = field(default_factory=dict)
    baselines_kpis: dict[str, Kpis] = field(default_factory=dict)  # every baseline's KPIs

    @property
    def baseline(self) -> str:
        return self.prepared.best_baseline

    def to_json(self) -> dict[str, object]:
        p = self.prepared
        return {
            "problem": p.problem.name,
            "source": p.problem.source,
            "backend": self.backend,
            "seed": self.seed,
            "sizes": {"shipments": len(p.problem.shipments), "model_variables": p.model.num_variables,
                      "model_rows": p.model.num_rows, "qubo_variables": p.qubo.num_variables,
                      "qubo_interactions": p.qubo.num_interactions},
            "penalty": p.encoding.penalty,
            "objective_cny": self.objective,
            "qubo_energy": self.energy,
            "bound_cny": self.bound,
            "optimal": self.optimal,
            "feasible": self.feasible,
            "violations": list(self.violations),
            "kpis": None if self.kpis is None else self.kpis.as_dict(),
            "baseline": p.best_baseline,
            "baseline_kpis": self.baseline_kpis.as_dict(),
            "baseline_objective_cny": float(p.model.objective(p.reference)[0]),
            "greedy_objective_cny": float(p.model.objective(p.baselines["greedy"])[0]),
            "baselines": {name: {"objective_cny": float(p.model.objective(x)[0]),
                                 "kpis": self.baselines_kpis[name].as_dict() if name in self.baselines_kpis else None}
                          for name, x in p.baselines.items()},
            "kpi_change_percent": None if self.kpis is None else kpi_deltas(self.kpis, self.baseline_kpis),
            "objective": {"mode": self._objective_mode(), "guarded": any(r.startswith("guard ")
                                                                         for r in p.model.row_names)},
            "plan": plan_table(p.problem, self.plan),
            "light_engines": [{"corridor": le.corridor, "from": le.origin, "to": le.destination, "slot": le.slot,
                               "count": le.count} for le in self.plan.light_engines],
            "timing": {**p.timing, **self.timing},
            "solver": self.sampleset.summary(),
            "hybrid": self.sampleset.solver.startswith("hybrid["),
        }


    def _objective_mode(self) -> str:
        return "service-first" if self.prepared.model.tiers else "weighted"


def _hybrid_origin(stages) -> str:
    """Origin of the hybrid answer: the stage that last moved the incumbent (a credited device
    round: ``device``; a stand-in's answer or the refinement: ``postprocessed``; none: ``initial``)."""
    origin = "initial"
    for stage in stages:
        if stage.accepted and stage.stage == "round":
            origin = "device" if stage.credited else "postprocessed"
        elif stage.accepted and stage.stage == "refine":
            origin = "postprocessed"
    return origin


def _run_hybrid(prepared: Prepared, solver, config: Config, *, seed: int, time_limit: float, on_progress=None):
    """Decompose to the device's size; refine with CP-SAT on the constrained model."""
    from optimizer.solve.hybrid import run_model_hybrid
    from optimizer.solve.stop import Deadline

    enc = prepared.encoding
    run = run_model_hybrid(enc.model, solver, config, start=prepared.greedy, start_source="greedy",
                           names=[s.id for s in prepared.problem.shipments], seed=seed,
                           deadline=Deadline(time_limit), on_progress=on_progress)
    info = run.info()
    return SampleSet.from_samples(enc.qubo, enc.lift(np.stack([run.x, prepared.greedy])),
                                  solver=f"hybrid[{solver.name}]", origins=[_hybrid_origin(run.stages), "initial"],
                                  timing={"total": run.seconds}, info=info)


def _run_backend(prepared: Prepared, backend: str, options: dict, *, seed: int, time_limit: float,
                 config: Config | None = None, on_progress=None):
    solver = create_solver(backend, options)
    enc = prepared.encoding
    limit = getattr(solver, "max_variables", None)
    if limit is not None and enc.qubo.num_variables > limit and config is not None:
        return _run_hybrid(prepared, solver, config, seed=seed, time_limit=time_limit,
                           on_progress=on_progress), None, None
    if hasattr(solver, "solve_model"):
        sol = solver.solve_model(enc.model, seed=seed, time_limit=time_limit, initial=prepared.greedy)
        sampleset = SampleSet.from_samples(
            enc.qubo, enc.lift(sol.x), solver=backend,
            timing={"total": sol.seconds, "classical": sol.seconds},
            info={"status": sol.status, "optimal": sol.optimal, "bound": sol.bound, "objective": sol.objective,
                  "interrupted": sol.interrupted, **sol.info},
        )
        return sampleset, sol.bound, sol.optimal
    sampleset = solver.solve(enc.qubo, seed=seed, time_limit=time_limit, initial=enc.lift(prepared.greedy)[0])
    return sampleset, None, None


def solve_problem(problem: Problem, config: Config, *, prepared: Prepared | None = None,
                  on_progress=None) -> Outcome:
    """Solve with the configured backend and evaluate the best feasible plan it returned.

    A QUBO larger than the backend's ``max_variables`` goes through the hybrid pipeline.
    """
    prepared = prepared or prepare(problem, config)
    backend = config.solver.backend
    seed = config.solver.seed
    t = time.perf_counter()
    sampleset, bound, optimal = _run_backend(prepared, backend, config.backend_options(backend),
                                             seed=seed, time_limit=config.solver.time_limit, config=config,
                                             on_progress=on_progress)
    solve_time = time.perf_counter() - t
    return evaluate_sampleset(prepared, sampleset, backend=backend, seed=seed, bound=bound, optimal=optimal,
                              timing={"solve": solve_time})


def evaluate_sampleset(prepared: Prepared, sampleset: SampleSet, *, backend: str, seed: int,
                       bound: float | None = None, optimal: bool | None = None,
                       timing: dict[str, float] | None = None) -> Outcome:
    """Pick the lowest-energy sample whose plan is feasible, check it and measure it."""
    t = time.perf_counter()
    enc = prepared.encoding
    X = enc.project(sampleset.samples)
    feasible_rows = enc.model.is_feasible(X)
    hits = np.flatnonzero(feasible_rows)
    row = int(hits[0]) if hits.size else 0
    x = X[row].astype(np.uint8)
    plan = decode(prepared.candidates, x)
    violations = tuple(check_plan(prepared.problem, plan))
    feasible = bool(feasible_rows[row]) and not violations
    baselines_kpis = {name: simulate(prepared.problem, decode(prepared.candidates, bx))
                      for name, bx in prepared.baselines.items()}
    kpis = simulate(prepared.problem, plan) if feasible else None
    return Outcome(
        prepared=prepared, backend=backend, seed=seed, sampleset=sampleset, x=x,
        energy=float(sampleset.energies[row]), objective=float(enc.model.objective(x)[0]),
        feasible=feasible, violations=violations, plan=plan, kpis=kpis,
        baseline_kpis=baselines_kpis[prepared.best_baseline], baselines_kpis=baselines_kpis,
        bound=bound, optimal=optimal,
        timing={**(timing or {}), "evaluate": time.perf_counter() - t},
    )
