"""The constrained binary model: one plan per shipment, capacity rows, quadratic objective.

Convention (minimise)::

    c^T x + x^T P x + offset
    subject to   sum_{i in g} x_i == 1     for every one-hot group g (a shipment's plans)
                 A x <= b                   (corridor-slot, yard-slot and locomotive rows)
                 x in {0, 1}^n

``P`` is strictly upper triangular (consolidation savings are negative entries). The model is
generic: nothing here knows about rail. :func:`build_model` is what fills it from freight
candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["BinaryModel", "build_model"]


@dataclass(frozen=True, eq=False)
class BinaryModel:
    labels: tuple[str, ...]
    c: np.ndarray  # (n,) linear costs
    P: sp.csr_array  # (n, n) strictly upper-triangular quadratic costs
    offset: float
    groups: tuple[tuple[int, ...], ...]  # exactly-one groups (disjoint)
    A: sp.csr_array  # (m, n) inequality rows, A x <= b
    b: np.ndarray  # (m,)
    row_names: tuple[str, ...]  # (m,) readable names, e.g. "corridor CTU>XIY @ slot 3 (wagons)"

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.c.shape != (n,) or self.P.shape != (n, n):
            raise ValueError("c and P must match the number of variables")
        if self.A.shape != (len(self.b), n) or len(self.row_names) != len(self.b):
            raise ValueError("A, b and row_names must agree")
        for arr in (self.c, self.b):
            arr.setflags(write=False)

    @property
    def num_variables(self) -> int:
        return len(self.labels)

    @property
    def num_rows(self) -> int:
        return len(self.b)

    def _batch(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return X[None, :] if X.ndim == 1 else X

    def objective(self, X: np.ndarray) -> np.ndarray:
        """Objective of each row of X (k, n) -> (k,)."""
        X = self._batch(X)
        quad = np.einsum("ij,ij->i", (self.P @ X.T).T, X) if self.P.nnz else 0.0
        return X @ self.c + quad + self.offset

    def group_violation(self, X: np.ndarray) -> np.ndarray:
        """Sum over groups of |sum x - 1|, per row of X."""
        X = self._batch(X)
        total = np.zeros(X.shape[0])
        for g in self.groups:
            total += np.abs(X[:, list(g)].sum(axis=1) - 1)
        return total

    def row_excess(self, X: np.ndarray) -> np.ndarray:
        """(k, m) amount by which each row exceeds its bound (0 where satisfied)."""
        X = self._batch(X)
        return np.maximum((self.A @ X.T).T - self.b, 0.0)

    def is_feasible(self, X: np.ndarray) -> np.ndarray:
        return (self.group_violation(X) == 0) & (self.row_excess(X).sum(axis=1) <= 1e-9)

    def violated_rows(self, x: np.ndarray) -> list[str]:
        """Names of the rows one assignment violates (and of groups not chosen exactly once)."""
        excess = self.row_excess(x)[0]
        names = [self.row_names[i] for i in np.flatnonzero(excess > 1e-9)]
        xs = np.asarray(x)
        names += [f"one-hot group of {self.labels[g[0]].split('/')[0]}" for g in self.groups
                  if xs[list(g)].sum() != 1]
        return names


def build_model(cset) -> BinaryModel:
    """The freight model of a :class:`~optimizer.candidates.CandidateSet`; variable i is candidate i.

    Rows that can never bind (the most every shipment could put on a resource fits) are left
    out; they constrain nothing and would only cost slack bits in the QUBO.
    """
    from optimizer.candidates import consolidation_saving

    problem = cset.problem
    n = len(cset.candidates)
    labels = tuple(c.label for c in cset.candidates)
    c = np.array([cand.cost for cand in cset.candidates], dtype=np.float64)
    group_of = np.empty(n, dtype=np.int64)
    for g, members in enumerate(cset.groups):
        group_of[list(members)] = g

    # Inequality rows: gather (row key, variable, amount) triples.
    keys = sorted(cset.bounds)
    key_index = {k: r for r, k in enumerate(keys)}
    rows, cols, vals = [], [], []
    for i, cand in enumerate(cset.candidates):
        for key, amount in cand.uses:
            rows.append(key_index[key])
            cols.append(i)
            vals.append(amount)
    A_all = sp.coo_array((vals, (rows, cols)), shape=(len(keys), n)).tocsr()
    A_all.sum_duplicates()
    # Largest activity of each row under one-plan-per-shipment: per group, its largest entry.
    coo = A_all.tocoo()
    max_activity = _row_group_max_sum(coo.row, group_of[coo.col], coo.data, len(keys))
    bounds = np.array([cset.bounds[k] for k in keys], dtype=np.float64)
    binding = np.flatnonzero(max_activity > bounds + 1e-9)
    A = A_all[binding].tocsr()
    b = bounds[binding]
    row_names = tuple(keys[r] for r in binding)

    # Consolidation: shipments entering the same corridor in the same slot can share a train.
    W = problem.costs.wagons_per_train
    wagons = {s.id: s.wagons for s in problem.shipments}
    corridors = {}
    for cor in problem.corridors:
        corridors[(cor.origin, cor.destination)] = cor
        corridors[(cor.destination, cor.origin)] = cor
    members: dict[str, list[int]] = {}
    for i, cand in enumerate(cset.candidates):
        for key, _ in cand.uses:
            if key.startswith("corridor "):
                members.setdefault(key, []).append(i)
    pr, pc, pv = [], [], []
    for key, idx in members.items():
        if len(idx) < 2:
            continue
        a, b_ = key.split(" ")[1].split(">")
        cor = corridors[(a, b_)]
        saving = consolidation_saving(problem, cor.km, cor.traction)
        idx_arr = np.asarray(idx)
        w = np.array([wagons[cset.candidates[i].shipment] for i in idx])
        g = group_of[idx_arr]
        ii, jj = np.triu_indices(len(idx), 1)
        keep = (g[ii] != g[jj]) & (w[ii] + w[jj] <= W)
        pr.append(idx_arr[ii[keep]])
        pc.append(idx_arr[jj[keep]])
        pv.append(np.full(int(keep.sum()), -saving))
    if pr:
        r_all, c_all, v_all = np.concatenate(pr), np.concatenate(pc), np.concatenate(pv)
        lo, hi = np.minimum(r_all, c_all), np.maximum(r_all, c_all)
        P = sp.coo_array((v_all, (lo, hi)), shape=(n, n)).tocsr()
        P.sum_duplicates()
    else:
        P = sp.csr_array((n, n))
    return BinaryModel(labels=labels, c=c, P=P, offset=0.0, groups=tuple(cset.groups), A=A, b=b,
                       row_names=row_names)


def _row_group_max_sum(rows: np.ndarray, groups: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """For each row, the sum over groups of the group's largest value in that row."""
    if rows.size == 0:
        return np.zeros(num_rows)
    order = np.lexsort((-values, groups, rows))
    r, g, v = rows[order], groups[order], values[order]
    first = np.ones(r.size, dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (g[1:] != g[:-1])
    return np.bincount(r[first], weights=v[first], minlength=num_rows)
