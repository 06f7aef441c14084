"""Classical optimisers for the QAOA angles, each honouring a deadline and a seeded Generator.

``maxiter`` is a budget of objective evaluations for COBYLA, Nelder-Mead and Powell, and of
iterations for SPSA (two evaluations each, plus a short calibration and a final evaluation).
Every optimiser returns the best point it evaluated, so a run cut short by the deadline still
returns its best angles.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from optimizer.solve.stop import Deadline

__all__ = ["OPTIMIZERS", "Tracked", "minimize"]

OPTIMIZERS = ("COBYLA", "SPSA", "NELDER-MEAD", "POWELL")


class _OutOfTime(Exception):
    pass


class Tracked:
    """Objective wrapper: counts evaluations, keeps the best point, stops at the deadline."""

    def __init__(self, fun: Callable[[np.ndarray], float], deadline: Deadline | None):
        self.fun = fun
        self.deadline = deadline
        self.evaluations = 0
        self.best_x: np.ndarray | None = None
        self.best_f = np.inf
        self.history: list[float] = []

    def __call__(self, x) -> float:
        if self.evaluations and self.deadline is not None and self.deadline.expired():
            raise _OutOfTime
        x = np.array(x, dtype=np.float64)
        f = float(self.fun(x))
        self.evaluations += 1
        self.history.append(f)
        if f < self.best_f:
            self.best_f, self.best_x = f, x
        return f


def _spsa(f: Tracked, x0: np.ndarray, maxiter: int, rng: np.random.Generator) -> None:
    """Spall's SPSA with standard gains (0.602, 0.101) and a calibrated first step of ~0.2 rad."""
    c, alpha, gamma_exp, first_step = 0.1, 0.602, 0.101, 0.2
    stability = 0.1 * maxiter
    x = x0.copy()
    slopes = []
    for _ in range(min(5, max(1, maxiter // 10))):
        delta = rng.choice([-1.0, 1.0], size=x.size)
        slopes.append(abs(f(x + c * delta) - f(x - c * delta)) / (2 * c))
    mean_slope = float(np.mean(slopes)) or 1.0
    a = first_step * (stability + 1) ** alpha / mean_slope
    for k in range(maxiter):
        ck = c / (k + 1) ** gamma_exp
        ak = a / (k + 1 + stability) ** alpha
        delta = rng.choice([-1.0, 1.0], size=x.size)
        slope = (f(x + ck * delta) - f(x - ck * delta)) / (2 * ck)
        x = x - ak * slope * delta
    f(x)


def minimize(name: str, fun: Callable[[np.ndarray], float], x0: np.ndarray, *, maxiter: int,
             rng: np.random.Generator, deadline: Deadline | None) -> Tracked:
    """Minimise ``fun`` from ``x0``; returns the :class:`Tracked` wrapper (best point, evaluations)."""
    from scipy.optimize import minimize as scipy_minimize

    tracked = Tracked(fun, deadline)
    x0 = np.asarray(x0, dtype=np.float64)
    if maxiter == 0:
        # No optimisation: evaluate the starting angles once (e.g. to study fixed schedules).
        tracked(x0)
        return tracked
    try:
        if name == "SPSA":
            _spsa(tracked, x0, maxiter, rng)
        elif name == "COBYLA":
            scipy_minimize(tracked, x0, method="COBYLA", options={"maxiter": maxiter, "rhobeg": 0.2})
        elif name == "NELDER-MEAD":
            simplex = np.vstack([x0, x0 + 0.15 * np.eye(x0.size)])
            scipy_minimize(tracked, x0, method="Nelder-Mead",
                           options={"maxfev": maxiter, "initial_simplex": simplex, "xatol": 1e-4})
        elif name == "POWELL":
            scipy_minimize(tracked, x0, method="Powell", options={"maxfev": maxiter})
        else:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    except _OutOfTime:
        pass
    if tracked.best_x is None:  # maxiter 0 or an immediate deadline: evaluate the start once
        deadline_free = Tracked(fun, None)
        deadline_free(x0)
        return deadline_free
    return tracked
