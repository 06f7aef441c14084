"""Shared fixtures: small QUBOs for every backend and the fast option sets tests use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from optimizer.qubo import Qubo

# Two cores in CI: keep every numerical library on one thread so parallel pieces do not fight.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PROBLEMS = REPO / "problems"


def random_qubo(n: int, *, seed: int, density: float = 0.6, integer: bool = False) -> Qubo:
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    if integer:
        M = np.round(M * 4)
    M[rng.random((n, n)) > density] = 0.0
    return Qubo.from_dense(M, offset=float(rng.normal()))


def one_hot_qubo(groups: int, size: int, *, seed: int, penalty: float = 10.0) -> Qubo:
    """Random costs on `groups` one-hot groups of `size` variables, with one-hot penalties."""
    rng = np.random.default_rng(seed)
    n = groups * size
    M = np.triu(rng.normal(size=(n, n)), 1) * 0.5
    M[np.diag_indices(n)] = rng.normal(size=n)
    group_idx = [tuple(range(g * size, (g + 1) * size)) for g in range(groups)]
    offset = 0.0
    for g in group_idx:
        # P (sum x - 1)^2 = P (1 - sum x + 2 sum_{i<j} x_i x_j)
        offset += penalty
        for a, i in enumerate(g):
            M[i, i] -= penalty
            for j in g[a + 1:]:
                M[i, j] += 2 * penalty
    labels = [f"g{g}/c{c}" for g in range(groups) for c in range(size)]
    return Qubo.from_dense(M, offset=offset, labels=labels, groups=group_idx)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"public test data not found at {SHARED_DATA} (the shared/ folder beside the checkout)")
    return SHARED_DATA
