"""File entries <-> our minimisation QUBO, through the one table in :mod:`.registry`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from optimizer.qubo import Qubo
from optimizer.qubo.formats.registry import sense_sign, term_factors

__all__ = ["from_entries", "to_entries", "from_edges", "to_edges", "to_bqm", "from_bqm_vectors"]


def from_entries(fmt: str, sense: str, n: int, rows, cols, weights, *, linear=None, offset: float = 0.0,
                 labels: Sequence[str] = (), metadata: Mapping[str, object] | None = None) -> Qubo:
    """Entries ``(i, j, w)`` of a file (0-based) -> our QUBO: E = sense_sign * file objective.

    ``linear`` (a separate linear vector, as QPLIB and LP have) and ``offset`` are in the file's
    convention too and are signed the same way.
    """
    rows, cols, weights = np.asarray(rows), np.asarray(cols), np.asarray(weights, dtype=np.float64)
    diagonal, off = term_factors(fmt, sense)
    scaled = np.where(rows == cols, diagonal * weights, off * weights)
    sign = sense_sign(sense)
    lin = None if linear is None else sign * np.asarray(linear, dtype=np.float64)
    return Qubo.from_terms(n, linear=lin, rows=rows, cols=cols, weights=scaled, offset=sign * float(offset),
                           labels=labels, metadata=dict(metadata or {}, sense=sense))


def to_entries(fmt: str, sense: str, qubo: Qubo) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Our QUBO -> file entries: (diag index, diag weight, row, col, weight), all 0-based, sorted."""
    diagonal, off = term_factors(fmt, sense)
    diag = np.flatnonzero(qubo.h)
    coo = qubo.Q.tocoo()
    order = np.lexsort((coo.col, coo.row))
    return diag, qubo.h[diag] / diagonal, coo.row[order], coo.col[order], coo.data[order] / off


def from_edges(sense: str, n: int, rows, cols, weights, *, metadata: Mapping[str, object] | None = None) -> Qubo:
    """A max-cut graph -> our QUBO: cut(x) = sum_edges w (x_i + x_j - 2 x_i x_j), E = sense_sign * cut.

    Self-loops are never cut and contribute nothing; parallel edges add up.
    """
    rows, cols, weights = np.asarray(rows), np.asarray(cols), np.asarray(weights, dtype=np.float64)
    keep = rows != cols
    rows, cols, weights = rows[keep], cols[keep], weights[keep]
    per_endpoint, pair = term_factors("rudy", sense)
    linear = per_endpoint * (np.bincount(rows, weights=weights, minlength=n)
                             + np.bincount(cols, weights=weights, minlength=n))
    return Qubo.from_terms(n, linear=linear, rows=rows, cols=cols, weights=pair * weights,
                           metadata=dict(metadata or {}, sense=sense))


def to_edges(sense: str, qubo: Qubo, *, source: str = "QUBO") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our QUBO -> the edges of the graph whose cut it is (sense_sign * cut); refuses other QUBOs."""
    per_endpoint, pair = term_factors("rudy", sense)
    coo = qubo.Q.tocoo()
    order = np.lexsort((coo.col, coo.row))
    rows, cols = coo.row[order], coo.col[order]
    weights = coo.data[order] / pair
    n = qubo.num_variables
    linear = per_endpoint * (np.bincount(rows, weights=weights, minlength=n)
                             + np.bincount(cols, weights=weights, minlength=n))
    scale = max(1.0, float(np.abs(qubo.h).max(initial=0.0)))
    if qubo.offset != 0 or not np.allclose(linear, qubo.h, rtol=0, atol=1e-9 * scale):
        from optimizer.errors import InputError, Issue

        raise InputError(source, Issue("format", "this QUBO is not the cut function of a graph (its linear terms "
                                       "are not minus half the sum of its couplings, or it has an offset); "
                                       "a rudy file holds max-cut graphs only"))
    return rows, cols, weights


def to_bqm(qubo: Qubo):
    """Our QUBO as a labelled ``dimod.BinaryQuadraticModel`` (BINARY; same energies)."""
    import dimod

    coo = qubo.Q.tocoo()
    return dimod.BinaryQuadraticModel.from_numpy_vectors(
        np.asarray(qubo.h), (coo.row, coo.col, coo.data), qubo.offset, dimod.BINARY,
        variable_order=list(qubo.labels))


def from_bqm_vectors(n: int, linear, rows, cols, weights, offset: float, labels: Sequence[str],
                     metadata: Mapping[str, object]) -> Qubo:
    return Qubo.from_terms(n, linear=linear, rows=rows, cols=cols, weights=weights, offset=float(offset),
                           labels=labels, metadata=dict(metadata))
