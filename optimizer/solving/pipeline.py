"""Problem -> candidates -> model -> backend -> checked plan with KPIs, inside one time limit.

The time limit (``[solver] time_limit``) is a contract for the whole run: the :class:`Deadline`
starts before preparation (candidates, model, baselines) and every later stage gets only what is
left. When preparation alone uses it up, the result says so (status ``time_limit``) and, if the
baselines finished, carries the best baseline's checked plan.

Routes, by what the backend takes:

- a model solver (CP-SAT's ``solve_model``) gets the constrained model and never sees a QUBO:
  the whole model when it is small (``[solver] lns``), else large-neighbourhood search on it;
- a QUBO backend gets the model's QUBO when it fits the backend whole, else device-sized pieces
  (hybrid decomposition, measured against stand-ins), then CP-SAT refinement.

Every answer is a model assignment, re-checked by :func:`~optimizer.freight.evaluate.check_plan`
against the problem itself; only an answer that passes is ``feasible``, and ``optimal`` needs
the solver's proof *and* the check. Ctrl-C keeps the best plan found so far (the warm start at
worst) with status ``interrupted``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from backends import create_solver
from optimizer.errors import QfreightError
from optimizer.freight.baselines import BASELINES, best_baseline
from optimizer.freight.candidates import CandidateOptions, CandidateSet, generate_candidates
from optimizer.freight.evaluate import Kpis, Plan, check_plan, decode, kpi_deltas, plan_table, simulate
from optimizer.freight.model import add_guard, build_model
from optimizer.freight.problem import Problem
from optimizer.qubo.encoding import Encoding, encode
from optimizer.solving.config import Config
from optimizer.solving.result import Result, StageRecord, Status
from optimizer.solving.solver import SampleSet
from optimizer.solving.stop import Deadline

__all__ = ["Prepared", "Outcome", "PreparationTimeout", "prepare", "solve_problem", "hybrid_origin"]

#: A whole-model QUBO is built for a QUBO backend only up to this many model variables; larger
#: models go to device-sized pieces (the QUBO of a 10,000-shipment model does not fit in memory).
MAX_WHOLE_QUBO_VARIABLES = 20_000


class PreparationTimeout(QfreightError):
    """The time limit ran out while the problem was being prepared."""

    exit_code = 1

    def __init__(self, stage: str, seconds: float, limit: float):
        self.stage = stage
        super().__init__(f"the time limit of {limit:g} s ran out during preparation ({stage}, after {seconds:.1f} s); "
                         "raise --time-limit or shrink the problem ([model] max_departure_slots, k_routes)")


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything derived from a problem before any backend runs.

    ``model`` is the BinaryModel (plan variables first, candidate i = variable i, then the train
    counts); ``baselines`` maps each dispatcher in :data:`~optimizer.freight.baselines.BASELINES`
    to its full model assignment, and ``best_baseline`` names the one with the lowest model
    objective: it is the ``reference`` for the penalty rule, the warm start of every backend and
    what KPI deltas are measured against. The QUBO (``encoding``) is built on first use only.
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
    def encoded(self) -> bool:
        return "encoding" in self.__dict__

    @property
    def qubo(self):
        return self.encoding.qubo

    @cached_property
    def pieces(self):
        """Device pieces over plans with exact train-count repair (optimizer.freight.pieces)."""
        from optimizer.freight.pieces import PlanPieces

        return PlanPieces(self.candidates, self.model)

    def departure_hours(self, x: np.ndarray) -> np.ndarray:
        """(shipments,) departure hour of each shipment's chosen plan (the horizon's end if deferred):
        what the LNS "window" neighbourhoods sort by."""
        cached = self.__dict__.get("_plan_slots")
        if cached is None:
            end = self.problem.horizon.slots
            slots = np.array([end if c.slot is None else c.slot for c in self.candidates.candidates], dtype=np.float64)
            group_of = np.empty(slots.size, dtype=np.int64)
            for g, members in enumerate(self.candidates.groups):
                group_of[list(members)] = g
            cached = (slots, group_of)
            object.__setattr__(self, "_plan_slots", cached)
        slots, group_of = cached
        chosen = np.full(len(self.candidates.groups), float(self.problem.horizon.slots))
        plans = np.flatnonzero(np.asarray(x)[: slots.size])
        chosen[group_of[plans]] = slots[plans]
        return chosen * self.problem.horizon.slot_hours


#: Fixed-work defaults of the backends in work mode, where the config does not set them: CP-SAT's
#: deterministic time comes from ``[solver] work``; annealing runs a fixed number of reads. QAOA
#: (``maxiter``) and the photonic device (``samples``) already do fixed work once no clock stops them.
WORK_DEFAULTS = {"anneal": {"num_reads": 64}}


def work_options(backend: str, config: Config) -> dict:
    """The backend's options, with the fixed-work settings of ``[solver] budget = "work"``."""
    from backends import backend_options

    options = config.backend_options(backend)
    if config.solver.budget != "work":
        return options
    known = backend_options(backend)
    if "work_limit" in known and options.get("work_limit") is None:
        options["work_limit"] = config.solver.work
    for key, value in WORK_DEFAULTS.get(backend, {}).items():
        if key in known and options.get(key) is None:
            options[key] = value
    return options


