"""Binary programs in and out: the constrained model (and a QUBO) as LP / MPS / QPLIB, and files
with linear constraints back into a :class:`~optimizer.qubo.model.BinaryModel`.

A file's rows ``lower <= a.x <= upper`` become the model's rows: an equality row whose
coefficients are all 1 and whose right-hand side is 1 is a one-hot group (when disjoint from the
groups found before it); every other equality is a pair of ``<=`` rows; a ``>=`` row is written as
``-a.x <= -lower``. Rows are scaled by the smallest power of ten (up to 10^6) that makes their
coefficients integers, as CP-SAT needs integer rows; a row that cannot be made integral is kept
as it is and named in ``ModelFile.metadata["fractional_rows"]``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError, Issue, MissingDependency
from optimizer.qubo import Qubo
from optimizer.qubo.formats.files import check_finite
from optimizer.qubo.formats.registry import native_objective, sense_sign
from optimizer.qubo.model import BinaryModel

__all__ = ["ModelFile", "Program", "solver_names", "quiet_stdout", "build_model", "write_program"]


@dataclass(frozen=True, eq=False)
class ModelFile:
    """A constrained model read from a file, with the sense and provenance the model type lacks.

    ``model`` minimises ``sense_sign(sense) * the file's objective``; :meth:`objective_in_file`
    restates a model objective in the file's convention.
    """

    model: BinaryModel
    sense: str
    metadata: Mapping[str, object] = field(default_factory=dict)

    @property
    def constrained(self) -> bool:
        return bool(self.model.groups) or self.model.num_rows > 0

    def objective_in_file(self, objective: float) -> float:
        return native_objective(str(self.metadata.get("format", "lp")), objective, self.sense)

    def as_qubo(self) -> Qubo:
        """The objective as a QUBO (only for an unconstrained model)."""
        m = self.model
        coo = m.P.tocoo()
        return Qubo.from_terms(m.num_variables, linear=m.c, rows=coo.row, cols=coo.col, weights=coo.data,
                               offset=m.offset, labels=m.labels, metadata=dict(self.metadata, sense=self.sense))


def _integral_scale(row: np.ndarray, max_power: int = 6) -> float | None:
    for power in range(max_power + 1):
        scaled = row * 10**power
        if np.allclose(scaled, np.rint(scaled), rtol=0, atol=1e-9):
            return float(10**power)
    return None


def build_model(source: str, fmt: str, *, labels: Sequence[str], c, quad_rows, quad_cols, quad_weights,
                offset: float, A: sp.csr_array, lower, upper, row_names: Sequence[str], sense: str,
                metadata: Mapping[str, object]) -> ModelFile:
    """A file's binary program (in its own convention and sense) -> a minimising BinaryModel."""
    n = len(labels)
    c = np.asarray(c, dtype=np.float64)
    quad_weights = np.asarray(quad_weights, dtype=np.float64)
    A = sp.csr_array(A)
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    check_finite(source, [("objective coefficient", c)], labels)
    check_finite(source, [("quadratic objective coefficient", quad_weights), ("objective constant", [offset]),
                          ("constraint coefficient", A.data)])
    if np.any(np.isnan(lower)) or np.any(np.isnan(upper)):
        raise InputError(source, Issue("rows", "a row bound is not a number"))
    sign = sense_sign(sense)
    # One sparse upper-triangular P from (i, j, w): (j, i) folds onto (i, j), i == j goes to c.
    q = Qubo.from_terms(n, linear=c, rows=quad_rows, cols=quad_cols, weights=quad_weights)
    groups: list[tuple[int, ...]] = []
    in_group = np.zeros(n, dtype=bool)
    rows_out, b_out, names_out, fractional = [], [], [], []
    for r in range(A.shape[0]):
        start, end = A.indptr[r], A.indptr[r + 1]
        cols, vals = A.indices[start:end], A.data[start:end]
        name = row_names[r] if r < len(row_names) else f"row {r + 1}"
        lo, hi = lower[r], upper[r]
        if lo > hi:
            raise InputError(source, Issue(f"row {name}", f"lower bound {lo:g} exceeds upper bound {hi:g}"))
        if lo == hi == 1 and cols.size and np.all(vals == 1) and not in_group[cols].any() and \
                np.unique(cols).size == cols.size:
            groups.append(tuple(int(j) for j in np.sort(cols)))
            in_group[cols] = True
            continue
        for bound, factor, suffix in ((hi, 1.0, ""), (lo, -1.0, " (>=)")):
            if not np.isfinite(bound):
                continue
            row = factor * vals
            scale = _integral_scale(row)
            if scale is None:
                scale = 1.0
                fractional.append(name + suffix)
            rows_out.append((cols, row * scale))
            b_out.append(factor * bound * scale)
            names_out.append(name + suffix if lo != hi or factor > 0 else f"{name} (=, lower side)")
    m = len(rows_out)
    indptr = np.cumsum([0] + [cols.size for cols, _ in rows_out])
    indices = np.concatenate([cols for cols, _ in rows_out]) if m else np.zeros(0, dtype=np.int64)
    data = np.concatenate([vals for _, vals in rows_out]) if m else np.zeros(0)
    model = BinaryModel(labels=tuple(labels), c=sign * np.asarray(q.h, dtype=np.float64), P=(sign * q.Q).tocsr(),
                        offset=sign * float(offset), groups=tuple(groups),
                        A=sp.csr_array((data, indices, indptr), shape=(m, n)), b=np.asarray(b_out, dtype=np.float64),
                        row_names=tuple(names_out))
    meta = dict(metadata, format=fmt, source=source, sense=sense, fractional_rows=fractional,
                rows_in_file=int(A.shape[0]))
    return ModelFile(model=model, sense=sense, metadata=meta)


