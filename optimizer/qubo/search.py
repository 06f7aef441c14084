"""Steepest-descent local search on a QUBO: the classical polish every stage can use, and the
stand-in a quantum device's samples are measured against.

Moves are single flips and, inside a one-hot group holding exactly one 1, swaps (move the 1 to
another member), so a feasible one-hot assignment is never pushed through an infeasible state.
Every start descends at once (the work is vectorised over starts with one sparse product per
step); a start stops when no move lowers its energy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from optimizer.qubo.qubo import Qubo

__all__ = ["local_search"]


def local_search(qubo: Qubo, starts: np.ndarray, *, should_stop: Callable[[], bool] | None = None,
                 max_steps: int = 100_000) -> np.ndarray:
    """Descend from every row of ``starts`` (k, n) to a flip- and group-swap-local minimum.

    Returns the (k, n) uint8 end points; stops early, keeping the progress made, when
    ``should_stop()`` says so (checked every step). Energies only ever decrease.
    """
    X = np.array(np.atleast_2d(starts), dtype=np.float64, copy=True)
    k, n = X.shape
    if n == 0 or k == 0:
        return X.astype(np.uint8)
    J = qubo.symmetric().tocsr()
    h = np.asarray(qubo.h, dtype=np.float64)
    groups = [np.asarray(g, dtype=np.int64) for g in qubo.groups if len(g) > 1]
    active = np.ones(k, dtype=bool)
    rows = np.arange(k)
    scale = max(1.0, qubo.max_abs_coefficient())
    tol = 1e-12 * scale
    for _ in range(max_steps):
        if not active.any() or (should_stop is not None and should_stop()):
            break
        idx = rows[active]
        Xa = X[idx]
        field = h[None, :] + (J @ Xa.T).T  # dE/dx_i with the rest fixed
        flip = (1.0 - 2.0 * Xa) * field  # energy change of flipping i
        best_gain = flip.min(axis=1)
        best_move = flip.argmin(axis=1)
        swap_from = np.full(idx.size, -1)
        swap_to = np.full(idx.size, -1)
        for g in groups:
            on = Xa[:, g]
            single = on.sum(axis=1) == 1
            if not single.any():
                continue
            a_pos = on.argmax(axis=1)
            a = g[a_pos]
            # Moving the 1 from a to b: -field_a + field_b - J_ab (x_a = 1 before, x_b = 0).
            Jab = J[a][:, g].toarray() if hasattr(J[a], "toarray") else np.asarray(J[a][:, g])
            gain = field[:, g] - field[np.arange(idx.size), a][:, None] - Jab
            gain[np.arange(idx.size), a_pos] = np.inf
            gain[~single] = np.inf
            b_pos = gain.argmin(axis=1)
            g_best = gain[np.arange(idx.size), b_pos]
            better = g_best < best_gain
            best_gain = np.where(better, g_best, best_gain)
            swap_from = np.where(better, a, swap_from)
            swap_to = np.where(better, g[b_pos], swap_to)
        improving = best_gain < -tol
        if not improving.any():
            break
        for r in np.flatnonzero(improving):
            i = idx[r]
            if swap_from[r] >= 0:
                X[i, swap_from[r]] = 0.0
                X[i, swap_to[r]] = 1.0
            else:
                X[i, best_move[r]] = 1.0 - X[i, best_move[r]]
        active[idx[~improving]] = False
    return X.astype(np.uint8)
