"""The simulated space of a QAOA ansatz: blocks of variables, the cost diagonal, mixers, decoding.

A *block* is one tensor axis of the simulated state:

* a plain qubit (one variable, axis of size 2, basis index = x), or
* a one-hot group of k variables simulated in its feasible subspace (axis of size k; basis index
  c means "variable ``group[c]`` is 1, the others 0").

Flat state index: block 0 is the least significant digit (mixed radix), so with one qubit block
per variable in variable order the index is b = sum_i x_i 2^i, qiskit's little-endian order. The
state as a C-ordered tensor therefore has shape ``tuple(reversed(sizes))``.

Every unitary here is the one the qiskit circuit of :mod:`backends.qaoa.circuits` applies, so the
engines agree with the circuits exactly (the tests check it):

* qubit mixer at angle beta with warm-start angle theta (theta = pi/2 without warm start):
  ``RY(theta) RZ(2 beta) RY(-theta) = cos(beta) I - i sin(beta) (cos(theta) Z + sin(theta) X)``;
  for theta = pi/2 it is ``RX(2 beta)``, the standard X mixer (Egger et al. 2021 for the rest);
* XY mixer of a group: the product of two-qubit partial mixers exp(-i beta (XX + YY) / 2) over the
  group's edges in a fixed order (Hadfield et al. 2019): ``"xy-ring"`` takes the ring edges
  (i, i+1) with i even, then i odd, then the closing edge (k-1, 0); ``"xy-complete"`` takes all
  pairs (i, j), i < j, in lexicographic order. On the one-hot subspace each partial mixer is a
  Givens rotation [[cos b, -i sin b], [-i sin b, cos b]] between the two plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.qubo import Qubo

__all__ = ["Block", "Space", "cost_scale", "group_edges", "group_mixer", "qubit_mixer"]

MIXERS = ("x", "xy-ring", "xy-complete")


@dataclass(frozen=True)
class Block:
    """One tensor axis: a plain qubit (``is_group`` False, one variable) or a one-hot group."""

    variables: tuple[int, ...]
    is_group: bool

    @property
    def size(self) -> int:
        return len(self.variables) if self.is_group else 2

    def assignments(self) -> np.ndarray:
        """(size, len(variables)) 0/1 matrix: row c is the block's variables in basis state c."""
        if self.is_group:
            return np.eye(len(self.variables), dtype=np.uint8)
        return np.array([[0], [1]], dtype=np.uint8)


def group_edges(k: int, mixer: str) -> list[tuple[int, int]]:
    """Edges of the XY mixer of a k-plan group, in the order the partial mixers are applied."""
    if k < 2:
        return []
    if mixer == "xy-complete":
        return [(i, j) for i in range(k) for j in range(i + 1, k)]
    if mixer == "xy-ring":
        even = [(i, i + 1) for i in range(0, k - 1, 2)]
        odd = [(i, i + 1) for i in range(1, k - 1, 2)]
        closing = [(k - 1, 0)] if k > 2 else []
        return even + odd + closing
    raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")


def qubit_mixer(beta: float, theta: np.ndarray) -> np.ndarray:
    """(m, 2, 2) mixers RY(theta) RZ(2 beta) RY(-theta), one per qubit angle in ``theta``."""
    theta = np.asarray(theta, dtype=np.float64)
    c, s = np.cos(beta), np.sin(beta)
    U = np.empty((theta.size, 2, 2), dtype=np.complex128)
    U[:, 0, 0] = c - 1j * s * np.cos(theta)
    U[:, 1, 1] = c + 1j * s * np.cos(theta)
    U[:, 0, 1] = U[:, 1, 0] = -1j * s * np.sin(theta)
    return U


def group_mixer(beta: float, k: int, mixer: str) -> np.ndarray:
    """k x k unitary of a group's XY mixer on its one-hot subspace (product of Givens rotations)."""
    U = np.eye(k, dtype=np.complex128)
    c, s = np.cos(beta), -1j * np.sin(beta)
    for a, b in group_edges(k, mixer):
        # Left-multiply: later partial mixers act after earlier ones, as in the circuit.
        row_a, row_b = U[a].copy(), U[b].copy()
        U[a] = c * row_a + s * row_b
        U[b] = s * row_a + c * row_b
    return U


