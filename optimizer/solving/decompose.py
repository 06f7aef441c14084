"""One decomposition loop for every problem larger than a device (or than one exact solve).

The loop reads as dwave-hybrid's sentence, decomposer | subproblem solver | composer::

    start from a feasible incumbent (a baseline dispatcher's plan, the caller's warm start, or annealing)
    until the stop criterion says so:
        free a few neighbourhoods (whole one-hot groups, plus the auxiliary variables that share a
        row with them), everything else held at the incumbent;
        have each solved by the neighbourhood solver: a QUBO backend on the piece's own QUBO, or
        CP-SAT on the exact sub-model (large-neighbourhood search);
        measure a device's answer against the trivial stand-ins (the incumbent, local search from
        it, random samples of the same count and sizes with the same post-processing, simulated
        annealing at the same budget) and credit it only with what it found beyond them;
        accept the best answer when the full objective drops and the full assignment stays feasible
    optional refine(x) stage (CP-SAT on the whole model, or annealing for a bare QUBO)

What is decomposed is a *source*: :class:`ModelSource` (a constrained :class:`BinaryModel`; every
piece is the exact sub-model, encoded as its own QUBO with its own penalty rule) or
:class:`QuboSource` (a bare QUBO; every piece is the exact clamped sub-QUBO). Stop criteria are the
composable objects of :mod:`optimizer.solving.stop`. The incumbent only ever moves to a lower,
recomputed objective, so the result is never worse than the start. Ctrl-C ends the loop and keeps
the best found so far (``interrupted`` in the result).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from optimizer.qubo.encoding import encode
from optimizer.qubo.model import BinaryModel
from optimizer.qubo.qubo import Qubo
from optimizer.qubo.restrict import submodel
from optimizer.qubo.search import local_search
from optimizer.solving.executor import Executor, LocalExecutor
from optimizer.solving.result import PieceRecord, StageRecord
from optimizer.solving.solver import SampleSet, Solver
from optimizer.solving.stop import Deadline, StoppingCriterion

__all__ = ["Piece", "ModelSource", "QuboSource", "QuboPieceSolver", "ModelPieceSolver", "Decomposed", "decompose",
           "SELECTIONS", "submodel", "fits"]

SELECTIONS = ("energy-impact", "resource", "window", "worst", "random", "adaptive")
#: Samples of each solved piece that are tried on the incumbent (lowest objective first).
_TRIED_PER_PIECE = 64


def fits(solver: Solver, qubo: Qubo) -> bool:
    """Whether ``solver`` takes ``qubo`` whole: its own ``fits`` when it has one (a subspace
    simulator counts amplitudes, not qubits), else ``num_variables <= max_variables``."""
    own = getattr(solver, "fits", None)
    if callable(own):
        return bool(own(qubo))
    limit = getattr(solver, "max_variables", None)
    return limit is None or qubo.num_variables <= limit


# ---------------------------------------------------------------------------- pieces
@dataclass(frozen=True, eq=False)
class Piece:
    """A neighbourhood: which full-assignment variables it sets, and what a solver sees.

    ``qubo`` is the piece's own QUBO and ``start`` the incumbent as an assignment of it;
    ``model`` is the exact sub-model for model sources (None for a bare QUBO). ``evaluate``
    maps samples of ``qubo`` to (full objective, feasible, values of ``variables``).
    """

    units: tuple[int, ...]
    names: tuple[str, ...]
    variables: np.ndarray
    qubo: Qubo | None
    start: np.ndarray
    current: float
    model: BinaryModel | None = None
    rows: np.ndarray | None = None  # model rows the piece's variables touch (None: couples to everything)
    _evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(default=None,
                                                                                                 repr=False)

    def evaluate(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._evaluate(np.atleast_2d(samples))


class Source(Protocol):
    """What the loop decomposes: units (groups or single variables), their coupling, and pieces."""

    kind: str
    num_units: int

    def value(self, x: np.ndarray) -> float: ...

    def feasible(self, x: np.ndarray) -> bool: ...

    def unit_sizes(self) -> np.ndarray: ...

    def gains(self, x: np.ndarray) -> np.ndarray: ...

    def links(self) -> sp.csr_array: ...

    def piece(self, x: np.ndarray, units: Sequence[int], *, inequality: str) -> Piece: ...


def _group_of(n: int, groups: Sequence[Sequence[int]]) -> np.ndarray:
    group_of = -np.ones(n, dtype=np.int64)
    for g, members in enumerate(groups):
        group_of[list(members)] = g
    return group_of


class ModelSource:
    """A constrained model: a unit is a one-hot group (a shipment and its plans).

    A piece frees its groups' plans (``plans_per_group`` > 0 keeps only the incumbent's plan and
    the cheapest others, so a device of a given size sees more groups) and every variable in no
    group that shares a row with them (train counts, light engines, ...). The piece is the exact
    sub-model (:func:`optimizer.qubo.restrict.submodel`), encoded with its own penalty rule, the
    incumbent restricted serving as the rule's feasible reference.
    """

    kind = "model"

    def __init__(self, model: BinaryModel, *, names: Sequence[str] | None = None, plans_per_group: int = 0,
                 times: Callable[[np.ndarray], np.ndarray] | None = None, surrogate=None):
        if not model.groups:
            raise ValueError("a model source needs one-hot groups to decompose along")
        self.model = model
        self.names = tuple(names) if names is not None else tuple(f"group {g}" for g in range(len(model.groups)))
        if len(self.names) != len(model.groups):
            raise ValueError(f"{len(self.names)} names for {len(model.groups)} groups")
        self.plans_per_group = plans_per_group
        self.times = times  # x -> (groups,) hours of each group's current choice, for "window" pieces
        # Device pieces over the groups' variables only: an object with ``surrogate(x, variables)
        # -> BinaryModel`` and ``repair(x_old, x_new) -> x`` (see optimizer.freight.pieces).
        self.surrogate = surrogate
        self.num_units = len(model.groups)
        n = model.num_variables
        self._group_of = _group_of(n, model.groups)
        self._groups = [np.asarray(g, dtype=np.int64) for g in model.groups]
        self._Psym = (model.P + model.P.T).tocsr()
        A = model.A.tocsc()
        self._A_csc = A
        self._A_csr = model.A.tocsr()
        # The rows restricted to the ungrouped (auxiliary) columns: a national model's capacity
        # rows hold thousands of plan columns but only a few train-count columns, and a piece
        # needs only the latter.
        self._aux_cols = np.flatnonzero(self._group_of < 0)
        self._A_aux = self._A_csr[:, self._aux_cols].tocsr()
        self._links: sp.csr_array | None = None

    def value(self, x: np.ndarray) -> float:
        return float(self.model.objective(x)[0])

    def feasible(self, x: np.ndarray) -> bool:
        return bool(self.model.is_feasible(x)[0])

    def unit_sizes(self) -> np.ndarray:
        sizes = np.array([g.size for g in self._groups])
        return sizes if self.plans_per_group <= 0 else np.minimum(sizes, self.plans_per_group)

    def _field(self, x: np.ndarray) -> np.ndarray:
        return self.model.c + (self._Psym @ np.asarray(x, dtype=np.float64) if self.model.P.nnz else 0.0)

    def gains(self, x: np.ndarray) -> np.ndarray:
        """Per group: objective of its current plan minus its cheapest plan, the rest held fixed
        (capacity ignored): what a better choice for that group could be worth."""
        field_ = self._field(x)
        grouped = self._grouped
        g = self._group_of[grouped]
        current = np.bincount(g, weights=field_[grouped] * np.asarray(x, dtype=np.float64)[grouped],
                              minlength=self.num_units)
        cheapest = np.full(self.num_units, np.inf)
        np.minimum.at(cheapest, g, field_[grouped])
        return current - cheapest

    @property
    def _grouped(self) -> np.ndarray:
        cached = self.__dict__.get("_grouped_cache")
        if cached is None:
            cached = self.__dict__["_grouped_cache"] = np.flatnonzero(self._group_of >= 0)
        return cached

    def row_units(self) -> sp.csr_array:
        """(rows, groups) 1 where a group has a variable in the row: who competes for a resource."""
        cached = self.__dict__.get("_row_units")
        if cached is None:
            grouped = self._grouped
            member = sp.csr_array((np.ones(grouped.size), (grouped, self._group_of[grouped])),
                                  shape=(self.model.num_variables, self.num_units))
            cached = self.__dict__["_row_units"] = sp.csr_array((abs(self.model.A) @ member) > 0).astype(np.float64)
        return cached

    def slack(self, x: np.ndarray) -> np.ndarray:
        """Each row's room left, relative to its bound (0: binding)."""
        activity = self.model.A @ np.asarray(x, dtype=np.float64)
        return (self.model.b - activity) / np.maximum(1.0, np.abs(self.model.b))

    def links(self) -> sp.csr_array:
        """(g, g) number of rows (capacities) or quadratic terms two groups share."""
        if self._links is None:
            n = self.model.num_variables
            grouped = np.flatnonzero(self._group_of >= 0)
            G = self.num_units
            member = sp.csr_array((np.ones(grouped.size), (self._group_of[grouped], grouped)), shape=(G, n))
            usage = ((member @ abs(self.model.A).T) > 0).astype(np.float64)
            links = usage @ usage.T
            if self.model.P.nnz:
                links = links + member @ (abs(self.model.P) + abs(self.model.P).T) @ member.T
            links = sp.csr_array(links)
            links.setdiag(0)
            links.eliminate_zeros()
            self._links = links
        return self._links

    def _shortlist(self, x: np.ndarray, g: int) -> np.ndarray:
        members = self._groups[g]
        if self.plans_per_group <= 0 or members.size <= self.plans_per_group:
            return members
        field_ = self._field(x)[members]
        current = members[x[members] == 1]
        others = members[x[members] == 0]
        others = others[np.argsort(field_[x[members] == 0], kind="stable")][: self.plans_per_group - current.size]
        return np.sort(np.concatenate([current, others]))

    def _auxiliary(self, plan_vars: np.ndarray) -> np.ndarray:
        """Ungrouped variables sharing a row with the freed plans (one hop), ascending."""
        rows = np.unique(self._A_csc[:, plan_vars].indices)
        if rows.size == 0 or self._aux_cols.size == 0:
            return np.zeros(0, dtype=np.int64)
        return self._aux_cols[np.unique(self._A_aux[rows].indices)]

    def piece_sizes(self, x: np.ndarray, units: Sequence[int]) -> np.ndarray:
        """Variables of the piece of each prefix of ``units`` (entry k: the first k + 1 units),
        exactly what :meth:`piece` would build, without building it."""
        x = np.asarray(x, dtype=np.uint8)
        seen = np.zeros(self.model.num_variables, dtype=bool)
        total, sizes = 0, np.zeros(len(units), dtype=np.int64)
        for k, g in enumerate(units):
            plan_vars = self._shortlist(x, g)
            fresh = np.concatenate([plan_vars, self._auxiliary(plan_vars)])
            fresh = fresh[~seen[fresh]]
            seen[fresh] = True
            total += fresh.size
            sizes[k] = total
        return sizes

    def piece(self, x: np.ndarray, units: Sequence[int], *, inequality: str = "slack", qubo: bool = True,
              current: float | None = None) -> Piece:
        """The exact sub-model of ``units`` (their plans and the auxiliary variables they share
        rows with), encoded as a QUBO unless ``qubo`` is False (a model solver takes the
        sub-model itself; then ``Piece.qubo`` is None and samples are sub-model assignments)."""
        x = np.asarray(x, dtype=np.uint8)
        plan_vars = np.concatenate([self._shortlist(x, g) for g in units])
        if qubo and self.surrogate is not None:
            return self._surrogate_piece(x, units, plan_vars, inequality=inequality, current=current)
        variables = np.concatenate([plan_vars, self._auxiliary(plan_vars)])
        sub = submodel(self.model, x, variables)
        start = x[variables]
        rows = np.unique(self._A_csc[:, variables].indices)
        current = self.value(x) if current is None else current
        names = tuple(self.names[u] for u in units)
        units = tuple(int(u) for u in units)
        if not qubo:
            def evaluate(samples: np.ndarray, sub=sub):
                Y = np.asarray(samples, dtype=np.uint8)
                return sub.objective(Y), sub.is_feasible(Y), Y

            return Piece(units=units, names=names, variables=variables, qubo=None, start=start, current=current,
                         model=sub, rows=rows, _evaluate=evaluate)
        enc = encode(sub, reference=start, inequality=inequality)

        def evaluate(samples: np.ndarray, enc=enc, sub=sub):
            Y = enc.project(samples).astype(np.uint8)
            return sub.objective(Y), sub.is_feasible(Y), Y

        return Piece(units=units, names=names, variables=variables, qubo=enc.qubo, start=enc.lift(start)[0],
                     current=current, model=sub, rows=rows, _evaluate=evaluate)


    def _surrogate_piece(self, x: np.ndarray, units, plan_vars: np.ndarray, *, inequality: str,
                         current: float | None) -> Piece:
        """A device piece over the groups' own variables; every answer repaired and judged by the
        full model (the piece's ``variables`` are then all of them: the repair may touch any
        auxiliary variable of the batches whose wagons changed)."""
        sub = self.surrogate.surrogate(x, plan_vars)
        start = x[plan_vars]
        enc = encode(sub, reference=start, inequality=inequality)
        model, repair = self.model, self.surrogate.repair

        def evaluate(samples: np.ndarray, enc=enc, x=x.copy()):
            Y = enc.project(samples).astype(np.uint8)
            full = np.repeat(x[None, :], Y.shape[0], axis=0)
            full[:, plan_vars] = Y
            full = np.stack([repair(x, row) for row in full]) if len(full) else full
            return model.objective(full), model.is_feasible(full), full

        units = tuple(int(u) for u in units)
        return Piece(units=units, names=tuple(self.names[u] for u in units),
                     variables=np.arange(model.num_variables), qubo=enc.qubo, start=enc.lift(start)[0],
                     current=self.value(x) if current is None else current, model=sub, rows=None,
                     _evaluate=evaluate)


