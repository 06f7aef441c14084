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

from optimizer.solve.executor import Executor, LocalExecutor
from optimizer.qubo import Qubo
from optimizer.solve.stop import Deadline
from optimizer.solve.solver import SampleSet, Solver

__all__ = ["solve_hybrid", "solve_model_hybrid", "submodel", "Decomposition", "select_subproblem", "splice", "polish_slack", "SELECTIONS",
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


def _refine_stage(refine, best: np.ndarray, best_value: float, score, tol: float, record, size: int):
    """Run the ``refine(x) -> x`` hook once; keep its answer only if ``score`` says it is feasible
    and lower. ``score(x) -> (value, feasible)``. Returns (best, best value, interrupted)."""
    t = time.perf_counter()
    try:
        refined = np.asarray(refine(best.copy()), dtype=np.uint8)
    except KeyboardInterrupt:
        return best, best_value, True
    value, feasible = score(refined)
    accepted = bool(feasible and value < best_value - tol)
    record({"stage": "refine", "energy": value, "objective": value, "seconds": time.perf_counter() - t,
            "accepted": accepted, "subproblem_size": size})
    return (refined, value, False) if accepted else (best, best_value, False)


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
        best, best_energy, interrupted = _refine_stage(
            refine, best, best_energy, lambda x: (qubo.energy(x), True), _tolerance(qubo, best_energy),
            record, qubo.num_variables)

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


# ---------------------------------------------------------------------------- model-aware pieces
def submodel(model, x: np.ndarray, groups: Sequence[int], members: dict[int, Sequence[int]] | None = None):
    """The constrained model over the plans of ``groups``, every other shipment fixed as in ``x``.

    ``members`` may restrict a group to some of its plans (the others are held at 0); the
    restricted group must contain the plan ``x`` chooses, so ``x`` stays feasible for the piece.

    Exact: for any assignment y of the piece, ``model.objective(x with y) == sub.objective(y)``
    and the full assignment is feasible iff y is feasible for the piece (given that the fixed
    part of ``x`` is). Capacity the fixed shipments use is taken off each row's bound; rows the
    piece can no longer overfill are dropped (they would only cost slack qubits).
    Returns the sub-model and the model indices of its variables.
    """
    from optimizer.qubo.model import BinaryModel, row_group_max_sum

    n = model.num_variables
    members = members or {}
    chosen = [np.asarray(members.get(g, model.groups[g]), dtype=np.int64) for g in groups]
    variables = np.concatenate(chosen)
    in_piece = np.zeros(n, dtype=bool)
    in_piece[variables] = True
    x = np.asarray(x, dtype=np.float64)
    fixed_x = np.where(in_piece, 0.0, x)
    Psym = (model.P + model.P.T).tocsr()
    c_sub = model.c[variables] + (Psym @ fixed_x)[variables]
    offset = float(model.objective(fixed_x)[0])
    P_sub = sp.triu(model.P[variables][:, variables], k=1).tocsr()
    A_piece = model.A[:, variables].tocsr()
    residual = model.b - model.A @ fixed_x
    position = np.full(n, -1, dtype=np.int64)
    position[variables] = np.arange(variables.size)
    sub_groups = tuple(tuple(int(position[i]) for i in m) for m in chosen)
    group_of = np.empty(variables.size, dtype=np.int64)
    for k, members in enumerate(sub_groups):
        group_of[list(members)] = k
    coo = A_piece.tocoo()
    max_activity = row_group_max_sum(coo.row, group_of[coo.col], coo.data, model.num_rows)
    keep = np.flatnonzero(max_activity > residual + 1e-9)
    sub = BinaryModel(
        labels=tuple(model.labels[i] for i in variables), c=np.ascontiguousarray(c_sub), P=P_sub, offset=offset,
        groups=sub_groups, A=A_piece[keep].tocsr(), b=np.ascontiguousarray(residual[keep]),
        row_names=tuple(model.row_names[r] for r in keep))
    return sub, variables


def _group_gains(model, x: np.ndarray) -> np.ndarray:
    """Per group: objective of its current plan minus its cheapest plan, the rest held fixed
    (capacity ignored): how much a better choice for that shipment could be worth."""
    Psym = (model.P + model.P.T).tocsr()
    field_ = model.c + Psym @ np.asarray(x, dtype=np.float64)
    gains = np.empty(len(model.groups))
    for g, members in enumerate(model.groups):
        m = np.asarray(members)
        gains[g] = field_[m][x[m] == 1].sum() - field_[m].min()
    return gains


def _group_links(model) -> sp.csr_array:
    """(g, g) number of capacity rows or consolidation pairs two shipments share."""
    n = model.num_variables
    group_of = np.empty(n, dtype=np.int64)
    for g, members in enumerate(model.groups):
        group_of[list(members)] = g
    G = len(model.groups)
    member = sp.csr_array((np.ones(n), (group_of, np.arange(n))), shape=(G, n))
    usage = ((member @ model.A.T) > 0).astype(np.float64)  # (G, rows)
    links = usage @ usage.T + member @ (abs(model.P) + abs(model.P).T) @ member.T
    links = sp.csr_array(links)
    links.setdiag(0)
    links.eliminate_zeros()
    return links


def _shortlists(model, x, groups, plans: int) -> dict[int, list[int]] | None:
    """Per group: its current plan and its ``plans - 1`` cheapest others, given the incumbent."""
    if plans <= 0:
        return None
    Psym = (model.P + model.P.T).tocsr()
    field_ = model.c + Psym @ np.asarray(x, dtype=np.float64)
    out = {}
    for g in groups:
        m = np.asarray(model.groups[g])
        current = m[x[m] == 1]
        others = m[x[m] == 0]
        others = others[np.argsort(field_[others], kind="stable")][: max(0, plans - current.size)]
        out[g] = sorted(current.tolist() + others.tolist())
    return out


def _choose_groups(model, x, links, *, budget: int, rng, selection: str, avoid: set[int],
                   plans: int = 0) -> list[int]:
    """Seed group by energy impact (sampled, so rounds differ), then the groups that share the
    most resources with the piece so far, while the piece's plans fit the budget."""
    sizes = np.array([len(g) if plans <= 0 else min(plans, len(g)) for g in model.groups])
    G = len(model.groups)
    if selection == "random":
        order = list(rng.permutation(G))
        chosen, used = [], 0
        for g in order:
            if used + sizes[g] <= budget:
                chosen.append(int(g))
                used += sizes[g]
        return chosen or [int(order[0])]
    gains = _group_gains(model, x)
    weights = gains + 1e-9 * (1 + gains.max(initial=0))
    weights[list(avoid)] *= 1e-3
    seed_group = int(rng.choice(G, p=weights / weights.sum()))
    chosen, used = [seed_group], sizes[seed_group]
    score = links[[seed_group]].toarray().ravel().astype(np.float64)
    while True:
        if selection == "energy-impact":
            ranked = score * (1.0 + gains / (1e-9 + gains.max(initial=0)))
        else:  # "resource": shared resources only
            ranked = score.copy()
        ranked += rng.random(G) * 1e-6  # ties broken by the seed, not by index order
        ranked[chosen] = -np.inf
        ranked[sizes + used > budget] = -np.inf
        g = int(np.argmax(ranked))
        if not np.isfinite(ranked[g]):
            break
        if ranked[g] <= 1e-5:  # nothing shares a resource: pick by gain
            cands = np.flatnonzero(np.isfinite(ranked))
            g = int(cands[np.argmax(gains[cands] + rng.random(cands.size) * 1e-9)])
        chosen.append(g)
        used += sizes[g]
        score += links[[g]].toarray().ravel()
    return chosen


def solve_model_hybrid(
    encoding,
    *,
    solver: Solver,
    seed: int,
    time_limit: float,
    initial: np.ndarray,
    subproblem_size: int | None = None,
    rounds: int = 200,
    patience: int = 30,
    pieces_per_round: int = 1,
    selection: str = "energy-impact",
    plans_per_shipment: int = 0,
    executor: Executor | None = None,
    refine: Callable[[np.ndarray], np.ndarray] | None = None,
    ablation: Solver | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> tuple[SampleSet, list[dict]]:
    """Hybrid decomposition of a constrained model (the freight path of the pipeline).

    Each piece is the sub-model of a few whole shipments (:func:`submodel`, exact) encoded as
    its own QUBO with its own slack bits and penalty rule, so moves that shift capacity between
    the piece's shipments are visible to the device. A piece's answer is accepted when the full
    model objective drops and the full plan stays feasible. ``initial`` is a feasible model
    assignment (the greedy dispatcher's). With ``ablation`` (e.g. the annealing backend), every
    piece is also solved by it and the stage records say what it would have reached on the same
    subproblem; the incumbent follows ``solver`` only. ``plans_per_shipment`` (0: all) keeps
    only each chosen shipment's current plan and its cheapest alternatives in a piece, so a
    device of the same size sees more shipments at once. Returns a SampleSet on the full QUBO
    (best and warm start, lifted) and the stage records.
    """
    from optimizer.qubo.encoding import encode

    model = encoding.model
    qubo = encoding.qubo
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    sizes = [s for s in (subproblem_size, solver.max_variables) if s is not None]
    limit = min(sizes) if sizes else 32
    deadline = Deadline(time_limit)
    rng = np.random.default_rng(seed)
    links = _group_links(model)
    stages: list[dict] = []

    def record(stage: dict) -> None:
        stages.append(stage)
        if on_progress is not None:
            on_progress(dict(stage))

    warm = np.asarray(initial, dtype=np.uint8).ravel()
    if not model.is_feasible(warm)[0]:
        raise ValueError("the warm start violates the model")
    best = warm.copy()
    best_obj = float(model.objective(best)[0])
    warm_obj = best_obj
    tol = 1e-9 * max(1.0, abs(best_obj))
    record({"stage": "warm_start", "source": "initial", "energy": best_obj, "objective": best_obj,
            "seconds": deadline.elapsed, "accepted": True, "subproblem_size": 0})

    interrupted, stop, done, accepted_rounds, stale = False, "rounds", 0, 0, 0
    avoid: set[int] = set()
    totals = {"device": 0, "ablation_better": 0, "ablation_worse": 0, "ablation_same": 0}
    own_executor = executor is None
    executor = executor or LocalExecutor()
    try:
        for done in range(1, rounds + 1):
            if deadline.expired():
                stop, done = "time_limit", done - 1
                break
            t = time.perf_counter()
            pieces = []
            taken: set[int] = set()
            for _ in range(pieces_per_round):
                groups = _choose_groups(model, best, links, budget=limit, rng=rng, selection=selection,
                                        avoid=avoid | taken, plans=plans_per_shipment)
                # Slack bits come on top of the plans: drop the last-added shipments until it fits.
                while True:
                    sub, variables = submodel(model, best, groups,
                                              _shortlists(model, best, groups, plans_per_shipment))
                    sub_enc = encode(sub, reference=best[variables])
                    if sub_enc.qubo.num_variables <= limit or len(groups) == 1:
                        break
                    groups = groups[:-1]
                if sub_enc.qubo.num_variables > limit:
                    continue  # a single shipment with its slack does not fit this device
                taken.update(groups)
                pieces.append((groups, sub_enc, variables))
            if not pieces:
                stop = "no piece fits the device"
                break
            piece_limit = max(min(deadline.remaining, time_limit), 0.01)
            piece_seeds = [int(rng.integers(2**31 - 1)) for _ in pieces]
            tasks = [(enc_.qubo, solver, s, piece_limit, enc_.lift(best[v])[0])
                     for (_, enc_, v), s in zip(pieces, piece_seeds)]
            results = executor.map(_solve_piece, tasks)
            ablation_results = None
            if ablation is not None:
                ablation_results = executor.map(_solve_piece, [(q, ablation, s, lim, init)
                                                               for q, _, s, lim, init in tasks])
            before = best_obj
            piece_records = []
            for k, ((groups, sub_enc, variables), samples) in enumerate(zip(pieces, results)):
                current = float(sub_enc.model.objective(best[variables])[0])
                reached = _best_feasible(sub_enc, samples)
                rec = {"groups": [int(g) for g in groups], "qubo_variables": sub_enc.qubo.num_variables,
                       "current": current, "device": None if reached is None else reached[1]}
                if reached is not None and reached[1] < current - tol:
                    candidate = best.copy()
                    candidate[variables] = reached[0]
                    obj = float(model.objective(candidate)[0])
                    if model.is_feasible(candidate)[0] and obj < best_obj - tol:
                        best, best_obj = candidate, obj
                        totals["device"] += 1
                if ablation_results is not None:
                    alt = _best_feasible(sub_enc, ablation_results[k])
                    rec["ablation"] = None if alt is None else alt[1]
                    a = np.inf if alt is None else alt[1]
                    d = np.inf if reached is None else reached[1]
                    key = "ablation_same" if abs(a - d) <= tol else ("ablation_better" if a < d else "ablation_worse")
                    totals[key] += 1
                piece_records.append(rec)
            accepted = best_obj < before - tol
            if accepted:
                accepted_rounds += 1
                stale = 0
                avoid.clear()
            else:
                stale += 1
                avoid.update(g for p in pieces for g in p[0][:1])
                if len(avoid) > len(model.groups) // 2:
                    avoid.clear()
            record({"stage": "round", "round": done, "energy": best_obj, "objective": best_obj,
                    "gain": before - best_obj, "seconds": time.perf_counter() - t, "accepted": accepted,
                    "subproblem_size": int(max(p[1].qubo.num_variables for p in pieces)), "pieces": piece_records})
            if stale >= patience:
                stop = "patience"
                break
    except KeyboardInterrupt:
        interrupted, stop = True, "interrupted"
    finally:
        if own_executor:
            executor.close()

    if refine is not None and not interrupted:
        best, best_obj, interrupted = _refine_stage(
            refine, best, best_obj, lambda x: (float(model.objective(x)[0]), bool(model.is_feasible(x)[0])), tol,
            record, model.num_variables)

    info = {"stages": stages, "rounds": done, "accepted_rounds": accepted_rounds, "stop": stop,
            "interrupted": interrupted, "subproblem_limit": limit, "selection": selection,
            "warm_energy": warm_obj, "device_improvements": totals["device"],
            "executor": getattr(executor, "kind", type(executor).__name__), "decomposition": "model"}
    if ablation is not None:
        info["ablation"] = {"backend": ablation.name, **{k: v for k, v in totals.items() if k != "device"}}
    sampleset = SampleSet.from_samples(qubo, encoding.lift(np.stack([best, warm])), solver=f"hybrid[{solver.name}]",
                                       timing={"total": deadline.elapsed}, info=info)
    return sampleset, stages


def _best_feasible(sub_enc, samples: np.ndarray):
    """Lowest-objective piece assignment among the samples that is feasible for the piece."""
    X = sub_enc.project(np.asarray(samples))
    ok = sub_enc.model.is_feasible(X)
    if not ok.any():
        return None
    objs = sub_enc.model.objective(X[ok])
    i = int(np.argmin(objs))
    return X[ok][i].astype(np.uint8), float(objs[i])
