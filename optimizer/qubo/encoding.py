"""From a constrained :class:`BinaryModel` to a :class:`Qubo`, and back.

Penalty rule (``inequality = "slack"``, the default): every constraint becomes a penalty term
that is 0 when the constraint holds and at least 1 when it is violated (one-hot:
``(sum x - 1)^2``; a row ``a.x <= b`` with integer coefficients (after dividing by their gcd):
``(a.x + s - b)^2`` with integer slack ``s`` in binary over ``0..b - min(a.x)``, the row's
smallest activity under the one-hot groups (so rows with negative coefficients encode exactly,
as qiskit-optimization's InequalityToEquality sizes them); two shortcuts need no slack: a row
of positive coefficients where any two active variables already exceed the bound gives the
pairwise products ``x_i x_j``, and a row ``sum a_i x_i - B y <= 0`` (a_i > 0, ``y`` in no group)
whose positive part can never exceed ``B`` means ``x_i <= y`` for every i, penalised by
``x_i (1 - y)``). With one weight ``P``::

    P = objective(reference) - L + 1,   L = offset + sum(min(c, 0)) + sum(min(P_ij, 0))

where ``reference`` is any feasible assignment (qfreight passes the greedy dispatcher's plan)
and ``L`` bounds the objective from below over *all* binary x. Then an infeasible x has
energy >= L + P > objective(reference) >= the feasible optimum: the QUBO minimum is always
feasible and equals the model optimum.

``inequality = "unbalanced"`` uses unbalanced penalisation instead of slack bits
(Montanez-Barrera et al., "Unbalanced penalization: a new approach to encode inequality
constraints of combinatorial problems for quantum optimization algorithms", 2022):
``-l1 * g(x) + l2 * g(x)^2`` with ``g = b - a.x``. It needs no slack qubits but gives no
guarantee; the result is always re-checked against the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce

import numpy as np

from optimizer.qubo import Qubo
from optimizer.qubo.model import BinaryModel

__all__ = ["INEQUALITY_MODES", "Encoding", "encode"]

INEQUALITY_MODES = ("slack", "unbalanced")


@dataclass(frozen=True)
class SlackRow:
    row: int  # index into model rows
    bound: int  # normalised integer bound b'
    columns: tuple[int, ...]  # QUBO indices of the slack bits
    weights: tuple[int, ...]  # their integer weights (sum == span)
    scale: int  # gcd the row was divided by
    span: int = -1  # largest slack needed: b' - (smallest normalised activity); -1: equal to bound

    @property
    def slack_range(self) -> int:
        return self.bound if self.span < 0 else self.span


@dataclass(frozen=True, eq=False)
class Encoding:
    """A QUBO with its model. Model variables are QUBO variables 0..n-1; slack bits follow."""

    qubo: Qubo
    model: BinaryModel
    penalty: float
    inequality: str
    slack_rows: tuple[SlackRow, ...]

    @property
    def num_model_variables(self) -> int:
        return self.model.num_variables

    def project(self, X: np.ndarray) -> np.ndarray:
        """Model part of QUBO samples (k, N) -> (k, n)."""
        X = np.asarray(X)
        return X[..., : self.num_model_variables]

    def lift(self, X: np.ndarray) -> np.ndarray:
        """QUBO samples for model assignments, with each slack set to its best value.

        For a feasible assignment the lifted energy equals the model objective.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.uint8))
        out = np.zeros((X.shape[0], self.qubo.num_variables), dtype=np.uint8)
        out[:, : self.num_model_variables] = X
        if not self.slack_rows:
            return out
        activity = (self.model.A @ X.T.astype(np.float64)).T  # (k, m)
        for srow in self.slack_rows:
            if not srow.columns:
                continue  # bound 0: no slack bits, every plan in the row must be off
            span = srow.slack_range
            need = np.clip(srow.bound - np.rint(activity[:, srow.row] / srow.scale), 0, span).astype(np.int64)
            weights = np.asarray(srow.weights)
            # Largest weight first: the last bit is the "remainder" weight of bounded encoding.
            top = weights[-1]
            use_top = need > (span - top)
            rest = need - np.where(use_top, top, 0)
            bits = (rest[:, None] >> np.arange(len(weights) - 1)[None, :]) & 1
            out[:, list(srow.columns[:-1])] = bits
            out[:, srow.columns[-1]] = use_top
        return out

    def qubo_energy_of_model(self, X: np.ndarray) -> np.ndarray:
        return self.qubo.energies(self.lift(X))


