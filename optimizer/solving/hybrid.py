"""Configured decomposition runs: the one place where the ``[hybrid]``, ``[lns]``, ``[refine]`` and
``[executor]`` tables become a :func:`~optimizer.solving.decompose.decompose` call.

Three uses, one loop:

- a freight model larger than a quantum device (:func:`run_model_hybrid`): pieces of whole
  shipments over their plans (train counts repaired exactly afterwards), measured against the
  stand-ins, then CP-SAT refinement on the whole model;
- a freight model too large for one CP-SAT solve (:func:`run_lns`): large-neighbourhood search,
  CP-SAT on the exact sub-model of each neighbourhood, neighbourhoods in parallel through the
  executor (local processes or Dask);
- a bare QUBO larger than a device (:func:`run_qubo_hybrid`): clamped sub-QUBOs, annealing warm
  start and refinement.

``qfreight solve`` and ``qfreight compare`` call the same functions, so they cannot diverge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from optimizer.qubo.model import BinaryModel
from optimizer.qubo.qubo import Qubo
from optimizer.solving.config import Config
from optimizer.solving.decompose import (
    Decomposed,
    ModelPieceSolver,
    ModelSource,
    QuboPieceSolver,
    QuboSource,
    decompose,
    fits,
)
from optimizer.solving.executor import create_executor
from optimizer.solving.result import StageRecord
from optimizer.solving.solver import SampleSet, Solver
from optimizer.solving.stop import Deadline, MaxRounds, MaxRuntime, MultipleCriteria, NoImprovement

__all__ = ["refine_share", "stop_criteria", "run_model_hybrid", "run_lns", "run_qubo_hybrid", "solve_qubo"]


def deterministic(config: Config) -> bool:
    return config.solver.budget == "work"


#: Seconds per model variable and per constraint coefficient that CP-SAT needs before it searches
#: at all (building, loading and presolving the whole model: 0.5-0.9 s for a 1,000-shipment model
#: of 35,350 variables and 678,826 coefficients on 2 cores, whatever its time limit).
_REFINE_SECONDS_PER_TERM = 1e-6


def refine_share(config: Config, deadline: Deadline, model: BinaryModel | None = None) -> float:
    """Seconds kept for the refinement stage: ``[refine] time_limit``, at most 30 % of what is left
    (refinement is part of the time limit, not on top of it); none when that share is shorter
    than CP-SAT needs to load ``model`` (it would only overrun the limit, finding nothing)."""
    if not config.refine.enabled:
        return 0.0
    share = min(config.refine.time_limit, 0.3 * deadline.remaining)
    if model is not None and share < _REFINE_SECONDS_PER_TERM * (model.num_variables + model.A.nnz):
        return 0.0
    return share


def stop_criteria(rounds: int, patience: int, loop_deadline: Deadline, *, work: bool) -> MultipleCriteria:
    """Rounds and patience always; the wall clock too unless the run is in work mode (where the
    deadline is only the safety net that the loop checks by itself)."""
    criteria = [MaxRounds(rounds), NoImprovement(patience)]
    if not work:
        criteria.append(MaxRuntime(deadline=loop_deadline))
    return MultipleCriteria(criteria)


def _piece_solver(solver: Solver, config: Config, *, default: str = "slack") -> QuboPieceSolver:
    """``[hybrid] piece_inequality = "auto"``: the backend's own choice when it states one, else
    ``default`` (unbalanced penalties for freight pieces: every answer is repaired and judged by
    the full model anyway, and slack bits of the locomotive and yard rows would fill a device)."""
    hy = config.hybrid
    inequality = hy.piece_inequality
    if inequality == "auto":
        inequality = getattr(solver, "piece_inequality", default)
    return QuboPieceSolver(solver, subproblem_size=hy.subproblem_size or None, inequality=inequality)


def _cpsat_refine(model: BinaryModel, config: Config, seed: int):
    from backends.cpsat import CpSatSolver

    work = config.solver.work if deterministic(config) else None

    def refine(x: np.ndarray, seconds: float) -> tuple[np.ndarray, bool]:
        solver = CpSatSolver(workers=config.refine.workers, work_limit=work)
        solution = solver.solve_model(model, seed=seed, time_limit=seconds, initial=x)
        return solution.x, solution.interrupted

    return refine


def run_model_hybrid(model: BinaryModel, solver: Solver, config: Config, *, start: np.ndarray, start_source: str,
                     names: Sequence[str], seed: int, deadline: Deadline, surrogate=None,
                     times: Callable[[np.ndarray], np.ndarray] | None = None,
                     on_progress: Callable[[StageRecord], None] | None = None) -> Decomposed:
    """Device-sized pieces of whole shipments, then CP-SAT on the whole model, inside ``deadline``.

    ``surrogate`` (:class:`optimizer.freight.pieces.PlanPieces`) gives the device pieces over the
    shipments' plans alone, with train counts repaired exactly; without it a piece frees its
    plans and the auxiliary variables they share rows with."""
    hy, ex = config.hybrid, config.executor
    refine_time = refine_share(config, deadline, model)
    loop_deadline = deadline.child(max(0.0, deadline.remaining - refine_time))
    source = ModelSource(model, names=names, plans_per_group=hy.plans_per_shipment, times=times, surrogate=surrogate)
    with create_executor(ex.kind, workers=ex.workers, address=ex.address or None, processes=ex.processes) as executor:
        piece_solver = _piece_solver(solver, config, default="unbalanced" if surrogate is not None else "slack")
        return decompose(source, piece_solver, start=start, start_source=start_source,
                         stop=stop_criteria(hy.rounds, hy.patience, loop_deadline, work=deterministic(config)),
                         deadline=loop_deadline, seed=seed, pieces_per_round=hy.pieces_per_round,
                         selection=hy.selection, executor=executor, attribution=hy.attribution,
                         refine=_cpsat_refine(model, config, seed) if config.refine.enabled else None,
                         refine_time=refine_time, on_progress=on_progress, deterministic=deterministic(config),
                         piece_time=hy.piece_time)


def run_lns(model: BinaryModel, config: Config, *, start: np.ndarray, start_source: str, names: Sequence[str],
            seed: int, deadline: Deadline, times: Callable[[np.ndarray], np.ndarray] | None = None,
            on_progress: Callable[[StageRecord], None] | None = None) -> Decomposed:
    """Large-neighbourhood search from ``start`` (the best baseline): CP-SAT re-solves the exact
    sub-model of one neighbourhood after another (adaptive choice among time windows, tight
    resources, the worst-placed shipments, ...); non-overlapping neighbourhoods of one round run in
    parallel through ``[executor]``. Never worse than ``start``."""
    ln, ex = config.lns, config.executor
    piece_solver = ModelPieceSolver(workers=ln.workers, subproblem_size=ln.subproblem_size, piece_time=ln.piece_time,
                                    deterministic=deterministic(config))
    source = ModelSource(model, names=names, plans_per_group=0, times=times)
    pieces = max(ln.pieces_per_round, ex.workers if ex.kind == "dask" or ex.workers > 1 else 1)
    with create_executor(ex.kind, workers=ex.workers, address=ex.address or None, processes=ex.processes) as executor:
        return decompose(source, piece_solver, start=start, start_source=start_source,
                         stop=stop_criteria(ln.rounds, ln.patience, deadline, work=deterministic(config)),
                         deadline=deadline, seed=seed, pieces_per_round=pieces, selection=ln.selection,
                         executor=executor, attribution=False, on_progress=on_progress,
                         deterministic=deterministic(config))


def run_qubo_hybrid(qubo: Qubo, solver: Solver, config: Config, *, seed: int, deadline: Deadline,
                    on_progress: Callable[[StageRecord], None] | None = None) -> tuple[Decomposed, SampleSet]:
    """A bare QUBO larger than the device: annealing warm start, pieces, annealing refinement.

    Returns the loop's record and a SampleSet of the best and the warm start (origins: the warm
    start ``initial``; the loop's answer ``device`` when a credited device round moved it last,
    ``postprocessed`` when a stand-in or the refinement did)."""
    from backends import create_solver
    from optimizer.solving.pipeline import hybrid_origin

    hy, ex = config.hybrid, config.executor
    work = deterministic(config)
    refine_time = refine_share(config, deadline)
    annealer = create_solver("anneal", {"num_reads": 64} if work else {})
    # The warm start takes a quarter of the loop's time: enough for annealing to be a fair start.
    warm_deadline = deadline.child(0.25 * max(0.0, deadline.remaining - refine_time))
    warm = annealer.solve(qubo, seed=seed, time_limit=max(warm_deadline.remaining, 0.05)).best
    loop_deadline = deadline.child(max(0.0, deadline.remaining - refine_time))

    def refine(x: np.ndarray, seconds: float) -> np.ndarray:
        return annealer.solve(qubo, seed=seed, time_limit=seconds, initial=x).best

    with create_executor(ex.kind, workers=ex.workers, address=ex.address or None, processes=ex.processes) as executor:
        run = decompose(QuboSource(qubo), _piece_solver(solver, config), start=warm, start_source="anneal",
                        stop=stop_criteria(hy.rounds, hy.patience, loop_deadline, work=work), deadline=loop_deadline,
                        seed=seed, pieces_per_round=hy.pieces_per_round, selection=hy.selection, executor=executor,
                        attribution=hy.attribution, refine=refine if config.refine.enabled else None,
                        refine_time=refine_time, on_progress=on_progress, deterministic=work,
                        piece_time=hy.piece_time)
    samples = SampleSet.from_samples(qubo, np.stack([run.x, warm]), solver=f"hybrid[{solver.name}]",
                                     origins=[hybrid_origin(run.stages), "initial"],
                                     timing={"total": run.seconds}, info=run.info())
    return run, samples


def solve_qubo(qubo: Qubo, solver: Solver, config: Config, *, seed: int, time_limit: float,
               on_progress: Callable[[StageRecord], None] | None = None) -> tuple[SampleSet, bool]:
    """A bare QUBO on ``solver``: whole when it fits, else by :func:`run_qubo_hybrid`.

    Returns the SampleSet and whether the hybrid pipeline ran."""
    if fits(solver, qubo):
        return solver.solve(qubo, seed=seed, time_limit=time_limit), False
    _, samples = run_qubo_hybrid(qubo, solver, config, seed=seed, deadline=Deadline(time_limit),
                                 on_progress=on_progress)
    return samples, True
