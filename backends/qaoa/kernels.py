"""Numba kernels of the CPU statevector engine, and the thread settings of every library used.

The state is kept as two float64 arrays (real and imaginary parts, "split complex"), so every
loop below is plain float arithmetic over contiguous rows that LLVM vectorises (AVX2 / AVX-512);
interleaved complex128 loops stayed scalar.

The state is a mixed-radix tensor (see :mod:`backends.qaoa.space`): block ``b`` is an axis of
size ``sizes[b]`` and stride ``strides[b]`` (block 0 fastest). One QAOA layer (phase
``exp(-i angle * diag)``, then a k x k mixer on every axis) runs in a few cache-blocked passes
(see :class:`Plan`) instead of one pass over the whole state per axis:

* the *chunk pass*: for every chunk of ``L`` consecutive amplitudes (the lowest blocks, ``L`` at
  most :data:`CHUNK_AMPLITUDES`, so a chunk stays in L1/L2) the phase multiply, then the mixers of
  the low blocks, all inside the chunk (on the first layer the chunk is written from the
  product initial state instead of being read);
* one or more *tile passes*: the remaining blocks in groups whose product ``M`` times a run
  length ``T`` fits :data:`TILE_AMPLITUDES`; a tile (``T`` consecutive low indices for every
  value of the group's digits) is gathered into a contiguous per-thread buffer, mixed there
  (every row at least ``T`` long, so vectorised) and scattered back. Gathering avoids the
  cache-set conflicts of working in place at power-of-two strides.

So a layer reads and writes the state about twice, whatever the number of blocks, and the
expectation of the last layer is summed while its last pass writes the state back.

Threads: the pass kernels release the GIL and take (th, nt); :func:`evolve` runs nt of them on a
small thread pool, each on every nt-th chunk or tile (static split: results do not depend on the
thread count). numba's ``parallel=True`` would do the same but made the first compile ~40 %
longer (12-17 s). Measured on the shared 2-core box: the first compile on a fresh checkout takes
9-12 s (cache=True: once per checkout), loading the cache 0.3-0.5 s per process (:func:`warm_up`).

Mixer kinds: ``KIND_GENERIC`` (any k x k complex matrix), ``KIND_RX`` (k = 2 and
``[[c, -i s], [-i s, c]]``, the plain X mixer: half the arithmetic), ``KIND_IDENTITY`` (k = 1).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CHUNK_AMPLITUDES",
    "HAVE_NUMBA",
    "KIND_GENERIC",
    "KIND_IDENTITY",
    "KIND_RX",
    "TILE_AMPLITUDES",
    "Plan",
    "evolve",
    "plan",
    "probabilities",
    "threads",
    "warm_up",
]

#: Amplitudes of one chunk of the chunk pass (2^13: 192 KiB of state and diagonal, in L2).
CHUNK_AMPLITUDES = 1 << 13
#: Amplitudes of one gathered tile (2^16: 1 MiB of state per thread, in L2).
TILE_AMPLITUDES = 1 << 16
#: Shortest row a tile is built from where the low blocks allow it (shorter rows ran ~2x slower).
MIN_RUN = 16

KIND_GENERIC, KIND_RX, KIND_IDENTITY = 0, 1, 2

try:
    import numba
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is installed with the project
    HAVE_NUMBA = False


@dataclass(frozen=True)
class Plan:
    """How a layer is split into passes, for a state with block sizes ``sizes``.

    ``low`` blocks (0..low-1) are mixed in the chunk pass over chunks of ``chunk`` amplitudes;
    each ``(first, last, run)`` in ``tiles`` is a tile pass over blocks first..last-1 with runs
    of ``run`` consecutive low indices.
    """

    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    dimension: int
    low: int
    chunk: int
    tiles: tuple[tuple[int, int, int], ...]


def plan(sizes: Sequence[int], *, chunk_amplitudes: int = CHUNK_AMPLITUDES,
         tile_amplitudes: int = TILE_AMPLITUDES) -> Plan:
    """The pass structure for a mixed-radix state (block 0 fastest)."""
    sizes = tuple(int(k) for k in sizes)
    strides = [1]
    for k in sizes:
        strides.append(strides[-1] * k)
    dimension = strides[-1]
    low = 0
    while low < len(sizes) and strides[low + 1] <= chunk_amplitudes:
        low += 1
    tiles = []
    first = low
    while first < len(sizes):
        last = first + 1
        # Grow the group while a run of MIN_RUN still fits the tile (or the low part is shorter).
        while last < len(sizes) and strides[last + 1] // strides[first] * min(MIN_RUN, strides[first]) \
                <= tile_amplitudes:
            last += 1
        group = strides[last] // strides[first]
        run = 1
        for t in range(first + 1):
            if group * strides[t] <= tile_amplitudes:
                run = strides[t]
        tiles.append((first, last, run))
        first = last
    return Plan(sizes, tuple(strides[:-1]), dimension, low, strides[low], tuple(tiles))


if HAVE_NUMBA:
    _TWO_PI = 2.0 * np.pi
    _FAST = {"contract"}  # fused multiply-add only: no reassociation, results stay reproducible

    @njit(cache=True, nogil=True, inline="always", fastmath=_FAST)
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

    # ------------------------------------------------------------------ 2 x 2 butterflies
    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _pair(re, im, j, k, u):
        """(psi_j, psi_k) <- U (psi_j, psi_k); u = (u00r, u00i, u01r, u01i, u10r, u10i, u11r, u11i)."""
        xr = re[j]
        xi = im[j]
        yr = re[k]
        yi = im[k]
        re[j] = u[0] * xr - u[1] * xi + u[2] * yr - u[3] * yi
        im[j] = u[0] * xi + u[1] * xr + u[2] * yi + u[3] * yr
        re[k] = u[4] * xr - u[5] * xi + u[6] * yr - u[7] * yi
        im[k] = u[4] * xi + u[5] * xr + u[6] * yi + u[7] * yr

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _pair_rx(re, im, j, k, c, s):
        """(psi_j, psi_k) <- [[c, -i s], [-i s, c]] (psi_j, psi_k)."""
        xr = re[j]
        xi = im[j]
        yr = re[k]
        yi = im[k]
        re[j] = c * xr + s * yi
        im[j] = c * xi - s * yr
        re[k] = c * yr + s * xi
        im[k] = c * yi - s * xr

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _axis2(re, im, base, outer, inner, u, rx):
        """A 2 x 2 mixer along the middle axis of re/im[base:] viewed as (outer, 2, inner)."""
        # Coefficients in locals (a tuple): LLVM cannot prove the state's stores leave the
        # coefficient array alone, and reloading it every iteration would keep the loops scalar.
        u = (u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7])
        c = u[0]
        s = -u[3]
        if inner == 1:
            # Pairs (2o, 2o + 1): a fixed stride-2 pattern LLVM vectorises with shuffles.
            if rx:
                for o in range(outer):
                    _pair_rx(re, im, base + 2 * o, base + 2 * o + 1, c, s)
            else:
                for o in range(outer):
                    _pair(re, im, base + 2 * o, base + 2 * o + 1, u)
        elif inner == 2:
            for o in range(outer):
                j = base + 4 * o
                if rx:
                    _pair_rx(re, im, j, j + 2, c, s)
                    _pair_rx(re, im, j + 1, j + 3, c, s)
                else:
                    _pair(re, im, j, j + 2, u)
                    _pair(re, im, j + 1, j + 3, u)
        elif inner == 4:
            for o in range(outer):
                j = base + 8 * o
                if rx:
                    for t in range(4):
                        _pair_rx(re, im, j + t, j + t + 4, c, s)
                else:
                    for t in range(4):
                        _pair(re, im, j + t, j + t + 4, u)
        else:
            for o in range(outer):
                b = base + 2 * o * inner
                # Zero-based slices: LLVM proves the rows disjoint and vectorises the loop.
                r0 = re[b:b + inner]
                i0 = im[b:b + inner]
                r1 = re[b + inner:b + 2 * inner]
                i1 = im[b + inner:b + 2 * inner]
                if rx:
                    for t in range(inner):
                        xr = r0[t]
                        xi = i0[t]
                        yr = r1[t]
                        yi = i1[t]
                        r0[t] = c * xr + s * yi
                        i0[t] = c * xi - s * yr
                        r1[t] = c * yr + s * xi
                        i1[t] = c * yi - s * xr
                else:
                    for t in range(inner):
                        xr = r0[t]
                        xi = i0[t]
                        yr = r1[t]
                        yi = i1[t]
                        r0[t] = u[0] * xr - u[1] * xi + u[2] * yr - u[3] * yi
                        i0[t] = u[0] * xi + u[1] * xr + u[2] * yi + u[3] * yr
                        r1[t] = u[4] * xr - u[5] * xi + u[6] * yr - u[7] * yi
                        i1[t] = u[4] * xi + u[5] * xr + u[6] * yi + u[7] * yr

    @njit(cache=True, nogil=True, inline="always", fastmath=_FAST)
    def _quad(re, im, j, st, U):
        """The four amplitudes j, j + st, j + 2 st, j + 3 st <- U (them); U is (re, im) x 4 x 4 flattened."""
        x0r = re[j]
        x1r = re[j + st]
        x2r = re[j + 2 * st]
        x3r = re[j + 3 * st]
        x0i = im[j]
        x1i = im[j + st]
        x2i = im[j + 2 * st]
        x3i = im[j + 3 * st]
        for r in range(4):
            o = 8 * r
            re[j + r * st] = (U[o] * x0r - U[o + 1] * x0i + U[o + 2] * x1r - U[o + 3] * x1i
                              + U[o + 4] * x2r - U[o + 5] * x2i + U[o + 6] * x3r - U[o + 7] * x3i)
            im[j + r * st] = (U[o] * x0i + U[o + 1] * x0r + U[o + 2] * x1i + U[o + 3] * x1r
                              + U[o + 4] * x2i + U[o + 5] * x2r + U[o + 6] * x3i + U[o + 7] * x3r)

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _axis4(re, im, base, outer, inner, U):
        """A 4 x 4 mixer (the 4-plan group, freight's common case) along (outer, 4, inner).

        ``U`` holds row-major (real, imag) pairs. Short rows (inner 1, 2 or 4) use fixed index
        patterns, longer ones one pass over the four rows at a time, all four outputs per load.
        Coefficients go into locals first (see :func:`_axis2`).
        """
        U = (U[0], U[1], U[2], U[3], U[4], U[5], U[6], U[7], U[8], U[9], U[10], U[11], U[12], U[13], U[14], U[15],
             U[16], U[17], U[18], U[19], U[20], U[21], U[22], U[23], U[24], U[25], U[26], U[27], U[28], U[29],
             U[30], U[31])
        if inner == 1:
            for o in range(outer):
                _quad(re, im, base + 4 * o, 1, U)
        elif inner == 2:
            for o in range(outer):
                j = base + 8 * o
                _quad(re, im, j, 2, U)
                _quad(re, im, j + 1, 2, U)
        elif inner == 4:
            for o in range(outer):
                j = base + 16 * o
                for t in range(4):
                    _quad(re, im, j + t, 4, U)
        else:
            a00r, a00i, a01r, a01i, a02r, a02i, a03r, a03i = U[0], U[1], U[2], U[3], U[4], U[5], U[6], U[7]
            a10r, a10i, a11r, a11i, a12r, a12i, a13r, a13i = U[8], U[9], U[10], U[11], U[12], U[13], U[14], U[15]
            a20r, a20i, a21r, a21i, a22r, a22i, a23r, a23i = U[16], U[17], U[18], U[19], U[20], U[21], U[22], U[23]
            a30r, a30i, a31r, a31i, a32r, a32i, a33r, a33i = U[24], U[25], U[26], U[27], U[28], U[29], U[30], U[31]
            for o in range(outer):
                b = base + 4 * o * inner
                r0 = re[b:b + inner]
                i0 = im[b:b + inner]
                r1 = re[b + inner:b + 2 * inner]
                i1 = im[b + inner:b + 2 * inner]
                r2 = re[b + 2 * inner:b + 3 * inner]
                i2 = im[b + 2 * inner:b + 3 * inner]
                r3 = re[b + 3 * inner:b + 4 * inner]
                i3 = im[b + 3 * inner:b + 4 * inner]
                for t in range(inner):
                    x0r = r0[t]
                    x1r = r1[t]
                    x2r = r2[t]
                    x3r = r3[t]
                    x0i = i0[t]
                    x1i = i1[t]
                    x2i = i2[t]
                    x3i = i3[t]
                    r0[t] = (a00r * x0r - a00i * x0i + a01r * x1r - a01i * x1i
                             + a02r * x2r - a02i * x2i + a03r * x3r - a03i * x3i)
                    i0[t] = (a00r * x0i + a00i * x0r + a01r * x1i + a01i * x1r
                             + a02r * x2i + a02i * x2r + a03r * x3i + a03i * x3r)
                    r1[t] = (a10r * x0r - a10i * x0i + a11r * x1r - a11i * x1i
                             + a12r * x2r - a12i * x2i + a13r * x3r - a13i * x3i)
                    i1[t] = (a10r * x0i + a10i * x0r + a11r * x1i + a11i * x1r
                             + a12r * x2i + a12i * x2r + a13r * x3i + a13i * x3r)
                    r2[t] = (a20r * x0r - a20i * x0i + a21r * x1r - a21i * x1i
                             + a22r * x2r - a22i * x2i + a23r * x3r - a23i * x3i)
                    i2[t] = (a20r * x0i + a20i * x0r + a21r * x1i + a21i * x1r
                             + a22r * x2i + a22i * x2r + a23r * x3i + a23i * x3r)
                    r3[t] = (a30r * x0r - a30i * x0i + a31r * x1r - a31i * x1i
                             + a32r * x2r - a32i * x2i + a33r * x3r - a33i * x3i)
                    i3[t] = (a30r * x0i + a30i * x0r + a31r * x1i + a31i * x1r
                             + a32r * x2i + a32i * x2r + a33r * x3i + a33i * x3r)

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _axis_rows(re, im, base, outer, k, inner, Ur, Ui, sre, sim):
        """A k x k mixer along rows of length ``inner`` (vectorised over the row), via scratch rows."""
        for o in range(outer):
            b = base + o * k * inner
            for r in range(k):
                ar = sre[r * inner:(r + 1) * inner]
                ai = sim[r * inner:(r + 1) * inner]
                xr = re[b:b + inner]
                xi = im[b:b + inner]
                ur = Ur[r, 0]
                ui = Ui[r, 0]
                for t in range(inner):
                    ar[t] = ur * xr[t] - ui * xi[t]
                    ai[t] = ur * xi[t] + ui * xr[t]
                for c in range(1, k):
                    xr = re[b + c * inner:b + (c + 1) * inner]
                    xi = im[b + c * inner:b + (c + 1) * inner]
                    ur = Ur[r, c]
                    ui = Ui[r, c]
                    for t in range(inner):
                        ar[t] += ur * xr[t] - ui * xi[t]
                        ai[t] += ur * xi[t] + ui * xr[t]
            dr = re[b:b + k * inner]
            di = im[b:b + k * inner]
            for t in range(k * inner):
                dr[t] = sre[t]
                di[t] = sim[t]

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _axis_scalar(re, im, base, outer, k, inner, Ur, Ui, sre, sim):
        """A k x k mixer where rows are too short to vectorise (any k, any inner)."""
        for o in range(outer):
            b = base + o * k * inner
            for t in range(inner):
                for c in range(k):
                    sre[c] = re[b + c * inner + t]
                    sim[c] = im[b + c * inner + t]
                for r in range(k):
                    accr = 0.0
                    acci = 0.0
                    for c in range(k):
                        accr += Ur[r, c] * sre[c] - Ui[r, c] * sim[c]
                        acci += Ur[r, c] * sim[c] + Ui[r, c] * sre[c]
                    re[b + r * inner + t] = accr
                    im[b + r * inner + t] = acci

    @njit(cache=True, nogil=True)
    def _axis(re, im, base, span, k, inner, Ur, Ui, u2, u4, kind, sre, sim):
        """Mixer of one block on re/im[base:base + span] viewed as (span / (k inner), k, inner)."""
        if kind == 2 or k == 1:
            return
        outer = span // (k * inner)
        if k == 2:
            _axis2(re, im, base, outer, inner, u2, kind == 1)
        elif k == 4:
            _axis4(re, im, base, outer, inner, u4)
        elif inner >= 8:
            _axis_rows(re, im, base, outer, k, inner, Ur, Ui, sre, sim)
        else:
            _axis_scalar(re, im, base, outer, k, inner, Ur, Ui, sre, sim)

    @njit(cache=True, nogil=True)
    def _mix(re, im, base, span, first, last, mult, div, sizes, strides, Ur, Ui, U2, U4, kinds, sre, sim):
        """Mixers of blocks first..last-1 on re/im[base:base + span]; block b's stride there is
        strides[b] * mult // div."""
        for b in range(first, last):
            k = sizes[b]
            _axis(re, im, base, span, k, strides[b] * mult // div, Ur[b, :k, :k], Ui[b, :k, :k], U2[b], U4[b],
                  kinds[b], sre, sim)

    # ------------------------------------------------------------------ passes
    # Plain (not numba-parallel) kernels that release the GIL: evolve() runs one per thread,
    # each on every nt-th chunk or tile. numba's parfor machinery took ~12 s to compile them
    # on a fresh checkout; this way the whole module compiles in a few seconds.
    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _chunk_pass(re, im, diag, angle, chunk, low, sizes, strides, Ur, Ui, U2, U4, kinds, init_lo, init_hi,
                    initialise, want_expectation, th, nt):
        """Phase and the mixers of blocks 0..low-1 in chunks th, th + nt, ... of ``chunk`` amplitudes.

        Returns the chunks' share of the expectation when ``want_expectation`` (else 0).
        """
        n_chunks = re.size // chunk
        kmax = 1
        for b in range(low):
            kmax = max(kmax, sizes[b])
        sre = np.empty(chunk + kmax)
        sim = np.empty(chunk + kmax)
        total = 0.0
        for ch in range(th, n_chunks, nt):
            s = ch * chunk
            r = re[s:s + chunk]
            i = im[s:s + chunk]
            d = diag[s:s + chunk]
            if initialise:
                # The product initial state is real: amplitude = hi factor * lo factor.
                h = init_hi[ch]
                for t in range(chunk):
                    c, sn = _cos_sin(angle * d[t])
                    a = h * init_lo[t]
                    r[t] = c * a
                    i[t] = -sn * a
            else:
                for t in range(chunk):
                    c, sn = _cos_sin(angle * d[t])
                    xr = r[t]
                    xi = i[t]
                    r[t] = c * xr + sn * xi
                    i[t] = c * xi - sn * xr
            _mix(re, im, s, chunk, 0, low, 1, 1, sizes, strides, Ur, Ui, U2, U4, kinds, sre, sim)
            if want_expectation:
                for t in range(chunk):
                    total += (r[t] * r[t] + i[t] * i[t]) * d[t]
        return total

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _tile_pass(re, im, diag, first, last, run, sizes, strides, Ur, Ui, U2, U4, kinds, want_expectation, th, nt):
        """Mixers of blocks first..last-1 on tiles th, th + nt, ..., each through a gathered buffer.

        Returns the tiles' share of the expectation when ``want_expectation`` (else 0).
        """
        N = re.size
        S0 = strides[first]
        group = 1
        kmax = 1
        for b in range(first, last):
            group *= sizes[b]
            kmax = max(kmax, sizes[b])
        span = group * run
        runs_per_low = S0 // run
        n_tiles = (N // (S0 * group)) * runs_per_low
        bre = np.empty(span)
        bim = np.empty(span)
        sre = np.empty(span + kmax)
        sim = np.empty(span + kmax)
        total = 0.0
        for tile in range(th, n_tiles, nt):
            outer = tile // runs_per_low
            start = outer * S0 * group + (tile % runs_per_low) * run
            for m in range(group):
                src = start + m * S0
                gr = re[src:src + run]
                gi = im[src:src + run]
                dr = bre[m * run:(m + 1) * run]
                di = bim[m * run:(m + 1) * run]
                for t in range(run):
                    dr[t] = gr[t]
                    di[t] = gi[t]
            _mix(bre, bim, 0, span, first, last, run, S0, sizes, strides, Ur, Ui, U2, U4, kinds, sre, sim)
            for m in range(group):
                dst = start + m * S0
                gr = re[dst:dst + run]
                gi = im[dst:dst + run]
                sr = bre[m * run:(m + 1) * run]
                si = bim[m * run:(m + 1) * run]
                for t in range(run):
                    gr[t] = sr[t]
                    gi[t] = si[t]
                if want_expectation:
                    d = diag[dst:dst + run]
                    for t in range(run):
                        total += (sr[t] * sr[t] + si[t] * si[t]) * d[t]
        return total


    @njit(cache=True, nogil=True, fastmath=_FAST)
    def _probabilities(re, im, out, th, nt):
        """out_j = re_j^2 + im_j^2 for the th-th of nt contiguous slices."""
        n = re.size
        lo = n * th // nt
        hi = n * (th + 1) // nt
        for j in range(lo, hi):
            out[j] = re[j] * re[j] + im[j] * im[j]
        return 0.0

#: Below this many amplitudes a pass runs on the calling thread (thread hand-off costs more).
_PARALLEL_MIN = 1 << 15
_POOL: list = []  # [(workers, ThreadPoolExecutor)], created on first use
#: Threads the passes use when the caller does not say (set by :func:`threads`).
_THREADS = [1]


def _run(kernel, args, units: int, threads: int) -> float:
    """Run ``kernel(*args, th, nt)`` for th < nt on up to ``threads`` threads; the sum of results."""
    nt = max(1, min(threads, units))
    if nt == 1:
        return float(kernel(*args, 0, 1))
    if not _POOL or _POOL[0][0] < nt - 1:
        from concurrent.futures import ThreadPoolExecutor

        if _POOL:
            _POOL.pop()[1].shutdown(wait=False)
        # The calling thread does share 0; the pool runs the others.
        _POOL.append((nt - 1, ThreadPoolExecutor(max_workers=nt - 1, thread_name_prefix="qaoa-kernel")))
    futures = [_POOL[0][1].submit(kernel, *args, th, nt) for th in range(1, nt)]
    total = float(kernel(*args, 0, nt))
    return total + sum(float(f.result()) for f in futures)


def evolve(p: Plan, re: np.ndarray, im: np.ndarray, diag: np.ndarray, angles: Sequence[float],
           mixers: Sequence[tuple[np.ndarray, ...]], init_lo: np.ndarray, init_hi: np.ndarray, *,
           want_expectation: bool, threads: int | None = None) -> float | None:
    """Write the QAOA state into ``re``/``im`` (overwritten), layer by layer.

    ``angles[l]`` multiplies the diagonal in layer l's phase ``exp(-i angle diag)``; ``mixers[l]``
    is ``(Ur, Ui, U2, U4, kinds)``: per block the real and imaginary parts of its mixer padded to
    (blocks, kmax, kmax), its leading 2 x 2 and 4 x 4 corners flattened as row-major (real, imag)
    pairs (8 and 32 floats; used for k = 2 and k = 4 blocks) and the kind.
    The initial state is ``init_hi[h] * init_lo[l]`` at index ``h * p.chunk + l``. Returns the
    exact expectation of ``diag`` when ``want_expectation``. ``threads`` (default: the count
    :func:`threads` set, else 1) is how many threads share each pass.
    """
    sizes = np.asarray(p.sizes, dtype=np.int64)
    strides = np.asarray(p.strides, dtype=np.int64)
    if threads is None:
        threads = _THREADS[0]
    if p.dimension < _PARALLEL_MIN:
        threads = 1
    total = None
    layers = len(angles)
    for layer, (angle, (Ur, Ui, U2, U4, kinds)) in enumerate(zip(angles, mixers)):
        last_layer = layer == layers - 1
        expect_here = want_expectation and last_layer and not p.tiles
        value = _run(_chunk_pass, (re, im, diag, float(angle), p.chunk, p.low, sizes, strides, Ur, Ui, U2, U4,
                                   kinds, init_lo, init_hi, layer == 0, expect_here),
                     p.dimension // p.chunk, threads)
        if expect_here:
            total = value
        for t, (first, last, run) in enumerate(p.tiles):
            expect_here = want_expectation and last_layer and t == len(p.tiles) - 1
            group = p.strides[last] // p.strides[first] if last < len(p.sizes) else p.dimension // p.strides[first]
            value = _run(_tile_pass, (re, im, diag, first, last, run, sizes, strides, Ur, Ui, U2, U4, kinds,
                                      expect_here), p.dimension // (group * run), threads)
            if expect_here:
                total = value
    return total


def probabilities(re: np.ndarray, im: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """|psi|^2 as a new array, in one pass (numpy's two temporaries cost ~10x more at 4^12)."""
    out = np.empty(re.size)
    if threads is None:
        threads = _THREADS[0]
    _run(_probabilities, (re, im, out), 1 if re.size < _PARALLEL_MIN else threads, threads)
    return out


def warm_up() -> float:
    """Load (or compile) every kernel signature on a tiny state; returns the seconds it took.

    The first call in a process pays numba's cache load (0.3-0.5 s) or, without a cache (a fresh
    checkout), the compile (9-12 s on the 2-core box); later calls return at once. Solvers call
    it inside their time limit and report the seconds as the start-up cost of the run.
    """
    import time

    if not HAVE_NUMBA or _WARM[0]:
        return 0.0
    t0 = time.perf_counter()
    for sizes in ((2, 2, 2, 2), (4, 3, 2)):
        p = plan(sizes, chunk_amplitudes=8, tile_amplitudes=64)
        B, kmax = len(sizes), max(sizes)
        Ur = np.zeros((B, kmax, kmax))
        Ui = np.zeros((B, kmax, kmax))
        for b, k in enumerate(sizes):
            Ur[b, :k, :k] = np.eye(k)
        U2 = np.tile(np.array([1.0, 0, 0, 0, 0, 0, 1.0, 0]), (B, 1))
        U4 = np.tile(np.eye(4, dtype=np.complex128).reshape(16).view(np.float64), (B, 1))
        kinds = np.array([KIND_RX if k == 2 else KIND_GENERIC for k in sizes], dtype=np.int64)
        re, im = np.empty(p.dimension), np.empty(p.dimension)
        diag = np.zeros(p.dimension)
        init_lo = np.ones(p.chunk)
        init_hi = np.ones(p.dimension // p.chunk)
        evolve(p, re, im, diag, [0.1], [(Ur, Ui, U2, U4, kinds)], init_lo, init_hi, want_expectation=True)
        probabilities(re, im)
    _WARM[0] = True
    return time.perf_counter() - t0


_WARM = [False]


def _set_blas_threads(count: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=count)


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """Run a block with the kernels' passes, numba, BLAS (via threadpoolctl, when installed) and
    torch on ``count`` threads.

    Aer takes its thread count per simulator (``max_parallel_threads``), set where it is built.
    Previous settings are restored afterwards so other backends in the process are unaffected.
    """
    restore: list = []
    previous_kernel = _THREADS[0]
    _THREADS[0] = max(1, int(count))
    restore.append(lambda: _THREADS.__setitem__(0, previous_kernel))
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
