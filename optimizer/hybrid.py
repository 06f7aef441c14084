"""Hybrid decomposition: solve a QUBO larger than a device by solving device-sized pieces.

The loop reads as dwave-hybrid's Kerberos sentence, decomposer | subproblem sampler | composer::

    warm start (given, or simulated annealing)
    repeat until time, rounds or patience run out:
        choose whole units (one-hot groups; a variable in no group is its own unit) by
        energy impact, grown along couplings, plus the slack bits coupled to them
        clamp everything else to the incumbent (Qubo.clamp is exact), solve the piece
        splice the piece's best samples back, re-optimise slack bits greedily,
        accept when the FULL energy (recomputed) decreases
    optional refine(x) -> x hook (CP-SAT on the model, say); kept only if it lowers energy

The incumbent only ever moves to a lower recomputed energy, and the returned SampleSet
holds the warm start too, so the result is never worse than the warm start. Ctrl-C stops
the loop and returns the best found so far with ``info["interrupted"] = True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.executor import Executor, LocalExecutor
from optimizer.qubo import Qubo
from optimizer.solver import Deadline, SampleSet, Solver

__all__ = ["solve_hybrid", "Decomposition", "select_subproblem", "splice", "polish_slack", "SELECTIONS",
           "SLACK_PREFIX"]

SELECTIONS = ("energy-impact", "resource", "random")
SLACK_PREFIX = "slack/"
#: Samples of each solved piece that are spliced back and tried (lowest energy first).
_TRIED_PER_PIECE = 32


# ---------------------------------------------------------------------------- structure
@dataclass(frozen=True, eq=False)
class Decomposition:
    """The QUBO's units (whole one-hot groups or single variables) and how they couple.

    Slack bits (labels starting ``slack/``) that are in no group belong to no unit: they are
    added to a piece when they couple to its units and there is room.
    """

    units: tuple[np.ndarray, ...]
    unit_of: np.ndarray  # (n,) unit index of each variable, -1 for a slack bit
    slack: np.ndarray  # indices of slack bits
    slack_row: np.ndarray  # (n,) row id of each slack bit (-1 elsewhere), for parallel polishing
    J: sp.csr_array  # symmetric couplings, zero diagonal
    unit_coupling: sp.csr_array  # (u, u) sum of |J| between units, zero diagonal

    @classmethod
    def of(cls, qubo: Qubo) -> Decomposition:
        n = qubo.num_variables
        unit_of = -np.ones(n, dtype=np.int64)
        units: list[np.ndarray] = []
        for group in qubo.groups:
            unit_of[list(group)] = len(units)
            units.append(np.asarray(group, dtype=np.int64))
        is_slack = np.array([label.startswith(SLACK_PREFIX) for label in qubo.labels], dtype=bool)
        slack_row = -np.ones(n, dtype=np.int64)
        rows: dict[str, int] = {}
        for i in np.flatnonzero(is_slack & (unit_of < 0)):
            slack_row[i] = rows.setdefault(qubo.labels[i].rsplit("/", 1)[0], len(rows))
        for i in np.flatnonzero((unit_of < 0) & ~is_slack):
            unit_of[i] = len(units)
            units.append(np.array([i], dtype=np.int64))
        J = qubo.symmetric()
        in_unit = np.flatnonzero(unit_of >= 0)
        P = sp.csr_array((np.ones(in_unit.size), (in_unit, unit_of[in_unit])), shape=(n, max(len(units), 1)))
        W = (P.T @ abs(J) @ P).tolil()
        W.setdiag(0)
        return cls(tuple(units), unit_of, np.flatnonzero(slack_row >= 0), slack_row, J,
                   sp.csr_array(W.tocsr()))

    @property
    def num_units(self) -> int:
        return len(self.units)


def unit_gains(qubo: Qubo, dec: Decomposition, x: np.ndarray) -> np.ndarray:
    """Energy impact of each unit: how much its best single move lowers E (negative: raises).

    A one-hot group holding exactly one 1 moves by switching that 1 to another member
    (E change ``lf_a + lf_b - J_ab``); any other unit by flipping one variable.
    """
    lf = qubo.local_fields(x)
    gains = np.empty(dec.num_units)
    for u, members in enumerate(dec.units):
        best = lf[members].min()
        on = members[x[members] == 1]
        if members.size > 1 and on.size == 1:
            a = int(on[0])
            others = members[members != a]
            j_row = dec.J[[a], :].toarray().ravel()
            best = (lf[a] + lf[others] - j_row[others]).min()
        gains[u] = -best
    return gains


# ---------------------------------------------------------------------------- decomposer
def select_subproblem(qubo: Qubo, dec: Decomposition, x: np.ndarray, *, limit: int, rng: np.random.Generator,
                      selection: str = "energy-impact", avoid: Sequence[int] = ()) -> np.ndarray:
    """Variables of one piece: whole units, then coupled slack bits, at most ``limit`` in all.

    ``energy-impact``: start from a unit drawn among those whose best move gains most, grow
    along couplings (units sharing nonzero Q entries with the piece, i.e. competing for the
    same resources), best gain first. ``resource``: start from a random unit, grow by
    coupling strength. ``random``: random units. ``avoid`` lists units not to start from
    (recent starts that did not improve). Returns sorted variable indices.
    """
    return _select(qubo, dec, x, limit=limit, rng=rng, selection=selection, avoid=avoid)[0]


def _select(qubo: Qubo, dec: Decomposition, x: np.ndarray, *, limit: int, rng: np.random.Generator,
            selection: str, avoid: Sequence[int]) -> tuple[np.ndarray, int]:
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    sizes = np.array([u.size for u in dec.units])
    fits = sizes <= limit
    if not fits.any():
        raise ValueError(f"no unit fits a piece of {limit} variables (smallest unit has {sizes.min()})")
    noise = rng.random(dec.num_units) * 1e-9  # tie-break, from the seed
    if selection == "energy-impact":
        score = unit_gains(qubo, dec, x)
        scale = np.ptp(score[fits]) if fits.sum() > 1 else 1.0
        score = score + noise * max(scale, 1.0)
    else:
        score = rng.random(dec.num_units)

    # Seed unit.
    starts = np.flatnonzero(fits)
    allowed = np.setdiff1d(starts, np.asarray(avoid, dtype=np.int64))
    if allowed.size:
        starts = allowed
    if selection == "energy-impact":
        top = starts[np.argsort(-score[starts], kind="stable")][: max(3, starts.size // 5)]
        seed_unit = int(rng.choice(top))
    else:
        seed_unit = int(rng.choice(starts))

    chosen = [seed_unit]
    used = sizes[seed_unit]
    taken = np.zeros(dec.num_units, dtype=bool)
    taken[seed_unit] = True
    W = dec.unit_coupling
    pull = W[[seed_unit], :].toarray().ravel()
    while True:
        open_ = ~taken & (sizes <= limit - used)
        if not open_.any():
            break
        coupled = open_ & (pull > 0)
        pool = coupled if coupled.any() and selection != "random" else open_
        if selection == "resource":
            key = pull + noise
        else:
            key = score
        u = int(np.flatnonzero(pool)[np.argmax(key[pool])])
        chosen.append(u)
        taken[u] = True
        used += sizes[u]
        pull += W[[u], :].toarray().ravel()

    variables = np.concatenate([dec.units[u] for u in chosen])
    room = limit - variables.size
    if room > 0 and dec.slack.size:
        strength = np.asarray(abs(dec.J[variables][:, dec.slack]).sum(axis=0)).ravel()
        order = np.argsort(-strength, kind="stable")
        linked = dec.slack[order[strength[order] > 0]][:room]
        variables = np.concatenate([variables, linked])
    return np.sort(variables), seed_unit


# ---------------------------------------------------------------------------- composer
def splice(x: np.ndarray, free: np.ndarray, sub_sample: np.ndarray) -> np.ndarray:
    """A copy of ``x`` with ``x[free] = sub_sample``."""
    y = np.array(x, dtype=np.uint8, copy=True)
    y[free] = sub_sample
    return y


def polish_slack(qubo: Qubo, dec: Decomposition, x: np.ndarray, *, max_passes: int = 10_000) -> np.ndarray:
    """Flip slack bits while a flip lowers the energy (steepest first, one bit per row at once).

    Bits of different slack rows do not interact in qfreight's encoding, so the best bit of
    every row flips together; if a QUBO breaks that, the pass falls back to one flip.
    """
    if not dec.slack.size:
        return x
    x = np.array(x, dtype=np.uint8, copy=True)
    energy = qubo.energy(x)
    rows = dec.slack_row[dec.slack]
    for _ in range(max_passes):
        lf = qubo.local_fields(x)[dec.slack]
        improving = lf < -1e-9 * max(1.0, abs(energy))
        if not improving.any():
            break
        # Best improving bit of each row: sort by gain, keep the first bit seen per row.
        cand = np.flatnonzero(improving)
        cand = cand[np.argsort(lf[cand], kind="stable")]
        _, first = np.unique(rows[cand], return_index=True)
        flips = dec.slack[cand[first]]
        y = x.copy()
        y[flips] ^= 1
        new = qubo.energy(y)
        if new >= energy:
            y = x.copy()
            y[dec.slack[cand[0]]] ^= 1
            new = qubo.energy(y)
            if new >= energy:
                break
        x, energy = y, new
    return x


def _unit_moves(dec: Decomposition, x: np.ndarray, free: np.ndarray):
    """Every single move of the units inside ``free``: a group's 1 switched, a lone bit flipped."""
    for u in np.unique(dec.unit_of[free][dec.unit_of[free] >= 0]):
        members = dec.units[u]
        on = members[x[members] == 1]
        if members.size > 1 and on.size == 1:
            for b in members[members != on[0]]:
                y = x.copy()
                y[on[0]], y[b] = 0, 1
                yield y
        else:
            for i in members:
                y = x.copy()
                y[i] ^= 1
                yield y


