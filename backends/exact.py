"""Exact solver: every one of the 2^n energies, built by doubling (O(n 2^n), no Python loop over states).

This is the oracle the conformance tests compare every other backend with.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from optimizer.qubo import Qubo
from optimizer.solving.solver import SampleSet, check_size

__all__ = ["ExactSolver", "all_energies"]


def all_energies(qubo: Qubo) -> np.ndarray:
    """Energies of all 2^n assignments; index b encodes x_i = (b >> i) & 1.

    Adding variable k doubles the table: the new half is the old half plus h_k plus
    sum_{j<k} Q_jk x_j, and that coupling vector is itself built by the same doubling.
    """
    n = qubo.num_variables
    Qc = qubo.Q.tocsc()
    energies = np.zeros(1)
    for k in range(n):
        start, end = Qc.indptr[k], Qc.indptr[k + 1]
        rows = Qc.indices[start:end]
        vals = Qc.data[start:end]
        coupling = np.zeros(1 << k)
        for j, w in zip(rows, vals):
            # Add w to every state with bit j set: a strided view, no loop over states.
            view = coupling.reshape(-1, 2, 1 << j)
            view[:, 1, :] += w
        energies = np.concatenate([energies, energies + qubo.h[k] + coupling])
    return energies + qubo.offset


class ExactSolver:
    """Brute force over all assignments; returns the ``num_reads`` lowest states (ties kept)."""

    name: ClassVar[str] = "exact"
    heuristic: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, max_variables: int = 24, num_reads: int = 32):
        if not 1 <= max_variables <= 30:
            raise ValueError("max_variables must be between 1 and 30 (2^n energies are held in memory)")
        self.max_variables = max_variables
        self.num_reads = num_reads

    def solve(self, qubo: Qubo, *, seed: int = 0, time_limit: float = 60.0,
              initial: np.ndarray | None = None) -> SampleSet:
        del seed, initial  # deterministic and exhaustive: neither changes the answer
        check_size(self, qubo)
        t0 = time.perf_counter()
        n = qubo.num_variables
        energies = all_energies(qubo)
        ground = energies.min()
        ground_states = np.flatnonzero(np.isclose(energies, ground, rtol=0, atol=1e-9))
        k = min(energies.size, max(self.num_reads, ground_states.size))
        lowest = np.argpartition(energies, k - 1)[:k] if k < energies.size else np.arange(energies.size)
        chosen = np.union1d(lowest, ground_states)
        bits = ((chosen[:, None] >> np.arange(n)[None, :]) & 1).astype(np.uint8)
        elapsed = time.perf_counter() - t0
        return SampleSet.from_samples(
            qubo, bits, solver=self.name,
            timing={"total": elapsed},
            info={"ground_energy": float(ground), "num_ground_states": int(ground_states.size),
                  "states_enumerated": int(energies.size), "optimal": True, "time_limit": time_limit},
        )
