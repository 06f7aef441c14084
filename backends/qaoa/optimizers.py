"""Classical optimisers for the QAOA angles, each honouring a deadline and a seeded Generator.

``maxiter`` is a budget of objective evaluations for COBYLA, Nelder-Mead and Powell, and of
iterations for SPSA (two evaluations each, plus a short calibration and a final evaluation).
Every optimiser returns the best point it evaluated, so a run cut short by the deadline still
returns its best angles.

The clock is checked before every evaluation, and an evaluation is started only when the time
left covers it (predicted from the slowest evaluation so far) plus ``reserve`` (what the caller
still has to do afterwards, e.g. computing and sampling the final state): a run ends at its
deadline, not one evaluation after it. The first evaluation always runs, so there is a result.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from optimizer.solving.stop import Deadline

__all__ = ["OPTIMIZERS", "Tracked", "minimize"]

OPTIMIZERS = ("COBYLA", "SPSA", "NELDER-MEAD", "POWELL")


class _OutOfTime(Exception):
    pass


class Tracked:
    """Objective wrapper: counts evaluations, keeps the best point, stops before the deadline.

    ``reserve`` is a number of seconds, or a function of the slowest evaluation's seconds, that
    must remain after the next evaluation; :attr:`stopped` says whether the deadline ended it.
    """

    def __init__(self, fun: Callable[[np.ndarray], float], deadline: Deadline | None,
                 reserve: float | Callable[[float], float] = 0.0):
        self.fun = fun
        self.deadline = deadline
        self.reserve = reserve
        self.evaluations = 0
        self.best_x: np.ndarray | None = None
        self.best_f = np.inf
        self.history: list[float] = []
        self.slowest = 0.0
        self.stopped = False

    def time_for_another(self) -> bool:
        if self.deadline is None:
            return True
        reserve = self.reserve(self.slowest) if callable(self.reserve) else self.reserve
        return self.deadline.remaining >= self.slowest + reserve

    def __call__(self, x) -> float:
        if self.evaluations and not self.time_for_another():
            self.stopped = True
            raise _OutOfTime
        x = np.array(x, dtype=np.float64)
        t0 = time.perf_counter()
        f = float(self.fun(x))
        self.slowest = max(self.slowest, time.perf_counter() - t0)
        self.evaluations += 1
        self.history.append(f)
        if f < self.best_f:
            self.best_f, self.best_x = f, x
        return f


def _spsa(f: Tracked, x0: np.ndarray, maxiter: int, rng: np.random.Generator, first_step: float = 0.2) -> None:
    """Spall's SPSA with standard gains (0.602, 0.101) and a calibrated first step (radians)."""
    c, alpha, gamma_exp = 0.1, 0.602, 0.101
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
             rng: np.random.Generator, deadline: Deadline | None,
             reserve: float | Callable[[float], float] = 0.0, step: float = 0.2) -> Tracked:
    """Minimise ``fun`` from ``x0``; returns the :class:`Tracked` wrapper (best point, evaluations).

    ``step`` is the initial step in radians (COBYLA's rhobeg, the Nelder-Mead simplex size, the
    SPSA first step): smaller for a start that is already good (transferred angles).
    """
    from scipy.optimize import minimize as scipy_minimize

    tracked = Tracked(fun, deadline, reserve)
    x0 = np.asarray(x0, dtype=np.float64)
    if maxiter == 0:
        # No optimisation: evaluate the starting angles once (e.g. to study fixed schedules).
        tracked(x0)
        return tracked
    try:
        if name == "SPSA":
            _spsa(tracked, x0, maxiter, rng, step)
        elif name == "COBYLA":
            scipy_minimize(tracked, x0, method="COBYLA", options={"maxiter": maxiter, "rhobeg": step})
        elif name == "NELDER-MEAD":
            simplex = np.vstack([x0, x0 + 0.75 * step * np.eye(x0.size)])
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
