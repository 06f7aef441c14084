"""Device-sized freight pieces over plan variables only, and the exact repair of train counts.

A piece of a few shipments, freed with the train-count integers it touches, carries dozens to
hundreds of auxiliary bits (every batch its plans use, and the slack of the yard and fleet rows
they feed): far more than a quantum device holds, and, for a one-hot subspace simulator, a factor
2^bits on the amplitudes. So a device sees a *surrogate* of the piece over its plans alone:

- one-hot groups (one plan per shipment);
- each plan's own cost (``model.c``) plus, for every batch it enters, the cost of one more train
  when the trains already formed there by the other shipments have no room left for its wagons
  (the marginal train cost at the incumbent);
- per batch, the train paths: the piece's wagons entering it at most ``wagons_per_train x paths``
  minus the wagons of the shipments held fixed.

Yard and locomotive rows are not in the surrogate. Every answer is then *repaired* exactly: the
train count of each batch the piece touches is recomputed as ``ceil(wagons / wagons_per_train)``
plus the light engines it had, and the full model judges the result (objective and every row).
The device, the stand-ins it is measured against and the loop all go through the same surrogate
and the same repair, so the comparison stays fair; only repaired, feasible, lower-objective plans
are accepted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from optimizer.freight.model import aux_layout
from optimizer.qubo.model import BinaryModel
from optimizer.qubo.restrict import row_max_activity

__all__ = ["PlanPieces"]


class PlanPieces:
    """Surrogates and repairs of one freight model (``cset`` and the model built from it)."""

    def __init__(self, cset, model: BinaryModel):
        self.cset = cset
        self.model = model
        self.layout = aux_layout(cset)
        self.num_plans = len(cset.candidates)
        self.W = cset.problem.costs.wagons_per_train
        self.upper = np.asarray(cset.batches.upper, dtype=np.int64)
        # Plan -> (batch, wagons) as a sparse (plans, batches) matrix.
        rows, cols, vals = [], [], []
        for i, cand in enumerate(cset.candidates):
            for b, w in cand.uses:
                rows.append(i)
                cols.append(b)
                vals.append(w)
        self.uses = sp.csr_array((np.asarray(vals, dtype=np.float64), (np.asarray(rows, dtype=np.int64),
                                                                       np.asarray(cols, dtype=np.int64))),
                                 shape=(self.num_plans, self.layout.num_batches))
        self._bit_start = np.searchsorted(self.layout.bit_batch, np.arange(self.layout.num_batches + 1))
        # The model's own cost of one train of each batch (its objective on the batch's weight-1 bit).
        self.train_cost = np.zeros(self.layout.num_batches)
        has_bits = self._bit_start[1:] > self._bit_start[:-1]
        first = self.num_plans + self._bit_start[:-1][has_bits]
        self.train_cost[has_bits] = model.c[first] / self.layout.bit_weight[self._bit_start[:-1][has_bits]]
        self._group_of = -np.ones(self.num_plans, dtype=np.int64)
        for g, members in enumerate(model.groups):
            self._group_of[list(members)] = g

    def wagons(self, x: np.ndarray) -> np.ndarray:
        """(batches,) wagons entering each batch under the plan choices of ``x``."""
        return self.uses.T @ np.asarray(x[: self.num_plans], dtype=np.float64)

    def surrogate(self, x: np.ndarray, plan_vars: np.ndarray) -> BinaryModel:
        """The piece over ``plan_vars`` (whole or shortlisted groups), everything else held at ``x``,
        linearised at the incumbent: choosing plan i for its shipment instead of the current plan c
        changes the trains of the batches c leaves and i enters by exactly what that one swap would
        change them by; those train changes enter every row (yard places, locomotive balances,
        guards, train paths) with their coefficients, and the objective with each train's cost.
        The incumbent is feasible for the surrogate, and every single-shipment swap is evaluated
        exactly; swaps of several shipments that meet in one batch are approximated, which the
        repair and the full model then judge."""
        x = np.asarray(x, dtype=np.uint8)
        plan_vars = np.asarray(plan_vars, dtype=np.int64)
        k = plan_vars.size
        wagons = self.wagons(x)
        groups_of_vars = self._group_of[plan_vars]
        current = {}
        for g in np.unique(groups_of_vars).tolist():
            members = np.asarray(self.model.groups[g], dtype=np.int64)
            current[g] = int(members[x[members] == 1][0])
        uses_csr = self.uses.tocsr()

        def row_uses(i: int) -> tuple[np.ndarray, np.ndarray]:
            s, e = uses_csr.indptr[i], uses_csr.indptr[i + 1]
            return uses_csr.indices[s:e], uses_csr.data[s:e]

        rows, cols, vals = [], [], []  # (plan position, batch, change in trains)
        for pos, (i, g) in enumerate(zip(plan_vars.tolist(), groups_of_vars.tolist())):
            c = current[g]
            if i == c:
                continue
            change: dict[int, float] = {}
            left = wagons.copy()
            cb, cw = row_uses(c)
            for b_, w in zip(cb.tolist(), cw.tolist()):
                before = np.ceil(left[b_] / self.W - 1e-9)
                left[b_] -= w
                change[b_] = change.get(b_, 0.0) + np.ceil(left[b_] / self.W - 1e-9) - before
            ib, iw = row_uses(i)
            for b_, w in zip(ib.tolist(), iw.tolist()):
                before = np.ceil(left[b_] / self.W - 1e-9)
                left[b_] += w
                change[b_] = change.get(b_, 0.0) + np.ceil(left[b_] / self.W - 1e-9) - before
            for b_, d in change.items():
                if d:
                    rows.append(pos)
                    cols.append(b_)
                    vals.append(d)
        D = sp.csr_array((np.asarray(vals, dtype=np.float64), (np.asarray(rows, dtype=np.int64),
                                                               np.asarray(cols, dtype=np.int64))),
                         shape=(k, self.layout.num_batches))
        batches = np.unique(np.asarray(cols, dtype=np.int64))
        unit_bit = self.num_plans + self._bit_start[:-1][batches]
        per_train = sp.csr_array(self.model.A[:, unit_bit])  # (rows, touched batches): coefficient per train
        # Plan coefficients change too (guard rows): plan i's column minus its shipment's current one.
        current_of = np.array([current[g] for g in groups_of_vars.tolist()], dtype=np.int64)
        E = (self.model.A[:, plan_vars] - self.model.A[:, current_of]) + per_train @ D[:, batches].T
        slack = self.model.b - self.model.A @ x.astype(np.float64)
        trains = self._trains(x, batches)
        P = sp.csr_array(D[:, batches].T)  # train paths: within 0..upper
        A = sp.vstack([sp.csr_array(E), P, -P]).tocsr()
        bound = np.concatenate([slack, self.upper[batches] - trains, trains])
        names = (*self.model.row_names,
                 *(f"paths {self.cset.batches.label(self.cset.problem, int(b_))}" for b_ in batches),
                 *(f"trains >= 0 {self.cset.batches.label(self.cset.problem, int(b_))}" for b_ in batches))
        c = self.model.c[plan_vars] + D @ self.train_cost
        position = -np.ones(self.num_plans, dtype=np.int64)
        position[plan_vars] = np.arange(k)
        order = np.argsort(groups_of_vars, kind="stable")
        ids = groups_of_vars[order]
        cuts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        groups = tuple(tuple(int(position[i]) for i in plan_vars[order][s:e])
                       for s, e in zip(cuts.tolist(), np.r_[cuts[1:], ids.size].tolist()))
        # Rows the piece cannot overfill drop out (they only cost slack bits).
        keep = np.flatnonzero(row_max_activity(A, groups) > bound + 1e-9)
        return BinaryModel(labels=tuple(self.model.labels[i] for i in plan_vars), c=np.ascontiguousarray(c),
                           P=sp.csr_array((k, k)), offset=0.0, groups=groups, A=A[keep].tocsr(),
                           b=np.ascontiguousarray(bound[keep], dtype=np.float64),
                           row_names=tuple(names[j] for j in keep))

    def repair(self, x_old: np.ndarray, x_new: np.ndarray) -> np.ndarray:
        """``x_new``'s plans with the train counts of every batch whose wagons changed recomputed:
        ``ceil(wagons / W)`` loaded trains plus the light engines ``x_old`` ran there, clipped to the
        batch's range. Other bits are kept as in ``x_new``."""
        x_new = np.array(x_new, dtype=np.uint8, copy=True)
        old_w, new_w = self.wagons(x_old), self.wagons(x_new)
        changed = np.flatnonzero(np.abs(old_w - new_w) > 1e-9)
        if changed.size == 0:
            return x_new
        trains_old = self._trains(x_old, changed)
        light = np.maximum(trains_old - np.ceil(old_w[changed] / self.W - 1e-9), 0)
        trains_new = np.clip(np.ceil(new_w[changed] / self.W - 1e-9) + light, 0, self.upper[changed]).astype(np.int64)
        for b, value in zip(changed.tolist(), trains_new.tolist()):
            lo, hi = self._bit_start[b], self._bit_start[b + 1]
            x_new[self.num_plans + lo: self.num_plans + hi] = _bounded_bits(value, self.layout.bit_weight[lo:hi])
        return x_new

    def _trains(self, x: np.ndarray, batches: np.ndarray) -> np.ndarray:
        out = np.zeros(batches.size)
        for k, b in enumerate(batches.tolist()):
            lo, hi = self._bit_start[b], self._bit_start[b + 1]
            out[k] = float(x[self.num_plans + lo: self.num_plans + hi] @ self.layout.bit_weight[lo:hi])
        return out

    def repairer(self, x_old: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        x_old = np.array(x_old, dtype=np.uint8, copy=True)
        return lambda x_new: self.repair(x_old, x_new)


def _bounded_bits(value: int, weights: np.ndarray) -> np.ndarray:
    """Bits of ``value`` in bounded encoding (1, 2, 4, ..., remainder): the remainder weight is
    used only when the value needs it, as :meth:`AuxLayout.encode` does."""
    bits = np.zeros(weights.size, dtype=np.uint8)
    if weights.size == 0:
        return bits
    upper = int(weights.sum())
    top = int(weights[-1])
    rest = value
    if value > upper - top:
        bits[-1] = 1
        rest = value - top
    for j in range(weights.size - 1):
        bits[j] = (rest >> j) & 1
    return bits
