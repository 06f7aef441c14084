"""Configured decomposition runs: the one place where the ``[hybrid]``, ``[refine]`` and
``[executor]`` tables become a :func:`~optimizer.solve.decompose.decompose` call.

Both paths use it: a freight model larger than a device (pieces = whole shipments, CP-SAT
refinement on the whole model) and a bare QUBO larger than a device (pieces = clamped
sub-QUBOs, annealing from the incumbent as refinement). ``qfreight solve`` and
``qfreight compare`` call the same functions, so they cannot diverge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from optimizer.qubo.model import BinaryModel
from optimizer.qubo.qubo import Qubo
from optimizer.solve.config import Config
from optimizer.solve.decompose import Decomposed, ModelSource, QuboPieceSolver, QuboSource, decompose
from optimizer.solve.executor import create_executor
from optimizer.solve.result import StageRecord
from optimizer.solve.solver import SampleSet, Solver
from optimizer.solve.stop import Deadline, MaxRounds, MaxRuntime, MultipleCriteria, NoImprovement

__all__ = ["refine_share", "stop_criteria", "run_model_hybrid", "run_qubo_hybrid"]


def refine_share(config: Config, deadline: Deadline) -> float:
    """Seconds kept for the refinement stage: ``[refine] time_limit``, at most 30 % of what is left
    (refinement is part of the time limit, not on top of it)."""
    return min(config.refine.time_limit, 0.3 * deadline.remaining) if config.refine.enabled else 0.0


def stop_criteria(config: Config, loop_deadline: Deadline) -> MultipleCriteria:
    hy = config.hybrid
    return MultipleCriteria([MaxRounds(hy.rounds), NoImprovement(hy.patience), MaxRuntime(deadline=loop_deadline)])


def _piece_solver(solver: Solver, config: Config) -> QuboPieceSolver:
    hy = config.hybrid
    inequality = hy.piece_inequality
    if inequality == "auto":
        inequality = getattr(solver, "piece_inequality", "slack")
    return QuboPieceSolver(solver, subproblem_size=hy.subproblem_size or None, inequality=inequality)


def run_model_hybrid(model: BinaryModel, solver: Solver, config: Config, *, start: np.ndarray, start_source: str,
                     names: Sequence[str], seed: int, deadline: Deadline,
                     on_progress: Callable[[StageRecord], None] | None = None) -> Decomposed:
    """Device-sized pieces of whole shipments, then CP-SAT on the whole model, inside ``deadline``."""
    from backends.cpsat import CpSatSolver

    hy, ex = config.hybrid, config.executor
    refine_time = refine_share(config, deadline)
    loop_deadline = deadline.child(max(0.0, deadline.remaining - refine_time))

    def refine(x: np.ndarray, seconds: float) -> np.ndarray:
        return CpSatSolver(workers=config.refine.workers).solve_model(model, seed=seed, time_limit=seconds,
                                                                      initial=x).x

    source = ModelSource(model, names=names, plans_per_group=hy.plans_per_shipment)
    with create_executor(ex.kind, workers=ex.workers, address=ex.address or None) as executor:
        return decompose(source, _piece_solver(solver, config), start=start, start_source=start_source,
                         stop=stop_criteria(config, loop_deadline), deadline=loop_deadline, seed=seed,
                         pieces_per_round=hy.pieces_per_round, selection=hy.selection, executor=executor,
                         attribution=hy.attribution, refine=refine if config.refine.enabled else None,
                         refine_time=refine_time, on_progress=on_progress)


def run_qubo_hybrid(qubo: Qubo, solver: Solver, config: Config, *, seed: int, deadline: Deadline,
                    on_progress: Callable[[StageRecord], None] | None = None) -> tuple[Decomposed, SampleSet]:
    """A bare QUBO larger than the device: annealing warm start, pieces, annealing refinement.

    Returns the loop's record and a SampleSet of the best and the warm start (origins: the warm
    start ``initial``, the loop's answer ``device`` when a piece moved it)."""
    from backends import create_solver

    hy, ex = config.hybrid, config.executor
    refine_time = refine_share(config, deadline)
    annealer = create_solver("anneal", {})
    # The warm start takes a quarter of the loop's time: enough for annealing to be a fair start.
    warm_deadline = deadline.child(0.25 * max(0.0, deadline.remaining - refine_time))
    warm = annealer.solve(qubo, seed=seed, time_limit=max(warm_deadline.remaining, 0.05)).best
    loop_deadline = deadline.child(max(0.0, deadline.remaining - refine_time))

    def refine(x: np.ndarray, seconds: float) -> np.ndarray:
        return annealer.solve(qubo, seed=seed, time_limit=seconds, initial=x).best

    with create_executor(ex.kind, workers=ex.workers, address=ex.address or None) as executor:
        run = decompose(QuboSource(qubo), _piece_solver(solver, config), start=warm, start_source="anneal",
                        stop=stop_criteria(config, loop_deadline), deadline=loop_deadline, seed=seed,
                        pieces_per_round=hy.pieces_per_round, selection=hy.selection, executor=executor,
                        attribution=hy.attribution, refine=refine if config.refine.enabled else None,
                        refine_time=refine_time, on_progress=on_progress)
    moved = not np.array_equal(run.x, warm)
    samples = SampleSet.from_samples(qubo, np.stack([run.x, warm]), solver=f"hybrid[{solver.name}]",
                                     origins=["device" if moved else "initial", "initial"],
                                     timing={"total": run.seconds}, info=run.info())
    return run, samples


def solve_qubo(qubo: Qubo, solver: Solver, config: Config, *, seed: int, time_limit: float,
               on_progress: Callable[[StageRecord], None] | None = None) -> tuple[SampleSet, bool]:
    """A bare QUBO on ``solver``: whole when it fits, else by :func:`run_qubo_hybrid`.

    Returns the SampleSet and whether the hybrid pipeline ran."""
    from optimizer.solve.decompose import fits

    if fits(solver, qubo):
        return solver.solve(qubo, seed=seed, time_limit=time_limit), False
    _, samples = run_qubo_hybrid(qubo, solver, config, seed=seed, deadline=Deadline(time_limit),
                                 on_progress=on_progress)
    return samples, True