def _check_deadline(deadline: Deadline | None, stage: str) -> None:
    if deadline is not None and deadline.expired():
        raise PreparationTimeout(stage, deadline.elapsed, deadline.seconds)


def prepare(problem: Problem, config: Config, *, deadline: Deadline | None = None) -> Prepared:
    """Candidates, the model (with the ``[objective]`` settings), every baseline; guard rows
    against the best baseline when ``[objective]`` asks for them. With ``deadline``, a stage that
    finds the time used up raises :class:`PreparationTimeout`."""
    timing = {}
    t = time.perf_counter()
    m = config.model
    cset = generate_candidates(problem, CandidateOptions(m.k_routes, m.max_departure_slots, m.light_engines))
    timing["candidates"] = time.perf_counter() - t
    _check_deadline(deadline, "candidates")
    t = time.perf_counter()
    model = build_model(cset, config.objective)
    timing["model"] = time.perf_counter() - t
    _check_deadline(deadline, "model")
    t = time.perf_counter()
    baselines: dict[str, np.ndarray] = {}
    for name, dispatch in BASELINES.items():
        baselines[name] = dispatch(cset, model)
        if deadline is not None and deadline.expired():
            break  # the baselines done so far still give a checked plan
    best, reference = best_baseline(cset, model, baselines)
    if config.objective.guarded:
        model = add_guard(model, cset, reference)
    timing["baselines"] = time.perf_counter() - t
    return Prepared(problem, cset, model, baselines, best, timing, m.inequality, m.penalty)


@dataclass(frozen=True, eq=False)
class Answer:
    """What a route returns: a model assignment and how it was found."""

    x: np.ndarray
    solver: str  # "cpsat", "lns[cpsat]", "hybrid[qaoa]", "anneal", ...
    info: dict
    timing: dict
    stages: tuple[StageRecord, ...] = ()
    bound: float | None = None
    optimal: bool = False
    interrupted: bool = False
    energy: float | None = None  # QUBO energy of the chosen sample (QUBO routes only)
    best_origin: str = "device"
    origin_counts: dict = field(default_factory=dict)
    reads: int = 1
    sampleset: SampleSet | None = None

    def summary(self) -> dict[str, object]:
        return {"solver": self.solver, "best_energy": self.energy, "best_origin": self.best_origin,
                "origin_counts": dict(self.origin_counts), "reads": self.reads, "timing": dict(self.timing),
                "info": dict(self.info)}


