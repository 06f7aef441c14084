"""OR-Library BQP files (Beasley 1990): several maximisation instances per file.

Line 1: the number of instances; per instance ``n nnz`` then nnz lines ``i j q`` (1-based,
i <= j, each pair once). The objective is sum_i sum_j q_ij x_i x_j with q symmetric, so an
off-diagonal entry counts twice (:data:`~.registry.TERM_FACTORS`). No constant term: writing a
QUBO with an offset drops it. ``FILE#k`` picks instance k (from 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats.convert import from_entries, to_entries
from optimizer.qubo.formats.files import Lines, check_variables, number, parse_entries

__all__ = ["read", "write_text", "count"]


def _check_pairs_once(lines: Lines, rows, cols, context: str, numbers) -> None:
    """OR-Library lists each pair once; (i, j) and (j, i) both would silently double a term."""
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    keys = lo * (int(max(hi.max(initial=0), 0)) + 1) + hi
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if dup.size:
        first, second = order[dup[0]], order[dup[0] + 1]
        shown = f"{int(lo[first]) + 1} {int(hi[first]) + 1}"
        raise lines.error(numbers[max(first, second)], f"pair listed twice in {context} (the format lists each "
                          "pair once, i <= j)", shown)


def count(text: str, source: str) -> int:
    lines = Lines.of(text, source, None)
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected an OR-Library BQP file"))
    return lines.header("the number of instances", ["number of instances"])[1][0]


def read(text: str, source: str, *, instance: int | None, all_instances: bool, sense: str) -> list[Qubo]:
    lines = Lines.of(text, source, None)
    if not lines.lines:
        raise InputError(source, Issue("file", "is empty, expected an OR-Library BQP file"))
    _, (total,) = lines.header("the number of instances", ["number of instances"])
    if total < 1:
        raise lines.error(lines.lines[0][0], "the file must hold at least one instance", total)
    if total > len(lines.lines):
        raise lines.error(lines.lines[0][0], f"declares {total} instances; the file has only "
                          f"{len(lines.lines) - 1} more lines", total)
    if instance is None and total > 1 and not all_instances:
        raise InputError(source, Issue("instance", f"the file holds {total} instances; choose one with "
                                       f"FILE#k, k from 1 to {total}"))
    wanted = instance or 1
    if wanted > total:
        raise InputError(source, Issue("instance", f"the file holds {total} instances, numbered 1 to {total}",
                                       wanted))
    stem = Path(source).name.split(".")[0]
    out = []
    for k in range(1, total + 1):
        context = f"instance {k}"
        number_at, (n, nnz) = lines.header(f"the header 'n nnz' of {context}", ["n", "nnz"])
        check_variables(source, f"line {number_at}", n, lines.size)
        if all_instances or k == wanted:
            index, values, numbers = parse_entries(lines, nnz, n, 1, context)
            rows, cols = index[:, 0], index[:, 1]
            _check_pairs_once(lines, rows, cols, context, numbers)
            out.append(from_entries("bqp", sense, n, rows, cols, values[:, 0], metadata={
                "source": source, "format": "bqp", "instance": k, "instances": total, "name": f"{stem}.{k}"}))
            if not all_instances:
                return out
        else:
            # Skip an instance we do not need without converting its numbers.
            if lines.pos + nnz > len(lines.lines):
                last = lines.lines[-1][0]
                raise InputError(source, Issue(f"line {last + 1}", f"file ends inside {context} ({nnz} entries "
                                               "declared)"))
            lines.pos += nnz
    return out


def write_text(qubo: Qubo, sense: str) -> str:
    diag, dw, rows, cols, w = to_entries("bqp", sense, qubo)
    entries = sorted([(int(i), int(i), x) for i, x in zip(diag, dw)]
                     + [(int(i), int(j), x) for i, j, x in zip(rows, cols, w)])
    out = ["1", f"{qubo.num_variables} {len(entries)}"]
    out += [f"{i + 1} {j + 1} {number(x)}" for i, j, x in entries]
    return "\n".join(out) + "\n"