class QuboSource:
    """A bare QUBO: a unit is a one-hot group, or a single variable in no group."""

    kind = "qubo"

    def __init__(self, qubo: Qubo):
        self.qubo = qubo
        n = qubo.num_variables
        unit_of = _group_of(n, qubo.groups)
        units = [np.asarray(g, dtype=np.int64) for g in qubo.groups]
        for i in np.flatnonzero(unit_of < 0):
            unit_of[i] = len(units)
            units.append(np.array([i], dtype=np.int64))
        self.units = units
        self.unit_of = unit_of
        self.num_units = len(units)
        self._J = qubo.symmetric()
        self._links: sp.csr_array | None = None

    def value(self, x: np.ndarray) -> float:
        return self.qubo.energy(x)

    def feasible(self, x: np.ndarray) -> bool:
        return True

    def unit_sizes(self) -> np.ndarray:
        return np.array([u.size for u in self.units])

    def gains(self, x: np.ndarray) -> np.ndarray:
        """How much each unit's best single move lowers E (a group's 1 switched, a bit flipped)."""
        lf = self.qubo.local_fields(x)
        gains = np.empty(self.num_units)
        for u, members in enumerate(self.units):
            best = lf[members].min()
            on = members[x[members] == 1]
            if members.size > 1 and on.size == 1:
                a = int(on[0])
                others = members[members != a]
                j_row = self._J[[a], :].toarray().ravel()
                best = (lf[a] + lf[others] - j_row[others]).min()
            gains[u] = -best
        return gains

    def links(self) -> sp.csr_array:
        if self._links is None:
            n = self.qubo.num_variables
            P = sp.csr_array((np.ones(n), (np.arange(n), self.unit_of)), shape=(n, self.num_units))
            W = sp.csr_array(P.T @ abs(self._J) @ P)
            W.setdiag(0)
            W.eliminate_zeros()
            self._links = W
        return self._links

    def piece(self, x: np.ndarray, units: Sequence[int], *, inequality: str = "slack", qubo: bool = True,
              current: float | None = None) -> Piece:
        del inequality, qubo  # a bare QUBO has no constraints to encode, and is its own QUBO
        x = np.asarray(x, dtype=np.uint8)
        variables = np.sort(np.concatenate([self.units[u] for u in units]))
        fixed = np.setdiff1d(np.arange(self.qubo.num_variables), variables)
        sub, free = self.qubo.clamp(dict(zip(fixed.tolist(), x[fixed].tolist())))
        assert np.array_equal(free, variables)

        def evaluate(samples: np.ndarray, sub=sub):
            Y = np.asarray(samples, dtype=np.uint8)
            return sub.energies(Y), np.ones(Y.shape[0], dtype=bool), Y

        names = tuple(self.qubo.labels[i] for i in variables)
        return Piece(units=tuple(int(u) for u in units), names=names, variables=variables, qubo=sub,
                     start=x[variables].copy(), current=self.value(x) if current is None else current,
                     _evaluate=evaluate)


