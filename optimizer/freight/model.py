"""The freight model: candidate plans and train counts -> :class:`~optimizer.qubo.model.BinaryModel`.

Variables: plan i is candidate i (one-hot groups are shipments); after the plans come the
binary digits of ``trains[b]`` for every train batch b (:mod:`optimizer.freight.trains`; in no
group). The model is linear: no pair terms.

Rows (each ``A x <= b``, integer coefficients):

- ``wagons B``: ``sum wagons_i x_i - wagons_per_train * trains[B] <= 0`` (wagonload: the trains of
  a batch carry all its wagons); the path limit is the range ``0..capacity`` of ``trains[B]``;
- ``yard H @tS``: the trains whose handling at hub H overlaps slot S, at most ``yard_capacity``;
- ``fleet H @tS``: at the slot-S boundary, departures from H so far minus arrivals whose
  locomotives are available by then, at most H's initial fleet;
- optional guard rows (:func:`add_guard`) against the best baseline.

The objective is ``terms @ weights`` (:mod:`optimizer.freight.objective`); in service-first mode
the model carries the lexicographic tiers (priority-weighted lateness in priority-minutes, then
the weighted sum) and ``c`` is their exact big-M scalarisation. Rows that can never bind (their
largest activity fits the bound) are left out; they constrain nothing and would only cost
slack bits in the QUBO.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from optimizer.freight.objective import CRITERIA, Objective, lexicographic_scale
from optimizer.freight.trains import AuxLayout, fleet_times, train_terms, yard_occupancy
from optimizer.qubo.model import BinaryModel

__all__ = ["GUARD_ROWS", "add_guard", "aux_layout", "build_model", "complete", "model_terms"]

GUARD_ROWS = ("guard on-time", "guard transfer dwell", "guard cost")


def aux_layout(cset) -> AuxLayout:
    cache = cset.__dict__.setdefault("_aux_layout", {})
    if "layout" not in cache:
        cache["layout"] = AuxLayout.of(len(cset.candidates), cset.batches)
    return cache["layout"]


def model_terms(cset) -> np.ndarray:
    """(n, criteria) objective terms of every model variable (plans, then train bits)."""
    cache = cset.__dict__.setdefault("_aux_layout", {})
    if "terms" not in cache:
        layout = aux_layout(cset)
        plan_terms = np.asarray(cset.terms_matrix, dtype=np.float64).reshape(-1, len(CRITERIA))
        per_train = train_terms(cset.problem, cset.batches)
        bits = per_train[layout.bit_batch] * layout.bit_weight[:, None]
        cache["terms"] = np.vstack([plan_terms, bits])
    return cache["terms"]


def _objective(cset, terms: np.ndarray, objective: Objective):
    """(c, tiers) for the objective settings."""
    weighted = terms @ objective.weights
    if objective.weights[1:].any():
        weighted = np.round(weighted, 6)
    if not objective.lexicographic:
        return weighted, ()
    lateness = np.rint(terms[:, 1] * 60.0)  # priority-minutes: exact, since times are whole minutes
    # Range of the weighted sum over all assignments (one plan per shipment, any train counts).
    n_plans = len(cset.candidates)
    group_of = cset.group_of
    grouped = group_of >= 0
    most = np.full(len(cset.groups), -np.inf)
    least = np.full(len(cset.groups), np.inf)
    np.maximum.at(most, group_of[grouped], weighted[:n_plans][grouped])
    np.minimum.at(least, group_of[grouped], weighted[:n_plans][grouped])
    hi = lo = 0.0
    for high, low in zip(most.tolist(), least.tolist()):  # summed in group order, as always
        hi += high
        lo += low
    aux = weighted[n_plans:]
    hi += np.maximum(aux, 0).sum()
    lo += np.minimum(aux, 0).sum()
    M = lexicographic_scale(1.0, hi - lo)
    return M * lateness + weighted, (lateness, weighted)


def build_model(cset, objective: Objective = Objective()) -> BinaryModel:
    """The freight model of a :class:`~optimizer.freight.candidates.CandidateSet`."""
    problem = cset.problem
    batches = cset.batches
    layout = aux_layout(cset)
    n_plans = len(cset.candidates)
    n = layout.num_variables
    terms = model_terms(cset)
    c, tiers = _objective(cset, terms, objective)
    labels = [cand.label for cand in cset.candidates]
    batch_label = [batches.label(problem, b) for b in range(len(batches))]
    labels += [f"trains/{batch_label[b]}/{k}" for k, b in enumerate(layout.bit_batch.tolist())]
    bit_index = np.arange(n_plans, n, dtype=np.int64)
    W = problem.costs.wagons_per_train
    upper = batches.upper
    slot_min = problem.horizon.slot_minutes

    row_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, col, value) in local row ids
    bounds: list[float] = []
    names: list[str] = []

    def add_block(local_rows, cols, vals, block_bounds, block_names) -> None:
        offset = len(bounds)
        row_parts.append((np.asarray(local_rows, np.int64) + offset, np.asarray(cols, np.int64),
                          np.asarray(vals, np.float64)))
        bounds.extend(block_bounds)
        names.extend(block_names)

    # Wagons: the trains of a batch carry every wagon entering it.
    use_ptr, use_batch, use_wagons = cset.use_arrays
    plan_of_use = np.repeat(np.arange(n_plans, dtype=np.int64), np.diff(use_ptr))
    loaded = np.flatnonzero(batches.loaded_max > 0)
    wagon_row = -np.ones(len(batches), dtype=np.int64)
    wagon_row[loaded] = np.arange(loaded.size)
    bit_rows = wagon_row[layout.bit_batch]
    has_row = bit_rows >= 0
    add_block(np.concatenate([wagon_row[np.asarray(use_batch, np.int64)], bit_rows[has_row]]),
              np.concatenate([np.asarray(plan_of_use, np.int64), bit_index[has_row]]),
              np.concatenate([np.asarray(use_wagons, np.float64), -W * layout.bit_weight[has_row].astype(float)]),
              [0.0] * loaded.size, [f"wagons {batches.label(problem, int(b))}" for b in loaded])

    # Yard: every train occupies its destination's yard in each slot its handling overlaps.
    occ_batch, occ_slot = yard_occupancy(problem, batches)
    if occ_batch.size:
        keys, inverse = np.unique(np.stack([batches.destination[occ_batch], occ_slot], axis=1), axis=0,
                                  return_inverse=True)
        inverse = inverse.ravel()
        most = np.bincount(inverse, weights=upper[occ_batch], minlength=len(keys))
        caps = np.array([problem.hubs[int(h)].yard_capacity for h in keys[:, 0]], dtype=np.float64)
        binding = most > caps
        local = -np.ones(len(keys), dtype=np.int64)
        local[binding] = np.arange(int(binding.sum()))
        # Every bit of the batch of each binding occupancy (batch, slot).
        keep = local[inverse] >= 0
        owner, bit = _pairs(occ_batch[keep], layout)
        add_block(local[inverse[keep]][owner], bit_index[bit], layout.bit_weight[bit].astype(float),
                  caps[binding].tolist(), [f"yard {problem.hubs[int(h)].id} @t{int(s):02d}" for h, s in keys[binding]])

    # Fleet: at each departure boundary, departures so far - arrivals available <= initial fleet.
    avail = fleet_times(problem, batches)
    rows_at: list[np.ndarray] = []
    cols_at: list[np.ndarray] = []
    vals_at: list[np.ndarray] = []
    fb: list[float] = []
    fn: list[str] = []
    for h, hub in enumerate(problem.hubs):
        dep = np.flatnonzero((batches.origin == h) & (upper > 0))
        if dep.size == 0:
            continue
        dep_slots = np.unique(batches.slot[dep])
        # Most departures up to each boundary: rows only where they could exceed the fleet.
        cum = np.cumsum(np.bincount(np.searchsorted(dep_slots, batches.slot[dep]), weights=upper[dep],
                                    minlength=dep_slots.size))
        rows_h = dep_slots[cum > hub.locomotives]
        if rows_h.size == 0:
            continue
        offset = len(fb)
        arr = np.flatnonzero((batches.destination == h) & (upper > 0))
        for members, first, sign in ((dep, np.searchsorted(rows_h, batches.slot[dep]), 1.0),
                                     (arr, np.searchsorted(rows_h * slot_min, avail[arr]), -1.0)):
            # A batch enters every row from its first one on (cumulative balances).
            owner, bit = _pairs(members, layout)
            counts = rows_h.size - first[owner]
            rep = np.repeat(np.arange(owner.size), counts)
            within = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts)
            rows_at.append(offset + first[owner][rep] + within)
            cols_at.append(bit_index[bit][rep])
            vals_at.append(sign * layout.bit_weight[bit][rep].astype(float))
        fb.extend([float(hub.locomotives)] * rows_h.size)
        fn.extend(f"fleet {hub.id} @t{int(s):02d}" for s in rows_h.tolist())
    if fb:
        add_block(np.concatenate(rows_at), np.concatenate(cols_at), np.concatenate(vals_at), fb, fn)

    m = len(bounds)
    if row_parts:
        rows = np.concatenate([p[0] for p in row_parts])
        cols = np.concatenate([p[1] for p in row_parts])
        vals = np.concatenate([p[2] for p in row_parts])
    else:
        rows = cols = np.zeros(0, np.int64)
        vals = np.zeros(0)
    A = sp.coo_array((vals, (rows, cols)), shape=(m, n)).tocsr()
    A.sum_duplicates()
    model = BinaryModel(labels=tuple(labels), c=np.ascontiguousarray(c, dtype=np.float64), P=sp.csr_array((n, n)),
                        offset=0.0, groups=tuple(cset.groups), A=A, b=np.array(bounds, dtype=np.float64),
                        row_names=tuple(names), tiers=tuple(np.ascontiguousarray(t) for t in tiers))
    # Drop rows that cannot bind (e.g. a yard whose arrivals all fit); wagon rows always bind.
    _, hi = model.activity_bounds()
    keep = np.flatnonzero(hi > model.b + 1e-9)
    if keep.size < m:
        model = replace(model, A=model.A[keep].tocsr(), b=model.b[keep].copy(),
                        row_names=tuple(names[k] for k in keep))
    return model


def _pairs(batch_list: np.ndarray, layout: AuxLayout) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``batch_list``, auxiliary bit) for every bit of every listed batch."""
    starts = np.searchsorted(layout.bit_batch, np.arange(layout.num_batches + 1))
    lo, hi = starts[batch_list], starts[np.asarray(batch_list) + 1]
    counts = hi - lo
    owner = np.repeat(np.arange(len(batch_list)), counts)
    bit = np.repeat(lo, counts) + np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, bit