@dataclass(frozen=True, eq=False)
class Outcome:
    prepared: Prepared
    backend: str
    seed: int
    answer: Answer
    x: np.ndarray  # chosen model assignment
    energy: float | None  # QUBO energy of the chosen sample, recomputed (None: no QUBO was built)
    objective: float  # model objective (CNY; the scalarised value in service-first mode)
    feasible: bool
    violations: tuple[str, ...]
    plan: Plan
    kpis: Kpis | None  # None when the plan is infeasible: KPIs of an infeasible plan mislead
    baseline_kpis: Kpis  # of the best baseline (prepared.best_baseline)
    bound: float | None = None
    optimal: bool | None = None
    timing: dict[str, float] = field(default_factory=dict)
    baselines_kpis: dict[str, Kpis] = field(default_factory=dict)  # every baseline's KPIs
    status: Status = Status.FEASIBLE
    message: str = ""

    @property
    def baseline(self) -> str:
        return self.prepared.best_baseline

    @property
    def sampleset(self) -> SampleSet | None:
        return self.answer.sampleset

    @property
    def stages(self) -> tuple[StageRecord, ...]:
        return self.answer.stages

    @property
    def hybrid(self) -> bool:
        return self.answer.solver.startswith(("hybrid[", "lns["))

    def _objective_mode(self) -> str:
        return "service-first" if self.prepared.model.tiers else "weighted"

    def to_json(self) -> dict[str, object]:
        p = self.prepared
        encoded = p.encoded
        return {
            "problem": p.problem.name,
            "source": p.problem.source,
            "backend": self.backend,
            "seed": self.seed,
            "status": self.status.value,
            "message": self.message,
            "sizes": {"shipments": len(p.problem.shipments), "model_variables": p.model.num_variables,
                      "model_rows": p.model.num_rows, "qubo_variables": p.qubo.num_variables if encoded else None,
                      "qubo_interactions": p.qubo.num_interactions if encoded else None},
            "penalty": p.encoding.penalty if encoded else None,
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
            "greedy_objective_cny": float(p.model.objective(p.baselines["greedy"])[0])
            if "greedy" in p.baselines else None,
            "baselines": {name: {"objective_cny": float(p.model.objective(x)[0]),
                                 "kpis": self.baselines_kpis[name].as_dict() if name in self.baselines_kpis else None}
                          for name, x in p.baselines.items()},
            "kpi_change_percent": None if self.kpis is None else kpi_deltas(self.kpis, self.baseline_kpis),
            "objective": {"mode": self._objective_mode(),
                          "guarded": any(r.startswith("guard ") for r in p.model.row_names)},
            "plan": plan_table(p.problem, self.plan),
            "light_engines": [{"corridor": le.corridor, "from": le.origin, "to": le.destination, "slot": le.slot,
                               "count": le.count} for le in self.plan.light_engines],
            "timing": {**p.timing, **self.timing},
            "solver": self.answer.summary(),
            "hybrid": self.hybrid,
            "stages": [s.to_json() for s in self.stages],
            "device_contribution": float(sum(pc.contribution for s in self.stages for pc in s.pieces)),
            "best_origin": self.answer.best_origin,
        }

    def result(self) -> Result:
        """The typed :class:`~optimizer.solving.result.Result` of the Python API."""
        return Result(status=self.status, backend=self.backend, seed=self.seed,
                      objective=self.objective if self.feasible else None, bound=self.bound, feasible=self.feasible,
                      plan=self.plan, kpis=self.kpis, baseline=self.baseline,
                      baseline_objective=float(self.prepared.model.objective(self.prepared.reference)[0]),
                      baseline_kpis=self.baseline_kpis, violations=self.violations, energy=self.energy,
                      stages=self.stages, timing={**self.prepared.timing, **self.timing},
                      problem=self.prepared.problem.name, message=self.message, details=self.to_json())


def hybrid_origin(stages) -> str:
    """Origin of a decomposition's answer: the stage that last moved the incumbent (a credited
    device round: ``device``; a stand-in's answer or the refinement: ``postprocessed``; none:
    ``initial``)."""
    origin = "initial"
    for stage in stages:
        if stage.accepted and stage.stage == "round":
            origin = "device" if stage.credited else "postprocessed"
        elif stage.accepted and stage.stage == "refine":
            origin = "postprocessed"
    return origin


# ---------------------------------------------------------------------------- routes
def _names(prepared: Prepared) -> list[str]:
    return [s.id for s in prepared.problem.shipments]


def _decomposed_answer(prepared: Prepared, run, solver_name: str) -> Answer:
    info = run.info()
    return Answer(x=run.x, solver=solver_name, info=info, timing={"total": run.seconds}, stages=run.stages,
                  interrupted=run.interrupted, best_origin=hybrid_origin(run.stages),
                  origin_counts={"initial": 1, **({} if np.array_equal(run.x, prepared.reference) else
                                                  {hybrid_origin(run.stages): 1})})