# ---------------------------------------------------------------------------- choosing pieces
def _fill(order: np.ndarray, sizes: np.ndarray, budget: float, chosen: list[int], blocked: np.ndarray) -> list[int]:
    """Add units from ``order`` while they fit ``budget`` (and are not blocked)."""
    used = float(sizes[chosen].sum()) if chosen else 0.0
    taken = set(chosen)
    for u in order.tolist():
        if u in taken or blocked[u] or used + sizes[u] > budget:
            continue
        chosen.append(int(u))
        taken.add(u)
        used += sizes[u]
    return chosen


def choose_units(source, x: np.ndarray, *, budget: float, rng: np.random.Generator, selection: str,
                 avoid: set[int], sizes: np.ndarray, explore: float = 0.0,
                 blocked: np.ndarray | None = None) -> list[int]:
    """The units of one piece, whose estimated sizes fit ``budget``. Strategies:

    - ``energy-impact``: a seed unit drawn by how much a better choice could gain, grown along
      the units it shares rows or couplings with (those competing for the same resources);
    - ``resource``: the units competing for one tight resource (a row near its bound: a
      corridor-slot, a yard's traffic), then grown along links (model sources; else as
      ``energy-impact`` without the gain weighting);
    - ``window``: the units whose current choice is nearest in time to a random moment (model
      sources given ``times``);
    - ``worst``: the units whose current choice is furthest from their best (highest gains);
    - ``random``: uniformly random units.

    ``blocked`` marks units no piece of this round may take (already taken, or linked to a
    piece taken this round, so that the round's pieces compose exactly). With probability
    ``explore`` a grown unit is drawn uniformly instead of by link strength.
    """
    if selection not in SELECTIONS or selection == "adaptive":
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    U = source.num_units
    blocked = np.zeros(U, dtype=bool) if blocked is None else blocked
    fits_alone = np.flatnonzero((sizes <= budget) & ~blocked)
    if fits_alone.size == 0:
        return []
    if selection == "random":
        return _fill(rng.permutation(fits_alone), sizes, budget, [], blocked)
    gains = np.maximum(source.gains(x), 0.0)
    noise = rng.random(U) * 1e-9 * (1.0 + gains.max(initial=0.0))
    if selection == "worst":
        return _fill(fits_alone[np.argsort(-(gains + noise)[fits_alone], kind="stable")], sizes, budget, [], blocked)
    if selection == "window" and getattr(source, "times", None) is not None:
        times = np.asarray(source.times(x), dtype=np.float64)
        moment = times[int(rng.choice(fits_alone))]
        order = fits_alone[np.argsort(np.abs(times[fits_alone] - moment) + noise[fits_alone], kind="stable")]
        return _fill(order, sizes, budget, [], blocked)
    chosen: list[int] = []
    if selection == "resource" and hasattr(source, "row_units") and source.model.num_rows:
        # A tight row (little room left), drawn with weight falling off with its room.
        room = np.clip(source.slack(x), 0.0, None)
        users = source.row_units()
        count = np.asarray(users.sum(axis=1)).ravel()
        weight = np.where(count >= 2, np.exp(-20.0 * room), 0.0)
        if weight.sum() > 0:
            row = int(rng.choice(weight.size, p=weight / weight.sum()))
            competing = users[[row]].tocoo().col
            competing = competing[rng.permutation(competing.size)]
            chosen = _fill(competing[np.argsort(-gains[competing], kind="stable")], sizes, budget, [], blocked)
    if not chosen:
        weights = np.zeros(U)
        weights[fits_alone] = gains[fits_alone] + 1e-9 * (1 + gains.max(initial=0))
        weights[list(avoid & set(fits_alone.tolist()))] *= 1e-3
        chosen = [int(rng.choice(U, p=weights / weights.sum()))]
    used = float(sizes[chosen].sum())
    links = source.links()
    score = np.asarray(links[chosen].sum(axis=0)).ravel().astype(np.float64)
    top = gains.max(initial=0)
    while True:
        ranked = score * (1.0 + gains / (1e-9 + top)) if selection == "energy-impact" else score.copy()
        ranked += rng.random(U) * 1e-6  # ties broken by the seed, not by index order
        ranked[chosen] = -np.inf
        ranked[(sizes + used > budget) | blocked] = -np.inf
        open_ = np.flatnonzero(np.isfinite(ranked))
        if open_.size == 0:
            break
        top_units = open_[np.argsort(-ranked[open_], kind="stable")[:3]]
        if explore > 0 and rng.random() < explore:
            u = int(rng.choice(open_))
        elif ranked[top_units[0]] <= 1e-5:  # nothing shares anything with the piece: take the best gain
            u = int(open_[np.argmax(gains[open_] + rng.random(open_.size) * 1e-9)])
        else:
            # One of the three most linked units, drawn by link strength: the same seed unit does
            # not always grow into the same piece, so stale rounds explore other neighbourhoods.
            w = np.maximum(ranked[top_units], 0.0)
            u = int(rng.choice(top_units, p=w / w.sum()))
        chosen.append(u)
        used += sizes[u]
        score += links[[u]].toarray().ravel()
    return chosen


