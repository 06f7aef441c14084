"""Plain QUBO files in and out, with every format's sign convention stated in one place.

qfreight's own convention is a **minimisation** QUBO (see :mod:`optimizer.qubo`)::

    E(x) = x^T Q x + h^T x + offset,   x in {0, 1}^n,   Q strictly upper triangular

Each file format below says what its numbers mean; :data:`FORMATS` holds that statement and
:data:`_TO_MINIMISATION` the two factors that turn a file's entries into ours (and back). No other
code in qfreight negates or halves a file's coefficients.

============  =======  =====  ==================================================================
format        sense    base   meaning of a line ``i j w``
============  =======  =====  ==================================================================
``bqp``       max      1      OR-Library BQP (Beasley 1990): maximise sum_i sum_j q_ij x_i x_j with
                              q symmetric and each pair listed once (i <= j), so an off-diagonal
                              entry counts twice. Ours: h_i = -q_ii, Q_ij = -2 q_ij. Several
                              instances per file: pick one with ``FILE#k`` (k from 1).
``qbsolv``    min      0      qbsolv ``.qubo``: ``p qubo 0 maxDiagonals nDiagonals nElements``,
                              then ``i i w`` diagonal lines, then ``i j w`` couplers; ``c`` lines
                              are comments. Minimise sum w_ij x_i x_j: h_i = w_ii, Q_ij = w_ij.
``triples``   min      0      ``#`` comments, ``n m``, then m lines ``i j w`` (the railway QUBOs of
                              iitis/quantum-stochastic-optimization-railways). Minimise
                              sum w_ij x_i x_j: h_i = w_ii, Q_ij = w_ij.
``dimod``     min      -      dimod's BQM serialisation (``bqm.to_file()`` or the JSON of
                              ``bqm.to_serializable()``); SPIN models are converted to BINARY.
``lp``        min/max  -      CPLEX LP (written and read by :mod:`dimod.lp`; a ``Maximize`` file is
                              negated by dimod). Read only when unconstrained and all binary.
``mps``       min      -      free MPS with a QUADOBJ section (written by HiGHS, ``highspy``).
============  =======  =====  ==================================================================

``bqp`` has no constant term, so writing a QUBO with an offset drops it (the minimisers do not
change; energies shift by the offset). The ``qbsolv`` and ``triples`` writers keep the offset and
the variable labels in comment lines (``c qfreight offset ...``), which other readers ignore.

Every problem with an input file raises :class:`~optimizer.errors.InputError` naming the file,
the line (or field) and the reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError, Issue, MissingDependency
from optimizer.qubo import Qubo
from optimizer.qubo.model import BinaryModel
from optimizer.solve.solver import SampleSet

__all__ = [
    "QuboFormat",
    "FORMATS",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "canonical_format",
    "split_instance",
    "detect_format",
    "count_instances",
    "read_qubo",
    "read_qubos",
    "write_qubo",
    "write_model",
    "native_objective",
    "is_qubo_file",
    "describe_result",
]


# ---------------------------------------------------------------------------------------- formats
@dataclass(frozen=True)
class QuboFormat:
    """What a file format holds and how its numbers relate to our minimisation QUBO."""

    name: str
    extensions: tuple[str, ...]
    sense: str  # "min" or "max": what the file's own objective asks for
    convention: str  # the file's energy, in words
    readable: bool
    writable: bool
    keeps_offset: bool
    keeps_labels: bool


FORMATS: dict[str, QuboFormat] = {
    f.name: f
    for f in (
        QuboFormat("bqp", (".bqp",), "max",
                   "maximise sum_i sum_j q_ij x_i x_j, q symmetric, pairs listed once (1-based)",
                   True, True, keeps_offset=False, keeps_labels=False),
        QuboFormat("qbsolv", (".qubo",), "min", "minimise sum w_ij x_i x_j (0-based, i <= j)",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("triples", (), "min", "minimise sum w_ij x_i x_j (0-based, i <= j)",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("dimod", (".bqm",), "min", "dimod BinaryQuadraticModel energy (BINARY or SPIN)",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("lp", (".lp",), "min", "CPLEX LP objective (Maximize files are negated)",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("mps", (".mps",), "min", "free MPS objective with QUADOBJ (1/2 x^T H x)",
                   False, True, keeps_offset=True, keeps_labels=True),
    )
}
READ_FORMATS = tuple(name for name, f in FORMATS.items() if f.readable)
WRITE_FORMATS = tuple(name for name, f in FORMATS.items() if f.writable)

#: Other names users type for a format (the CLI's ``--to qubo`` means qbsolv's ``.qubo``).
_ALIASES = {"qubo": "qbsolv", "orlib": "bqp", "beasley": "bqp", "railway": "triples",
            "txt": "triples", "bqm": "dimod"}

#: THE conversion: our minimisation term = factor * the file's entry, as (diagonal, off-diagonal).
#: bqp maximises and counts an off-diagonal pair twice (q_ij x_i x_j + q_ji x_j x_i).
_TO_MINIMISATION: dict[str, tuple[float, float]] = {
    "bqp": (-1.0, -2.0),
    "qbsolv": (1.0, 1.0),
    "triples": (1.0, 1.0),
}
_INDEX_BASE = {"bqp": 1, "qbsolv": 0, "triples": 0}
_COMMENT = {"bqp": None, "qbsolv": "c", "triples": "#"}


def canonical_format(name: str) -> str:
    """The canonical format name for ``name`` or an alias (``qubo`` -> ``qbsolv``)."""
    key = name.strip().lower().lstrip(".")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        known = ", ".join(sorted(set(FORMATS) | set(_ALIASES)))
        raise InputError(None, Issue("format", f"unknown QUBO file format; known: {known}", name))
    return key


def native_objective(format: str, energy: float) -> float:
    """An energy of our minimisation QUBO, in the file's own convention (bqp: the maximised value).

    For ``bqp`` this is exact because the format has no constant term; published BQP optima are
    compared through it.
    """
    fmt = canonical_format(format)
    return -energy if FORMATS[fmt].sense == "max" else energy


# ---------------------------------------------------------------------------------------- paths
def split_instance(spec: str | Path) -> tuple[Path, int | None]:
    """``"bqp50.txt#3"`` -> (Path("bqp50.txt"), 3); a path without ``#k`` gives (path, None).

    A file whose name really contains ``#`` wins over the instance reading.
    """
    text = str(spec)
    path = Path(text)
    base, sep, suffix = text.rpartition("#")
    if not sep or path.exists():
        return path, None
    if not re.fullmatch(r"\d+", suffix.strip()):
        raise InputError(text, Issue("instance", "expected FILE#k with k a positive integer", suffix))
    k = int(suffix)
    if k < 1:
        raise InputError(base, Issue("instance", "instances are numbered from 1", k))
    return Path(base), k


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(str(path), Issue("file", "no such file")) from None
    except IsADirectoryError:
        raise InputError(str(path), Issue("file", "is a directory, expected a QUBO file")) from None
    except OSError as exc:
        raise InputError(str(path), Issue("file", f"cannot be read: {exc.strerror or exc}")) from None


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(source, Issue("file", f"not a text file (byte {exc.start} is not UTF-8)")) from None


# ---------------------------------------------------------------------------------------- detection
_LP_KEYWORDS = {"minimize", "maximize", "minimise", "maximise", "minimum", "maximum", "min", "max",
                "subject to", "such that", "st", "s.t.", "bounds", "binary", "binaries", "end"}


def _detect_from_content(data: bytes) -> str | None:
    if data.startswith(b"DIMODBQM"):
        return "dimod"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "dimod"  # JSON: only dimod's serialisation is a QUBO file here
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        lowered = line.lower()
        if line.startswith("\\") or lowered.split(":")[0].strip() in _LP_KEYWORDS:
            return "lp"
        if line.startswith("#"):
            return "triples"
        if lowered.startswith("p ") or lowered == "c" or lowered.startswith("c "):
            return "qbsolv"
        tokens = line.split()
        if len(tokens) == 1:
            return "bqp"  # OR-Library: the number of instances alone on line 1
        if len(tokens) == 2:
            return "triples"  # "n m"
        return None
    return None


def detect_format(path: str | Path, data: bytes | None = None) -> str:
    """The format of a QUBO file, from its content (extension only where content is silent).

    OR-Library BQP files start with the instance count alone on a line; triple files with
    ``#`` comments or ``n m``; qbsolv files with ``c`` comments or the ``p qubo`` line; LP files
    with a ``\\`` comment or ``Minimize``/``Maximize``; dimod files with ``DIMODBQM`` or ``{``.
    """
    path = Path(path)
    if data is None:
        data = _read_bytes(path)
    found = _detect_from_content(data)
    if found is not None:
        return found
    by_ext = {ext: f.name for f in FORMATS.values() for ext in f.extensions}
    if path.suffix.lower() in by_ext and FORMATS[by_ext[path.suffix.lower()]].readable:
        return by_ext[path.suffix.lower()]
    if not data.strip():
        raise InputError(str(path), Issue("file", "is empty, expected a QUBO"))
    raise InputError(str(path), Issue(
        "format", "cannot tell the QUBO format from the content; name it explicitly "
        f"(one of {', '.join(READ_FORMATS)})"))


# ---------------------------------------------------------------------------------------- text parsing
@dataclass
class _Lines:
    """The data lines of a text file: (line number, tokens), comments and blanks dropped."""

    source: str
    lines: list[tuple[int, list[str]]]
    comments: list[tuple[int, str]]
    pos: int = 0

    @classmethod
    def of(cls, text: str, source: str, comment: str | None) -> _Lines:
        lines, comments = [], []
        for number, raw in enumerate(text.splitlines(), start=1):
            stripped = raw.strip()
            if not stripped:
                continue
            is_comment = comment is not None and (
                stripped == comment or stripped[:len(comment) + 1] in (comment + " ", comment + "\t")
                or (comment == "#" and stripped.startswith("#")))
            if is_comment:
                comments.append((number, stripped[len(comment):].strip()))
                continue
            lines.append((number, stripped.split()))
        return cls(source, lines, comments)

    def next(self, what: str) -> tuple[int, list[str]]:
        if self.pos >= len(self.lines):
            last = self.lines[-1][0] if self.lines else 0
            raise InputError(self.source, Issue(f"line {last + 1}", f"file ends early: expected {what}"))
        item = self.lines[self.pos]
        self.pos += 1
        return item

    def error(self, line: int, message: str, value: object = None) -> InputError:
        return InputError(self.source, Issue(f"line {line}", message, value))


def _int_token(lines: _Lines, line: int, token: str, what: str, *, minimum: int = 0) -> int:
    try:
        value = int(token)
    except ValueError:
        raise lines.error(line, f"{what} must be an integer", token) from None
    if value < minimum:
        raise lines.error(line, f"{what} must be at least {minimum}", value)
    return value


def _header(lines: _Lines, what: str, names: Sequence[str]) -> tuple[int, list[int]]:
    number, tokens = lines.next(what)
    if len(tokens) != len(names):
        raise lines.error(number, f"expected {what} ({len(names)} integers), found {len(tokens)} fields",
                          " ".join(tokens))
    return number, [_int_token(lines, number, t, name) for t, name in zip(tokens, names)]


def _triples(lines: _Lines, count: int, n: int, fmt: str, context: str) -> tuple[np.ndarray, ...]:
    """Read ``count`` lines ``i j w``; check shape, numbers and index range; return 0-based arrays."""
    base = _INDEX_BASE[fmt]
    block = []
    for read in range(count):
        if lines.pos >= len(lines.lines):
            last = lines.lines[-1][0] if lines.lines else 0
            raise InputError(lines.source, Issue(
                f"line {last + 1}", f"file ends after {read} of the {count} entries {context} declares"))
        number, tokens = lines.lines[lines.pos]
        lines.pos += 1
        if len(tokens) != 3:
            hint = " (a header? the entry count in the header may be wrong)" if len(tokens) == 2 else ""
            raise lines.error(number, f"expected an entry 'i j w' (3 fields), found {len(tokens)}{hint}; "
                              f"{context} declares {count} entries", " ".join(tokens))
        block.append((number, tokens))
    issues: list[Issue] = []
    rows = np.empty(count, dtype=np.int64)
    cols = np.empty(count, dtype=np.int64)
    weights = np.empty(count, dtype=np.float64)
    for k, (number, (ti, tj, tw)) in enumerate(block):
        try:
            i, j = int(ti), int(tj)
        except ValueError:
            issues.append(Issue(f"line {number}", "indices must be integers", f"{ti} {tj}"))
            continue
        try:
            w = float(tw)
        except ValueError:
            issues.append(Issue(f"line {number}", "weight must be a number", tw))
            continue
        if not math.isfinite(w):
            issues.append(Issue(f"line {number}", "weight must be finite", tw))
            continue
        for index in (i, j):
            if not base <= index < n + base:
                issues.append(Issue(f"line {number}", f"index out of range: {context} has {n} variables, "
                                    f"indices run from {base} to {n - 1 + base}", index))
                break
        rows[k], cols[k], weights[k] = i - base, j - base, w
        if len(issues) >= 20:
            break
    if issues:
        raise InputError(lines.source, issues)
    return rows, cols, weights


def _to_bqm(qubo: Qubo):
    """Our QUBO as a labelled ``dimod.BinaryQuadraticModel`` (BINARY; same energies)."""
    import dimod

    coo = qubo.Q.tocoo()
    return dimod.BinaryQuadraticModel.from_numpy_vectors(
        np.asarray(qubo.h), (coo.row, coo.col, coo.data), qubo.offset, dimod.BINARY,
        variable_order=list(qubo.labels))


def _to_qubo(fmt: str, n: int, rows, cols, weights, *, offset: float = 0.0, labels=(),
             metadata: dict | None = None) -> Qubo:
    """File entries -> our minimisation QUBO (the one conversion, by :data:`_TO_MINIMISATION`)."""
    diagonal, off_diagonal = _TO_MINIMISATION[fmt]
    scaled = np.where(rows == cols, diagonal * weights, off_diagonal * weights)
    return Qubo.from_terms(n, rows=rows, cols=cols, weights=scaled, offset=offset, labels=labels,
                           metadata=metadata)


def _from_qubo(fmt: str, qubo: Qubo) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Our QUBO -> file entries: (diag index, diag weight, row, col, weight), all 0-based."""
    diagonal, off_diagonal = _TO_MINIMISATION[fmt]
    diag = np.flatnonzero(qubo.h)
    coo = qubo.Q.tocoo()
    order = np.lexsort((coo.col, coo.row))
    return (diag, qubo.h[diag] / diagonal, coo.row[order], coo.col[order], coo.data[order] / off_diagonal)


def _check_pairs_once(lines: _Lines, rows, cols, context: str, numbers: Sequence[int] | None = None) -> None:
    """OR-Library lists each pair once; (i, j) and (j, i) both would silently double a term."""
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    keys = lo * (int(max(hi.max(initial=0), 0)) + 1) + hi
    uniq, counts = np.unique(keys, return_counts=True)
    if np.any(counts > 1):
        dup = int(uniq[np.argmax(counts > 1)])
        where = np.flatnonzero(keys == dup)
        shown = f"{int(lo[where[0]]) + 1} {int(hi[where[0]]) + 1}"
        line = numbers[where[1]] if numbers is not None else "?"
        raise lines.error(line, f"pair listed twice in {context} (the format lists each pair once, i <= j)",
                          shown)


# ---------------------------------------------------------------------------------------- readers
def _read_bqp(text: str, source: str, instance: int | None, *, all_instances: bool = False) -> list[Qubo]:
    lines = _Lines.of(text, source, _COMMENT["bqp"])
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected an OR-Library BQP file"))
    _, (count,) = _header(lines, "the number of instances", ["number of instances"])
    if count < 1:
        raise lines.error(lines.lines[0][0], "the file must hold at least one instance", count)
    if instance is None and count > 1 and not all_instances:
        raise InputError(source, Issue("instance", f"the file holds {count} instances; choose one with "
                                       f"FILE#k, k from 1 to {count}"))
    wanted = instance or 1
    if wanted > count:
        raise InputError(source, Issue("instance", f"the file holds {count} instances, numbered 1 to {count}",
                                       wanted))
    stem = Path(source).name.split(".")[0]
    out = []
    for k in range(1, count + 1):
        context = f"instance {k}"
        _, (n, nnz) = _header(lines, f"the header 'n nnz' of {context}", ["n", "nnz"])
        start = lines.pos
        if all_instances or k == wanted:
            rows, cols, weights = _triples(lines, nnz, n, "bqp", context)
            numbers = [lines.lines[start + t][0] for t in range(nnz)]
            _check_pairs_once(lines, rows, cols, context, numbers)
            out.append(_to_qubo("bqp", n, rows, cols, weights, metadata={
                "source": source, "format": "bqp", "instance": k, "instances": count,
                "name": f"{stem}.{k}", "sense_in_file": "max"}))
            if not all_instances:
                return out
        else:
            # Skip an instance we do not need without converting its numbers.
            if lines.pos + nnz > len(lines.lines):
                last = lines.lines[-1][0]
                raise InputError(source, Issue(f"line {last + 1}",
                                               f"file ends inside {context} ({nnz} entries declared)"))
            lines.pos += nnz
    return out


def _qfreight_comments(lines: _Lines, n: int) -> tuple[float, tuple[str, ...]]:
    """The offset and labels qfreight's writers keep in comment lines, if any."""
    offset = 0.0
    labels: dict[int, str] = {}
    for number, body in lines.comments:
        parts = body.split(None, 2)
        if len(parts) < 3 or parts[0] != "qfreight":
            continue
        if parts[1] == "offset":
            try:
                offset = float(parts[2])
            except ValueError:
                raise lines.error(number, "qfreight offset must be a number", parts[2]) from None
        elif parts[1] == "label":
            index, _, label = parts[2].partition(" ")
            i = _int_token(lines, number, index, "label index")
            if i >= n or not label.strip():
                raise lines.error(number, f"qfreight label needs an index below {n} and a name", body)
            labels[i] = label.strip()
    if not labels:
        return offset, ()
    if len(labels) != n:
        raise InputError(lines.source, Issue("labels", f"qfreight label comments name {len(labels)} of "
                                             f"{n} variables; give all or none"))
    names = tuple(labels[i] for i in range(n))
    if len(set(names)) != n:
        raise InputError(lines.source, Issue("labels", "qfreight label comments repeat a name"))
    return offset, names


def _read_qbsolv(text: str, source: str) -> Qubo:
    lines = _Lines.of(text, source, _COMMENT["qbsolv"])
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected a qbsolv .qubo file"))
    number, tokens = lines.next("the program line")
    if len(tokens) != 6 or tokens[0] != "p" or tokens[1] != "qubo":
        raise lines.error(number, "expected 'p qubo 0 maxDiagonals nDiagonals nElements'", " ".join(tokens))
    topology = tokens[2]
    n, n_diag, n_couplers = (_int_token(lines, number, t, name) for t, name in
                             zip(tokens[3:], ("maxDiagonals", "nDiagonals", "nElements")))
    if n_diag > n:
        raise lines.error(number, f"nDiagonals ({n_diag}) exceeds maxDiagonals ({n})", n_diag)
    start = lines.pos
    rows, cols, weights = _triples(lines, n_diag + n_couplers, n, "qbsolv", "the p line")
    numbers = [lines.lines[start + t][0] for t in range(n_diag + n_couplers)]
    # Diagonal lines come first, then couplers (qbsolv's layout).
    is_diag = rows == cols
    if not np.all(is_diag[:n_diag]):
        bad = int(np.argmin(is_diag[:n_diag]))
        raise lines.error(numbers[bad], f"the first {n_diag} entries must be diagonal 'i i w' "
                          "(nDiagonals in the p line)", f"{rows[bad]} {cols[bad]}")
    if np.any(is_diag[n_diag:]):
        bad = n_diag + int(np.argmax(is_diag[n_diag:]))
        raise lines.error(numbers[bad], f"a diagonal entry after the {n_diag} declared ones; "
                          "nDiagonals in the p line may be wrong", f"{rows[bad]} {cols[bad]}")
    if lines.pos < len(lines.lines):
        extra = lines.lines[lines.pos][0]
        raise lines.error(extra, f"more entries than the p line declares ({n_diag} diagonal + "
                          f"{n_couplers} couplers)")
    offset, labels = _qfreight_comments(lines, n)
    return _to_qubo("qbsolv", n, rows, cols, weights, offset=offset, labels=labels, metadata={
        "source": source, "format": "qbsolv", "topology": topology, "name": Path(source).name})


def _read_triples(text: str, source: str) -> Qubo:
    lines = _Lines.of(text, source, _COMMENT["triples"])
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected 'n m' and m lines 'i j w'"))
    _, (n, m) = _header(lines, "the header 'n m'", ["n", "m"])
    rows, cols, weights = _triples(lines, m, n, "triples", "the header")
    if lines.pos < len(lines.lines):
        extra = lines.lines[lines.pos][0]
        raise lines.error(extra, f"more entries than the header declares ({m})")
    offset, labels = _qfreight_comments(lines, n)
    return _to_qubo("triples", n, rows, cols, weights, offset=offset, labels=labels, metadata={
        "source": source, "format": "triples", "name": Path(source).name})


def _from_bqm(bqm, source: str, fmt: str, order: Sequence | None = None) -> Qubo:
    """A dimod BQM (any vartype) -> our QUBO; labels become strings, in ``order`` or the BQM's."""
    import dimod

    bqm = bqm.change_vartype(dimod.BINARY, inplace=False) if bqm.vartype is dimod.SPIN else bqm
    variables = list(bqm.variables) if order is None else list(order)
    labels = tuple(str(v) for v in variables)
    if len(set(labels)) != len(labels):
        raise InputError(source, Issue("variables", "two variable labels are the same once written as text"))
    linear, (rows, cols, weights), offset = bqm.to_numpy_vectors(variable_order=variables)
    return Qubo.from_terms(len(variables), linear=linear, rows=rows, cols=cols, weights=weights,
                           offset=float(offset), labels=labels,
                           metadata={"source": source, "format": fmt, "name": Path(source).name})


def _read_dimod(data: bytes, source: str) -> Qubo:
    import dimod

    try:
        if data.startswith(b"DIMODBQM"):
            bqm = dimod.BinaryQuadraticModel.from_file(io.BytesIO(data))
        else:
            obj = json.loads(_decode(data, source))
            found = obj.get("type") if isinstance(obj, dict) else type(obj).__name__
            if found != "BinaryQuadraticModel":
                raise InputError(source, Issue("type", "expected dimod's serialised BinaryQuadraticModel "
                                               "(bqm.to_serializable())", found))
            bqm = dimod.BinaryQuadraticModel.from_serializable(obj)
    except InputError:
        raise
    except json.JSONDecodeError as exc:
        raise InputError(source, Issue(f"line {exc.lineno}", f"invalid JSON: {exc.msg}")) from None
    except Exception as exc:  # dimod raises assorted types on damaged files
        raise InputError(source, Issue("file", f"not a readable dimod BQM: {exc}")) from None
    return _from_bqm(bqm, source, "dimod")


def _read_lp(data: bytes, source: str) -> Qubo:
    import dimod

    try:
        cqm = dimod.lp.loads(_decode(data, source))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(source, Issue("file", f"not a readable LP file: {exc}")) from None
    if cqm.constraints:
        raise InputError(source, Issue("Subject To", f"has {len(cqm.constraints)} constraints; an LP file "
                                       "is read as a QUBO only when unconstrained"))
    wrong = [v for v in cqm.variables if cqm.vartype(v) is not dimod.BINARY]
    if wrong:
        raise InputError(source, Issue("variables", "an LP file is read as a QUBO only when every variable "
                                       "is binary", str(wrong[0])))
    bqm = dimod.BinaryQuadraticModel(cqm.objective.linear, cqm.objective.quadratic, cqm.objective.offset,
                                     dimod.BINARY)
    for v in cqm.variables:  # keep variables that appear only in the Binary section
        bqm.add_variable(v)
    return _from_bqm(bqm, source, "lp", order=list(cqm.variables))


def _load(spec: str | Path, format: str | None, *, all_instances: bool) -> list[Qubo]:
    path, instance = split_instance(spec)
    source = str(path)
    data = _read_bytes(path)
    fmt = canonical_format(format) if format else detect_format(path, data)
    if not FORMATS[fmt].readable:
        raise InputError(source, Issue("format", f"{fmt} files can be written but not read"))
    if not data.strip():
        raise InputError(source, Issue("file", f"is empty, expected a {fmt} QUBO"))
    if fmt == "bqp":
        return _read_bqp(_decode(data, source), source, instance, all_instances=all_instances)
    if instance not in (None, 1):
        raise InputError(source, Issue("instance", f"a {fmt} file holds one instance, numbered 1", instance))
    if fmt == "qbsolv":
        qubo = _read_qbsolv(_decode(data, source), source)
    elif fmt == "triples":
        qubo = _read_triples(_decode(data, source), source)
    elif fmt == "dimod":
        qubo = _read_dimod(data, source)
    else:
        qubo = _read_lp(data, source)
    return [qubo]


def read_qubo(spec: str | Path, *, format: str | None = None) -> Qubo:
    """Read one QUBO, as our minimisation QUBO, from ``FILE`` or ``FILE#k`` (k-th instance, from 1).

    ``format`` (one of :data:`READ_FORMATS` or an alias such as ``qubo``) overrides detection.
    ``qubo.metadata`` records ``source``, ``format``, ``name`` and, for BQP files, ``instance``.
    """
    return _load(spec, format, all_instances=False)[0]


def read_qubos(path: str | Path, *, format: str | None = None) -> list[Qubo]:
    """Every instance in a file (one for single-instance formats)."""
    spec = str(path)
    if split_instance(spec)[1] is not None:
        return _load(spec, format, all_instances=False)
    return _load(spec, format, all_instances=True)


def count_instances(path: str | Path, *, format: str | None = None) -> int:
    """How many instances a file holds (the ``k`` range of ``FILE#k``), without converting them."""
    path = Path(path)
    data = _read_bytes(path)
    fmt = canonical_format(format) if format else detect_format(path, data)
    if fmt != "bqp":
        return 1
    lines = _Lines.of(_decode(data, str(path)), str(path), None)
    if not lines.lines:
        raise InputError(str(path), Issue("file", "is empty, expected an OR-Library BQP file"))
    return _header(lines, "the number of instances", ["number of instances"])[1][0]


def is_qubo_file(spec: str | Path) -> bool:
    """Whether ``qfreight solve SPEC`` should treat SPEC as a bare QUBO (not a freight problem).

    ``FILE#k`` and the QUBO extensions (``.qubo .bqp .bqm .lp .txt``) are QUBO files; ``.toml`` is
    a problem; a ``.json`` file is a QUBO only if it is dimod's serialised BQM. Anything else is
    decided by content. A missing file is not decided here (the reader reports it).
    """
    path, instance = split_instance(spec)
    suffix = path.suffix.lower()
    if instance is not None or suffix in (".qubo", ".bqp", ".bqm", ".lp", ".txt"):
        return True
    if suffix == ".toml":
        return False
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if suffix == ".json":
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(obj, dict) and obj.get("type") == "BinaryQuadraticModel"
    return _detect_from_content(data) is not None


def describe_result(qubo: Qubo, result: SampleSet, *, top: int = 5) -> dict[str, object]:
    """A JSON-serialisable report of a solve on a bare QUBO: energies, not freight KPIs.

    ``objective_in_file`` restates the best energy in the file's own convention (for a ``bqp``
    file, the maximised value that published optima are quoted in).
    """
    fmt = qubo.metadata.get("format")
    best = result.best
    report: dict[str, object] = {
        "source": qubo.metadata.get("source"),
        "format": fmt,
        "instance": qubo.metadata.get("instance"),
        "name": qubo.metadata.get("name"),
        "num_variables": qubo.num_variables,
        "num_interactions": qubo.num_interactions,
        "solver": result.solver,
        "best_energy": result.best_energy,
        "objective_in_file": native_objective(fmt, result.best_energy) if fmt in FORMATS else None,
        "sense_in_file": FORMATS[fmt].sense if fmt in FORMATS else "min",
        "best_sample": [int(v) for v in best],
        "ones": [qubo.labels[i] for i in np.flatnonzero(best)],
        "lowest_energies": [float(e) for e in result.energies[:top]],
        "distinct_samples": len(result),
        "reads": result.num_reads,
        "probability_of_best": result.probability_of(result.best_energy),
        "timing": {k: float(v) for k, v in result.timing.items()},
        "info": dict(result.info),
    }
    return report


# ---------------------------------------------------------------------------------------- writers
def _number(value: float) -> str:
    """Integers without a decimal point (as OR-Library and qbsolv files have them), else repr."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _default_labels(qubo: Qubo) -> bool:
    return qubo.labels == tuple(f"x{i}" for i in range(qubo.num_variables))


def _label_comments(qubo: Qubo, prefix: str) -> list[str]:
    out = []
    if qubo.offset:
        out.append(f"{prefix} qfreight offset {qubo.offset!r}")
    if not _default_labels(qubo) and all(
            label == label.strip() and label and "\n" not in label and "\r" not in label
            for label in qubo.labels):
        out += [f"{prefix} qfreight label {i} {label}" for i, label in enumerate(qubo.labels)]
    return out


def _text_bqp(qubo: Qubo) -> str:
    diag, dw, rows, cols, w = _from_qubo("bqp", qubo)
    entries = sorted([(int(i), int(i), x) for i, x in zip(diag, dw)]
                     + [(int(i), int(j), x) for i, j, x in zip(rows, cols, w)])
    out = ["1", f"{qubo.num_variables} {len(entries)}"]
    out += [f"{i + 1} {j + 1} {_number(x)}" for i, j, x in entries]
    return "\n".join(out) + "\n"


def _text_qbsolv(qubo: Qubo) -> str:
    diag, dw, rows, cols, w = _from_qubo("qbsolv", qubo)
    out = ["c qfreight QUBO: minimise sum w_ij x_i x_j (+ offset), x in {0,1}"]
    out += _label_comments(qubo, "c")
    out.append(f"p qubo 0 {qubo.num_variables} {diag.size} {rows.size}")
    out += [f"{i} {i} {_number(x)}" for i, x in zip(diag, dw)]
    out += [f"{i} {j} {_number(x)}" for i, j, x in zip(rows, cols, w)]
    return "\n".join(out) + "\n"


def _text_triples(qubo: Qubo) -> str:
    diag, dw, rows, cols, w = _from_qubo("triples", qubo)
    entries = sorted([(int(i), int(i), x) for i, x in zip(diag, dw)]
                     + [(int(i), int(j), x) for i, j, x in zip(rows, cols, w)])
    out = ["# qfreight QUBO: E(x) = sum_{i<=j} w_ij x_i x_j (+ offset), x in {0,1}, 0-based; MINIMISE"]
    out += _label_comments(qubo, "#")
    out.append(f"{qubo.num_variables} {len(entries)}")
    out += [f"{i} {j} {_number(x)}" for i, j, x in entries]
    return "\n".join(out) + "\n"


_LP_VALID = re.compile(r"[^A-Za-z0-9!\"#$%&(),.;?@_`'{}|~]")  # dimod.lp's LABEL_VALID_CHARS


def _solver_names(names: Sequence[str], prefix: str) -> list[str]:
    """Names LP and MPS readers accept: invalid characters -> '_', unique, not starting with a digit."""
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
class _Program:
    """A binary program in the shape LP/MPS writers want: minimise c.x + x.P.x + offset s.t. rows."""

    names: list[str]
    c: np.ndarray
    P: sp.csr_array  # strictly upper triangular
    offset: float
    A: sp.csr_array  # (m, n)
    lower: np.ndarray  # (m,) row lower bounds (-inf where none)
    upper: np.ndarray  # (m,)
    row_names: list[str]

    @classmethod
    def of_qubo(cls, qubo: Qubo) -> _Program:
        n = qubo.num_variables
        return cls(_solver_names(qubo.labels, "x"), np.asarray(qubo.h, float), qubo.Q.tocsr(),
                   float(qubo.offset), sp.csr_array((0, n)), np.zeros(0), np.zeros(0), [])

    @classmethod
    def of_model(cls, model: BinaryModel) -> _Program:
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
        return cls(_solver_names(model.labels, "x"), np.asarray(model.c, float), model.P.tocsr(),
                   float(model.offset), A, lower, upper,
                   _solver_names(group_names + list(model.row_names), "r"))

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
def _quiet_stdout():
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


def _write_program(program: _Program, path: Path, fmt: str) -> None:
    if fmt == "lp":
        import dimod

        buffer = io.StringIO()
        dimod.lp.dump(program.cqm(), buffer)
        path.write_text(buffer.getvalue())
        return
    model = program.highs()  # raises MissingDependency when highspy is absent
    import highspy

    with _quiet_stdout():  # HiGHS prints a banner from its constructor, before any option applies
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    status = highs.passModel(model)
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS rejected the model for {path}")
    status = highs.writeModel(str(path))
    if status == highspy.HighsStatus.kError or not path.exists():
        raise OSError(f"HiGHS could not write {path}")


def _format_for_path(path: Path, format: str | None) -> str:
    if format:
        return canonical_format(format)
    by_ext = {ext: f.name for f in FORMATS.values() for ext in f.extensions}
    fmt = by_ext.get(path.suffix.lower())
    if fmt is None:
        raise InputError(str(path), Issue("format", "cannot tell the format from the extension; name it "
                                          f"(one of {', '.join(WRITE_FORMATS)})", path.suffix))
    return fmt


def write_qubo(qubo: Qubo, path: str | Path, format: str | None = None) -> Path:
    """Write a QUBO as ``bqp``, ``qbsolv`` (alias ``qubo``), ``triples``, ``dimod``, ``lp`` or ``mps``.

    The format is taken from ``format`` or the extension (``.bqp .qubo .bqm .lp .mps``). A ``bqp``
    file is written as a maximisation problem (negated, off-diagonal entries halved) and has no
    constant term: the offset is dropped (see ``FORMATS[...].keeps_offset``).
    """
    path = Path(path)
    fmt = _format_for_path(path, format)
    if fmt == "bqp":
        path.write_text(_text_bqp(qubo))
    elif fmt == "qbsolv":
        path.write_text(_text_qbsolv(qubo))
    elif fmt == "triples":
        path.write_text(_text_triples(qubo))
    elif fmt == "dimod":
        with _to_bqm(qubo).to_file() as f:
            path.write_bytes(f.read())
    else:
        _write_program(_Program.of_qubo(qubo), path, fmt)
    return path


def write_model(model: BinaryModel, path: str | Path, format: str | None = None) -> Path:
    """Write the constrained model (one-hot groups as equalities, capacity rows as ``<=``) as LP or MPS.

    LP is written by dimod (``dimod.lp.dump`` of a CQM), MPS by HiGHS (``highspy``, a QUADOBJ
    section for the quadratic costs). Variable and row names are made valid for those formats
    ('/' and spaces become '_').
    """
    path = Path(path)
    fmt = _format_for_path(path, format)
    if fmt not in ("lp", "mps"):
        raise InputError(str(path), Issue("format", "a constrained model is written as lp or mps", fmt))
    _write_program(_Program.of_model(model), path, fmt)
    return path
