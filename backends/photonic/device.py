"""The simulated photonic device: a spec, the Strawberry Fields circuit, and a batched sampler.

A QUBO of n variables uses n of the device's modes (one mode per variable; a click on mode i
proposes x_i = 1). A real symmetric matrix A is encoded the standard way (Strawberry Fields'
``GraphEmbed``; Bradler et al., PRA 98, 032310 (2018)): A is scaled so the pure state's mean photon
number is the device's target (capped by its maximum squeezing), Takagi-decomposed as
A = U diag(tanh r) U^T, and the circuit is

    Sgate(-r_k) on every mode  ->  Interferometer(U) (Clements mesh of beamsplitters)
    ->  LossChannel(transmissivity) on every mode  ->  MeasureFock / MeasureThreshold

run on SF's ``gaussian`` backend. Two ways to draw samples from it:

* ``sampler="state"`` (default): run the program once without the measurement, keep its
  covariance matrix, and draw batches with thewalrus's samplers -- exactly what SF's
  measurement does internally, without rebuilding and re-running the program per call
  (which made SF 2.5-13x slower per sample than thewalrus at 8-32 modes).
* ``sampler="engine"``: ``eng.run(program, shots=batch)`` with the measurement in the program,
  batch after batch (slower; the reference path).

Randomness: thewalrus's samplers (and SF's apps.clique) draw from numpy's *global* legacy RNG and
take no seed or Generator, so every call goes through :func:`isolated_global_rng`, which seeds the
global state from the run's Generator and restores the caller's state afterwards.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from .compat import import_strawberryfields

__all__ = ["DeviceSpec", "EncodedCircuit", "GBSSampler", "encode", "isolated_global_rng",
           "first_use_compile_notice", "ensure_ready"]

log = logging.getLogger(__name__)

DETECTORS = ("threshold", "pnr")
SAMPLERS = ("state", "engine")


@dataclass(frozen=True)
class DeviceSpec:
    """What a photonic chip offers (defaults: a small programmable-interferometer device)."""

    modes: int = 16                 # largest QUBO (or subproblem) it accepts
    mean_photons: float = 4.0       # target mean photon number of the squeezed state, all modes
    max_squeezing: float = 1.5      # largest squeezing parameter r a source can produce
    transmissivity: float = 1.0     # per-mode transmission (1 - loss), sources to detectors
    detectors: str = "threshold"    # "threshold" (click / no click) or "pnr" (photon-number resolving)
    samples: int = 200              # samples drawn per solve call
    cutoff: int = 6                 # PNR: Fock cutoff of the sampler; threshold: ignored
    max_photons: int = 30           # samples with more photons (clicks) are redrawn

    def __post_init__(self) -> None:
        if self.modes < 1:
            raise ValueError(f"modes must be >= 1, got {self.modes}")
        if not self.mean_photons > 0:
            raise ValueError(f"mean_photons must be > 0, got {self.mean_photons}")
        if not self.max_squeezing > 0:
            raise ValueError(f"max_squeezing must be > 0, got {self.max_squeezing}")
        if not 0 < self.transmissivity <= 1:
            raise ValueError(f"transmissivity must be in (0, 1], got {self.transmissivity}")
        if self.detectors not in DETECTORS:
            raise ValueError(f"detectors must be one of {DETECTORS}, got {self.detectors!r}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.cutoff < 2 or self.max_photons < 1:
            raise ValueError("cutoff must be >= 2 and max_photons >= 1")

    @property
    def threshold(self) -> bool:
        return self.detectors == "threshold"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --------------------------------------------------------------------------- randomness
_GLOBAL_RNG_LOCK = threading.RLock()


@contextmanager
def isolated_global_rng(seed: int) -> Iterator[None]:
    """Run a block with numpy's global RNG seeded to ``seed``, then restore the caller's state.

    Why: thewalrus.samples (np.random.normal / np.random.choice) and SF's apps.clique take no seed
    or Generator. Seeding the global state here makes a run reproducible; restoring it on exit
    means nothing leaks to the caller. The lock keeps two threads from interleaving draws.
    """
    with _GLOBAL_RNG_LOCK:
        saved = np.random.get_state()
        np.random.seed(int(seed) % (2**32))
        try:
            yield
        finally:
            np.random.set_state(saved)


_FIRST_SAMPLE_DONE = False
_READY: set[str] = set()


def first_use_compile_notice() -> bool:
    """Log, once per process, that thewalrus's numba kernels compile on first use."""
    global _FIRST_SAMPLE_DONE
    if _FIRST_SAMPLE_DONE:
        return False
    _FIRST_SAMPLE_DONE = True
    log.info("photonic: first GBS sample in this process; thewalrus's numba kernels load or compile "
             "now (tens of seconds the very first time, cached on disk afterwards)")
    return True


def ensure_ready(threshold: bool) -> float:
    """Import SF and load thewalrus's sampling kernels for one detector kind; seconds spent now.

    The kernels are numba functions compiled on first use and cached on disk: loading them takes
    about 0.3 s in a fresh process, compiling them (no cache yet, once per machine) 29-40 s for the
    torontonian and 10 s for the hafnian sampler on this project's 2-core machines
    (``benchmarks/photonic.py --sections startup``). Doing it here,
    on a 2-mode state, makes that one-time cost a separate, measured start-up figure instead of
    an unannounced stall inside the first batch; the solver reports it as ``timing["startup"]``.
    """
    kind = "threshold" if threshold else "pnr"
    if kind in _READY:
        return 0.0
    first_use_compile_notice()
    t0 = time.perf_counter()
    import_strawberryfields()
    cov = np.diag([np.exp(-0.6), 1.0, np.exp(0.6), 1.0])   # squeezed vacuum (r = 0.3) and vacuum, xxpp
    with isolated_global_rng(0), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        if threshold:
            from thewalrus.samples import torontonian_sample_state

            torontonian_sample_state(cov, 1, hbar=2)
        else:
            from thewalrus.samples import hafnian_sample_state

            hafnian_sample_state(cov, 1, hbar=2, cutoff=3)
    _READY.add(kind)
    seconds = time.perf_counter() - t0
    log.info("photonic: %s sampler ready after %.1f s (start-up, counted in the time limit)", kind, seconds)
    return seconds