#: Consecutive rounds in which no drawn piece fitted the solver before the loop gives up.
_MAX_EMPTY_DRAWS = 50


def _largest_fitting_piece(source, piece_solver, x: np.ndarray, units: Sequence[int], *,
                           current: float) -> Piece | None:
    """The piece of the longest prefix of ``units`` that ``piece_solver`` fits, or None."""
    def build(k: int) -> Piece:
        return source.piece(x, units[:k], inequality=piece_solver.inequality, qubo=piece_solver.needs_qubo,
                            current=current)

    if not units:
        return None
    hi = len(units)
    limit = getattr(piece_solver, "max_piece_variables", None)
    if limit is not None and hasattr(source, "piece_sizes"):
        # The piece's size is known per prefix without building it: one build, not a bisection.
        hi = int(np.searchsorted(source.piece_sizes(x, units), limit, side="right"))
        if hi == 0:
            return None
    piece = build(hi)
    if piece_solver.fits(piece):
        return piece
    lo, hi, best = 1, hi - 1, None  # invariant: prefixes longer than hi do not fit
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = build(mid)
        if piece_solver.fits(candidate):
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


class _Adaptive:
    """Adaptive choice among the strategies (as adaptive LNS does): each strategy's weight is a
    running average of how often its pieces improved the incumbent, with a floor so every
    strategy keeps being tried."""

    STRATEGIES = ("energy-impact", "resource", "window", "worst", "random")

    def __init__(self, source):
        usable = [s for s in self.STRATEGIES if s != "window" or getattr(source, "times", None) is not None]
        self.strategies = usable
        self.score = {s: 1.0 for s in usable}

    def pick(self, rng: np.random.Generator) -> str:
        w = np.array([self.score[s] for s in self.strategies])
        return self.strategies[int(rng.choice(len(w), p=w / w.sum()))]

    def update(self, strategy: str, improved: bool) -> None:
        self.score[strategy] = max(0.05, 0.8 * self.score[strategy] + 0.2 * (1.0 if improved else 0.0))


