"""qbsolv ``.qubo`` files.

``c`` lines are comments; ``p qubo 0 maxDiagonals nDiagonals nElements``, then the nDiagonals
diagonal lines ``i i w``, then the nElements couplers ``i j w`` (0-based). The objective is
sum w_ij x_i x_j. qbsolv minimises it unless run with ``-m``; qfreight likewise, unless told
``--sense max``. qfreight's writer keeps the offset and the labels in ``c qfreight ...`` lines,
which other readers ignore.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats.convert import from_entries, to_entries
from optimizer.qubo.formats.files import Lines, check_variables, label_comments, number, parse_entries, \
    qfreight_comments

__all__ = ["read", "write_text"]


def read(text: str, source: str, *, sense: str) -> Qubo:
    lines = Lines.of(text, source, "c")
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected a qbsolv .qubo file"))
    at, tokens = lines.next("the program line")
    if len(tokens) != 6 or tokens[0] != "p" or tokens[1] != "qubo":
        raise lines.error(at, "expected 'p qubo 0 maxDiagonals nDiagonals nElements'", " ".join(tokens))
    topology = tokens[2]
    n, n_diag, n_couplers = (lines.int_token(at, t, name) for t, name in
                             zip(tokens[3:], ("maxDiagonals", "nDiagonals", "nElements")))
    check_variables(source, f"line {at}", n, lines.size)
    if n_diag > n:
        raise lines.error(at, f"nDiagonals ({n_diag}) exceeds maxDiagonals ({n})", n_diag)
    index, values, numbers = parse_entries(lines, n_diag + n_couplers, n, 0, "the p line")
    rows, cols = index[:, 0], index[:, 1]
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
        raise lines.error(lines.lines[lines.pos][0], f"more entries than the p line declares ({n_diag} diagonal "
                          f"+ {n_couplers} couplers)")
    offset, labels = qfreight_comments(lines, n)
    # The offset comment is written in the file's convention, like every other number in it.
    return from_entries("qbsolv", sense, n, rows, cols, values[:, 0], offset=offset, labels=labels, metadata={
        "source": source, "format": "qbsolv", "topology": topology, "name": Path(source).name})


def write_text(qubo: Qubo, sense: str) -> str:
    diag, dw, rows, cols, w = to_entries("qbsolv", sense, qubo)
    objective = "minimise" if sense == "min" else "maximise (qbsolv -m)"
    out = [f"c qfreight QUBO: {objective} sum w_ij x_i x_j (+ offset), x in {{0,1}}"]
    out += label_comments(qubo.labels, qubo.offset * (1 if sense == "min" else -1), "c")
    out.append(f"p qubo 0 {qubo.num_variables} {diag.size} {rows.size}")
    out += [f"{i} {i} {number(x)}" for i, x in zip(diag, dw)]
    out += [f"{i} {j} {number(x)}" for i, j, x in zip(rows, cols, w)]
    return "\n".join(out) + "\n"
