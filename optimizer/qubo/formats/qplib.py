"""QPLIB's native format (Furini et al., "QPLIB: a library of quadratic programming instances",
Math. Prog. Comp. 11 (2019), appendix; https://qplib.zib.de/doc.html), for binary instances.

Objective ``1/2 x^T H x + b^T x + q`` with the *lower triangle* of the symmetric H listed
(``i j v`` with i >= j, 1-based), so a pair counts once at full weight and a square at half weight
(:data:`~.registry.TERM_FACTORS`); constraints ``c_l <= A x <= c_u``. The file states its
sense. Read here: types ``?B?`` (every variable binary) with no constraints (``N``, ``B``) or
linear ones (``L``). Continuous or general integer variables and quadratic constraints are
refused with the reason. The layout, one item per line (``#``, ``!`` and ``%`` start comments)::

    name / type (e.g. QBL) / minimize|maximize / n / [m, if constrained]
    [if the objective is quadratic: nnz(H), then "i j v" lines]
    default b, count, "j v" lines / q
    [if constrained: nnz(A), "i j v" lines (constraint, variable, value)]
    infinity
    [if constrained: default c_l, count, "i v" lines; default c_u, count, "i v" lines]
    default x0, count, "j v" lines / [if constrained: default y0, count, lines] / default z0, count, lines
    count of variable names, "j name" lines / count of constraint names, "i name" lines

Bounds and variable types are absent for binary instances; trailing sections after the starting
point may be missing (some files end there).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError, Issue
from optimizer.qubo.formats.files import check_entries, check_variables, number
from optimizer.qubo.formats.program import ModelFile, Program, build_model
from optimizer.qubo.formats.registry import TERM_FACTORS

__all__ = ["read_model", "write_text"]

_TYPE = re.compile(r"^[LDCQ][CBMIG][NBLDCQ]$")
_COMMENT_CHARS = re.compile(r"[#!%\s]")


class _Stream:
    """The data lines of a QPLIB file, comments stripped, with their line numbers."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.size = len(text)
        self.items: list[tuple[int, list[str]]] = []
        for number_, raw in enumerate(text.splitlines(), start=1):
            line = re.split(r"[#!%]", raw, maxsplit=1)[0].strip()
            if line:
                self.items.append((number_, line.split()))
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.items)

    def error(self, message: str, value: object = None, line: int | None = None) -> InputError:
        if line is None:
            line = self.items[min(self.pos, len(self.items) - 1)][0] if self.items else 1
        return InputError(self.source, Issue(f"line {line}", message, value))

    def take(self, what: str) -> tuple[int, list[str]]:
        if self.at_end():
            last = self.items[-1][0] if self.items else 0
            raise InputError(self.source, Issue(f"line {last + 1}", f"file ends early: expected {what}"))
        item = self.items[self.pos]
        self.pos += 1
        return item

    def integer(self, what: str, *, minimum: int = 0) -> int:
        line, tokens = self.take(what)
        try:
            value = int(tokens[0])
        except ValueError:
            raise self.error(f"{what} must be an integer", tokens[0], line) from None
        if value < minimum:
            raise self.error(f"{what} must be at least {minimum}", value, line)
        return value

    def real(self, what: str, *, infinity: float | None = None) -> float:
        line, tokens = self.take(what)
        try:
            value = float(tokens[0])
        except ValueError:
            raise self.error(f"{what} must be a number", tokens[0], line) from None
        if infinity is not None and abs(value) >= infinity:
            return math.copysign(math.inf, value)
        if not math.isfinite(value):
            raise self.error(f"{what} must be finite", tokens[0], line)
        return value

    def rows(self, count: int, indices: int, what: str, bounds: tuple[int, ...],
             infinity: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``count`` lines of ``indices`` 1-based integers and a value -> (0-based (count, k), values)."""
        check_entries(self.source, what, count, self.size)
        if self.pos + count > len(self.items):
            last = self.items[-1][0] if self.items else 0
            raise InputError(self.source, Issue(f"line {last + 1}", f"file ends after {len(self.items) - self.pos} "
                                                f"of the {count} {what} entries"))
        block = self.items[self.pos:self.pos + count]
        self.pos += count
        index = np.empty((count, indices), dtype=np.int64)
        values = np.empty(count)
        for k, (line, tokens) in enumerate(block):
            if len(tokens) < indices + 1:
                raise self.error(f"expected {indices} indices and a value for {what}", " ".join(tokens), line)
            try:
                index[k] = [int(t) for t in tokens[:indices]]
            except ValueError:
                raise self.error(f"indices of {what} must be integers", " ".join(tokens), line) from None
            try:
                values[k] = float(tokens[indices])
            except ValueError:
                raise self.error(f"value of {what} must be a number", tokens[indices], line) from None
            if infinity is not None and abs(values[k]) >= infinity:
                values[k] = math.copysign(math.inf, values[k])
            elif not math.isfinite(values[k]):
                raise self.error(f"value of {what} must be finite", tokens[indices], line)
            for d, bound in enumerate(bounds):
                if not 1 <= index[k, d] <= bound:
                    raise self.error(f"index out of range in {what}: expected 1 to {bound}", int(index[k, d]), line)
        return index - 1, values

    def vector(self, size: int, what: str, infinity: float | None = None) -> np.ndarray:
        """A default value, a count, then "i v" lines overriding it."""
        default = self.real(f"the default {what}", infinity=infinity)
        count = self.integer(f"the number of non-default {what} entries")
        out = np.full(size, default, dtype=np.float64)
        if count:
            index, values = self.rows(count, 1, what, (size,), infinity)
            out[index[:, 0]] = values
        return out

    def names(self, size: int, what: str) -> dict[int, str]:
        if self.at_end():
            return {}
        count = self.integer(f"the number of non-default {what} names")
        out = {}
        for _ in range(count):
            line, tokens = self.take(f"a {what} name")
            try:
                index = int(tokens[0])
            except ValueError:
                raise self.error(f"{what} name line must start with an index", " ".join(tokens), line) from None
            if not 1 <= index <= size or len(tokens) < 2:
                raise self.error(f"expected 'index name' with the index from 1 to {size}", " ".join(tokens), line)
            out[index - 1] = tokens[1]
        return out


def read_model(text: str, source: str) -> ModelFile:
    s = _Stream(text, source)
    if s.at_end():
        raise InputError(source, Issue("file", "is empty, expected a QPLIB file"))
    _, (name, *_) = s.take("the problem name")
    line, tokens = s.take("the problem type")
    kind = tokens[0].upper()
    if not _TYPE.match(kind):
        raise s.error("expected a QPLIB problem type: three letters, objective (L D C Q), variables (C B M I G), "
                      "constraints (N B L D C Q)", tokens[0], line)
    if kind[1] != "B":
        raise s.error("qfreight reads binary QPLIB instances only (type ?B?): this one has continuous or general "
                      "integer variables", kind, line)
    if kind[2] in "DCQ":
        raise s.error("qfreight reads QPLIB instances with linear constraints only: this one has quadratic "
                      "constraints", kind, line)
    line, tokens = s.take("the objective sense")
    word = tokens[0].lower()
    if word not in ("minimize", "maximize"):
        raise s.error("expected 'minimize' or 'maximize'", tokens[0], line)
    sense = "min" if word == "minimize" else "max"
    n = s.integer("the number of variables")
    check_variables(source, "number of variables", n, s.size)
    constrained = kind[2] == "L"
    m = s.integer("the number of constraints") if constrained else 0
    check_entries(source, "number of constraints", m, s.size, min_bytes=1)
    if kind[0] != "L":
        count = s.integer("the number of quadratic objective terms")
        index, values = s.rows(count, 2, "quadratic objective", (n, n))
        rows, cols = index[:, 0], index[:, 1]
        if np.any(rows < cols):
            # The format lists the lower triangle; an upper entry is the same symmetric pair.
            rows, cols = np.maximum(rows, cols), np.minimum(rows, cols)
        keys = rows * n + cols
        if np.unique(keys).size != keys.size:
            raise InputError(source, Issue("quadratic objective", "a pair (i, j) is listed twice"))
    else:
        rows = cols = np.zeros(0, dtype=np.int64)
        values = np.zeros(0)
    diagonal, off = TERM_FACTORS["qplib"]
    weights = np.where(rows == cols, diagonal * values, off * values)
    b = s.vector(n, "linear objective coefficient")
    constant = s.real("the objective constant")
    A = sp.csr_array((m, n))
    if constrained:
        count = s.integer("the number of constraint coefficients")
        index, values_a = s.rows(count, 2, "constraint coefficient", (m, n))
        A = sp.coo_array((values_a, (index[:, 0], index[:, 1])), shape=(m, n)).tocsr()
    infinity = s.real("the value of infinity")
    if infinity <= 0:
        raise s.error("the value of infinity must be positive", infinity)
    lower = upper = np.zeros(0)
    if constrained:
        lower = s.vector(m, "constraint lower bound", infinity)
        upper = s.vector(m, "constraint upper bound", infinity)
    variable_names: dict[int, str] = {}
    constraint_names: dict[int, str] = {}
    # Starting point and duals: validated, not used. Files may end after the primal start.
    if not s.at_end():
        s.vector(n, "starting value")
    if constrained and not s.at_end():
        s.vector(m, "constraint dual starting value", infinity)
    if not s.at_end():
        s.vector(n, "bound dual starting value", infinity)
    variable_names = s.names(n, "variable")
    constraint_names = s.names(m, "constraint")
    if not s.at_end():
        raise s.error("unexpected data after the last section")
    labels = [variable_names.get(j, f"x{j + 1}") for j in range(n)]
    if len(set(labels)) != n:
        raise InputError(source, Issue("variable names", "two variables have the same name"))
    row_names = [constraint_names.get(r, f"c{r + 1}") for r in range(m)]
    return build_model(source, "qplib", labels=labels, c=b, quad_rows=rows, quad_cols=cols, quad_weights=weights,
                       offset=constant, A=A, lower=lower, upper=upper, row_names=row_names, sense=sense,
                       metadata={"name": name or Path(source).stem, "type": kind})


def write_text(program: Program, *, name: str) -> str:
    """QPLIB text of a minimisation program (QBN without rows, QBL with them)."""
    n, m = len(program.names), len(program.row_names)
    quadratic = program.P.nnz > 0
    kind = ("Q" if quadratic else "L") + "B" + ("L" if m else "N")
    safe = re.sub(r"\s+", "_", name) or "qfreight"
    out = [f"{safe} # problem name", f"{kind} # problem type", "minimize # objective sense",
           f"{n} # number of variables"]
    if m:
        out.append(f"{m} # number of constraints")
    if quadratic:
        coo = program.P.tocoo()
        order = np.lexsort((coo.row, coo.col))
        out.append(f"{coo.nnz} # number of quadratic terms in the objective (lower triangle of H)")
        # P_ij x_i x_j (i < j) is the pair (j, i) of the lower triangle, at full weight.
        out += [f"{j + 1} {i + 1} {number(v)}" for i, j, v in zip(coo.row[order], coo.col[order], coo.data[order])]
    linear = np.flatnonzero(program.c)
    out += ["0 # default linear objective coefficient", f"{linear.size} # non-default linear coefficients"]
    out += [f"{j + 1} {number(program.c[j])}" for j in linear]
    out.append(f"{number(program.offset)} # objective constant")
    infinity = 1e30
    if m:
        A = program.A.tocoo()
        order = np.lexsort((A.col, A.row))
        out.append(f"{A.nnz} # number of constraint coefficients")
        out += [f"{i + 1} {j + 1} {number(v)}" for i, j, v in zip(A.row[order], A.col[order], A.data[order])]
    out.append(f"{infinity:.1E} # infinity")
    if m:
        for what, bounds in (("lower", program.lower), ("upper", program.upper)):
            shown = np.where(np.isfinite(bounds), bounds, np.sign(bounds) * infinity)
            default = -infinity if what == "lower" else infinity
            special = np.flatnonzero(shown != default)
            out += [f"{default:.1E} # default constraint {what} bound", f"{special.size} # non-default"]
            out += [f"{r + 1} {number(shown[r])}" for r in special]
    out += ["0 # default starting value", "0"]
    if m:
        out += ["0 # default constraint dual", "0"]
    out += ["0 # default bound dual", "0"]
    # Names are single tokens; '#', '!' and '%' would start a comment.
    names = [_COMMENT_CHARS.sub("_", label) for label in program.names]
    named = [j for j, label in enumerate(names) if label != f"x{j + 1}"]
    out.append(f"{len(named)} # non-default variable names")
    out += [f"{j + 1} {names[j]}" for j in named]
    out.append(f"{m} # non-default constraint names")
    out += [f"{r + 1} {_COMMENT_CHARS.sub('_', program.row_names[r])}" for r in range(m)]
    return "\n".join(out) + "\n"