def _run_model_solver(prepared: Prepared, solver, config: Config, *, seed: int, deadline: Deadline,
                      on_progress) -> Answer:
    model = prepared.model
    lns = config.solver.lns == "on" or (config.solver.lns == "auto" and
                                        model.num_variables > config.lns.auto_variables)
    if lns:
        from optimizer.solving.hybrid import run_lns

        run = run_lns(model, config, start=prepared.reference, start_source=prepared.best_baseline,
                      names=_names(prepared), seed=seed, deadline=deadline, times=prepared.departure_hours,
                      on_progress=on_progress)
        return _decomposed_answer(prepared, run, f"lns[{solver.name}]")
    t = time.perf_counter()
    sol = solver.solve_model(model, seed=seed, time_limit=deadline.remaining, initial=prepared.reference)
    stage = StageRecord("solve", sol.objective, time.perf_counter() - t, True, solver=solver.name)
    origin = "initial" if np.array_equal(sol.x, prepared.reference) else "device"
    return Answer(x=sol.x, solver=solver.name, info={"status": sol.status, "optimal": sol.optimal,
                                                      "bound": sol.bound, "objective": sol.objective,
                                                      "interrupted": sol.interrupted, **sol.info},
                  timing={"total": sol.seconds, "classical": sol.seconds}, stages=(stage,), bound=sol.bound,
                  optimal=sol.optimal, interrupted=sol.interrupted, best_origin=origin, origin_counts={origin: 1})


def _run_qubo_solver(prepared: Prepared, solver, config: Config, *, seed: int, deadline: Deadline,
                     on_progress) -> Answer:
    from optimizer.solving.decompose import fits
    from optimizer.solving.hybrid import run_model_hybrid

    model = prepared.model
    whole = model.num_variables <= MAX_WHOLE_QUBO_VARIABLES and fits(solver, prepared.qubo)
    if not whole:
        run = run_model_hybrid(model, solver, config, start=prepared.reference, start_source=prepared.best_baseline,
                               names=_names(prepared), seed=seed, deadline=deadline, surrogate=prepared.pieces,
                               times=prepared.departure_hours, on_progress=on_progress)
        return _decomposed_answer(prepared, run, f"hybrid[{solver.name}]")
    enc = prepared.encoding
    t = time.perf_counter()
    try:
        sampleset = solver.solve(enc.qubo, seed=seed, time_limit=max(deadline.remaining, 0.01),
                                 initial=enc.lift(prepared.reference)[0])
    except KeyboardInterrupt:
        return _interrupted_answer(prepared, solver.name, time.perf_counter() - t)
    X = enc.project(sampleset.samples)
    ok = model.is_feasible(X)
    row = int(np.flatnonzero(ok)[0]) if ok.any() else 0
    stage = StageRecord("solve", float(model.objective(X[row])[0]), time.perf_counter() - t, True, solver=solver.name)
    return Answer(x=X[row].astype(np.uint8), solver=solver.name, info=dict(sampleset.info),
                  timing=dict(sampleset.timing), stages=(stage,), interrupted=bool(sampleset.info.get("interrupted")),
                  energy=float(sampleset.energies[row]), best_origin=sampleset.origins[row] if sampleset.origins
                  else "device", origin_counts=dict(sampleset.origin_counts), reads=sampleset.num_reads,
                  sampleset=sampleset, optimal=bool(sampleset.info.get("optimal")) and row == 0)


def _interrupted_answer(prepared: Prepared, name: str, seconds: float) -> Answer:
    """Ctrl-C inside a backend that does not keep its own best: the warm start stands."""
    return Answer(x=prepared.reference.copy(), solver=name, info={"interrupted": True}, timing={"total": seconds},
                  interrupted=True, best_origin="initial", origin_counts={"initial": 1})


def _replay_baselines(prepared: Prepared, names: list[str]) -> dict[str, Kpis]:
    """The named baselines' KPIs, each by replaying its plan."""
    return {name: simulate(prepared.problem, decode(prepared.candidates, prepared.baselines[name])) for name in names}


