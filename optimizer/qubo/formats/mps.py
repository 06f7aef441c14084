"""MPS files (free or fixed, with QUADOBJ / QMATRIX), read and written by HiGHS (:mod:`highspy`).

The objective is c.x + 1/2 x^T H x + offset with H given by its lower triangle (QUADOBJ) or in
full (QMATRIX); OBJSENSE states min or max. Every column must be integer with bounds 0 and 1.
An MPS file is a QUBO when it has no rows; otherwise it is a constrained model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError, Issue
from optimizer.qubo.formats.program import ModelFile, build_model, new_highs

__all__ = ["read_model"]


def read_model(data: bytes, source: str) -> ModelFile:
    highspy, highs = new_highs()
    # HiGHS reads a path: give it the bytes already checked (regular file, size cap), not the path again.
    handle, temporary = tempfile.mkstemp(suffix=".mps")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        status = highs.readModel(temporary)
    finally:
        os.unlink(temporary)
    if status == highspy.HighsStatus.kError:
        raise InputError(source, Issue("file", "not a readable MPS file (HiGHS refused it)"))
    model = highs.getModel()
    lp = model.lp_
    n, m = int(lp.num_col_), int(lp.num_row_)
    names = [str(x) for x in lp.col_names_] or [f"x{j}" for j in range(n)]
    integrality = list(lp.integrality_) or [highspy.HighsVarType.kContinuous] * n
    lower, upper = np.asarray(lp.col_lower_, dtype=np.float64), np.asarray(lp.col_upper_, dtype=np.float64)
    for j in range(n):
        if integrality[j] != highspy.HighsVarType.kInteger or lower[j] != 0 or upper[j] != 1:
            raise InputError(source, Issue(f"column {names[j]}", "qfreight reads binary programs only: every column "
                                           "must be integer with bounds 0 and 1",
                                           f"{integrality[j].name} [{lower[j]:g}, {upper[j]:g}]"))
    a = lp.a_matrix_
    if a.format_ == highspy.MatrixFormat.kColwise:
        A = sp.csc_array((np.asarray(a.value_), np.asarray(a.index_), np.asarray(a.start_)), shape=(m, n)).tocsr()
    else:
        A = sp.csr_array((np.asarray(a.value_), np.asarray(a.index_), np.asarray(a.start_)), shape=(m, n))
    hessian = model.hessian_
    rows = cols = weights = np.zeros(0)
    if hessian.dim_:
        H = sp.csc_array((np.asarray(hessian.value_), np.asarray(hessian.index_), np.asarray(hessian.start_)),
                         shape=(n, n)).tocoo()
        rows, cols, weights = H.row, H.col, np.asarray(H.data, dtype=np.float64)
        if hessian.format_ == highspy.HessianFormat.kTriangular:
            # 1/2 x^T H x with the lower triangle listed: a pair once at full weight, a square at half.
            weights = np.where(rows == cols, 0.5 * weights, weights)
        else:
            weights = 0.5 * weights  # the whole H listed: every entry at half weight
    row_names = [str(x) for x in lp.row_names_] or [f"row {r + 1}" for r in range(m)]
    sense = "max" if lp.sense_ == highspy.ObjSense.kMaximize else "min"
    inf = highspy.kHighsInf
    row_lower = np.where(np.asarray(lp.row_lower_) <= -inf, -np.inf, np.asarray(lp.row_lower_))
    row_upper = np.where(np.asarray(lp.row_upper_) >= inf, np.inf, np.asarray(lp.row_upper_))
    return build_model(source, "mps", labels=names, c=np.asarray(lp.col_cost_, dtype=np.float64), quad_rows=rows,
                       quad_cols=cols, quad_weights=weights, offset=float(lp.offset_), A=A, lower=row_lower,
                       upper=row_upper, row_names=row_names, sense=sense, metadata={"name": Path(source).name})
