"""The constrained binary model: one choice per group, linear capacity rows, quadratic objective.

Convention (minimise)::

    c^T x + x^T P x + offset
    subject to   sum_{i in g} x_i == 1     for every one-hot group g
                 A x <= b
                 x in {0, 1}^n

``P`` is strictly upper triangular. The model is generic: nothing here knows about rail
(:func:`optimizer.freight.model.build_model` fills it from freight candidates), so backends
such as CP-SAT can solve it without depending on the freight layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

__all__ = ["BinaryModel", "row_group_max_sum"]


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
    # Optional lexicographic objectives, primary first, each (n,) linear. When given, ``c`` (with
    # ``P`` and ``offset``) is an exact scalarisation of them, for solvers that take one objective;
    # a solver may instead minimise the tiers in turn (CP-SAT does).
    tiers: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.c.shape != (n,) or self.P.shape != (n, n):
            raise ValueError("c and P must match the number of variables")
        if self.A.shape != (len(self.b), n) or len(self.row_names) != len(self.b):
            raise ValueError("A, b and row_names must agree")
        if any(np.shape(t) != (n,) for t in self.tiers):
            raise ValueError("every objective tier must have one entry per variable")
        for arr in (self.c, self.b, *self.tiers):
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

    # Built once per model (cached_property writes the instance dict, which a frozen dataclass allows).
    @cached_property
    def membership(self) -> sp.csr_array:
        """(groups, n) 0/1 matrix of the one-hot groups."""
        sizes = np.array([len(g) for g in self.groups], dtype=np.int64)
        cols = np.fromiter((i for g in self.groups for i in g), dtype=np.int64, count=int(sizes.sum()))
        rows = np.repeat(np.arange(len(self.groups)), sizes)
        return sp.csr_array((np.ones(cols.size), (rows, cols)), shape=(len(self.groups), self.num_variables))

    @cached_property
    def group_of(self) -> np.ndarray:
        """(n,) the one-hot group of each variable, -1 for variables in none."""
        M = self.membership.tocoo()
        out = np.full(self.num_variables, -1, dtype=np.int64)
        out[M.col] = M.row
        out.setflags(write=False)
        return out

    @cached_property
    def columns(self) -> sp.csc_array:
        """``A`` by columns: restrictions slice it by variable."""
        return self.A.tocsc()

    def group_violation(self, X: np.ndarray) -> np.ndarray:
        """Sum over groups of |sum x - 1|, per row of X."""
        X = self._batch(X)
        if not self.groups:
            return np.zeros(X.shape[0])
        return np.abs((self.membership @ X.T) - 1.0).sum(axis=0)

    def row_excess(self, X: np.ndarray) -> np.ndarray:
        """(k, m) amount by which each row exceeds its bound (0 where satisfied)."""
        X = self._batch(X)
        return np.maximum((self.A @ X.T).T - self.b, 0.0)

    def is_feasible(self, X: np.ndarray) -> np.ndarray:
        return (self.group_violation(X) == 0) & (self.row_excess(X).sum(axis=1) <= 1e-9)

    def activity_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(m,) smallest and largest value of each row's ``A x`` over assignments that choose
        exactly one variable per group (variables in no group are free 0/1)."""
        m, n = self.A.shape
        coo = self.A.tocoo()
        group_of = -np.ones(n, dtype=np.int64)
        size = np.zeros(len(self.groups) + 1, dtype=np.int64)
        for g, members in enumerate(self.groups):
            group_of[list(members)] = g
            size[g] = len(members)
        lo = np.zeros(m)
        hi = np.zeros(m)
        g = group_of[coo.col]
        free = g < 0
        np.add.at(lo, coo.row[free], np.minimum(coo.data[free], 0.0))
        np.add.at(hi, coo.row[free], np.maximum(coo.data[free], 0.0))
        r, g, v = coo.row[~free], g[~free], coo.data[~free]
        if r.size:
            order = np.lexsort((v, g, r))
            r, g, v = r[order], g[order], v[order]
            start = np.ones(r.size, dtype=bool)
            start[1:] = (r[1:] != r[:-1]) | (g[1:] != g[:-1])
            first = np.flatnonzero(start)
            last = np.append(first[1:], r.size) - 1
            vmin, vmax = v[first], v[last]
            # A group with members outside the row can choose one of them: 0 is then possible.
            partial = (last - first + 1) < size[g[first]]
            vmin = np.where(partial, np.minimum(vmin, 0.0), vmin)
            vmax = np.where(partial, np.maximum(vmax, 0.0), vmax)
            np.add.at(lo, r[first], vmin)
            np.add.at(hi, r[first], vmax)
        return lo, hi

    def violated_rows(self, x: np.ndarray) -> list[str]:
        """Names of the rows one assignment violates (and of groups not chosen exactly once)."""
        excess = self.row_excess(x)[0]
        names = [self.row_names[i] for i in np.flatnonzero(excess > 1e-9)]
        xs = np.asarray(x)
        names += [f"one-hot group of {self.labels[g[0]].split('/')[0]}" for g in self.groups
                  if xs[list(g)].sum() != 1]
        return names


def row_group_max_sum(rows: np.ndarray, groups: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """For each row, the sum over groups of the group's largest value in that row."""
    if rows.size == 0:
        return np.zeros(num_rows)
    order = np.lexsort((-values, groups, rows))
    r, g, v = rows[order], groups[order], values[order]
    first = np.ones(r.size, dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (g[1:] != g[:-1])
    return np.bincount(r[first], weights=v[first], minlength=num_rows)