# ---------------------------------------------------------------------------------------- writing
_LP_VALID = re.compile(r"[^A-Za-z0-9!\"#$%&(),.;?@_`'{}|~]")  # dimod.lp's LABEL_VALID_CHARS


def solver_names(names: Sequence[str], prefix: str) -> list[str]:
    """Names LP, MPS and QPLIB readers accept: invalid characters -> '_', unique, not starting with a digit."""
    out, seen = [], set()
    for k, name in enumerate(names):
        clean = _LP_VALID.sub("_", name) or f"{prefix}{k}"
        if clean[0] in "0123456789.eE":
            clean = f"{prefix}_{clean}"
        candidate, suffix = clean, 1
        while candidate in seen:
            candidate, suffix = f"{clean}_{suffix}", suffix + 1
        seen.add(candidate)
        out.append(candidate)
    return out


@dataclass(frozen=True)
class Program:
    """A binary program in the shape LP/MPS/QPLIB writers want: minimise c.x + x.P.x + offset s.t. rows."""

    names: list[str]
    c: np.ndarray
    P: sp.csr_array  # strictly upper triangular
    offset: float
    A: sp.csr_array  # (m, n)
    lower: np.ndarray  # (m,) row lower bounds (-inf where none)
    upper: np.ndarray  # (m,)
    row_names: list[str]

    @classmethod
    def of_qubo(cls, qubo: Qubo) -> Program:
        n = qubo.num_variables
        return cls(solver_names(qubo.labels, "x"), np.asarray(qubo.h, float), qubo.Q.tocsr(),
                   float(qubo.offset), sp.csr_array((0, n)), np.zeros(0), np.zeros(0), [])

    @classmethod
    def of_model(cls, model: BinaryModel) -> Program:
        n = model.num_variables
        rows, cols = [], []
        for g, group in enumerate(model.groups):
            rows += [g] * len(group)
            cols += list(group)
        G = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(model.groups), n))
        A = sp.vstack([G, model.A.tocsr()]).tocsr()
        # Exactly-one groups are equality rows; capacity rows are A x <= b.
        lower = np.concatenate([np.ones(len(model.groups)), np.full(model.num_rows, -np.inf)])
        upper = np.concatenate([np.ones(len(model.groups)), np.asarray(model.b, float)])
        group_names = [f"one_of {model.labels[g[0]].split('/')[0]}" for g in model.groups]
        return cls(solver_names(model.labels, "x"), np.asarray(model.c, float), model.P.tocsr(),
                   float(model.offset), A, lower, upper, solver_names(group_names + list(model.row_names), "r"))

    def cqm(self):
        """As a dimod ConstrainedQuadraticModel (for dimod's LP writer)."""
        import dimod

        cqm = dimod.ConstrainedQuadraticModel()
        coo = self.P.tocoo()
        objective = dimod.BinaryQuadraticModel.from_numpy_vectors(
            self.c, (coo.row, coo.col, coo.data), self.offset, dimod.BINARY, variable_order=self.names)
        cqm.set_objective(objective)
        for v in self.names:  # declare every variable, including ones with no cost
            if v not in cqm.variables:
                cqm.add_variable(dimod.BINARY, v)
        for r, name in enumerate(self.row_names):
            start, end = self.A.indptr[r], self.A.indptr[r + 1]
            terms = [(self.names[j], float(a)) for j, a in zip(self.A.indices[start:end], self.A.data[start:end])]
            if self.lower[r] == self.upper[r]:
                cqm.add_constraint_from_iterable(terms, "==", rhs=float(self.upper[r]), label=name)
            else:
                cqm.add_constraint_from_iterable(terms, "<=", rhs=float(self.upper[r]), label=name)
        return cqm

    def highs(self):
        """As a HiGHS model: objective c.x + 1/2 x.H.x + offset with H = P + P^T (lower triangle)."""
        try:
            import highspy
        except ImportError as exc:
            raise MissingDependency("mps writer", "highspy") from exc
        n, m = len(self.names), len(self.row_names)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = self.c
        lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
        lp.row_lower_, lp.row_upper_ = self.lower, self.upper
        lp.offset_ = self.offset
        A = self.A.tocsc()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, m
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        lp.col_names_, lp.row_names_ = list(self.names), list(self.row_names)
        model = highspy.HighsModel()
        model.lp_ = lp
        if self.P.nnz:
            # Row i of the upper-triangular P (CSR) is column i of the lower triangle of H (CSC).
            P = self.P.tocsr()
            P.sort_indices()
            hessian = highspy.HighsHessian()
            hessian.dim_ = n
            hessian.format_ = highspy.HessianFormat.kTriangular
            hessian.start_, hessian.index_, hessian.value_ = P.indptr, P.indices, P.data
            model.hessian_ = hessian
        return model


@contextlib.contextmanager
def quiet_stdout():
    """Silence C-level writes to stdout (file descriptor 1) for the duration."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded use): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def new_highs():
    try:
        import highspy
    except ImportError as exc:
        raise MissingDependency("mps reader/writer", "highspy") from exc
    with quiet_stdout():  # HiGHS prints a banner from its constructor, before any option applies
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    return highspy, highs


def write_program(program: Program, path: Path, fmt: str) -> None:
    if fmt == "lp":
        import dimod

        buffer = io.StringIO()
        dimod.lp.dump(program.cqm(), buffer)
        path.write_text(buffer.getvalue())
        return
    if fmt == "qplib":
        from optimizer.qubo.formats import qplib

        path.write_text(qplib.write_text(program, name=path.stem))
        return
    model = program.highs()  # raises MissingDependency when highspy is absent
    highspy, highs = new_highs()
    status = highs.passModel(model)
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS rejected the model for {path}")
    status = highs.writeModel(str(path))
    if status == highspy.HighsStatus.kError or not path.exists():
        raise OSError(f"HiGHS could not write {path}")