# ---------------------------------------------------------------------------- neighbourhood solvers
def _solve_piece_task(task: tuple) -> SampleSet:
    """Executor task (module level, so it pickles): one piece's QUBO on one backend."""
    qubo, solver, seed, time_limit, initial = task
    return solver.solve(qubo, seed=seed, time_limit=time_limit, initial=initial)


class QuboPieceSolver:
    """Pieces solved by a QUBO backend (a simulated quantum device, annealing, ...)."""

    def __init__(self, solver: Solver, *, subproblem_size: int | None = None, inequality: str = "slack",
                 pass_initial: bool = True):
        self.solver = solver
        self.name = solver.name
        own = getattr(solver, "piece_budget", None)
        sizes = [s for s in (subproblem_size, own if own is not None else getattr(solver, "max_variables", None))
                 if s is not None]
        self.limit = min(sizes) if sizes else 32
        self.inequality = inequality
        self.pass_initial = pass_initial
        self.needs_qubo = True

    def unit_costs(self, sizes: np.ndarray) -> np.ndarray:
        """Estimated size of each unit in the solver's own measure (variables, or the backend's
        ``unit_cost`` when it counts differently, e.g. log2 of a subspace's amplitudes)."""
        own = getattr(self.solver, "unit_cost", None)
        return np.asarray(own(sizes) if callable(own) else sizes, dtype=np.float64)

    def fits(self, piece: Piece) -> bool:
        if not callable(getattr(self.solver, "fits", None)) and piece.qubo.num_variables > self.limit:
            return False  # the configured subproblem size, below the device's own size
        return fits(self.solver, piece.qubo)

    def task(self, piece: Piece, seed: int, time_limit: float) -> tuple:
        return (piece.qubo, self.solver, seed, time_limit, piece.start if self.pass_initial else None)


def _solve_model_task(task: tuple):
    """Executor task: one piece's exact sub-model on CP-SAT, hinted with the incumbent."""
    from backends.cpsat import CpSatSolver

    model, seed, time_limit, initial, workers, work_limit = task
    return CpSatSolver(workers=workers, work_limit=work_limit).solve_model(model, seed=seed, time_limit=time_limit,
                                                                         initial=initial)