# --------------------------------------------------------------------------- encoding
def _mean_photons(tanh_r: np.ndarray) -> float:
    t2 = np.clip(tanh_r, 0.0, 1.0 - 1e-15) ** 2
    return float(np.sum(t2 / (1.0 - t2)))   # sum sinh^2 r with tanh r = s


@dataclass(frozen=True)
class EncodedCircuit:
    """A matrix encoded for the device: squeezing, interferometer, and what it implies."""

    A: np.ndarray                 # the scaled matrix actually encoded (singular values < 1)
    squeezing: np.ndarray         # r_k >= 0 (the program applies Sgate(-r_k))
    U: np.ndarray                 # interferometer unitary
    mean_photons: float           # mean photon number before loss
    squeezing_capped: bool        # True when max_squeezing limited the mean photon number


def encode(A: np.ndarray, device: DeviceSpec, *, mean_photons: float | None = None,
           rescale: bool = True) -> EncodedCircuit:
    """Scale a real symmetric matrix to the target mean photon number and Takagi-decompose it.

    ``rescale=False`` keeps A's scale (a trained VGBS matrix); the squeezing cap still applies.
    """
    sf = import_strawberryfields()
    from thewalrus.quantum import adj_scaling

    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.allclose(A, A.T):
        raise ValueError("the encoded matrix must be real, square and symmetric")
    n = A.shape[0]
    target = device.mean_photons if mean_photons is None else mean_photons
    if not np.any(A):
        # Nothing to encode (e.g. a QUBO without couplings): the vacuum, no photons.
        return EncodedCircuit(A, np.zeros(n), np.eye(n, dtype=complex), 0.0, False)
    scaled = adj_scaling(A, target) * A if rescale else A
    s, U = sf.decompositions.takagi(scaled, tol=1e-10)
    s = np.asarray(s, dtype=np.float64)
    capped = False
    limit = np.tanh(device.max_squeezing)
    if s.max() > limit:
        factor = limit / s.max()
        scaled, s, capped = scaled * factor, s * factor, True
    return EncodedCircuit(scaled, np.arctanh(s), np.asarray(U), _mean_photons(s), capped)


# --------------------------------------------------------------------------- sampling
class GBSSampler:
    """Strawberry Fields GBS program for one encoded matrix, sampled in batches."""

    def __init__(self, circuit: EncodedCircuit, device: DeviceSpec, *, sampler: str = "state"):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.circuit, self.device, self.sampler = circuit, device, sampler
        self.n = int(circuit.A.shape[0])
        t0 = time.perf_counter()
        self._sf = import_strawberryfields()
        self.program = self._program(measure=sampler == "engine")
        self._engine = self._sf.Engine("gaussian")
        self.cov: np.ndarray | None = None
        if sampler == "state":
            state = self._engine.run(self.program).state
            self.cov = np.asarray(state.cov(), dtype=np.float64)
            self._hbar = float(state.hbar)
        self.build_seconds = time.perf_counter() - t0

    def _program(self, *, measure: bool):
        sf = self._sf
        ops = sf.ops
        prog = sf.Program(self.n)
        with prog.context as q:
            for k, r in enumerate(self.circuit.squeezing):
                if r > 1e-12:
                    ops.Sgate(-float(r)) | q[k]
            if self.n > 1 and not np.allclose(self.circuit.U, np.eye(self.n)):
                ops.Interferometer(self.circuit.U, mesh="rectangular") | q
            if self.device.transmissivity < 1:
                for k in range(self.n):
                    ops.LossChannel(self.device.transmissivity) | q[k]
            if measure:
                (ops.MeasureThreshold() if self.device.threshold else ops.MeasureFock()) | q
        return prog

    def expected_photons(self) -> float:
        """Mean photon number at the detectors (after loss)."""
        return self.circuit.mean_photons * self.device.transmissivity

    def sample(self, shots: int, *, seed: int) -> np.ndarray:
        """``shots`` detector patterns (photon counts for PNR, 0/1 clicks for threshold)."""
        if shots < 1:
            return np.zeros((0, self.n), dtype=np.int64)
        if self.circuit.mean_photons == 0:
            return np.zeros((shots, self.n), dtype=np.int64)
        dev = self.device
        with isolated_global_rng(seed), warnings.catch_warnings():
            # SF warns that a multi-shot Fock measurement does not update the conditional state;
            # irrelevant here: the measurement is the last operation of the program.
            warnings.filterwarnings("ignore", message="Cannot simulate non-Gaussian states")
            if self.sampler == "engine":
                if self._engine.run_progs:
                    self._engine.reset()  # each batch starts from the vacuum again
                out = self._engine.run(self.program, shots=shots).samples
            elif dev.threshold:
                from thewalrus.samples import torontonian_sample_state

                out = torontonian_sample_state(self.cov, shots, hbar=self._hbar, max_photons=dev.max_photons)
            else:
                from thewalrus.samples import hafnian_sample_state

                out = hafnian_sample_state(self.cov, shots, hbar=self._hbar, cutoff=dev.cutoff,
                                           max_photons=dev.max_photons)
        return np.asarray(out, dtype=np.int64).reshape(shots, self.n)
