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

__all__ = ["StatevectorEngine", "cvar", "array_module"]


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
    """Exact QAOA simulator on a :class:`Space` (see the module docstring for the ansatz)."""

    def __init__(self, space: Space, *, mixer: str, scale: float, initial: np.ndarray | None = None,
                 epsilon: float = 0.25, device: str = "CPU", kernel: str = "numba",
                 diag: np.ndarray | None = None):
        self.space = space
        self.mixer = mixer
        self.scale = float(scale)
        t0 = time.perf_counter()
        self.diag = space.energies() if diag is None else np.asarray(diag, dtype=np.float64)
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

    def state(self, gammas: Sequence[float], betas: Sequence[float]):
        """The final state (flat, on the engine's array device) for the given angles."""
        if len(gammas) != len(betas):
            raise ValueError("gammas and betas must have the same length")
        self.evaluations += 1
        if self.kernel == "numba":
            return self._state_numba(gammas, betas)
        return self._state_array(gammas, betas)

    def _state_numba(self, gammas, betas) -> np.ndarray:
        psi = self.initial_state()
        n_blocks = len(self.space.blocks)
        for gamma, beta in zip(gammas, betas):
            mixers = self._block_mixers(float(beta))
            angle = float(gamma) / self.scale
            if self.space.is_full:
                U = np.ascontiguousarray(np.stack(mixers)) if mixers else np.zeros((0, 2, 2), np.complex128)
                kernels.layer_full(psi, self.diag, angle, U, n_blocks, kernels.LOW_QUBITS)
            else:
                kernels.phase(psi, self.diag, angle)
                for U, size, stride in zip(mixers, self.space.sizes, self.space.strides):
                    kernels.apply_axis(psi, np.ascontiguousarray(U), psi.size // (size * stride), size, stride)
        return psi

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
        psi = self.state(gammas, betas)
        if self.kernel == "numba":
            out = np.empty(psi.size)
            kernels.probabilities(psi, out)
            return out
        return self.arrays.to_host(psi.real**2 + psi.imag**2)

    def expectation(self, gammas, betas) -> float:
        """Exact <E> in the QUBO's energy units."""
        psi = self.state(gammas, betas)
        if self.kernel == "numba":
            return float(kernels.expectation(psi, self.diag))
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
