"""The one solver interface: ``Solver.solve(qubo, *, seed, time_limit, initial) -> SampleSet``.

Every backend returns a :class:`SampleSet` built with :meth:`SampleSet.from_samples`, which
recomputes energies from the QUBO (a backend's own energy bookkeeping is never trusted),
merges duplicate samples and sorts rows by energy (lowest first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from optimizer.errors import ProblemTooLarge
from optimizer.qubo import Qubo

__all__ = ["SampleSet", "Solver", "check_size", "Deadline"]


@dataclass(frozen=True, eq=False)
class SampleSet:
    """Distinct samples with their energies (recomputed from the QUBO) and counts, lowest first.

    ``timing`` is in seconds, split by stage (e.g. ``simulate``, ``optimise``, ``postprocess``,
    ``total``). ``info`` is JSON-serialisable backend metadata.
    """

    samples: np.ndarray  # (k, n) uint8
    energies: np.ndarray  # (k,)
    counts: np.ndarray  # (k,) int64
    solver: str
    timing: Mapping[str, float] = field(default_factory=dict)
    info: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_samples(
        cls,
        qubo: Qubo,
        samples: np.ndarray,
        *,
        solver: str,
        counts: np.ndarray | None = None,
        timing: Mapping[str, float] | None = None,
        info: Mapping[str, object] | None = None,
    ) -> SampleSet:
        X = np.asarray(samples)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[0] == 0:
            raise ValueError(f"{solver}: no samples")
        if X.shape[1] != qubo.num_variables:
            raise ValueError(f"{solver}: samples have {X.shape[1]} columns, QUBO has {qubo.num_variables}")
        if not np.isin(X, (0, 1)).all():
            raise ValueError(f"{solver}: samples must be 0/1")
        X = X.astype(np.uint8)
        w = np.ones(X.shape[0], dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        unique, inverse = np.unique(X, axis=0, return_inverse=True)
        merged = np.bincount(inverse.ravel(), weights=w, minlength=unique.shape[0]).astype(np.int64)
        energies = qubo.energies(unique)
        order = np.lexsort((-merged, energies))
        return cls(
            samples=unique[order],
            energies=energies[order],
            counts=merged[order],
            solver=solver,
            timing=dict(timing or {}),
            info=dict(info or {}),
        )

    @property
    def best(self) -> np.ndarray:
        return self.samples[0]

    @property
    def best_energy(self) -> float:
        return float(self.energies[0])

    @property
    def num_reads(self) -> int:
        return int(self.counts.sum())

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    def probability_of(self, energy: float, *, atol: float = 1e-6) -> float:
        """Share of reads (weighted by count) whose energy is within ``atol`` of ``energy``."""
        hit = np.abs(self.energies - energy) <= atol
        return float(self.counts[hit].sum() / self.counts.sum())

    def summary(self) -> dict[str, object]:
        return {
            "solver": self.solver,
            "best_energy": self.best_energy,
            "distinct_samples": len(self),
            "reads": self.num_reads,
            "timing": dict(self.timing),
            "info": dict(self.info),
        }


@runtime_checkable
class Solver(Protocol):
    """A QUBO solver. Options are keyword-only constructor arguments (from the config file)."""

    name: ClassVar[str]
    #: Largest QUBO accepted (a device's size); None means unlimited.
    max_variables: int | None

    def solve(
        self,
        qubo: Qubo,
        *,
        seed: int,
        time_limit: float,
        initial: np.ndarray | None = None,
    ) -> SampleSet: ...


def check_size(solver: Solver, qubo: Qubo) -> None:
    """Refuse, with a clear error, a QUBO larger than the backend accepts."""
    limit = solver.max_variables
    if limit is not None and qubo.num_variables > limit:
        raise ProblemTooLarge(solver.name, qubo.num_variables, limit)


class Deadline:
    """A wall-clock budget in seconds, measured with ``time.perf_counter``."""

    def __init__(self, seconds: float):
        import time

        self._clock = time.perf_counter
        self.start = self._clock()
        self.seconds = float(seconds)

    @property
    def elapsed(self) -> float:
        return self._clock() - self.start

    @property
    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    def expired(self) -> bool:
        return self.elapsed >= self.seconds