def cost_scale(qubo: Qubo) -> float:
    """RMS local field of the Ising form: sqrt(mean_i Var_z[dE/dz_i]) over uniform random z.

    Dividing the cost by this makes gamma transfer across QUBOs of any size and weight (for the
    Sherrington-Kirkpatrick model it is the usual 1/sqrt(n) normalisation). Falls back to 1 for a
    constant QUBO.
    """
    J, g, _ = qubo.ising()
    n = qubo.num_variables
    if n == 0:
        return 1.0
    total = float(np.sum(g**2) + 2.0 * np.sum(np.asarray(J.data) ** 2))
    scale = float(np.sqrt(total / n))
    return scale if scale > 0 else 1.0


class Space:
    """The blocks a QAOA state is simulated on, with the cost tensor and decoding helpers."""

    def __init__(self, qubo: Qubo, blocks: Sequence[Block]):
        self.qubo = qubo
        self.blocks = tuple(blocks)
        covered = sorted(v for b in self.blocks for v in b.variables)
        if covered != list(range(qubo.num_variables)):
            raise ValueError("blocks must cover every variable exactly once")
        self.sizes = tuple(b.size for b in self.blocks)
        self.strides = tuple(int(np.prod(self.sizes[:i], dtype=np.int64)) for i in range(len(self.sizes)))
        self.dimension = int(np.prod(self.sizes, dtype=np.int64))

    @classmethod
    def full(cls, qubo: Qubo) -> Space:
        """All 2^n basis states, one qubit block per variable in order (qiskit's index)."""
        return cls(qubo, [Block((i,), False) for i in range(qubo.num_variables)])

    @classmethod
    def one_hot(cls, qubo: Qubo) -> Space:
        """Feasible subspace of ``qubo.groups`` (groups first, in order), plain qubits for the rest."""
        grouped = {v for g in qubo.groups for v in g}
        blocks = [Block(tuple(g), True) for g in qubo.groups]
        blocks += [Block((i,), False) for i in range(qubo.num_variables) if i not in grouped]
        return cls(qubo, blocks)

    @property
    def is_full(self) -> bool:
        return not any(b.is_group for b in self.blocks)

    @property
    def shape(self) -> tuple[int, ...]:
        """C-order tensor shape of the state (block 0 is the last, fastest axis)."""
        return tuple(reversed(self.sizes))

    def energies(self) -> np.ndarray:
        """Energy of every basis state of the space, flat (block 0 least significant).

        Built by doubling, as in :func:`backends.exact.all_energies`, one block at a time: the
        table for blocks 0..m is the table for blocks 0..m-1 plus block m's own energy plus its
        couplings to earlier blocks. For each state c of block m those couplings are a sum of one
        vector per earlier block, so they are built by the same doubling (an outer sum per earlier
        block): about 4/3 k_m additions per new entry, not one strided pass per coupled pair.
        """
        q = self.qubo
        sym = (q.Q + q.Q.T).toarray() if q.num_variables else np.zeros((0, 0))
        h = np.asarray(q.h, dtype=np.float64)
        assign = [b.assignments().astype(np.float64) for b in self.blocks]
        table = np.full(1, float(q.offset))
        for m, block in enumerate(self.blocks):
            vm = list(block.variables)
            A = assign[m]
            # Linear terms and couplings inside the block (zero on a one-hot subspace's basis).
            own = A @ h[vm] + 0.5 * np.einsum("ci,ij,cj->c", A, sym[np.ix_(vm, vm)], A)
            # coupling[c_m, j]: energy of block m's state c_m with earlier blocks in state j.
            coupling = own[:, None].copy()
            for a in range(m):
                va = list(self.blocks[a].variables)
                P = A @ sym[np.ix_(vm, va)] @ assign[a].T  # (size_m, size_a): energy of (c_m, c_a)
                # Block a is more significant than blocks 0..a-1: it is the outer axis.
                coupling = (P[:, :, None] + coupling[:, None, :]).reshape(block.size, -1)
            coupling += table[None, :]
            table = coupling.ravel()
        return table

    def move_scale(self) -> float:
        """RMS of half the energy change of one mixer move, the space's natural cost unit.

        A move changes one block's state to another, uniformly chosen (a qubit flip; a group's
        switch to another plan), every other block in a uniformly random state of the space.
        On the full space this is exactly :func:`cost_scale` (the RMS local field of the Ising
        form). On a one-hot subspace the one-hot penalties are constant and drop out, so the
        angles of pieces whose penalties differ mean the same. Computed from the QUBO's
        coefficients (means and variances per block), never from the 2^n table. Returns 1 when
        no move changes the energy.
        """
        q = self.qubo
        n = q.num_variables
        if n == 0:
            return 1.0
        sym = (q.Q + q.Q.T).toarray()
        h = np.asarray(q.h, dtype=np.float64)
        # Mean of x_v under the uniform distribution of the space.
        mean_x = np.empty(n)
        for block in self.blocks:
            mean_x[list(block.variables)] = 1.0 / block.size if block.is_group else 0.5
        per_block = []
        for b, block in enumerate(self.blocks):
            if block.size < 2:
                continue
            vb = list(block.variables)
            A = block.assignments().astype(np.float64)
            own = A @ h[vb] + 0.5 * np.einsum("ci,ij,cj->c", A, sym[np.ix_(vb, vb)], A)
            c_from, c_to = np.nonzero(~np.eye(block.size, dtype=bool))
            # dE of a move = own[to] - own[from] + D . x_rest, D = (A[to] - A[from]) sym[block, :].
            D = (A[c_to] - A[c_from]) @ sym[vb, :]
            D[:, vb] = 0.0
            mean = own[c_to] - own[c_from] + D @ mean_x
            var = np.zeros(c_to.size)
            for a, other in enumerate(self.blocks):
                if a == b:
                    continue
                va = list(other.variables)
                if other.is_group:
                    X = D[:, va]  # one plan of the group is 1, uniformly
                    var += X.var(axis=1)
                else:
                    var += 0.25 * D[:, va[0]] ** 2  # a fair coin
            per_block.append(float(np.mean(mean**2 + var)))
        total = float(np.mean(per_block)) if per_block else 0.0
        scale = 0.5 * float(np.sqrt(total))
        return scale if scale > 0 else 1.0

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Flat basis indices -> (len, n) uint8 samples over the QUBO's variables."""
        idx = np.asarray(indices, dtype=np.int64)
        X = np.zeros((idx.size, self.qubo.num_variables), dtype=np.uint8)
        for block, size, stride in zip(self.blocks, self.sizes, self.strides):
            digit = (idx // stride) % size
            X[:, list(block.variables)] = block.assignments()[digit]
        return X

    def initial_amplitudes(self, initial: np.ndarray | None, epsilon: float) -> list[np.ndarray]:
        """Per-block real amplitudes of the product initial state.

        Without a warm start: |+> per qubit and the W state per group. With one (Egger et al.
        2021): qubit i starts in RY(theta_i)|0> with sin^2(theta_i / 2) = c_i, c_i = x_i clipped to
        [epsilon, 1 - epsilon] (x may be fractional, e.g. a relaxed solution); a group puts weight
        1 - epsilon on its warm-start plan (the largest x in the group; the first plan if all are
        0) and spreads epsilon evenly over the others.
        """
        out = []
        for block in self.blocks:
            if initial is None:
                out.append(np.full(block.size, 1.0 / np.sqrt(block.size)))
                continue
            values = np.asarray(initial, dtype=np.float64)[list(block.variables)]
            if block.is_group:
                k = block.size
                weights = np.full(k, epsilon / max(k - 1, 1))
                chosen = int(np.argmax(values)) if values.sum() > 0 else 0
                weights[chosen] = 1.0 - epsilon if k > 1 else 1.0
                out.append(np.sqrt(weights / weights.sum()))
            else:
                c = float(np.clip(values[0], epsilon, 1.0 - epsilon))
                out.append(np.array([np.sqrt(1.0 - c), np.sqrt(c)]))
        return out

    def qubit_thetas(self, initial: np.ndarray | None, epsilon: float) -> np.ndarray:
        """RY angle of every qubit block's initial state (pi/2 = |+>), in block order."""
        amps = self.initial_amplitudes(initial, epsilon)
        return np.array([2.0 * np.arctan2(a[1], a[0]) for a, b in zip(amps, self.blocks) if not b.is_group])

    def feasible(self, samples: np.ndarray) -> np.ndarray | None:
        """Per sample: is every one-hot group of the QUBO satisfied? None when there are no groups."""
        if not self.qubo.groups:
            return None
        X = np.asarray(samples)
        ok = np.ones(X.shape[0], dtype=bool)
        for g in self.qubo.groups:
            ok &= X[:, list(g)].sum(axis=1) == 1
        return ok