def complete(cset, x_plans: np.ndarray) -> np.ndarray:
    """A full model assignment from plan choices: every ``trains[b]`` at its least feasible value,
    ``ceil(wagons entering b / wagons_per_train)`` (clipped to the batch's range), no light engines."""
    layout = aux_layout(cset)
    x_plans = np.asarray(x_plans).ravel()[: layout.num_plans].astype(np.uint8)
    use_ptr, use_batch, use_wagons = cset.use_arrays
    chosen = np.repeat(x_plans.astype(bool), np.diff(use_ptr))
    wagons = np.bincount(use_batch[chosen], weights=use_wagons[chosen], minlength=layout.num_batches)
    wagons = np.rint(wagons).astype(np.int64)
    W = cset.problem.costs.wagons_per_train
    trains = -(-wagons // W)
    return np.concatenate([x_plans, layout.encode(trains, cset.batches.upper)])


@dataclass(frozen=True)
class GuardBounds:
    on_time: int  # shipments on time in the baseline plan
    dwell_minutes: int  # transfer-yard dwell of the baseline plan
    cost_fen: int  # cost of the baseline plan, in fen


def add_guard(model: BinaryModel, cset, reference: np.ndarray) -> BinaryModel:
    """``model`` plus three rows: at least as many shipments on time, at most as much transfer-yard
    dwell, at most the cost of the ``reference`` assignment (a feasible plan, e.g. the best
    baseline's). Coefficients are exact integers (minutes, fen), so ``reference`` satisfies all three."""
    terms = model_terms(cset)
    n_plans = len(cset.candidates)
    n = model.num_variables
    on_time = np.zeros(n)
    on_time[:n_plans] = [1.0 if c.on_time else 0.0 for c in cset.candidates]
    dwell = np.rint(terms[:, 2] * 60.0)
    cost = np.rint(terms[:, 0] * 100.0)
    x = np.asarray(reference, dtype=np.float64).ravel()
    rows = np.vstack([-on_time, dwell, cost])
    bounds = np.array([-(on_time @ x), dwell @ x, cost @ x])
    A = sp.vstack([model.A, sp.csr_array(rows)]).tocsr()
    return replace(model, A=A, b=np.concatenate([model.b, bounds]), row_names=model.row_names + GUARD_ROWS)
