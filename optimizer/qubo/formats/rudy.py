"""Max-cut graphs in rudy format (the Gset graphs of Helmberg and Rendl, from Y. Ye's page).

``n m`` then m lines ``i j w``: an undirected edge between vertices i and j (1-based) of weight
w; no comments. Read as the cut function cut(x) = sum_edges w (x_i + x_j - 2 x_i x_j) with
x_i = 1 on one side, to be maximised (``--sense min`` asks for the minimum cut instead); the
objective in the file's convention is the cut weight. Self-loops are never cut; parallel edges
add up. The writer accepts only QUBOs that are a graph's cut function (as read from a rudy file).
"""

from __future__ import annotations

from pathlib import Path

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats.convert import from_edges, to_edges
from optimizer.qubo.formats.files import Lines, check_variables, number, parse_entries

__all__ = ["read", "write_text"]


def read(text: str, source: str, *, sense: str) -> Qubo:
    lines = Lines.of(text, source, None)
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected a rudy graph: 'n m' then m edges 'i j w'"))
    at, (n, m) = lines.header("the header 'n m' (vertices, edges)", ["n", "m"])
    check_variables(source, f"line {at}", n, lines.size)
    index, values, _ = parse_entries(lines, m, n, 1, "the header")
    if lines.pos < len(lines.lines):
        raise lines.error(lines.lines[lines.pos][0], f"more edges than the header declares ({m})")
    return from_edges(sense, n, index[:, 0], index[:, 1], values[:, 0], metadata={
        "source": source, "format": "rudy", "name": Path(source).name, "edges": m})


def write_text(qubo: Qubo, sense: str) -> str:
    rows, cols, w = to_edges(sense, qubo)
    out = [f"{qubo.num_variables} {rows.size}"]
    out += [f"{i + 1} {j + 1} {number(x)}" for i, j, x in zip(rows, cols, w)]
    return "\n".join(out) + "\n"
