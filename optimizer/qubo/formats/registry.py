"""The format registry: what each file format holds, its objective sense, the one sign-convention
table, and content sniffing.

qfreight's own convention is a **minimisation** QUBO (see :mod:`optimizer.qubo`)::

    E(x) = x^T Q x + h^T x + offset,   x in {0, 1}^n,   Q strictly upper triangular

A file states an objective in its own convention: the *file objective* ``F(x)`` built from its
entries by :data:`TERM_FACTORS`, to be minimised or maximised (the *sense*). Then, always::

    E(x) = SENSE_SIGN[sense] * F(x)          (min: +1, max: -1)

and the objective in the file's convention is ``SENSE_SIGN[sense] * E(x)``
(:func:`native_objective`). No other code in qfreight negates, halves or doubles a file's
coefficients: readers and writers call :func:`term_factors` and :func:`sense_sign`.

A file's sense comes from the file where the format states one (``lp``: Minimize/Maximize,
``mps``: OBJSENSE, ``qplib``: its third line); otherwise from ``--sense`` / ``[qubo] sense``, and
without those from the format's default below (qbsolv minimises unless run with ``-m``, as
qbsolv itself does). A requested sense that contradicts the file's statement is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from optimizer.errors import InputError, Issue

__all__ = [
    "QuboFormat", "FORMATS", "READ_FORMATS", "WRITE_FORMATS", "SENSES", "SENSE_SIGN", "TERM_FACTORS",
    "ALIASES", "canonical_format", "sense_sign", "term_factors", "resolve_sense", "native_objective",
    "Detection", "sniff", "detect_format", "format_choices",
]

SENSES = ("min", "max")

#: THE sign convention: our minimisation energy = SENSE_SIGN[sense] * the file's objective.
SENSE_SIGN: dict[str, float] = {"min": 1.0, "max": -1.0}

#: How an entry of each format enters the file's objective F(x), as (diagonal, off-diagonal)
#: factors of the entry's value w. ``bqp``: q symmetric and each pair listed once, so an
#: off-diagonal entry counts twice; ``qplib``: 1/2 x^T H x with the lower triangle of the symmetric
#: H listed, so a diagonal entry counts half; ``npz``: x^T M x for the matrix as stored, applied to
#: M_ij and M_ji alike; ``rudy``: an edge w adds w (x_i + x_j - 2 x_i x_j) to the cut, i.e. w to
#: each endpoint's linear term and -2 w to the pair.
TERM_FACTORS: dict[str, tuple[float, float]] = {
    "bqp": (1.0, 2.0),
    "qbsolv": (1.0, 1.0),
    "triples": (1.0, 1.0),
    "qplib": (0.5, 1.0),
    "npz": (1.0, 1.0),
    "rudy": (1.0, -2.0),
}


@dataclass(frozen=True)
class QuboFormat:
    """What a file format holds and how its numbers relate to our minimisation QUBO."""

    name: str
    extensions: tuple[str, ...]
    sense: str  # the default sense ("min" | "max") when the file does not state one
    convention: str  # the file's objective, in words
    readable: bool
    writable: bool
    keeps_offset: bool
    keeps_labels: bool
    states_sense: bool = False  # the file itself says min or max (--sense must then agree)
    constrained: bool = False  # can hold a constrained model (rows), read with read_model


FORMATS: dict[str, QuboFormat] = {
    f.name: f
    for f in (
        QuboFormat("bqp", (".bqp",), "max",
                   "OR-Library BQP: maximise sum_i sum_j q_ij x_i x_j, q symmetric, pairs listed once (1-based)",
                   True, True, keeps_offset=False, keeps_labels=False),
        QuboFormat("qbsolv", (".qubo",), "min", "qbsolv .qubo: sum w_ij x_i x_j (0-based, i <= j); "
                   "minimised unless --sense max (qbsolv -m)",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("triples", (), "min", "'n m' then m lines 'i j w': sum w_ij x_i x_j (0-based, i <= j)",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("rudy", (".rudy", ".gset"), "max",
                   "max-cut graph (rudy / Gset): 'n m' then m edges 'i j w' (1-based, undirected); "
                   "the objective is the cut weight", True, True, keeps_offset=False, keeps_labels=False),
        QuboFormat("npz", (".npz",), "min", "numpy .npz: x^T M x + offset for the matrix M under key 'Q' "
                   "(dense, or scipy.sparse.save_npz layout); symmetric and triangular M alike",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("dimod", (".bqm",), "min", "dimod BinaryQuadraticModel energy (BINARY or SPIN)",
                   True, True, keeps_offset=True, keeps_labels=True),
        QuboFormat("lp", (".lp",), "min", "CPLEX LP objective (read and written by dimod.lp)",
                   True, True, keeps_offset=True, keeps_labels=True, states_sense=True, constrained=True),
        QuboFormat("mps", (".mps",), "min", "free MPS with a QUADOBJ section (1/2 x^T H x; HiGHS)",
                   True, True, keeps_offset=True, keeps_labels=True, states_sense=True, constrained=True),
        QuboFormat("qplib", (".qplib",), "min", "QPLIB native format of binary QPs (1/2 x^T H x + b x + q, "
                   "linear constraints c_l <= A x <= c_u)", True, True, keeps_offset=True, keeps_labels=True,
                   states_sense=True, constrained=True),
        QuboFormat("gams", (".gms",), "min", "GAMS model (QPLIB's .gms files): recognised, not read",
                   False, False, keeps_offset=True, keeps_labels=True, states_sense=True, constrained=True),
    )
}
READ_FORMATS = tuple(name for name, f in FORMATS.items() if f.readable)
WRITE_FORMATS = tuple(name for name, f in FORMATS.items() if f.writable)

#: Other names users type for a format (the CLI's ``--to qubo`` means qbsolv's ``.qubo``).
ALIASES = {"qubo": "qbsolv", "orlib": "bqp", "beasley": "bqp", "railway": "triples", "txt": "triples",
           "bqm": "dimod", "gset": "rudy", "maxcut": "rudy", "gms": "gams"}


def canonical_format(name: str) -> str:
    """The canonical format name for ``name`` or an alias (``qubo`` -> ``qbsolv``)."""
    key = str(name).strip().lower().lstrip(".")
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        known = ", ".join(sorted(set(FORMATS) | set(ALIASES)))
        raise InputError(None, Issue("format", f"unknown QUBO file format; known: {known}", name))
    return key


def format_choices(*, readable: bool) -> list[str]:
    """Names (and aliases) of the formats that can be read (or written), for ``--format`` / ``--to``."""
    ok = READ_FORMATS if readable else WRITE_FORMATS
    return sorted(set(ok) | {alias for alias, target in ALIASES.items() if target in ok})


def sense_sign(sense: str) -> float:
    """+1 for "min", -1 for "max": our energy = sense_sign(sense) * the file's objective."""
    try:
        return SENSE_SIGN[sense]
    except KeyError:
        raise InputError(None, Issue("sense", f"expected one of {', '.join(SENSES)}", sense)) from None