def solve_problem(problem: Problem, config: Config, *, prepared: Prepared | None = None,
                  deadline: Deadline | None = None, on_progress=None) -> Outcome:
    """Solve with the configured backend and evaluate the plan it returned.

    ``deadline`` (default: ``[solver] time_limit`` from now) bounds everything, preparation
    included when ``prepared`` is not given. Raises :class:`PreparationTimeout` when preparation
    could not produce even a baseline plan in time.
    """
    deadline = deadline or Deadline(config.solver.time_limit)
    prepare_failed = None
    if prepared is None:
        prepared = prepare(problem, config, deadline=deadline)
    # The baselines' KPIs (a replay each) are measured now, inside the limit, and time the
    # replay: what follows the solver must fit too, so the solver gets the limit less three
    # replays (the answer's replay, its plan check, which costs about as much, and writing the
    # results, about one more; measured at 1,000 shipments).
    # Out of time already: only the best baseline's (the plan returned) is replayed.
    t = time.perf_counter()
    names = [prepared.best_baseline] if deadline.expired() else list(prepared.baselines)
    baselines_kpis = _replay_baselines(prepared, names)
    replays = time.perf_counter() - t
    reserve = 3.0 * replays / max(1, len(baselines_kpis))
    if deadline.expired():
        prepare_failed = (f"the time limit of {deadline.seconds:g} s ran out during preparation "
                          f"({deadline.elapsed:.1f} s); the best baseline's plan is returned")
    backend = config.solver.backend
    seed = config.solver.seed
    solver = create_solver(backend, work_options(backend, config), source=config.source)
    if config.solver.budget == "work":
        # Work mode: the wall clock is only a safety net; the backends stop on their fixed work.
        deadline = Deadline(max(deadline.remaining, 10 * config.solver.time_limit))
    else:
        deadline = deadline.child(max(deadline.remaining - reserve, 0.0))
    t = time.perf_counter()
    if prepare_failed:
        answer = Answer(x=prepared.reference.copy(), solver=backend, info={}, timing={"total": 0.0},
                        best_origin="initial", origin_counts={"initial": 1})
    else:
        try:
            route = _run_model_solver if hasattr(solver, "solve_model") else _run_qubo_solver
            answer = route(prepared, solver, config, seed=seed, deadline=deadline, on_progress=on_progress)
        except KeyboardInterrupt:
            answer = _interrupted_answer(prepared, backend, time.perf_counter() - t)
    return evaluate_answer(prepared, answer, backend=backend, seed=seed,
                           timing={"baseline_kpis": replays, "solve": time.perf_counter() - t},
                           time_limited=bool(prepare_failed), message=prepare_failed or "",
                           baselines_kpis=baselines_kpis)


def evaluate_answer(prepared: Prepared, answer: Answer, *, backend: str, seed: int,
                    timing: dict[str, float] | None = None, time_limited: bool = False,
                    message: str = "", baselines_kpis: dict | None = None) -> Outcome:
    """Check the answer's plan against the problem itself and measure it (KPIs by replay);
    ``baselines_kpis`` are the baselines' replayed KPIs when already measured."""
    t = time.perf_counter()
    model = prepared.model
    x = np.asarray(answer.x, dtype=np.uint8)
    feasible_model = bool(model.is_feasible(x)[0])
    plan = decode(prepared.candidates, x)
    violations = tuple(check_plan(prepared.problem, plan))
    feasible = feasible_model and not violations
    if baselines_kpis is None:
        baselines_kpis = _replay_baselines(prepared, list(prepared.baselines))
    kpis = simulate(prepared.problem, plan) if feasible else None
    if answer.interrupted:
        status = Status.INTERRUPTED
    elif time_limited:
        status = Status.TIME_LIMIT
    elif not feasible:
        status = Status.INFEASIBLE
    elif answer.optimal:
        status = Status.OPTIMAL  # the solver's proof, and the independent check agreed
    else:
        status = Status.FEASIBLE
    if not feasible and not violations:
        violations = tuple(model.violated_rows(x))
    return Outcome(
        prepared=prepared, backend=backend, seed=seed, answer=answer, x=x, energy=answer.energy,
        objective=float(model.objective(x)[0]), feasible=feasible, violations=violations, plan=plan, kpis=kpis,
        baseline_kpis=baselines_kpis[prepared.best_baseline], baselines_kpis=baselines_kpis, bound=answer.bound,
        optimal=bool(answer.optimal and feasible), status=status, message=message,
        timing={**(timing or {}), "evaluate": time.perf_counter() - t},
    )
