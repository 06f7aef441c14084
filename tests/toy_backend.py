"""A third-party backend as an outside package would ship it: registered only through the
``qfreight.backends`` entry-point group (the tests fake the installed metadata), never in the
built-in table. It is a real, small solver: multi-start steepest descent over single flips."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from optimizer.qubo import Qubo
from optimizer.solving.solver import SampleSet, check_size


class SteepestDescentSolver:
    """Steepest single-flip descent from ``starts`` random assignments (and the warm start)."""

    name: ClassVar[str] = "toy"
    heuristic: ClassVar[frozenset[str]] = frozenset({"optimum"})

    def __init__(self, *, starts: int = 64, max_variables: int | None = None):
        if starts < 1:
            raise ValueError("starts must be at least 1")
        self.starts = starts
        self.max_variables = max_variables

    def solve(self, qubo: Qubo, *, seed: int, time_limit: float, initial: np.ndarray | None = None) -> SampleSet:
        check_size(self, qubo)
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        n = qubo.num_variables
        X = rng.integers(0, 2, size=(self.starts, n)).astype(np.float64)
        J = qubo.symmetric()
        # Flip gains for every start at once: dE_i = (1 - 2 x_i) (h_i + (J x)_i).
        while time.perf_counter() - t0 < time_limit:
            gains = (1.0 - 2.0 * X) * (qubo.h[None, :] + (J @ X.T).T)
            best = gains.argmin(axis=1)
            improving = gains[np.arange(len(X)), best] < -1e-12
            if not improving.any():
                break
            rows = np.flatnonzero(improving)
            X[rows, best[rows]] = 1.0 - X[rows, best[rows]]
        samples, origins = X.astype(np.uint8), ["device"] * len(X)
        if initial is not None:
            samples = np.vstack([samples, np.asarray(initial, dtype=np.uint8)[None, :]])
            origins.append("initial")
        return SampleSet.from_samples(qubo, samples, solver=self.name, origins=origins,
                                      timing={"total": time.perf_counter() - t0}, info={"starts": self.starts})
