"""The one solver interface: ``Solver.solve(qubo, *, seed, time_limit, initial) -> SampleSet``.

Every backend returns a :class:`SampleSet` built with :meth:`SampleSet.from_samples`, which
recomputes energies from the QUBO (a backend's own energy bookkeeping is never trusted),
merges duplicate samples and sorts rows by energy (lowest first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from optimizer.errors import ProblemTooLarge
from optimizer.qubo import Qubo

__all__ = ["SampleSet", "Solver", "check_size", "ORIGINS"]

#: Where a sample came from, so that a result can be credited to the stage that produced it:
#: ``initial`` - the warm start the caller passed in (returned unchanged);
#: ``device`` - the backend's own output: raw samples of a (simulated) quantum device, or the
#: answer of a classical solver;
#: ``postprocessed`` - classical post-processing (local search, clique shrinking) of samples.
#: When the same assignment arrives with several origins, the first in this order is kept:
#: an assignment equal to the warm start is never credited to the device.
ORIGINS = ("initial", "device", "postprocessed")


@dataclass(frozen=True, eq=False)
class SampleSet:
    """Distinct samples with their energies (recomputed from the QUBO) and counts, lowest first.

    ``origins`` gives each distinct sample's origin (see :data:`ORIGINS`); ``origin_counts``
    counts the reads of each origin before duplicates were merged. ``timing`` is in seconds,
    split by stage (e.g. ``simulate``, ``optimise``, ``postprocess``, ``total``). ``info`` is
    JSON-serialisable backend metadata.
    """

    samples: np.ndarray  # (k, n) uint8
    energies: np.ndarray  # (k,)
    counts: np.ndarray  # (k,) int64
    solver: str
    timing: Mapping[str, float] = field(default_factory=dict)
    info: Mapping[str, object] = field(default_factory=dict)
    origins: tuple[str, ...] = ()  # (k,), one of ORIGINS each
    origin_counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_samples(
        cls,
        qubo: Qubo,
        samples: np.ndarray,
        *,
        solver: str,
        counts: np.ndarray | None = None,
        origins: str | Sequence[str] = "device",
        timing: Mapping[str, float] | None = None,
        info: Mapping[str, object] | None = None,
    ) -> SampleSet:
        """Merge duplicates, recompute energies, sort by energy (then by count, descending).

        ``origins`` is one origin for every row or one per row (see :data:`ORIGINS`).
        """
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
        if isinstance(origins, str):
            origins = (origins,) * X.shape[0]
        if len(origins) != X.shape[0]:
            raise ValueError(f"{solver}: {len(origins)} origins for {X.shape[0]} samples")
        unknown = set(origins) - set(ORIGINS)
        if unknown:
            raise ValueError(f"{solver}: unknown sample origin {sorted(unknown)[0]!r}; known: {', '.join(ORIGINS)}")
        rank = np.array([ORIGINS.index(o) for o in origins], dtype=np.int64)
        # Rows as opaque byte strings: np.unique(axis=0) builds a structured dtype with one field per
        # column, which takes about a second for 20 rows of 200,000 variables. Same rows, same order.
        if X.shape[1]:
            rows = np.ascontiguousarray(X).view(np.dtype((np.void, X.shape[1]))).ravel()
            _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
            unique, inverse = X[first], inverse.ravel()
        else:  # no variables: every row is the same (empty) assignment
            unique, inverse = X[:1], np.zeros(X.shape[0], dtype=np.int64)
        merged = np.bincount(inverse, weights=w, minlength=unique.shape[0]).astype(np.int64)
        best_rank = np.full(unique.shape[0], len(ORIGINS), dtype=np.int64)
        np.minimum.at(best_rank, inverse, rank)
        origin_counts = {o: int(w[rank == k].sum()) for k, o in enumerate(ORIGINS) if np.any(rank == k)}
        energies = qubo.energies(unique)
        order = np.lexsort((-merged, energies))
        return cls(
            samples=unique[order],
            energies=energies[order],
            counts=merged[order],
            solver=solver,
            timing=dict(timing or {}),
            info=dict(info or {}),
            origins=tuple(ORIGINS[r] for r in best_rank[order]),
            origin_counts=origin_counts,
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

    @property
    def best_origin(self) -> str:
        return self.origins[0] if self.origins else "device"

    def summary(self) -> dict[str, object]:
        return {
            "solver": self.solver,
            "best_energy": self.best_energy,
            "best_origin": self.best_origin,
            "origin_counts": dict(self.origin_counts),
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


