"""Classical heuristic peer: simulated annealing or tabu search from dwave-samplers.

Reads are drawn in batches until ``num_reads`` are done or the time limit is near, so a
time limit is honoured even though the samplers themselves take none (tabu's ``timeout``
is per read).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from optimizer.errors import MissingDependency
from optimizer.qubo import Qubo
from optimizer.solve.solver import SampleSet, check_size

__all__ = ["AnnealSolver", "to_bqm"]


def to_bqm(qubo: Qubo):
    """The QUBO as a ``dimod.BinaryQuadraticModel`` over integer variables 0..n-1."""
    import dimod

    coo = qubo.Q.tocoo()
    return dimod.BinaryQuadraticModel.from_numpy_vectors(
        linear=np.asarray(qubo.h), quadratic=(coo.row, coo.col, coo.data), offset=qubo.offset,
        vartype=dimod.BINARY,
    )


class AnnealSolver:
    """Simulated annealing (``method = "sa"``) or tabu search (``method = "tabu"``)."""

    name: ClassVar[str] = "anneal"
    # A heuristic: it may miss the optimum, though on the conformance instances it should not.
    heuristic: ClassVar[frozenset[str]] = frozenset({"optimum"})

    def __init__(self, *, method: str = "sa", num_reads: int = 64, num_sweeps: int = 1000,
                 tabu_timeout_ms: int = 20, batch_reads: int = 16, max_variables: int | None = None):
        if method not in ("sa", "tabu"):
            raise ValueError(f"method must be 'sa' or 'tabu', got {method!r}")
        if num_reads < 1 or num_sweeps < 1 or batch_reads < 1:
            raise ValueError("num_reads, num_sweeps and batch_reads must be positive")
        self.method = method
        self.num_reads = num_reads
        self.num_sweeps = num_sweeps
        self.tabu_timeout_ms = tabu_timeout_ms
        self.batch_reads = batch_reads
        self.max_variables = max_variables

    def _sampler(self):
        try:
            from dwave.samplers import SimulatedAnnealingSampler, TabuSampler
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise MissingDependency(self.name, "dwave-samplers") from exc
        return SimulatedAnnealingSampler() if self.method == "sa" else TabuSampler()

    def solve(self, qubo: Qubo, *, seed: int, time_limit: float,
              initial: np.ndarray | None = None) -> SampleSet:
        check_size(self, qubo)
        t0 = time.perf_counter()
        n = qubo.num_variables
        if n == 0:
            return SampleSet.from_samples(qubo, np.zeros((1, 0), np.uint8), solver=self.name,
                                          timing={"total": 0.0})
        bqm = to_bqm(qubo)
        sampler = self._sampler()
        rng = np.random.default_rng(seed)
        batches: list[np.ndarray] = []
        done = 0
        while done < self.num_reads:
            reads = min(self.batch_reads, self.num_reads - done)
            kwargs: dict[str, object] = {"num_reads": reads, "seed": int(rng.integers(2**31 - 1))}
            if self.method == "sa":
                kwargs.update(num_sweeps=self.num_sweeps)
            else:
                kwargs.update(timeout=self.tabu_timeout_ms)
            if initial is not None and done == 0:
                # Start the first read from the warm start; the rest from random states.
                states = rng.integers(0, 2, size=(reads, n), dtype=np.int8)
                states[0] = np.asarray(initial, dtype=np.int8)
                kwargs.update(initial_states=(states, list(range(n))))
            result = sampler.sample(bqm, **kwargs)
            # Columns follow result.variables; put them back in index order.
            X = result.record.sample[:, np.argsort(np.asarray(list(result.variables)))]
            batches.append(np.repeat(X, result.record.num_occurrences, axis=0))
            done += reads
            elapsed = time.perf_counter() - t0
            # Stop early when another batch would likely overrun the time limit.
            if done < self.num_reads and elapsed * (done + reads) / done > time_limit:
                break
        samples = np.concatenate(batches)
        origins = ["device"] * samples.shape[0]
        if initial is not None:
            samples = np.vstack([samples, np.asarray(initial, dtype=np.uint8)[None, :]])
            origins.append("initial")
        total = time.perf_counter() - t0
        return SampleSet.from_samples(
            qubo, samples, solver=self.name, origins=origins,
            timing={"total": total},
            info={"method": self.method, "reads": int(done), "num_sweeps": self.num_sweeps
                  if self.method == "sa" else None, "optimal": False},
        )
