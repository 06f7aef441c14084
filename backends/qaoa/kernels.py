"""Numba kernels of the CPU statevector engine, and the thread settings of every library used.

The full-space layer is cache-blocked: the phase multiply and the mixers of the ``LOW`` lowest
qubits run block by block (2^LOW amplitudes stay in cache), then the mixers of the remaining
qubits run tile by tile (a few contiguous amplitudes for every combination of the high bits).
So one layer reads and writes the state twice instead of n + 1 times.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np

__all__ = ["LOW_QUBITS", "layer_full", "apply_axis", "phase", "expectation", "probabilities", "threads"]

#: Qubits handled inside one cache block (2^12 complex128 = 64 KiB).
LOW_QUBITS = 12

try:
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is installed with the project
    HAVE_NUMBA = False


_TWO_PI = 2.0 * np.pi

if HAVE_NUMBA:

    @njit(cache=True, nogil=True, inline="always")
    def _cos_sin(ph):
        """cos and sin of ph to ~1e-14, as plain arithmetic so LLVM vectorises the caller's loop.

        libm's sin/cos calls cost ~20 ns per amplitude and block vectorisation; here: reduce to
        [-pi, pi], Taylor series at a quarter of the angle (error < 1e-16), then double twice.
        """
        r = ph - _TWO_PI * np.floor(ph / _TWO_PI + 0.5)
        x = 0.25 * r
        x2 = x * x
        s = x * (1.0 + x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (-1.0 / 5040 + x2 * (
            1.0 / 362880 + x2 * (-1.0 / 39916800 + x2 * (1.0 / 6227020800 + x2 * (
                -1.0 / 1307674368000 + x2 * (1.0 / 355687428096000)))))))))
        c = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24 + x2 * (-1.0 / 720 + x2 * (1.0 / 40320 + x2 * (
            -1.0 / 3628800 + x2 * (1.0 / 479001600 + x2 * (-1.0 / 87178291200 + x2 * (
                1.0 / 20922789888000))))))))
        s, c = 2.0 * s * c, 2.0 * c * c - 1.0
        s, c = 2.0 * s * c, 2.0 * c * c - 1.0
        return c, s

    @njit(parallel=True, cache=True, nogil=True)
    def layer_full(psi, diag, gamma, U, n, low):
        """psi <- (prod_q U[q]) exp(-i gamma diag) psi on 2^n amplitudes, in place."""
        N = psi.size
        low = min(low, n)
        B = 1 << low
        for blk in prange(N >> low):
            s = blk << low
            for j in range(s, s + B):
                c, sn = _cos_sin(gamma * diag[j])
                psi[j] *= complex(c, -sn)
            for q in range(low):
                st = 1 << q
                u00, u01, u10, u11 = U[q, 0, 0], U[q, 0, 1], U[q, 1, 0], U[q, 1, 1]
                for base in range(s, s + B, 2 * st):
                    for j in range(base, base + st):
                        a = psi[j]
                        b = psi[j + st]
                        psi[j] = u00 * a + u01 * b
                        psi[j + st] = u10 * a + u11 * b
        high = n - low
        if high > 0:
            # A tile: T contiguous low indices for every value of the high bits (~2^13 amplitudes).
            T = max(8, (1 << 13) >> high)
            T = min(T, B)
            for t in prange(B // T):
                off = t * T
                for q in range(low, n):
                    st = 1 << q
                    u00, u01, u10, u11 = U[q, 0, 0], U[q, 0, 1], U[q, 1, 0], U[q, 1, 1]
                    for base in range(0, N, 2 * st):
                        for hi in range(base, base + st, B):
                            j0 = hi + off
                            for j in range(j0, j0 + T):
                                a = psi[j]
                                b = psi[j + st]
                                psi[j] = u00 * a + u01 * b
                                psi[j + st] = u10 * a + u11 * b

    @njit(parallel=True, cache=True, nogil=True)
    def phase(psi, diag, gamma):
        """psi <- exp(-i gamma diag) psi, in place."""
        for j in prange(psi.size):
            c, sn = _cos_sin(gamma * diag[j])
            psi[j] *= complex(c, -sn)

    @njit(parallel=True, cache=True, nogil=True)
    def apply_axis(psi, U, outer, k, inner):
        """Apply the k x k matrix U along the middle axis of psi viewed as (outer, k, inner)."""
        for o in prange(outer):
            buf = np.empty(k, dtype=np.complex128)
            base = o * k * inner
            for i in range(inner):
                for c in range(k):
                    buf[c] = psi[base + c * inner + i]
                for r in range(k):
                    acc = 0j
                    for c in range(k):
                        acc += U[r, c] * buf[c]
                    psi[base + r * inner + i] = acc

    @njit(parallel=True, cache=True, nogil=True)
    def expectation(psi, diag):
        """sum_j |psi_j|^2 diag_j."""
        total = 0.0
        for j in prange(psi.size):
            total += (psi[j].real ** 2 + psi[j].imag ** 2) * diag[j]
        return total

    @njit(parallel=True, cache=True, nogil=True)
    def probabilities(psi, out):
        for j in prange(psi.size):
            out[j] = psi[j].real ** 2 + psi[j].imag ** 2


def _set_blas_threads(count: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=count)


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """Run a block with numba, BLAS (via threadpoolctl, when installed) and torch on ``count`` threads.

    Aer takes its thread count per simulator (``max_parallel_threads``), set where it is built.
    Previous settings are restored afterwards so other backends in the process are unaffected.
    """
    restore: list = []
    if HAVE_NUMBA:
        previous = numba.get_num_threads()
        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
        restore.append(lambda: numba.set_num_threads(previous))
    limiter = _set_blas_threads(count)
    if limiter is not None:
        restore.append(limiter.restore_original_limits)
    torch = __import__("sys").modules.get("torch")
    if torch is not None:
        previous_torch = torch.get_num_threads()
        torch.set_num_threads(count)
        restore.append(lambda: torch.set_num_threads(previous_torch))
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()


def numba_thread_ceiling() -> int:
    """Most threads numba can use in this process (NUMBA_NUM_THREADS, fixed at import)."""
    if HAVE_NUMBA:
        return int(numba.config.NUMBA_NUM_THREADS)
    return int(os.environ.get("NUMBA_NUM_THREADS", "1"))