def term_factors(fmt: str, sense: str) -> tuple[float, float]:
    """Factors (diagonal, off-diagonal) from a file entry to a term of our minimisation QUBO."""
    diagonal, off = TERM_FACTORS[fmt]
    sign = sense_sign(sense)
    return sign * diagonal, sign * off


def resolve_sense(fmt: str, requested: str | None, *, stated: str | None = None,
                  source: str | None = None) -> str:
    """The sense a file is read with: the file's statement, the request, or the format's default."""
    if requested is not None and requested not in SENSES:
        raise InputError(source, Issue("sense", f"expected one of {', '.join(SENSES)}", requested))
    if stated is not None:
        if requested is not None and requested != stated:
            raise InputError(source, Issue("sense", f"the file states its objective sense ({stated}imise); "
                                           f"the requested sense {requested!r} contradicts it", requested))
        return stated
    return requested or FORMATS[fmt].sense


def native_objective(format: str, energy: float, sense: str | None = None) -> float:
    """An energy of our minimisation QUBO, in the file's own convention (bqp: the maximised value).

    ``sense`` is the sense the file was read with (``qubo.metadata["sense"]``); by default the
    format's. Exact for formats without a constant term (bqp, rudy): published values are compared
    through it.
    """
    fmt = canonical_format(format)
    return sense_sign(sense or FORMATS[fmt].sense) * energy


# ---------------------------------------------------------------------------------------- sniffing
@dataclass(frozen=True)
class Detection:
    """What the content says: one format, or several candidates it cannot tell apart."""

    format: str | None
    candidates: tuple[str, ...] = ()
    reason: str = ""


_LP_KEYWORDS = {"minimize", "maximize", "minimise", "maximise", "minimum", "maximum", "min", "max",
                "subject to", "such that", "st", "s.t.", "bounds", "binary", "binaries", "end"}
_GAMS_START = re.compile(r"^(\$\w+|\*|(positive |negative |binary |integer |free )?variables?\b|scalars?\b|"
                         r"sets?\b|parameters?\b|equations?\b|model\b|solve\b)", re.IGNORECASE)
_QPLIB_TYPE = re.compile(r"^[LDCQ][CBMIG][NBLDCQ]$")
_MPS_SECTIONS = {"NAME", "ROWS", "COLUMNS", "RHS", "BOUNDS", "RANGES", "QUADOBJ", "QMATRIX", "OBJSENSE",
                 "ENDATA"}


def _qplib_lines(lines: list[str]) -> list[str]:
    """The first data lines of a would-be QPLIB file: '!', '#' and '%' start comments."""
    out = []
    for raw in lines:
        line = re.split(r"[#!%]", raw, maxsplit=1)[0].strip()
        if line:
            out.append(line)
        if len(out) == 3:
            break
    return out