class ModelPieceSolver:
    """Pieces solved by CP-SAT on the exact sub-model (large-neighbourhood search): each piece
    gets at most ``piece_time`` seconds, and its answer is never worse than the incumbent."""

    def __init__(self, *, workers: int = 1, subproblem_size: int = 400, piece_time: float = 5.0,
                 deterministic: bool = False):
        if subproblem_size < 1 or piece_time <= 0 or workers < 1:
            raise ValueError("subproblem_size and workers must be >= 1, piece_time > 0")
        self.name = "cpsat"
        self.workers = workers
        # Work mode: each neighbourhood gets ``piece_time`` units of CP-SAT's deterministic time.
        self.deterministic = deterministic
        self.limit = subproblem_size
        self.piece_time = piece_time
        self.inequality = "slack"
        self.needs_qubo = False

    def unit_costs(self, sizes: np.ndarray) -> np.ndarray:
        return np.asarray(sizes, dtype=np.float64)

    @property
    def max_piece_variables(self) -> int:
        """Variables a piece may have, auxiliary ones included (``limit`` counts plans)."""
        return 2 * self.limit

    def fits(self, piece: Piece) -> bool:
        return piece.model is not None and piece.model.num_variables <= self.max_piece_variables

    def task(self, piece: Piece, seed: int, time_limit: float) -> tuple:
        if self.deterministic:
            return (piece.model, seed, time_limit, piece.start, self.workers, self.piece_time)
        return (piece.model, seed, min(time_limit, self.piece_time), piece.start, self.workers, None)


def _best_feasible(piece: Piece, samples: np.ndarray, origins: Sequence[str] | None = None):
    """(full objective, piece values, origin) of the lowest feasible sample, or None."""
    if samples.shape[0] == 0:
        return None
    values, ok, Y = piece.evaluate(samples)
    if not ok.any():
        return None
    i = int(np.flatnonzero(ok)[np.argmin(values[ok])])
    return float(values[i]), Y[i], (origins[i] if origins is not None else None)


