"""CPLEX LP files, read and written by :mod:`dimod.lp`.

The file states its sense (``Minimize`` / ``Maximize``); dimod negates a maximisation, so the
objective it returns is already our minimisation energy. An LP file is a QUBO when it has no
constraints and every variable is binary; otherwise it is a constrained model (:func:`read_model`).
Coefficients such as ``1e400``, which the LP grammar reads as infinity, are refused.
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats.bqm import from_bqm
from optimizer.qubo.formats.files import decode
from optimizer.qubo.formats.program import ModelFile, build_model

__all__ = ["stated_sense", "read", "read_model"]

_SENSE = re.compile(r"^\s*(minimi[sz]e|minimum|min|maximi[sz]e|maximum|max)\b", re.IGNORECASE | re.MULTILINE)


def stated_sense(text: str) -> str:
    found = _SENSE.search(text)
    return "max" if found and found.group(1).lower().startswith("max") else "min"


def _load(data: bytes, source: str):
    import dimod

    text = decode(data, source)
    try:
        cqm = dimod.lp.loads(text)
    except Exception as exc:
        raise InputError(source, Issue("file", f"not a readable LP file: {exc}")) from None
    for v in cqm.variables:
        vartype = cqm.vartype(v)
        if vartype is dimod.BINARY:
            continue
        if vartype is dimod.INTEGER and cqm.lower_bound(v) == 0 and cqm.upper_bound(v) == 1:
            continue
        raise InputError(source, Issue("variables", "qfreight reads binary programs only: every variable must be "
                                       "binary (or integer with bounds 0 and 1)", str(v)))
    return cqm, stated_sense(text)


def read(data: bytes, source: str, *, sense: str | None) -> tuple[Qubo, str]:
    """(QUBO, stated sense); the caller checks ``sense`` against the statement."""
    import dimod

    cqm, stated = _load(data, source)
    if cqm.constraints:
        raise InputError(source, Issue("Subject To", f"has {len(cqm.constraints)} constraints; an LP file is read "
                                       "as a QUBO only when unconstrained (solve it as a constrained model: "
                                       "qfreight solve FILE --backend cpsat)"))
    objective = cqm.objective
    bqm = dimod.BinaryQuadraticModel(objective.linear, objective.quadratic, objective.offset, dimod.BINARY)
    for v in cqm.variables:  # keep variables that appear only in the Binary section
        bqm.add_variable(v)
    # dimod already negated a Maximize objective: this is our minimisation energy.
    qubo = from_bqm(bqm, source, "lp", order=list(cqm.variables))
    return Qubo(Q=qubo.Q, h=qubo.h, offset=qubo.offset, labels=qubo.labels,
                metadata=dict(qubo.metadata, sense=stated)), stated


def read_model(data: bytes, source: str) -> ModelFile:
    cqm, stated = _load(data, source)
    variables = list(cqm.variables)
    labels = [str(v) for v in variables]
    where = {v: k for k, v in enumerate(variables)}
    objective = cqm.objective
    c = np.zeros(len(variables))
    for v, bias in objective.linear.items():
        c[where[v]] = bias
    quad = [(where[u], where[v], bias) for (u, v), bias in objective.quadratic.items()]
    rows, cols, weights = (np.array(x) for x in zip(*quad)) if quad else (np.zeros(0, int), np.zeros(0, int),
                                                                             np.zeros(0))
    A_rows, A_cols, A_vals, lower, upper, names = [], [], [], [], [], []
    for r, (label, constraint) in enumerate(cqm.constraints.items()):
        lhs = constraint.lhs
        if lhs.num_interactions:
            raise InputError(source, Issue(f"constraint {label}", "quadratic constraints are not supported"))
        for v, a in lhs.linear.items():
            A_rows.append(r)
            A_cols.append(where[v])
            A_vals.append(a)
        rhs = float(constraint.rhs) - float(lhs.offset)
        op = constraint.sense.value if hasattr(constraint.sense, "value") else str(constraint.sense)
        lo, hi = {"<=": (-np.inf, rhs), ">=": (rhs, np.inf), "==": (rhs, rhs)}[op]
        lower.append(lo)
        upper.append(hi)
        names.append(str(label))
    A = sp.csr_array((np.asarray(A_vals, dtype=np.float64), (A_rows, A_cols)),
                     shape=(len(names), len(variables)))
    # dimod negated a Maximize objective already: build the model as a minimisation of it.
    model = build_model(source, "lp", labels=labels, c=c, quad_rows=rows, quad_cols=cols, quad_weights=weights,
                        offset=float(objective.offset), A=A, lower=lower, upper=upper, row_names=names, sense="min",
                        metadata={"name": source.rsplit("/", 1)[-1]})
    return ModelFile(model=model.model, sense=stated, metadata=dict(model.metadata, sense=stated))