def _edge_index_range(text: str, header_at: int) -> tuple[int, int] | None:
    """Smallest and largest index in the 'i j w' lines after the header (None if unparsable)."""
    lows, highs = [], []
    for raw in text.splitlines()[header_at + 1:]:
        tokens = raw.split()
        if not tokens or raw.lstrip().startswith("#"):
            continue
        try:
            i, j = int(tokens[0]), int(tokens[1])
        except (ValueError, IndexError):
            return None
        lows.append(min(i, j))
        highs.append(max(i, j))
    if not lows:
        return None
    return min(lows), max(highs)


def sniff(data: bytes) -> Detection:
    """The format of a file from its content alone. Never guesses between confusable formats."""
    if data.startswith(b"DIMODBQM"):
        return Detection("dimod", reason="starts with DIMODBQM")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return Detection("npz", reason="a zip archive (numpy .npz)")
    if data.startswith(b"\x93NUMPY"):
        return Detection(None, reason="a bare numpy .npy array; save it with numpy.savez(path, Q=matrix)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Detection(None, reason="not UTF-8 text")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return Detection("dimod", reason="JSON (dimod's serialised BQM)")
    raw_lines = text.splitlines()
    first = next(((k, line.strip()) for k, line in enumerate(raw_lines) if line.strip()), None)
    if first is None:
        return Detection(None, reason="empty")
    at, line = first
    lowered = line.lower()
    words = {w.split()[0] for w in (raw.strip() for raw in raw_lines[:2000]) if w}
    if {"ROWS", "COLUMNS"} <= words or (line.split()[0] in _MPS_SECTIONS and line.split()[0] != "ENDATA"):
        return Detection("mps", reason="MPS sections (ROWS, COLUMNS)")
    if line.startswith("\\") or lowered.split(":")[0].strip() in _LP_KEYWORDS:
        return Detection("lp", reason="an LP keyword or '\\' comment")
    if _GAMS_START.match(line):
        return Detection("gams", reason="GAMS statements")
    qplib = _qplib_lines(raw_lines[at:at + 200])
    if len(qplib) == 3 and _QPLIB_TYPE.match(qplib[1].split()[0]) and \
            qplib[2].split()[0].lower() in ("minimize", "maximize"):
        return Detection("qplib", reason="name, type code and sense (QPLIB)")
    if lowered.startswith("p ") or lowered == "c" or lowered.startswith("c "):
        return Detection("qbsolv", reason="qbsolv 'c' comment or 'p qubo' line")
    if line.startswith("#"):
        return Detection("triples", reason="'#' comments (rudy graphs have none)")
    tokens = line.split()
    if len(tokens) == 1 and re.fullmatch(r"\d+", tokens[0]):
        return Detection("bqp", reason="the number of instances alone on line 1 (OR-Library)")
    if len(tokens) == 2 and all(re.fullmatch(r"\d+", t) for t in tokens):
        n = int(tokens[0])
        span = _edge_index_range(text, at)
        if span is not None:
            low, high = span
            if low == 0:
                return Detection("triples", reason="index 0 present: 0-based 'i j w' lines")
            if high == n:
                return Detection("rudy", reason=f"index {n} = n present: 1-based edges (rudy / Gset)")
        return Detection(None, candidates=("triples", "rudy"),
                         reason="'n m' then 'i j w' lines with no index 0 and no index n: 0-based triples "
                                "and a 1-based rudy graph both fit")
    return Detection(None, reason="no known header")


def detect_format(path: str | Path, data: bytes | None = None) -> str:
    """The format of a QUBO file, from its content (the extension only where the content is silent).

    OR-Library BQP files start with the instance count alone on a line; triples with ``#``
    comments or ``n m`` and 0-based entries; rudy graphs with ``n m`` and 1-based edges; qbsolv
    files with ``c`` comments or the ``p qubo`` line; LP files with a ``\\`` comment or
    Minimize/Maximize; MPS files with its sections; QPLIB files with name, type code and sense;
    dimod files with ``DIMODBQM`` or ``{``; npz files are zip archives. Where two formats fit the
    content, this refuses and names them: pass ``--format``.
    """
    path = Path(path)
    if data is None:
        from optimizer.qubo.formats.files import read_input

        data = read_input(path)
    found = sniff(data)
    if found.format is not None:
        return found.format
    if found.candidates:
        raise InputError(str(path), Issue("format", f"cannot tell the format: {found.reason}; name it with "
                                          f"--format ({' or '.join(found.candidates)})"))
    by_ext = {ext: f.name for f in FORMATS.values() for ext in f.extensions}
    fmt = by_ext.get(path.suffix.lower())
    if fmt is not None and FORMATS[fmt].readable:
        return fmt
    if not data.strip():
        raise InputError(str(path), Issue("file", "is empty, expected a QUBO"))
    raise InputError(str(path), Issue(
        "format", f"cannot tell the QUBO format from the content ({found.reason}); name it explicitly "
        f"(one of {', '.join(READ_FORMATS)})"))
