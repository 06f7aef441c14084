"""The QUBO type every backend solves.

Convention (minimise)::

    E(x) = x^T Q x + h^T x + offset,   x in {0, 1}^n

``Q`` is strictly upper triangular (diagonal terms live in ``h`` because x_i^2 = x_i),
stored as a ``scipy.sparse.csr_array``. Variables carry readable labels and the
one-hot groups the encoder produced, so constraint-preserving mixers and the
decomposer can see the structure without reverse-engineering it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["Qubo"]


def _canonical_couplings(n: int, rows, cols, weights) -> tuple[sp.csr_array, np.ndarray]:
    """Fold (i, j, w) triples into a strictly upper-triangular matrix plus a diagonal.

    Duplicates are summed; (j, i) is folded onto (i, j); i == j goes to the diagonal.
    """
    rows = np.asarray(rows, dtype=np.int64).ravel()
    cols = np.asarray(cols, dtype=np.int64).ravel()
    weights = np.asarray(weights, dtype=np.float64).ravel()
    if not (rows.shape == cols.shape == weights.shape):
        raise ValueError("rows, cols and weights must have the same length")
    if rows.size and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= n):
        raise ValueError(f"coupling index out of range for {n} variables")
    diagonal = np.zeros(n)
    on_diag = rows == cols
    np.add.at(diagonal, rows[on_diag], weights[on_diag])
    lo = np.minimum(rows[~on_diag], cols[~on_diag])
    hi = np.maximum(rows[~on_diag], cols[~on_diag])
    Q = sp.coo_array((weights[~on_diag], (lo, hi)), shape=(n, n)).tocsr()
    Q.sum_duplicates()
    Q.eliminate_zeros()
    return Q, diagonal


def _as_array(values) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else np.asarray(list(values))


@dataclass(frozen=True, eq=False)
class Qubo:
    """A labelled, sparse QUBO (minimise ``x^T Q x + h^T x + offset``).

    Build it with :meth:`from_terms` or :meth:`from_dense`, which canonicalise the
    couplings; the constructor checks that what it is given already is canonical.
    """

    Q: sp.csr_array
    h: np.ndarray
    offset: float = 0.0
    labels: tuple[str, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.h.shape[0]
        if self.h.ndim != 1:
            raise ValueError("h must be a vector")
        if self.Q.shape != (n, n):
            raise ValueError(f"Q has shape {self.Q.shape}, expected ({n}, {n})")
        if not self.labels:
            object.__setattr__(self, "labels", tuple(f"x{i}" for i in range(n)))
        if len(self.labels) != n:
            raise ValueError(f"{len(self.labels)} labels for {n} variables")
        if len(set(self.labels)) != n:
            raise ValueError("variable labels must be unique")
        coo = self.Q.tocoo()
        if np.any(coo.row >= coo.col):
            raise ValueError("Q must be strictly upper triangular; use Qubo.from_terms")
        seen: set[int] = set()
        for group in self.groups:
            if not group or min(group) < 0 or max(group) >= n or seen.intersection(group):
                raise ValueError("one-hot groups must be non-empty, in range and disjoint")
            seen.update(group)
        # Arrays are shared, never copied: freeze them so no backend mutates a caller's QUBO.
        self.h.setflags(write=False)
        self.Q.data.setflags(write=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_terms(
        cls,
        num_variables: int,
        *,
        linear: Sequence[float] | np.ndarray | None = None,
        rows: Iterable[int] = (),
        cols: Iterable[int] = (),
        weights: Iterable[float] = (),
        offset: float = 0.0,
        labels: Sequence[str] = (),
        groups: Sequence[Sequence[int]] = (),
        metadata: Mapping[str, object] | None = None,
    ) -> Qubo:
        """Build from a linear vector and coupling triples (any order, duplicates summed)."""
        Q, diagonal = _canonical_couplings(num_variables, _as_array(rows), _as_array(cols),
                                           _as_array(weights))
        h = diagonal if linear is None else diagonal + np.asarray(linear, dtype=np.float64)
        return cls(
            Q=Q,
            h=h,
            offset=float(offset),
            labels=tuple(labels),
            groups=tuple(tuple(int(i) for i in g) for g in groups),
            metadata=dict(metadata or {}),
        )

    @classmethod
    def from_dense(cls, matrix: np.ndarray, *, offset: float = 0.0, labels: Sequence[str] = (),
                   groups: Sequence[Sequence[int]] = ()) -> Qubo:
        """From a square matrix M with E(x) = x^T M x + offset (M need not be symmetric)."""
        M = np.asarray(matrix, dtype=np.float64)
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValueError("matrix must be square")
        r, c = np.nonzero(M)
        return cls.from_terms(M.shape[0], rows=r, cols=c, weights=M[r, c], offset=offset,
                              labels=labels, groups=groups)

    # ------------------------------------------------------------------ views
    @property
    def num_variables(self) -> int:
        return int(self.h.shape[0])

    @property
    def num_interactions(self) -> int:
        return int(self.Q.nnz)

    def index(self, label: str) -> int:
        """Position of a variable label (raises KeyError naming the label)."""
        try:
            return self._label_index[label]
        except KeyError:
            raise KeyError(f"no variable labelled {label!r}") from None

    @property
    def _label_index(self) -> dict[str, int]:
        cached = self.__dict__.get("_label_index_cache")
        if cached is None:
            cached = {label: i for i, label in enumerate(self.labels)}
            object.__setattr__(self, "_label_index_cache", cached)
        return cached

    def symmetric(self) -> sp.csr_array:
        """Symmetric coupling matrix J with x^T Q x = 1/2 x^T J x (zero diagonal)."""
        return (self.Q + self.Q.T).tocsr()

    def to_dense(self) -> np.ndarray:
        """Upper-triangular dense matrix M with E(x) = x^T M x + offset (h on the diagonal)."""
        M = self.Q.toarray()
        M[np.diag_indices_from(M)] += self.h
        return M

    # ------------------------------------------------------------------ energies
    def energies(self, samples: np.ndarray) -> np.ndarray:
        """Energies of many samples at once: ``samples`` is (k, n) of 0/1, result is (k,)."""
        X = np.asarray(samples)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != self.num_variables:
            raise ValueError(f"samples have {X.shape[1]} columns, QUBO has {self.num_variables} variables")
        Xf = X.astype(np.float64, copy=False)
        # (Q @ X^T)^T row-wise dotted with X: one sparse product for the whole batch.
        quad = np.einsum("ij,ij->i", (self.Q @ Xf.T).T, Xf) if self.Q.nnz else 0.0
        return quad + Xf @ self.h + self.offset

    def energy(self, sample: np.ndarray) -> float:
        return float(self.energies(np.asarray(sample)[None, :])[0])

    def local_fields(self, sample: np.ndarray) -> np.ndarray:
        """Energy change of flipping each variable of one sample: E(x ^ e_i) - E(x)."""
        x = np.asarray(sample, dtype=np.float64)
        field_ = self.h + self.Q @ x + self.Q.T @ x
        return (1.0 - 2.0 * x) * field_

    # ------------------------------------------------------------------ transforms
    def ising(self) -> tuple[sp.csr_array, np.ndarray, float]:
        """Ising form with x = (1 - z) / 2, z in {+1, -1}: E = z^T J z + g^T z + c (J upper).

        This is the qubit convention (|0> -> z = +1, x = 0) used by the QAOA backend.
        """
        Qs = self.Q
        J = (Qs / 4.0).tocsr()
        row_sum = np.asarray(Qs.sum(axis=1)).ravel()
        col_sum = np.asarray(Qs.sum(axis=0)).ravel()
        g = -self.h / 2.0 - (row_sum + col_sum) / 4.0
        c = self.offset + self.h.sum() / 2.0 + Qs.sum() / 4.0
        return J, g, float(c)

    def clamp(self, fixed: Mapping[int, int]) -> tuple[Qubo, np.ndarray]:
        """Fix some variables; return the QUBO over the rest and their original indices.

        Exact: for any assignment y of the free variables,
        ``self.energy(x) == sub.energy(y)`` where x combines y with ``fixed``.
        """
        n = self.num_variables
        mask = np.ones(n, dtype=bool)
        values = np.zeros(n)
        for i, v in fixed.items():
            mask[i] = False
            values[i] = v
        free = np.flatnonzero(mask)
        Qf = self.Q
        # Couplings between a free and a fixed variable become linear terms on the free one.
        coupling = (Qf @ values + Qf.T @ values)[free]
        h_sub = self.h[free] + coupling
        const = self.offset + float(values @ self.h) + float(values @ (Qf @ values))
        sub_Q = Qf[free][:, free].tocsr()
        position = -np.ones(n, dtype=np.int64)
        position[free] = np.arange(free.size)
        groups = tuple(
            tuple(int(position[i]) for i in g) for g in self.groups if np.all(mask[list(g)])
        )
        sub = Qubo(Q=sub_Q, h=h_sub, offset=const, labels=tuple(self.labels[i] for i in free),
                   groups=groups)
        return sub, free

    def scaled(self, factor: float) -> Qubo:
        """The same QUBO with every coefficient multiplied by ``factor`` (> 0 keeps minima)."""
        return Qubo(Q=(self.Q * factor).tocsr(), h=self.h * factor, offset=self.offset * factor,
                    labels=self.labels, groups=self.groups, metadata=self.metadata)

    def max_abs_coefficient(self) -> float:
        vals = [np.abs(self.h).max(initial=0.0)]
        if self.Q.nnz:
            vals.append(np.abs(self.Q.data).max())
        return float(max(vals))

    def __repr__(self) -> str:
        return (f"Qubo(num_variables={self.num_variables}, interactions={self.num_interactions}, "
                f"groups={len(self.groups)}, offset={self.offset:g})")