def _solve_piece(task: tuple) -> np.ndarray:
    """Executor task: solve one clamped piece; its lowest samples (module-level: picklable)."""
    sub, solver, seed, time_limit, initial = task
    result = solver.solve(sub, seed=seed, time_limit=time_limit, initial=initial)
    return np.asarray(result.samples[:_TRIED_PER_PIECE], dtype=np.uint8)


def _tolerance(qubo: Qubo, energy: float) -> float:
    # Energies near a large penalty offset carry rounding noise of a few ulps of the offset.
    return 1e-9 * max(1.0, abs(energy)) + 8 * np.finfo(float).eps * abs(qubo.offset)


def _warm_start(qubo: Qubo, seed: int, time_limit: float) -> np.ndarray:
    from backends import create_solver

    annealer = create_solver("anneal", {"num_reads": 16, "num_sweeps": 1000})
    return annealer.solve(qubo, seed=seed, time_limit=time_limit).best


# ---------------------------------------------------------------------------- the loop
def solve_hybrid(
    qubo: Qubo,
    *,
    solver: Solver,
    seed: int,
    time_limit: float,
    initial: np.ndarray | None = None,
    subproblem_size: int | None = None,
    rounds: int = 200,
    patience: int = 30,
    pieces_per_round: int = 1,
    selection: str = "energy-impact",
    executor: Executor | None = None,
    refine: Callable[[np.ndarray], np.ndarray] | None = None,
    polish: Callable[[np.ndarray], np.ndarray] | None = None,
    unit_moves: bool = True,
    on_progress: Callable[[dict], None] | None = None,
) -> tuple[SampleSet, list[dict]]:
    """Minimise ``qubo`` with ``solver`` on pieces of at most ``min(subproblem_size, solver.max_variables)``.

    ``initial`` is a full QUBO assignment (else simulated annealing gives the warm start).
    Each round builds ``pieces_per_round`` pieces from the incumbent and solves them through
    ``executor`` (default: in this process). ``polish(x) -> x`` replaces the greedy slack
    descent applied to every candidate (qfreight can pass ``encoding.lift(encoding.project(x))``,
    which sets slack optimally). ``refine(x) -> x`` runs once after the rounds. Stops after
    ``rounds`` rounds, ``patience`` rounds without improvement, ``time_limit`` seconds, or
    Ctrl-C. With slack bits present and ``unit_moves``, every single move of a piece's units
    (polished) is tried as well: clamped slack can hide such a move from the piece's solver.
    Each round's record counts improvements by source (``device`` or ``unit-move``).
    Returns the SampleSet (best, warm start) and the stage records.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    if rounds < 0 or patience < 1 or pieces_per_round < 1:
        raise ValueError("rounds must be >= 0, patience and pieces_per_round >= 1")
    sizes = [s for s in (subproblem_size, solver.max_variables) if s is not None]
    limit = min(sizes) if sizes else 32
    if limit < 1:
        raise ValueError(f"subproblem_size must be positive, got {limit}")
    deadline = Deadline(time_limit)
    rng = np.random.default_rng(seed)
    dec = Decomposition.of(qubo)
    stages: list[dict] = []

    def record(stage: dict) -> None:
        stages.append(stage)
        if on_progress is not None:
            on_progress(dict(stage))

    def improve_slack(y: np.ndarray) -> np.ndarray:
        return np.asarray(polish(y), dtype=np.uint8) if polish is not None else polish_slack(qubo, dec, y)

    # Warm start.
    t0 = time.perf_counter()
    if initial is None:
        warm = _warm_start(qubo, int(rng.integers(2**31 - 1)), max(deadline.remaining / 4, 0.1))
        source = "anneal"
    else:
        warm = np.asarray(initial, dtype=np.uint8).ravel()
        if warm.shape != (qubo.num_variables,):
            raise ValueError(f"initial has {warm.size} values, QUBO has {qubo.num_variables} variables")
        source = "initial"
    warm_energy = qubo.energy(warm)
    best = improve_slack(warm)
    best_energy = qubo.energy(best)
    if best_energy >= warm_energy:
        best, best_energy = warm.copy(), warm_energy
    record({"stage": "warm_start", "source": source, "energy": warm_energy, "polished_energy": best_energy,
            "seconds": time.perf_counter() - t0, "accepted": True, "subproblem_size": 0})

    interrupted = False
    stop = "rounds"
    done = 0
    accepted_rounds = 0
    stale = 0
    avoid: list[int] = []
    own_executor = executor is None
    executor = executor or LocalExecutor()
    try:
        for done in range(1, rounds + 1):
            if deadline.expired():
                stop, done = "time_limit", done - 1
                break
            t = time.perf_counter()
            tasks, frees, seeds = [], [], []
            for _ in range(pieces_per_round):
                free, seed_unit = _select(qubo, dec, best, limit=limit, rng=rng, selection=selection,
                                          avoid=avoid)
                seeds.append(seed_unit)
                fixed = np.setdiff1d(np.arange(qubo.num_variables), free)
                sub, sub_free = qubo.clamp(dict(zip(fixed.tolist(), best[fixed].tolist())))
                assert np.array_equal(sub_free, free)
                piece_limit = max(min(deadline.remaining, time_limit), 0.01)
                tasks.append((sub, solver, int(rng.integers(2**31 - 1)), piece_limit, best[free].copy()))
                frees.append(free)
            results = executor.map(_solve_piece, tasks)
            # Compose: try each piece's samples on the incumbent, keep any that lowers the energy.
            before = best_energy
            sources = {"device": 0, "unit-move": 0}
            # A piece's slack bits were mostly clamped, so its solver saw a unit move together
            # with the penalty of the clamped slack; each sample is also tried with only its
            # unit part spliced, the slack left to the polish.
            for free, samples in zip(frees, results):
                in_unit = dec.unit_of[free] >= 0
                for sub_sample in samples:
                    variants = [(free, sub_sample)]
                    if not in_unit.all():
                        variants.append((free[in_unit], sub_sample[in_unit]))
                    for variables, values in variants:
                        candidate = improve_slack(splice(best, variables, values))
                        energy = qubo.energy(candidate)
                        if energy < best_energy - _tolerance(qubo, best_energy):
                            best, best_energy = candidate, energy
                            sources["device"] += 1
                if unit_moves and dec.slack.size:
                    # The same penalty can hide a single unit move from the piece's lowest
                    # samples: try each one (switch a group's 1, flip a lone variable) too.
                    for candidate in _unit_moves(dec, best, free):
                        candidate = improve_slack(candidate)
                        energy = qubo.energy(candidate)
                        if energy < best_energy - _tolerance(qubo, best_energy):
                            best, best_energy = candidate, energy
                            sources["unit-move"] += 1
            accepted = best_energy < before
            if accepted:
                accepted_rounds += 1
                stale = 0
                avoid.clear()
            else:
                stale += 1
                avoid.extend(seeds)
                del avoid[: max(0, len(avoid) - dec.num_units // 2)]
            record({"stage": "round", "round": done, "energy": best_energy, "gain": before - best_energy,
                    "seconds": time.perf_counter() - t, "accepted": accepted,
                    "subproblem_size": int(max(f.size for f in frees)), "pieces": len(frees),
                    "seed_units": seeds, "improvements": sources})
            if stale >= patience:
                stop = "patience"
                break
        else:
            stop = "rounds"
    except KeyboardInterrupt:
        interrupted, stop = True, "interrupted"
    finally:
        if own_executor:
            executor.close()

    if refine is not None and not interrupted:
        t = time.perf_counter()
        try:
            refined = np.asarray(refine(best.copy()), dtype=np.uint8)
            energy = qubo.energy(refined)
            accepted = energy < best_energy - _tolerance(qubo, best_energy)
            if accepted:
                best, best_energy = refined, energy
            record({"stage": "refine", "energy": energy, "seconds": time.perf_counter() - t,
                    "accepted": bool(accepted), "subproblem_size": qubo.num_variables})
        except KeyboardInterrupt:
            interrupted = True

    info = {
        "stages": stages,
        "rounds": done,
        "accepted_rounds": accepted_rounds,
        "stop": stop,
        "interrupted": interrupted,
        "subproblem_limit": limit,
        "selection": selection,
        "warm_energy": warm_energy,
        "executor": getattr(executor, "kind", type(executor).__name__),
    }
    sampleset = SampleSet.from_samples(qubo, np.stack([best, warm]), solver=f"hybrid[{solver.name}]",
                                       timing={"total": deadline.elapsed}, info=info)
    return sampleset, stages
