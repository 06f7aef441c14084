"""The freight model: candidate plans -> :class:`~optimizer.qubo.model.BinaryModel`.

Variable i is candidate i; one-hot groups are shipments; rows are corridor-slot, yard-slot and
locomotive capacities; the quadratic part holds consolidation savings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optimizer.qubo.model import BinaryModel, row_group_max_sum

__all__ = ["build_model"]


def build_model(cset) -> BinaryModel:
    """The freight model of a :class:`~optimizer.freight.candidates.CandidateSet`; variable i is candidate i.

    Rows that can never bind (the most every shipment could put on a resource fits) are left
    out; they constrain nothing and would only cost slack bits in the QUBO.
    """
    from optimizer.freight.candidates import consolidation_saving

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
    max_activity = row_group_max_sum(coo.row, group_of[coo.col], coo.data, len(keys))
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
