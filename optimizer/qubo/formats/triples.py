"""Triple files (the railway QUBOs of iitis/quantum-stochastic-optimization-railways).

``#`` comments, ``n m``, then m lines ``i j w`` (0-based, i <= j). The objective is
sum w_ij x_i x_j, minimised unless ``--sense max``. qfreight's writer keeps the offset and the
labels in ``# qfreight ...`` lines.
"""

from __future__ import annotations

from pathlib import Path

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats.convert import from_entries, to_entries
from optimizer.qubo.formats.files import Lines, check_variables, label_comments, number, parse_entries, \
    qfreight_comments

__all__ = ["read", "write_text"]


def read(text: str, source: str, *, sense: str) -> Qubo:
    lines = Lines.of(text, source, "#")
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected 'n m' and m lines 'i j w'"))
    at, (n, m) = lines.header("the header 'n m'", ["n", "m"])
    check_variables(source, f"line {at}", n, lines.size)
    index, values, _ = parse_entries(lines, m, n, 0, "the header")
    if lines.pos < len(lines.lines):
        raise lines.error(lines.lines[lines.pos][0], f"more entries than the header declares ({m})")
    offset, labels = qfreight_comments(lines, n)
    return from_entries("triples", sense, n, index[:, 0], index[:, 1], values[:, 0], offset=offset, labels=labels,
                        metadata={"source": source, "format": "triples", "name": Path(source).name})


def write_text(qubo: Qubo, sense: str) -> str:
    diag, dw, rows, cols, w = to_entries("triples", sense, qubo)
    entries = sorted([(int(i), int(i), x) for i, x in zip(diag, dw)]
                     + [(int(i), int(j), x) for i, j, x in zip(rows, cols, w)])
    word = "MINIMISE" if sense == "min" else "MAXIMISE"
    out = [f"# qfreight QUBO: E(x) = sum_{{i<=j}} w_ij x_i x_j (+ offset), x in {{0,1}}, 0-based; {word}"]
    out += label_comments(qubo.labels, qubo.offset * (1 if sense == "min" else -1), "#")
    out.append(f"{qubo.num_variables} {len(entries)}")
    out += [f"{i} {j} {number(x)}" for i, j, x in entries]
    return "\n".join(out) + "\n"