def _random_like(piece: Piece, device: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random samples with the device samples' sizes, group by group: each sample has
    as many 1s in each one-hot group (and among the ungrouped bits) as its device counterpart,
    placed uniformly. Same count and sizes as the device's, with nothing else kept."""
    qubo = piece.qubo
    n = qubo.num_variables
    blocks = [np.asarray(g, dtype=np.int64) for g in qubo.groups]
    grouped = np.zeros(n, dtype=bool)
    for g in blocks:
        grouped[g] = True
    if (~grouped).any():
        blocks.append(np.flatnonzero(~grouped))
    out = np.zeros_like(device, dtype=np.uint8)
    for block in blocks:
        ones = device[:, block].sum(axis=1)
        keys = rng.random((device.shape[0], block.size))
        # The `ones` smallest keys of each row mark a uniformly random subset of that size.
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        out[:, block] = (ranks < ones[:, None]).astype(np.uint8)
    return out


def _postprocess(solver: Solver, qubo: Qubo, starts: np.ndarray, *, seed: int, deadline: Deadline) -> np.ndarray:
    """The backend's own post-processing when it has one, else steepest-descent local search."""
    own = getattr(solver, "postprocess", None)
    if callable(own):
        return np.asarray(own(qubo, starts, seed=seed, time_limit=max(deadline.remaining, 0.01)), dtype=np.uint8)
    return local_search(qubo, starts, should_stop=deadline.expired)


def standins(piece: Piece, device: SampleSet, solver: Solver, *, seed: int, budget: float,
             anneal: Solver | None) -> tuple[dict[str, tuple[float, np.ndarray] | None], float]:
    """The stand-ins of :data:`optimizer.solving.result.STANDINS` on ``piece`` at the device's budget.

    Returns name -> (full objective, piece values) of each stand-in's best feasible answer, and
    the seconds they took.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[float, np.ndarray] | None] = {}
    start = piece.start[None, :]
    hit = _best_feasible(piece, start)
    out["incumbent"] = None if hit is None else hit[:2]
    budget = max(budget, 0.05)
    polished = _postprocess(solver, piece.qubo, start, seed=seed, deadline=Deadline(budget))
    hit = _best_feasible(piece, np.vstack([start, polished]))
    out["local_search"] = None if hit is None else hit[:2]
    raw = device.samples[[o != "initial" for o in device.origins]] if device.origins else device.samples
    count = max(1, raw.shape[0])
    like = raw if raw.shape[0] else np.repeat(start, count, axis=0)
    random = _random_like(piece, like, rng)
    random = np.vstack([random, _postprocess(solver, piece.qubo, random, seed=seed, deadline=Deadline(budget))])
    hit = _best_feasible(piece, random)
    out["random"] = None if hit is None else hit[:2]
    if anneal is not None:
        result = anneal.solve(piece.qubo, seed=seed, time_limit=budget, initial=None)
        if result.info.get("interrupted"):
            raise KeyboardInterrupt  # the annealer kept Ctrl-C to itself: the run must still stop
        hit = _best_feasible(piece, result.samples)
        out["anneal"] = None if hit is None else hit[:2]
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------------------- the loop
@dataclass(frozen=True, eq=False)
class Decomposed:
    """The loop's answer: the best full assignment and how each stage got there."""

    x: np.ndarray
    value: float
    start_value: float
    stages: tuple[StageRecord, ...]
    rounds: int
    accepted_rounds: int
    credited_rounds: int
    stop: str
    interrupted: bool
    subproblem_limit: int
    seconds: float

    @property
    def device_contribution(self) -> float:
        return float(sum(p.contribution for s in self.stages for p in s.pieces))

    def info(self) -> dict[str, object]:
        pieces = [p for s in self.stages for p in s.pieces]
        return {
            "rounds": self.rounds, "accepted_rounds": self.accepted_rounds, "credited_rounds": self.credited_rounds,
            "stop": self.stop, "interrupted": self.interrupted, "subproblem_limit": self.subproblem_limit,
            "warm_energy": self.start_value, "device_contribution": self.device_contribution,
            "pieces": len(pieces), "pieces_device_beat_standins": sum(p.device_beat_standins for p in pieces),
            "device_seconds": sum(p.device_seconds for p in pieces),
            "standin_seconds": sum(p.standin_seconds for p in pieces),
            "stages": [s.to_json() for s in self.stages],
        }


def decompose(
    source,
    piece_solver,
    *,
    start: np.ndarray,
    stop: StoppingCriterion,
    deadline: Deadline,
    seed: int,
    start_source: str = "initial",
    pieces_per_round: int = 1,
    selection: str = "energy-impact",
    executor: Executor | None = None,
    attribution: bool = True,
    refine: Callable[[np.ndarray, float], np.ndarray] | None = None,
    refine_time: float = 0.0,
    on_progress: Callable[[StageRecord], None] | None = None,
    deterministic: bool = False,
    piece_time: float = float("inf"),
) -> Decomposed:
    """Minimise ``source``'s objective from the feasible ``start`` by solving pieces.

    ``piece_solver`` is a :class:`QuboPieceSolver` (a backend on each piece's QUBO; with
    ``attribution`` every piece is also solved by the stand-ins and the device is credited only
    with what it found beyond them) or a :class:`ModelPieceSolver` (CP-SAT on the sub-model).
    With ``deterministic`` nothing depends on the clock but the safety ``deadline``: the stand-ins
    run fixed work (annealing a fixed number of reads, local search to convergence), so the same
    seed gives the same answer under any load when the piece solver is deterministic too.
    ``stop`` is asked before every round; ``deadline`` bounds every piece's budget and is kept
    for ``refine(x, seconds) -> x`` (or ``(x, interrupted)``), which runs once at the end for at
    most ``refine_time`` seconds and is kept only if it lowers the objective and stays feasible.
    """
    if pieces_per_round < 1:
        raise ValueError("pieces_per_round must be >= 1")
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    stages: list[StageRecord] = []

    def record(stage: StageRecord) -> None:
        stages.append(stage)
        if on_progress is not None:
            on_progress(stage)

    best = np.asarray(start, dtype=np.uint8).ravel().copy()
    if not source.feasible(best):
        raise ValueError("the start assignment is infeasible")
    best_value = source.value(best)
    start_value = best_value
    record(StageRecord("warm_start", best_value, time.perf_counter() - t_start, True, source=start_source))

    sizes = piece_solver.unit_costs(source.unit_sizes())
    anneal = None
    if attribution and piece_solver.needs_qubo:
        from backends import create_solver

        anneal = create_solver("anneal", {"num_reads": 64} if deterministic else {})
    adaptive = _Adaptive(source) if selection == "adaptive" else None
    links = source.links()
    interrupted, reason, done, accepted_rounds, credited_rounds, stale = False, "", 0, 0, 0, 0
    empty_draws = 0
    avoid: set[int] = set()
    own_executor = executor is None
    executor = executor or LocalExecutor()
    tol = 1e-9 * max(1.0, abs(best_value))
    try:
        while True:
            if stop(best_value):
                reason = getattr(stop, "reason", "") or "stopped"
                break
            if deadline.expired():
                reason = "time_limit"
                break
            done += 1
            t_round = time.perf_counter()
            pieces: list[Piece] = []
            strategies: list[str] = []
            # Pieces of one round share no unit and, where possible, no row or coupling, so that
            # their answers, found against the same incumbent, compose exactly.
            blocked = np.zeros(source.num_units, dtype=bool)
            for _ in range(pieces_per_round):
                strategy = adaptive.pick(rng) if adaptive is not None else selection
                units = choose_units(source, best, budget=piece_solver.limit, rng=rng, selection=strategy,
                                     avoid=avoid, sizes=sizes, explore=stale / (stale + 3.0), blocked=blocked)
                # Auxiliary variables and slack come on top of the estimate: keep the longest
                # prefix of the chosen units whose piece fits the solver (a piece grows with its
                # prefix, so bisection finds it in a few builds, not one per dropped unit).
                piece = _largest_fitting_piece(source, piece_solver, best, units, current=best_value)
                if piece is None:
                    continue
                pieces.append(piece)
                strategies.append(strategy)
                taken = np.asarray(piece.units)
                blocked[taken] = True
                blocked[np.asarray(links[taken].sum(axis=0)).ravel() > 0] = True
            if not pieces:
                # The units drawn were too big with their auxiliary variables (a long route
                # touches many train-count rows): draw again, and give up only when draws
                # keep failing.
                done -= 1
                empty_draws += 1
                if empty_draws >= _MAX_EMPTY_DRAWS:
                    reason = "no piece fits the solver"
                    break
                continue
            empty_draws = 0
            # A round must end inside the deadline: the device's pieces share what is left (run one
            # after another in this process at worst), the stand-ins take as much again.
            share = len(pieces) * (2 if anneal is not None else 1)
            budget = max(min(deadline.remaining / share, piece_time), 0.01)
            seeds = [int(rng.integers(2**31 - 1)) for _ in pieces]
            t_device = time.perf_counter()
            task_fn = _solve_piece_task if piece_solver.needs_qubo else _solve_model_task
            results = executor.map(task_fn, [piece_solver.task(p, s, budget) for p, s in zip(pieces, seeds)])
            device_seconds = (time.perf_counter() - t_device) / len(pieces)
            # A backend that caught Ctrl-C itself returns its best and says so: this round's answers
            # are still used, then the loop stops.
            stop_after_round = any(bool(getattr(r, "interrupted", False)) or
                                   bool(getattr(r, "info", {}).get("interrupted", False)) for r in results)
            before = best_value
            records: list[PieceRecord] = []
            credited = False
            accepted_rows: list[np.ndarray] = []
            for piece, result, s, strategy in zip(pieces, results, seeds, strategies):
                if piece_solver.needs_qubo:
                    keep = [o != "initial" for o in result.origins] if result.origins else [True] * len(result)
                    samples = result.samples[keep][:_TRIED_PER_PIECE]
                    origins = [o for o, k in zip(result.origins or ["device"] * len(result), keep) if k]
                    dev = _best_feasible(piece, samples, origins[:_TRIED_PER_PIECE])
                    seconds = float(result.timing.get("total", device_seconds))
                    # One-time start-up (imports, loading compiled kernels) is not solving time:
                    # the stand-ins get the device's solving time, and never more than is left.
                    solving = max(seconds - float(result.timing.get("startup", 0.0)), 0.0)
                else:
                    # A model solver's answer is already an assignment of the exact sub-model.
                    dev = _best_feasible(piece, np.asarray(result.x, dtype=np.uint8)[None, :], ["device"])
                    seconds = solving = result.seconds
                answers: dict[str, tuple[float, np.ndarray] | None] = {}
                stand_seconds = 0.0
                if anneal is not None:
                    answers, stand_seconds = standins(piece, result, piece_solver.solver, seed=s,
                                                      budget=deadline.remaining if deterministic
                                                      else min(solving, deadline.remaining),
                                                      anneal=anneal)
                best_standin = min((a[0] for a in answers.values() if a is not None), default=np.inf)
                device_value = None if dev is None else dev[0]
                contribution = 0.0
                if anneal is not None and device_value is not None and np.isfinite(best_standin):
                    contribution = max(0.0, best_standin - device_value)
                    if contribution <= 1e-9 * max(1.0, abs(best_standin)):
                        contribution = 0.0
                # Every answer competes for the incumbent: the stand-ins' answers are real solutions.
                candidates = [("device", dev[0], dev[1], dev[2])] if dev is not None else []
                candidates += [(name, a[0], a[1], None) for name, a in answers.items()
                               if a is not None and name != "incumbent"]
                candidates.sort(key=lambda c: (c[1], c[0] != "device"))
                accepted_from = None
                # A piece's values are full objectives against the round's starting incumbent;
                # after an earlier piece of this round moved it, the change is added, exactly so
                # when the pieces share no row (else the full model decides).
                shift = best_value - before
                composes = piece.rows is not None and all(
                    np.intersect1d(piece.rows, rows, assume_unique=True).size == 0 for rows in accepted_rows)
                for name, value, values, origin in candidates:
                    if value + shift >= best_value - tol:
                        break
                    candidate = best.copy()
                    candidate[piece.variables] = values
                    if composes:
                        ok, full_value = True, value + shift
                    else:
                        ok, full_value = source.feasible(candidate), source.value(candidate)
                    if ok and full_value < best_value - tol:
                        best, best_value = candidate, full_value
                        accepted_from = name
                        if piece.rows is not None:
                            accepted_rows.append(piece.rows)
                        if name == "device" and (origin == "device" or contribution > 0):
                            credited = True
                        break
                if adaptive is not None:
                    adaptive.update(strategy, accepted_from is not None)
                records.append(PieceRecord(
                    names=piece.names, variables=piece.qubo.num_variables if piece.qubo is not None
                    else piece.model.num_variables, current=piece.current, device=device_value,
                    device_origin=None if dev is None else dev[2], device_seconds=seconds,
                    standins={k: (None if v is None else v[0]) for k, v in answers.items()},
                    standin_seconds=stand_seconds, contribution=contribution, accepted_from=accepted_from,
                    strategy=strategy))
            accepted = best_value < before - tol
            stale = 0 if accepted else stale + 1
            if accepted:
                accepted_rounds += 1
                avoid.clear()
            else:
                avoid.update(p.units[0] for p in pieces)
                if len(avoid) > source.num_units // 2:
                    avoid.clear()
            credited_rounds += int(credited)
            record(StageRecord("round", best_value, time.perf_counter() - t_round, accepted, round=done,
                               gain=before - best_value, solver=piece_solver.name,
                               subproblem_size=max(r.variables for r in records), pieces=tuple(records),
                               credited=credited))
            if stop_after_round:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted, reason = True, "interrupted"
    finally:
        if own_executor:
            executor.close()

    if refine is not None and not interrupted and refine_time > 0:
        t = time.perf_counter()
        try:
            answer = refine(best.copy(), refine_time)
            # A refiner that was interrupted but kept its best says so: (x, True).
            if isinstance(answer, tuple):
                answer, stopped = answer
                if stopped:
                    interrupted, reason = True, "interrupted"
            refined = np.asarray(answer, dtype=np.uint8)
        except KeyboardInterrupt:
            interrupted, reason = True, "interrupted"
            refined = None
        if refined is not None:
            value = source.value(refined)
            ok = source.feasible(refined) and value < best_value - tol
            record(StageRecord("refine", value if ok else best_value, time.perf_counter() - t, ok,
                               gain=(best_value - value) if ok else 0.0, solver="refine"))
            if ok:
                best, best_value = refined, value
    return Decomposed(x=best, value=best_value, start_value=start_value, stages=tuple(stages), rounds=done,
                      accepted_rounds=accepted_rounds, credited_rounds=credited_rounds, stop=reason,
                      interrupted=interrupted, subproblem_limit=piece_solver.limit,
                      seconds=time.perf_counter() - t_start)
