"""Classical post-processing of GBS samples, counted separately from sampling.

* :class:`QuboStructure` reads a QUBO as a conflict graph: a positive coupling J_ij that cancels at
  least ``conflict_ratio`` times the smaller linear gain makes (i, j) a conflict. The freight
  QUBO's one-hot penalties and capacity rows are such conflicts, so its minimum is a
  maximum-weight independent set of the conflict graph, i.e. a maximum-weight clique of the
  *compatibility* graph (its complement).
* Node weights carry the plans' costs (:func:`plan_costs`): with one-hot groups the linear terms
  are dominated by the penalty (alternative plans of a shipment differ in the fourth digit of
  ``h``), so each plan's cost is its energy change with the penalty parts taken out -- the
  one-hot part exactly, the capacity rows' slack bits re-optimised -- and weights are
  ``exp(-bias * (cost - cheapest plan of its shipment) / typical gap)``. Without groups (MWIS-shaped
  QUBOs) the weight is the normalised gain ``-h``.
* :func:`clique_candidates`: GBS samples -> subgraphs -> ``clique.shrink`` -> ``clique.search``
  (Strawberry Fields' apps.clique; Arrazola & Bromley, PRL 121, 030503 (2018); Banchi et al.,
  Sci. Adv. 6, eaax1950 (2020), which adds node weights).
* :func:`local_search`: steepest descent on the QUBO energy itself, with single flips and, inside
  one-hot groups, swaps; vectorised over all starts. It makes every candidate a 1-flip (and
  group-swap) local minimum, whatever the encoding missed (negative couplings, soft conflicts).
* :func:`random_subsets`: the ablation -- uniformly random subsets with the same sizes as the
  GBS samples, so a report can show what the photonic samples contributed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.qubo import Qubo
from optimizer.solving.stop import Deadline

from .device import isolated_global_rng

__all__ = ["QuboStructure", "plan_costs", "clique_candidates", "local_search", "random_subsets"]

#: Free (non-group) variable clusters up to this size are minimised exactly by enumeration.
_EXACT_SLACK = 12


def _free_minima(qubo: Qubo, J: np.ndarray, h: np.ndarray, free: np.ndarray, plans: np.ndarray) -> np.ndarray:
    """Per plan variable i: min over the free variables of their energy with only x_i = 1 among the
    grouped variables, minus the same with no grouped variable on (one column per plan, shape (len(plans),)).

    Free variables (capacity slack bits) are minimised exactly per connected cluster of couplings
    (enumeration up to ``_EXACT_SLACK`` bits; larger clusters by steepest descent from zero).
    """
    from scipy.sparse.csgraph import connected_components

    out = np.zeros(plans.size)
    if free.size == 0:
        return out
    Jff = J[np.ix_(free, free)]
    _, label = connected_components(Jff != 0, directed=False)
    for c in np.unique(label):
        members = free[label == c]
        k = members.size
        Jc = J[np.ix_(members, members)]
        lin = h[members][:, None] + J[np.ix_(members, plans)]           # (k, plans): field with x_i = 1
        base_lin = h[members]
        if k <= _EXACT_SLACK:
            states = ((np.arange(2 ** k)[:, None] >> np.arange(k)[None, :]) & 1).astype(np.float64)
            quad = 0.5 * np.einsum("si,ij,sj->s", states, Jc, states)
            out += (quad[:, None] + states @ lin).min(axis=0) - (quad + states @ base_lin).min()
        else:
            def descend(field: np.ndarray) -> np.ndarray:
                s_ = np.zeros((k, field.shape[1]))
                for _ in range(4 * k):
                    gain = (1 - 2 * s_) * (field + Jc @ s_)
                    best = gain.argmin(axis=0)
                    cols = np.flatnonzero(gain[best, np.arange(field.shape[1])] < -1e-12)
                    if cols.size == 0:
                        break
                    s_[best[cols], cols] = 1 - s_[best[cols], cols]
                return (s_ * field).sum(axis=0) + 0.5 * np.einsum("ip,ij,jp->p", s_, Jc, s_)
            out += descend(lin) - descend(base_lin[:, None])[0]
    return out


def plan_costs(qubo: Qubo) -> np.ndarray:
    """Cost of every variable of a one-hot group with the penalty parts removed (NaN elsewhere).

    ``cost_i = E*(e_i) - E*(0) + P``: the energy change of switching plan i on with every other plan
    off and the free (slack) variables at their best, plus the one-hot penalty ``P`` that switching
    on any plan of an empty group earns (``qubo.metadata["penalty"]`` when the encoder made the
    QUBO; 0 otherwise, which shifts all costs alike). For a plan that fits every capacity row on
    its own this is exactly its model cost c_i; a plan that overfills a row alone keeps that
    row's penalty. Units: the QUBO's.
    """
    n = qubo.num_variables
    costs = np.full(n, np.nan)
    if not qubo.groups:
        return costs
    J = qubo.symmetric().toarray()
    h = np.asarray(qubo.h, dtype=np.float64)
    grouped = np.zeros(n, dtype=bool)
    for g in qubo.groups:
        grouped[list(g)] = True
    plans, free = np.flatnonzero(grouped), np.flatnonzero(~grouped)
    penalty = float(qubo.metadata.get("penalty", 0.0) or 0.0)
    costs[plans] = h[plans] + _free_minima(qubo, J, h, free, plans) + penalty
    return costs


@dataclass(frozen=True, eq=False)
class QuboStructure:
    """Dense views of a QUBO that the photonic encodings need."""

    J: np.ndarray           # symmetric couplings, zero diagonal: x^T Q x = 1/2 x^T J x
    h: np.ndarray
    conflict: np.ndarray    # bool (n, n), symmetric, False on the diagonal
    weights: np.ndarray     # node weights for clique search and the GBS matrix, in (0, 1]
    groups: tuple[tuple[int, ...], ...]
    costs: np.ndarray       # plan costs with the penalty removed (NaN for variables outside groups)
    cost_scale: float       # typical gap between a shipment's plans (QUBO units; 1 without groups)

    @classmethod
    def of(cls, qubo: Qubo, *, conflict_ratio: float = 1.0, weight_bias: float = 1.0) -> QuboStructure:
        J = qubo.symmetric().toarray()
        h = np.asarray(qubo.h, dtype=np.float64)
        gain = np.abs(h)
        floor = np.minimum.outer(gain, gain)
        conflict = (J > 0) & (J >= conflict_ratio * floor)
        np.fill_diagonal(conflict, False)
        costs = plan_costs(qubo)
        if qubo.groups:
            gap = np.full(qubo.num_variables, np.nan)
            for g in qubo.groups:
                idx = np.asarray(g)
                gap[idx] = costs[idx] - np.nanmin(costs[idx])
            positive = gap[np.isfinite(gap) & (gap > 0)]
            scale = float(np.median(positive)) if positive.size else 1.0
            # A free (slack) variable is no plan: a small weight keeps photons on the plans.
            weights = np.where(np.isfinite(gap), np.exp(-weight_bias * np.nan_to_num(gap) / scale), 0.05)
            weights = np.maximum(weights, 1e-3)
        else:
            benefit = np.maximum(-h, 0.0)
            top = benefit.max() if benefit.max() > 0 else 1.0
            weights = 1e-3 + benefit / top
            scale = 1.0
        return cls(J=J, h=h, conflict=conflict, weights=weights, groups=tuple(qubo.groups), costs=costs,
                   cost_scale=scale)

    @property
    def n(self) -> int:
        return int(self.h.shape[0])

    def has_conflict_structure(self) -> bool:
        """One-hot groups, or an MWIS-shaped QUBO: no linear cost > 0 and every positive coupling a conflict."""
        if self.groups:
            return True
        positive = self.J > 0
        return bool(self.conflict.any() and np.all(self.h <= 0) and np.array_equal(positive, self.conflict))

    def compatibility(self) -> np.ndarray:
        """0/1 adjacency of the compatibility graph (complement of the conflict graph)."""
        C = (~self.conflict).astype(np.float64)
        np.fill_diagonal(C, 0.0)
        return C

    def clique_matrix(self) -> np.ndarray:
        """The GBS matrix of the clique encoding: ``Omega (C + D) Omega``.

        ``C``: compatibility edges between plans of different shipments (and, without groups,
        between any compatible variables), weighted up by pairwise savings (J_ij < 0, in units of
        the cost scale, at most 3x). ``D``: a unit self-loop on every plan, so a shipment's plan
        can click on its own: a one-shipment piece is independent squeezers whose strengths follow
        the plan costs, not the identity. ``Omega = diag(weights)`` is the node weighting (Banchi
        et al., Sci. Adv. 6, eaax1950 (2020)); the weights hold the costs (see :meth:`of`).
        """
        C = self.compatibility()
        savings = np.clip(np.maximum(-self.J, 0.0) / (self.cost_scale if self.groups else
                                                       max(np.abs(self.J).max(), 1e-300)), 0.0, 2.0)
        C = C * (1.0 + savings)
        if self.groups:
            in_group = np.zeros(self.n, dtype=bool)
            for g in self.groups:
                in_group[list(g)] = True
            D = np.diag(in_group.astype(np.float64))
        else:
            D = np.zeros((self.n, self.n)) if C.any() else np.eye(self.n)
        omega = self.weights
        A = omega[:, None] * (C + D) * omega[None, :]
        return A if A.any() else np.diag(omega)

    def vgbs_matrix(self) -> np.ndarray:
        """Compatibility graph, with attractive couplings (J_ij < 0) weighted up: the VGBS start."""
        C = self.compatibility()
        attract = np.maximum(-self.J, 0.0)
        scale = np.abs(self.J).max() if np.abs(self.J).max() > 0 else 1.0
        A = C * (1.0 + attract / scale)
        return A if A.any() else np.eye(self.n)


def clique_candidates(structure: QuboStructure, patterns: np.ndarray, *, seed: int, iterations: int,
                      deadline: Deadline) -> tuple[np.ndarray, np.ndarray, int]:
    """Each distinct non-empty click set -> shrink to a compatibility clique -> local clique search.

    Returns (candidates as 0/1 rows, how many input rows led to each, subgraphs processed).
    """
    import networkx as nx
    from .compat import import_strawberryfields

    import_strawberryfields()
    from strawberryfields.apps import clique

    n = structure.n
    graph = nx.from_numpy_array(structure.compatibility())
    weights = structure.weights
    subsets, counts = np.unique(np.asarray(patterns) > 0, axis=0, return_counts=True)
    out, out_counts = [], []
    processed = 0
    with isolated_global_rng(seed):   # shrink/search break ties with numpy's global RNG
        for subset, count in zip(subsets, counts):
            if processed and deadline.expired():   # always process at least one subgraph
                break
            nodes = [int(i) for i in np.flatnonzero(subset)]
            if not nodes:
                continue
            found = clique.shrink(nodes, graph, node_select=weights)
            if iterations > 0:
                found = clique.search(found, graph, iterations, node_select=weights)
            x = np.zeros(n, dtype=np.uint8)
            x[list(found)] = 1
            out.append(x)
            out_counts.append(int(count))
            processed += 1
    if not out:
        return np.zeros((0, n), np.uint8), np.zeros(0, np.int64), 0
    return np.array(out), np.array(out_counts, dtype=np.int64), processed


def local_search(structure: QuboStructure, starts: np.ndarray, *, deadline: Deadline,
                 max_rounds: int = 10_000) -> tuple[np.ndarray, int]:
    """Steepest descent from every start at once; returns (local minima, moves evaluated)."""
    X = np.asarray(starts, dtype=np.float64).copy()
    if X.size == 0:
        return X.astype(np.uint8), 0
    J, h = structure.J, structure.h
    k, n = X.shape
    F = X @ J                         # coupling field on every variable
    rows = np.arange(k)
    evaluated = 0
    groups = [np.asarray(g) for g in structure.groups if len(g) > 1]
    active = np.ones(k, dtype=bool)
    for round_ in range(max_rounds):
        if not active.any() or (round_ and deadline.expired()):   # at least one round
            break
        field = h + F
        flip = (1.0 - 2.0 * X) * field                     # E(x ^ e_i) - E(x)
        best_i = np.argmin(flip, axis=1)
        best_gain = flip[rows, best_i]
        best_j = np.full(k, -1)
        evaluated += int(active.sum()) * n
        for g in groups:
            # Move the one of a group from i (x_i = 1) to j (x_j = 0): gain -f_i + f_j - J_ij.
            fg, xg = field[:, g], X[:, g]
            swap = -fg[:, :, None] + fg[:, None, :] - J[np.ix_(g, g)][None, :, :]
            valid = (xg[:, :, None] == 1) & (xg[:, None, :] == 0)
            swap = np.where(valid, swap, np.inf)
            flat = swap.reshape(k, -1).argmin(axis=1)
            gain = swap.reshape(k, -1)[rows, flat]
            better = gain < best_gain
            best_gain = np.where(better, gain, best_gain)
            best_i = np.where(better, g[flat // len(g)], best_i)
            best_j = np.where(better, g[flat % len(g)], best_j)
            evaluated += int(active.sum()) * len(g) ** 2
        active = best_gain < -1e-12
        if not active.any():
            break
        for r in np.flatnonzero(active):
            for v in (best_i[r], best_j[r]):
                if v < 0:
                    continue
                sign = 1.0 - 2.0 * X[r, v]
                X[r, v] += sign
                F[r] += sign * J[v]
    return X.astype(np.uint8), evaluated


def random_subsets(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random subsets of {0..n-1} with the given sizes, as 0/1 rows (the ablation)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    keys = rng.random((sizes.size, n))
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    return (ranks < sizes[:, None]).astype(np.uint8)
