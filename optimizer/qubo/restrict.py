"""Restrictions: the exact sub-problem over some variables, every other variable held fixed.

A decomposition loop frees a neighbourhood (a few one-hot groups, the auxiliary variables that
share a row with them) and asks a solver to re-optimise it; these functions build what that
solver sees. Both are exact: for any assignment y of the free variables, the full objective of
"x with y" equals the restriction's objective of y, and (for a model) the full assignment is
feasible iff y is feasible for the restriction, given that the fixed part of x is.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optimizer.qubo.model import BinaryModel

__all__ = ["submodel", "row_max_activity"]


def row_max_activity(A: sp.csr_array, groups: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """An upper bound of every row's activity ``A y`` over assignments with one 1 per group.

    A group contributes its largest coefficient in the row, and never less than 0 when one of
    its members is absent from the row (coefficient 0); a variable in no group contributes
    ``max(a, 0)``. Rows whose bound fits the right-hand side can never bind.
    """
    m, n = A.shape
    coo = A.tocoo()
    group_of = np.arange(n, dtype=np.int64) + len(groups)  # ungrouped: a unit of its own
    for g, members in enumerate(groups):
        group_of[list(members)] = g
    if coo.nnz == 0:
        return np.zeros(m)
    # Clipping at 0 is exact for ungrouped variables and a safe over-estimate for groups (a
    # group whose every member has a negative coefficient contributes less, never more).
    values = np.maximum(coo.data, 0.0)
    units = group_of[coo.col]
    order = np.lexsort((-values, units, coo.row))
    r, u, v = coo.row[order], units[order], values[order]
    first = np.ones(r.size, dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (u[1:] != u[:-1])
    return np.bincount(r[first], weights=v[first], minlength=m)


def submodel(model: BinaryModel, x: np.ndarray, variables: np.ndarray) -> BinaryModel:
    """The model over ``variables`` (full-model indices, any order), the rest fixed as in ``x``.

    A one-hot group may be freed in part (a shortlist of its members), but then the member
    ``x`` chooses must be among the free ones, so that ``x`` restricted stays feasible.
    Capacity the fixed variables use comes off each row's bound; rows the free variables can
    no longer overfill are dropped (they would only cost slack bits). Groups wholly fixed drop
    out. Labels, row names and group order follow ``variables``.
    """
    n = model.num_variables
    variables = np.asarray(variables, dtype=np.int64)
    if np.unique(variables).size != variables.size:
        raise ValueError("variables must be distinct")
    x = np.asarray(x, dtype=np.float64).ravel()
    free = np.zeros(n, dtype=bool)
    free[variables] = True
    position = np.full(n, -1, dtype=np.int64)
    position[variables] = np.arange(variables.size)
    sub_groups: list[tuple[int, ...]] = []
    # Only the groups with a freed member matter (a neighbourhood touches few of a national
    # model's groups): visit those, in group order.
    group_of = model.group_of if model.groups else np.zeros(0, dtype=np.int64)
    touched = np.unique(group_of[variables]) if model.groups else np.zeros(0, dtype=np.int64)
    for g in touched[touched >= 0].tolist():
        m = np.asarray(model.groups[g], dtype=np.int64)
        inside = m[free[m]]
        if inside.size == 0:
            continue
        if x[m[~free[m]]].sum() != 0:
            raise ValueError(f"group of {model.labels[m[0]]!r} is freed in part, but the plan x chooses is held "
                             "fixed; free the chosen member too")
        sub_groups.append(tuple(int(position[i]) for i in inside))
    fixed_x = np.where(free, 0.0, x)
    Psym = (model.P + model.P.T).tocsr()
    c_sub = model.c[variables] + (Psym @ fixed_x)[variables] if model.P.nnz else model.c[variables].copy()
    offset = float(model.objective(fixed_x)[0])
    k = variables.size
    if model.P.nnz:
        # Reindexing can put an entry below the diagonal: fold it back (P stays strictly upper).
        full = model.P[variables][:, variables].tocoo()
        lo, hi = np.minimum(full.row, full.col), np.maximum(full.row, full.col)
        P_sub = sp.coo_array((full.data, (lo, hi)), shape=(k, k)).tocsr()
        P_sub.sum_duplicates()
    else:
        P_sub = sp.csr_array((k, k))
    A_free = model.columns[:, variables].tocsr()
    residual = model.b - model.A @ fixed_x
    keep = np.flatnonzero(row_max_activity(A_free, tuple(sub_groups)) > residual + 1e-9)
    return BinaryModel(
        labels=tuple(model.labels[i] for i in variables), c=np.ascontiguousarray(c_sub, dtype=np.float64),
        P=P_sub, offset=offset, groups=tuple(sub_groups), A=A_free[keep].tocsr(),
        b=np.ascontiguousarray(residual[keep], dtype=np.float64), row_names=tuple(model.row_names[r] for r in keep))