def _bounded_weights(bound: int) -> list[int]:
    """Integer weights whose subset sums cover exactly 0..bound: 1, 2, 4, ..., remainder."""
    m = max(1, math.floor(math.log2(bound)) + 1)
    weights = [1 << k for k in range(m - 1)]
    weights.append(bound - (sum(weights)))
    return weights


class _Builder:
    def __init__(self, n: int):
        self.n = n
        self.linear: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.offset = 0.0

    def new_vars(self, count: int) -> np.ndarray:
        idx = np.arange(self.n, self.n + count)
        self.n += count
        return idx

    def add_square(self, idx: np.ndarray, coef: np.ndarray, const: float, weight: float) -> None:
        """weight * (coef . x[idx] + const)^2 for binary x."""
        idx = np.asarray(idx, dtype=np.int64)
        coef = np.asarray(coef, dtype=np.float64)
        # (sum a_i x_i + c)^2 = sum (a_i^2 + 2 c a_i) x_i + 2 sum_{i<j} a_i a_j x_i x_j + c^2
        self.rows.append(idx)
        self.cols.append(idx)
        self.vals.append(weight * (coef**2 + 2 * const * coef))
        ii, jj = np.triu_indices(idx.size, 1)
        self.rows.append(idx[ii])
        self.cols.append(idx[jj])
        self.vals.append(weight * 2 * coef[ii] * coef[jj])
        self.offset += weight * const**2

    def add_pairs(self, idx: np.ndarray, weight: float, exclude_same: np.ndarray | None = None) -> None:
        ii, jj = np.triu_indices(len(idx), 1)
        if exclude_same is not None:
            keep = exclude_same[ii] != exclude_same[jj]
            ii, jj = ii[keep], jj[keep]
        self.rows.append(np.asarray(idx)[ii])
        self.cols.append(np.asarray(idx)[jj])
        self.vals.append(np.full(ii.size, weight))

    def add_linear(self, idx: np.ndarray, values: np.ndarray) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        self.rows.append(idx)
        self.cols.append(idx)
        self.vals.append(np.asarray(values, dtype=np.float64))


#: Most couplings a QUBO may get (each square of a row with k terms gives k(k-1)/2 of them).
MAX_COUPLINGS = 50_000_000


def _check_size(model: BinaryModel) -> None:
    """Refuse, before building anything, a QUBO whose penalty squares would not fit in memory."""
    A = model.A.tocsr()
    per_row = np.diff(A.indptr).astype(np.float64)
    # A row's slack needs at most log2(sum |a| + |b|) bits.
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    span = np.bincount(rows, weights=np.abs(A.data), minlength=A.shape[0]) + np.abs(model.b)
    per_row = per_row + np.ceil(np.log2(span + 1.0))
    per_group = np.array([len(g) for g in model.groups], dtype=np.float64)
    couplings = float((per_row ** 2).sum() / 2 + (per_group ** 2).sum() / 2 + model.P.nnz)
    if couplings > MAX_COUPLINGS:
        from optimizer.errors import InputError, Issue

        raise InputError("model", Issue("qubo", f"the QUBO would have about {couplings:,.0f} couplings, more than "
                                                f"the limit of {MAX_COUPLINGS:,}; solve the constrained model "
                                                "(CP-SAT) or shrink the problem", model.num_variables))


