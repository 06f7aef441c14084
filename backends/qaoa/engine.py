"""The exact statevector engine: full 2^n space or the one-hot feasible subspace.

State after p layers (parameters in the normalised units of :func:`space.cost_scale`)::

    |psi> = prod_{l=1..p} [ M(beta_l) exp(-i gamma_l E / s) ] |psi_0>

with M the product of the block mixers of :mod:`backends.qaoa.space` and |psi_0> the product of
the block initial states. The cost diagonal E is built once. The expectation is exact (no shot
noise); CVaR_alpha is the mean energy of the lowest alpha share of the probability mass.

Array back ends: numba kernels on the CPU (``kernel="numba"``, the default), or the same algebra
written with array operations (``kernel="array"``) on numpy, or on a GPU through cupy or torch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from backends.qaoa import kernels
from backends.qaoa.space import Space, group_mixer, qubit_mixer
from optimizer.errors import MissingDependency

__all__ = ["StatevectorEngine", "array_module", "cvar"]


class _Arrays:
    """The few array operations the generic engine needs, for numpy, cupy or torch."""

    def __init__(self, name: str):
        self.name = name
        if name == "numpy":
            self.xp = np
        elif name == "cupy":
            import cupy

            self.xp = cupy
        elif name == "torch":
            import torch

            self.xp = torch
        else:  # pragma: no cover - guarded by array_module
            raise ValueError(name)

    def to_device(self, a: np.ndarray):
        if self.name == "cupy":
            return self.xp.asarray(a)
        if self.name == "torch":
            return self.xp.from_numpy(np.ascontiguousarray(a)).to("cuda")
        return np.array(a, copy=True)

    def to_host(self, a) -> np.ndarray:
        if self.name == "cupy":
            return a.get()
        if self.name == "torch":
            return a.cpu().numpy()
        return np.asarray(a)

    def synchronize(self) -> None:
        if self.name == "cupy":
            self.xp.cuda.Stream.null.synchronize()
        elif self.name == "torch":
            self.xp.cuda.synchronize()


def array_module(device: str) -> str:
    """Name of the array library for ``device`` ("CPU" -> numpy; "GPU" -> cupy or torch).

    Raises :class:`MissingDependency` naming what to install when a GPU is asked for but no
    GPU array library (with a visible device) is present: the engine never silently falls back.
    """
    if device == "CPU":
        return "numpy"
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return "cupy"
    except Exception:  # noqa: BLE001 - any import or driver failure means "no cupy GPU"
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return "torch"
    except Exception:  # noqa: BLE001
        pass
    raise MissingDependency(
        "qaoa", "cupy or torch (with CUDA)",
        "device = \"GPU\" for the statevector engine needs a GPU array library: pip install cupy-cuda12x "
        "(or torch with CUDA); none with a visible GPU is installed here, use device = \"CPU\"",
    )


def cvar(energies_sorted: np.ndarray, probs_sorted: np.ndarray, alpha: float) -> float:
    """CVaR_alpha: mean of the lowest ``alpha`` share of probability mass (alpha = 1: expectation)."""
    cum = np.cumsum(probs_sorted)
    weights = np.clip(np.minimum(cum, alpha) - (cum - probs_sorted), 0.0, None)
    return float(weights @ energies_sorted / weights.sum())


class StatevectorEngine:
    """Exact QAOA simulator on a :class:`Space` (see the module docstring for the ansatz).

    With the numba kernels the engine keeps one split-complex state (two float64 arrays) and the
    cost diagonal, allocated once and overwritten by every evaluation: :meth:`state` returns a
    complex copy, the read-outs work on the buffers directly. ``blocking`` = (chunk, tile)
    amplitudes overrides the kernels' cache blocking (:func:`kernels.plan`); tests use tiny
    blocks so that small states run through every pass.
    """

    def __init__(self, space: Space, *, mixer: str, scale: float, initial: np.ndarray | None = None,
                 epsilon: float = 0.25, device: str = "CPU", kernel: str = "numba",
                 diag: np.ndarray | None = None, blocking: tuple[int, int] | None = None):
        self.space = space
        self.mixer = mixer
        self.scale = float(scale)
        t0 = time.perf_counter()
        self.diag = space.energies() if diag is None else np.ascontiguousarray(diag, dtype=np.float64)
        self.setup_seconds = time.perf_counter() - t0
        # Only the per-block initial amplitudes are kept (not the 2^n product state) and the cost
        # scale goes into gamma (exp(-i gamma E / s) = exp(-i (gamma / s) E)), so the engine holds
        # one state and one diagonal: the 4^12 subspace fits in well under 1 GiB.
        self._initial_blocks = [a.astype(np.complex128) for a in space.initial_amplitudes(initial, epsilon)]
        self._thetas = space.qubit_thetas(initial, epsilon)
        self._order: np.ndarray | None = None
        if device == "GPU":
            self.arrays = _Arrays(array_module(device))
        else:
            self.arrays = _Arrays("numpy")
        if kernel not in ("numba", "array"):
            raise ValueError(f"kernel must be 'numba' or 'array', got {kernel!r}")
        self.kernel = "array" if (self.arrays.name != "numpy" or not kernels.HAVE_NUMBA) else kernel
        if self.arrays.name != "numpy":
            self._diag_dev = self.arrays.to_device(self.diag)
        self.evaluations = 0
        self._re: np.ndarray | None = None
        self._im: np.ndarray | None = None
        if self.kernel == "numba":
            chunk, tile = blocking or (kernels.CHUNK_AMPLITUDES, kernels.TILE_AMPLITUDES)
            self._plan = kernels.plan(space.sizes, chunk_amplitudes=chunk, tile_amplitudes=tile)
            real = [a.real.astype(np.float64) for a in self._initial_blocks]
            self._init_lo = _kron(real[: self._plan.low])
            self._init_hi = _kron(real[self._plan.low:])
            blocks = space.blocks
            self._kmax = max([b.size for b in blocks], default=1)
            plus = np.isclose(self._thetas, np.pi / 2, rtol=0, atol=1e-15)
            kinds, q = [], 0
            for block in blocks:
                if block.size == 1:
                    kinds.append(kernels.KIND_IDENTITY)
                elif block.is_group:
                    kinds.append(kernels.KIND_GENERIC)
                else:
                    kinds.append(kernels.KIND_RX if plus[q] else kernels.KIND_GENERIC)
                    q += 1
            self._kinds = np.array(kinds, dtype=np.int64)

    def initial_state(self) -> np.ndarray:
        """The product initial state, flat (later blocks are more significant: kron(new, old))."""
        psi = np.ones(1, dtype=np.complex128)
        for amps in self._initial_blocks:
            psi = np.kron(amps, psi)
        return psi

    # ------------------------------------------------------------------ evolution
    def _block_mixers(self, beta: float) -> list[np.ndarray]:
        out, q = [], 0
        qubit_U = qubit_mixer(beta, self._thetas)
        for block in self.space.blocks:
            if block.is_group:
                out.append(group_mixer(beta, block.size, self.mixer))
            else:
                out.append(qubit_U[q])
                q += 1
        return out

    def _kernel_mixers(self, beta: float):
        """(Ur, Ui, U2, U4, kinds) of one layer for :func:`kernels.evolve`."""
        mixers = self._block_mixers(beta)
        B, k = len(mixers), max(self._kmax, 4)
        U = np.zeros((B, k, k), dtype=np.complex128)
        for b, M in enumerate(mixers):
            U[b, : M.shape[0], : M.shape[1]] = M
        U2 = np.ascontiguousarray(U[:, :2, :2]).reshape(B, 4).view(np.float64)
        U4 = np.ascontiguousarray(U[:, :4, :4]).reshape(B, 16).view(np.float64)
        rx = self._kinds == kernels.KIND_RX
        if rx.any():
            # Exactly RX(2 beta), as the circuit's rx gate: no rounding residue of cos(pi / 2).
            c, s = np.cos(beta), np.sin(beta)
            U2[rx] = [c, 0.0, 0.0, -s, 0.0, -s, c, 0.0]
        return (np.ascontiguousarray(U.real), np.ascontiguousarray(U.imag), U2, U4, self._kinds)

    def _evolve(self, gammas, betas, want_expectation: bool):
        if len(gammas) != len(betas):
            raise ValueError("gammas and betas must have the same length")
        self.evaluations += 1
        if self._re is None:
            self._re = np.empty(self.space.dimension)
            self._im = np.empty(self.space.dimension)
        angles = [float(g) / self.scale for g in gammas]
        mixers = [self._kernel_mixers(float(b)) for b in betas]
        if not angles:
            # Depth 0: the initial state itself.
            self._re[:] = np.kron(self._init_hi, self._init_lo)
            self._im[:] = 0.0
            return float(self._re**2 @ self.diag) if want_expectation else None
        return kernels.evolve(self._plan, self._re, self._im, self.diag, angles, mixers, self._init_lo,
                              self._init_hi, want_expectation=want_expectation)

    def state(self, gammas: Sequence[float], betas: Sequence[float]):
        """The final state (flat, complex, a new array on the engine's array device)."""
        if self.kernel == "numba":
            self._evolve(gammas, betas, False)
            return self._re + 1j * self._im
        if len(gammas) != len(betas):
            raise ValueError("gammas and betas must have the same length")
        self.evaluations += 1
        return self._state_array(gammas, betas)

    def _state_array(self, gammas, betas):
        ar = self.arrays
        xp = ar.xp
        psi = ar.to_device(self.initial_state())
        diag = self.diag if ar.name == "numpy" else self._diag_dev
        for gamma, beta in zip(gammas, betas):
            psi = psi * xp.exp((-1j * float(gamma) / self.scale) * diag)
            for U, size, stride in zip(self._block_mixers(float(beta)), self.space.sizes, self.space.strides):
                view = psi.reshape(psi.shape[0] // (size * stride), size, stride)
                parts = [view[:, c, :] for c in range(size)]
                new = []
                for r in range(size):
                    acc = complex(U[r, 0]) * parts[0]
                    for c in range(1, size):
                        acc = acc + complex(U[r, c]) * parts[c]
                    new.append(acc)
                for r in range(size):
                    view[:, r, :] = new[r]
        return psi

    # ------------------------------------------------------------------ read-out
    def probabilities(self, gammas, betas) -> np.ndarray:
        if self.kernel == "numba":
            self._evolve(gammas, betas, False)
            return kernels.probabilities(self._re, self._im)
        psi = self.state(gammas, betas)
        return self.arrays.to_host(psi.real**2 + psi.imag**2)

    def expectation(self, gammas, betas) -> float:
        """Exact <E> in the QUBO's energy units."""
        if self.kernel == "numba":
            return float(self._evolve(gammas, betas, True))
        psi = self.state(gammas, betas)
        diag = self.diag if self.arrays.name == "numpy" else self._diag_dev
        return float(((psi.real**2 + psi.imag**2) * diag).sum())

    def objective(self, gammas, betas, alpha: float = 1.0) -> float:
        """CVaR_alpha of the energy (alpha = 1: the exact expectation), in energy units."""
        if alpha >= 1.0:
            return self.expectation(gammas, betas)
        probs = self.probabilities(gammas, betas)
        if self._order is None:
            self._order = np.argsort(self.diag, kind="stable")
        return cvar(self.diag[self._order], probs[self._order], alpha)

    def cvar_of(self, probs: np.ndarray, alpha: float) -> float:
        if self._order is None:
            self._order = np.argsort(self.diag, kind="stable")
        return cvar(self.diag[self._order], probs[self._order], alpha)


def _kron(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Product of per-block vectors, block 0 fastest (kron(later, earlier))."""
    out = np.ones(1)
    for v in vectors:
        out = np.kron(v, out)
    return np.ascontiguousarray(out)