def encode(model: BinaryModel, *, reference: np.ndarray | None = None, inequality: str = "slack",
           penalty: float | None = None, unbalanced: tuple[float, float] = (0.9603, 0.0371)) -> Encoding:
    """Encode ``model`` as a QUBO; ``reference`` is a feasible assignment for the penalty rule.

    ``penalty`` overrides the rule (the feasibility guarantee then no longer holds).
    """
    if inequality not in INEQUALITY_MODES:
        raise ValueError(f"inequality must be one of {INEQUALITY_MODES}, got {inequality!r}")
    n = model.num_variables
    if penalty is None:
        if reference is None:
            raise ValueError("encode needs a feasible reference assignment (or an explicit penalty)")
        ref = np.asarray(reference, dtype=np.float64)
        if not model.is_feasible(ref)[0]:
            raise ValueError("the reference assignment violates the model: " + ", ".join(model.violated_rows(ref)))
        lower = model.offset + np.minimum(model.c, 0).sum() + (np.minimum(model.P.data, 0).sum() if model.P.nnz else 0)
        penalty = float(model.objective(ref)[0] - lower + 1.0)
    _check_size(model)
    group_id = -np.ones(n, dtype=np.int64)
    for g, members in enumerate(model.groups):
        group_id[list(members)] = g

    builder = _Builder(n)
    builder.add_linear(np.arange(n), model.c)
    Pc = model.P.tocoo()
    builder.rows.append(Pc.row.astype(np.int64))
    builder.cols.append(Pc.col.astype(np.int64))
    builder.vals.append(Pc.data.astype(np.float64))
    builder.offset += model.offset

    # One plan per shipment: P (sum x - 1)^2.
    for members in model.groups:
        idx = np.asarray(members)
        builder.add_square(idx, np.ones(idx.size), -1.0, penalty)

    slack_rows: list[SlackRow] = []
    A = model.A.tocsr()
    lowest, highest = model.activity_bounds()
    for r in range(model.num_rows):
        start, end = A.indptr[r], A.indptr[r + 1]
        idx = A.indices[start:end].astype(np.int64)
        coef = A.data[start:end]
        if idx.size == 0:
            continue
        if not np.allclose(coef, np.rint(coef)):
            raise ValueError(f"row {model.row_names[r]!r} has non-integer coefficients")
        ints = np.rint(coef).astype(np.int64)
        scale = reduce(math.gcd, np.abs(ints).tolist())
        a = ints // scale
        bound = int(math.floor(model.b[r] / scale + 1e-9))
        low = int(np.rint(lowest[r] / scale))
        if low > bound:
            raise ValueError(f"row {model.row_names[r]!r} cannot be satisfied by any assignment")
        negative = np.flatnonzero(a < 0)
        if inequality == "slack" and negative.size == 0 and idx.size >= 2 and np.sort(a)[:2].sum() > bound \
                and a.max() <= bound:
            # Any two active plans overflow the row: an "at most one" conflict, no slack needed.
            # Two plans of one shipment never overflow together (one-hot); variables in no group
            # (train counts) are each their own group.
            own = np.where(group_id[idx] >= 0, group_id[idx], -1 - idx)
            builder.add_pairs(idx, penalty, exclude_same=own)
            continue
        if inequality == "slack" and negative.size == 1 and bound == 0 and idx.size >= 2 \
                and group_id[idx[negative[0]]] < 0 and highest[r] / scale <= -a[negative[0]] + 1e-9:
            # sum a_i x_i <= B y with the left side never above B: every x_i implies y.
            y = idx[negative[0]]
            xs = np.delete(idx, negative[0])
            builder.add_linear(xs, np.full(xs.size, penalty))
            builder.rows.append(np.minimum(xs, y))
            builder.cols.append(np.maximum(xs, y))
            builder.vals.append(np.full(xs.size, -penalty))
            continue
        if inequality == "slack":
            span = bound - low
            weights = _bounded_weights(span) if span > 0 else []
            cols = builder.new_vars(len(weights))
            builder.add_square(np.concatenate([idx, cols]), np.concatenate([a, weights]).astype(float),
                               -float(bound), penalty)
            slack_rows.append(SlackRow(r, bound, tuple(int(c) for c in cols), tuple(weights), scale, span))
        else:
            l1, l2 = unbalanced
            # -l1 g + l2 g^2 with g = bound - a.x, in units of the normalised row.
            builder.add_linear(idx, penalty * l1 * a)
            builder.offset -= penalty * l1 * bound
            builder.add_square(idx, -a.astype(float), float(bound), penalty * l2)

    labels = list(model.labels)
    for srow in slack_rows:
        labels += [f"slack/{model.row_names[srow.row]}/{k}" for k in range(len(srow.columns))]
    N = builder.n
    rows = np.concatenate(builder.rows) if builder.rows else np.zeros(0, np.int64)
    cols = np.concatenate(builder.cols) if builder.cols else np.zeros(0, np.int64)
    vals = np.concatenate(builder.vals) if builder.vals else np.zeros(0)
    qubo = Qubo.from_terms(N, rows=rows, cols=cols, weights=vals, offset=builder.offset, labels=labels,
                           groups=model.groups,
                           metadata={"penalty": penalty, "inequality": inequality, "model_variables": n})
    return Encoding(qubo=qubo, model=model, penalty=penalty, inequality=inequality, slack_rows=tuple(slack_rows))
