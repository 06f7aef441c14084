"""QaoaSolver: options, sizing (``fits``), the angle optimisation loop, final sampling, ``info``.

Simulated space. With the statevector engine and an XY mixer (``mixer = "auto"`` picks the XY
ring whenever the QUBO has one-hot groups) the state lives in the feasible subspace of the
groups: prod_g k_g * 2^(ungrouped variables) amplitudes, however many qubits that is, so a
freight piece of 10-12 shipments x 4 plans (40-48 variables, 4^10-4^12 amplitudes) is one
simulation. :meth:`QaoaSolver.fits` says whether a QUBO can be taken whole: in that mode the
amplitude count must be at most ``max_amplitudes``; otherwise (X mixer, or the Aer and
qiskit-optimization engines, which simulate all n qubits) ``num_variables <= max_variables`` and
2^n <= ``max_amplitudes``. Either way the state must fit in the memory available now
(:data:`BYTES_PER_AMPLITUDE` per amplitude); what does not fit is refused up front with a
:class:`SolverError` (:class:`ProblemTooLarge` for too many variables), never a MemoryError.

Angles. ``x = [gamma_1..gamma_p, beta_1..beta_p]`` in normalised units: the cost unitary is
exp(-i gamma E / s) with s = ``info["cost_scale"]``, the RMS of half the energy change of one
mixer move (:meth:`space.Space.move_scale`: the RMS local field of the Ising form on the full
space; on a one-hot subspace the one-hot penalties, constant there, drop out). Initialisation
(``init``):

* ``"fixed"``: the linear ramp gamma_l = 0.75 (l + 1/2) / p, beta_l = -0.75 (1 - (l + 1/2) / p)
  (a discretised annealing path, as in Sack & Serbyn's TQA initialisation). beta is negative
  because the mixer is exp(-i beta sum X) (qiskit's RX(2 beta)) and |+> is the *highest*
  eigenstate of sum X: annealing towards the minimum of E runs the mixer backwards;
* ``"random"``: gamma ~ U(0, 1.5), beta ~ U(-pi/2, 0) from the seeded Generator;
* ``"interp"``: optimise p = 1 from the ramp, then for each p -> p + 1 start from the INTERP
  interpolation of the optimised angles (Zhou et al., PRX 10, 021067 (2020)); ``maxiter`` per level.

Angle transfer (``transfer = true``, the default). Optimal QAOA angles in normalised units
concentrate across instances of one family (Brandao et al. 2018; Galda et al. 2021), so the
solver keeps the optimised angles of every QUBO it solved, keyed by engine, depth, mixer, space
kind (full / subspace), warm start or not, CVaR level and estimator, and starts the next QUBO
with the same key from the element-wise median of the last :data:`TRANSFER_MEMORY` of them, with
``transfer_maxiter`` evaluations and a smaller first step (0.1 rad) instead of the ramp. The
memory lives on the solver object (:attr:`QaoaSolver.angle_memory`, plain picklable data), so it
carries over between the pieces a decomposition loop gives one solver, including when the loop
passes the object back between rounds. Transfer changes the starting point only: a result is
still reproducible from the seed and the solver's memory.

``restarts`` extra starts use random angles (for ``interp``: a random p = 1 start); the start with
the lowest objective wins. The objective is CVaR_alpha of the energy (``cvar_alpha = 1``: the
expectation), exact on the statevector engine.

Time limit. The whole call counts: numba's first-use load or compile, the cost diagonal, the
optimisation and the final sampling. The optimiser checks the clock before every evaluation and
only starts one when the time left covers it plus the final state and its sampling (predicted
from the slowest evaluation so far), so a call ends within the limit plus at most the start-up
allowance: numba's kernel cache load, 0.3-0.5 s once per process, or on a fresh checkout without
a cache the compile, 9-12 s once (measured on the shared 2-core development box;
``info["time"]["startup"]`` reports it, 0 once the kernels are loaded). When even the set-up and one evaluation do not fit, the call still evaluates the
starting angles once and samples them (``info["stop"] = "time_limit"``), so there is a result.

Samples are raw: every returned sample was measured from the simulated circuit (origin
``device``); the warm start, when given, only shapes the initial state and is never returned.

Reported ``info`` (JSON-serialisable):

* ``evaluations``: objective evaluations over all starts and levels; ``stop``: ``"maxiter"`` or
  ``"time_limit"``; ``angle_start``: ``"ramp"``, ``"random"``, ``"interp"`` or ``"transferred"``
  (with ``transferred_from``, the number of earlier QUBOs the start is the median of);
* ``final_parameters``: ``{"gamma": [...], "beta": [...]}`` (normalised units) and ``cost_scale``;
* ``expectation``: <E> of the final state (exact where the engine can, else from the final shots);
* ``best_probability``: probability of the best sampled bitstring in the final state (exact where
  available, else its share of shots); ``optimum_probability``: total probability of the
  optimum of the simulated space (None when that optimum is unknown);
* ``feasible_share``: share of shots satisfying every one-hot group (None without groups);
* ``approximation_ratio``: (E_max - <E>) / (E_max - E_min) over the simulated space (the
  feasible subspace for XY mixers): 1 means all weight on the optimum, 0 on the worst state,
  about 0.5 for a uniform superposition. None when E_min / E_max are unknown;
* ``amplitudes`` and ``memory_bytes`` (the estimate the memory check used);
* ``time``: seconds split into startup / setup / simulate / optimise (classical overhead) / sample.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from backends.qaoa import kernels
from backends.qaoa.engine import cvar
from backends.qaoa.optimizers import OPTIMIZERS, minimize
from backends.qaoa.space import MIXERS, Space
from optimizer.errors import ProblemTooLarge, SolverError
from optimizer.qubo import Qubo
from optimizer.solving.solver import SampleSet
from optimizer.solving.stop import Deadline

__all__ = ["BYTES_PER_AMPLITUDE", "TRANSFER_MEMORY", "QaoaSolver"]

ENGINES = ("statevector", "aer", "qiskit-optimization")
INITS = ("fixed", "random", "interp")
RAMP = 0.75
#: Peak bytes per simulated amplitude: state (16), cost diagonal (8), final probabilities and
#: their cumulative sum (16), read-out temporaries (8).
BYTES_PER_AMPLITUDE = 48
#: Share of the currently available memory a simulation may plan to use.
MEMORY_SHARE = 0.8
#: Optimised angles kept per transfer key (the start is their element-wise median).
TRANSFER_MEMORY = 16
#: First optimiser step (radians) from transferred angles; the ramp and random starts use 0.2.
TRANSFER_STEP = 0.1


def _ramp(p: int) -> np.ndarray:
    t = (np.arange(p) + 0.5) / p
    return np.concatenate([RAMP * t, -RAMP * (1.0 - t)])


def _interp(x: np.ndarray) -> np.ndarray:
    """INTERP: angles for p + 1 layers from optimised angles for p layers (Zhou et al. 2020)."""
    p = x.size // 2
    out = []
    for angles in (x[:p], x[p:]):
        padded = np.concatenate([[0.0], angles, [0.0]])
        i = np.arange(1, p + 2)
        out.append((i - 1) / p * padded[i - 1] + (p - i + 1) / p * padded[i])
    return np.concatenate(out)


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (psutil; /proc/meminfo as a fallback)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with dask.distributed
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    raise RuntimeError("cannot tell the available memory")  # pragma: no cover


@dataclass(frozen=True)
class Layout:
    """How a QUBO would be simulated: the mixer, the space kind, its size and memory need."""

    mixer: str
    subspace: bool  # the one-hot feasible subspace (else all 2^n basis states)
    amplitudes: int
    memory_bytes: int


#: Default size of a decomposition piece in the feasible subspace: log2 of its amplitudes.
PIECE_LOG2_AMPLITUDES = 20.0


class QaoaSolver:
    """Gate-model QAOA: exact statevector / feasible-subspace engine, qiskit-aer, or qiskit-optimization.

    Options (keyword-only, from ``[backends.qaoa]``):

    engine: "statevector" (default), "aer" or "qiskit-optimization".
    reps: QAOA depth p.
    optimizer: "COBYLA", "SPSA", "NELDER-MEAD" or "POWELL".
    maxiter: evaluation budget per start (SPSA: iterations) and per INTERP level.
    shots: final samples drawn (and per evaluation when ``estimate = "shots"``).
    restarts: extra random starts.
    init: "fixed" (linear ramp), "random" or "interp".
    cvar_alpha: CVaR level in (0, 1]; 1 is the plain expectation.
    mixer: "auto" (XY ring on one-hot groups when the QUBO has groups, else X), "x", "xy-ring",
        "xy-complete".
    estimate: "exact" (probabilities from the simulator) or "shots" (estimate from ``shots``
        samples, as hardware would; the statevector engine draws them from its exact state).
        The qiskit-optimization engine always estimates from shots, as the stock QAOA does.
    noise: None, or a fake backend name for an Aer noise model ("generic", "fake_manila", ...);
        needs engine "aer" or "qiskit-optimization".
    device: "CPU" or "GPU" (Aer's GPU build; for the statevector engine cupy or torch with CUDA).
        Asking for a GPU that is not there is an error saying what to install.
    threads: threads for the kernels, Aer and BLAS (default 1: two-core machines are easily
        oversubscribed, and Aer with default threading ran ~19x slower there).
    warm_start_epsilon: regularisation of a warm start (Egger et al. 2021), in (0, 0.5].
    max_variables: largest QUBO accepted when all n qubits are simulated (a simulated device's
        size); not used for the feasible-subspace engine, which counts amplitudes instead.
    max_amplitudes: largest simulated state (2^n, or prod k_g * 2^free in the subspace).
    kernel: "numba" (CPU kernels) or "array" (array-library code; always used on a GPU).
    transfer: start from the angles of earlier QUBOs of the same kind (see the module docstring).
    transfer_maxiter: evaluation budget of a transferred start (instead of ``maxiter``).
    """

    name: ClassVar[str] = "qaoa"
    # A sampler of a variational state: the optimum can be missed.
    heuristic: ClassVar[frozenset[str]] = frozenset({"optimum"})

    def __init__(self, *, engine: str = "statevector", reps: int = 2, optimizer: str = "COBYLA",
                 maxiter: int = 200, shots: int = 1024, restarts: int = 0, init: str = "fixed",
                 cvar_alpha: float = 1.0, mixer: str = "auto", estimate: str = "exact",
                 noise: str | None = None, device: str = "CPU", threads: int = 1,
                 warm_start_epsilon: float = 0.25, max_variables: int | None = 24,
                 max_amplitudes: int = 2**25, kernel: str = "numba", transfer: bool = True,
                 transfer_maxiter: int = 20):
        problems = []
        if engine not in ENGINES:
            problems.append(f"engine must be one of {ENGINES}, got {engine!r}")
        if optimizer.upper() not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if init not in INITS:
            problems.append(f"init must be one of {INITS}, got {init!r}")
        if mixer not in ("auto",) + MIXERS:
            problems.append(f"mixer must be one of {('auto',) + MIXERS}, got {mixer!r}")
        if estimate not in ("exact", "shots"):
            problems.append(f"estimate must be 'exact' or 'shots', got {estimate!r}")
        if device not in ("CPU", "GPU"):
            problems.append(f"device must be 'CPU' or 'GPU', got {device!r}")
        if kernel not in ("numba", "array"):
            problems.append(f"kernel must be 'numba' or 'array', got {kernel!r}")
        if reps < 1 or maxiter < 0 or shots < 1 or restarts < 0 or threads < 1 or transfer_maxiter < 0:
            problems.append("reps, shots and threads must be >= 1; maxiter, transfer_maxiter and restarts >= 0")
        # Upper ends: beyond them a run cannot finish in any time limit (angles are 2 x reps
        # floats, shots a sample array), and huge integers break the optimisers' own arithmetic.
        for name, value, top in (("reps", reps, 1_000), ("maxiter", maxiter, 10**7), ("shots", shots, 10**8),
                                 ("restarts", restarts, 10_000), ("threads", threads, 1_024),
                                 ("transfer_maxiter", transfer_maxiter, 10**7)):
            if value > top:
                problems.append(f"{name} must be at most {top:,}, got {value}")
        if not 0.0 < cvar_alpha <= 1.0:
            problems.append(f"cvar_alpha must be in (0, 1], got {cvar_alpha}")
        if not 0.0 < warm_start_epsilon <= 0.5:
            problems.append(f"warm_start_epsilon must be in (0, 0.5], got {warm_start_epsilon}")
        if noise is not None and engine == "statevector":
            problems.append("noise needs engine = \"aer\" or \"qiskit-optimization\" (the statevector engine is exact)")
        if max_variables is not None and max_variables < 1:
            problems.append("max_variables must be positive or None")
        if max_amplitudes < 1:
            problems.append(f"max_amplitudes must be positive, got {max_amplitudes}")
        if problems:
            raise ValueError("; ".join(problems))
        self.engine = engine
        self.reps = int(reps)
        self.optimizer = optimizer.upper()
        self.maxiter = int(maxiter)
        self.shots = int(shots)
        self.restarts = int(restarts)
        self.init = init
        self.cvar_alpha = float(cvar_alpha)
        self.mixer = mixer
        self.estimate = estimate
        self.noise = noise
        self.device = device
        self.threads = int(threads)
        self.warm_start_epsilon = float(warm_start_epsilon)
        self.max_variables = max_variables
        self.max_amplitudes = int(max_amplitudes)
        self.kernel = kernel
        self.transfer = bool(transfer)
        self.transfer_maxiter = int(transfer_maxiter)
        #: Optimised angles (normalised units) of earlier QUBOs, per transfer key, oldest first.
        self.angle_memory: dict[tuple, list[list[float]]] = {}
        self._lock = threading.Lock()
        if device == "GPU":
            self._check_gpu()

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_lock"]  # locks do not pickle (Dask and process pools ship the solver)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _check_gpu(self) -> None:
        """Fail at configuration time, naming the package to install, when no GPU path exists."""
        if self.engine == "statevector":
            from backends.qaoa.engine import array_module

            array_module("GPU")
        else:
            from backends.qaoa.circuits import aer_simulator

            aer_simulator(method="statevector", device="GPU", threads=self.threads)

    # ------------------------------------------------------------------ sizing
    #: Capacity rows of decomposition pieces: unbalanced penalties (no slack qubits), the answers
    #: being repaired and judged by the full model anyway.
    piece_inequality = "unbalanced"

    @property
    def _subspace_pieces(self) -> bool:
        return self.engine == "statevector" and self.mixer != "x"

    @property
    def piece_budget(self) -> float | None:
        """A decomposition piece's budget in this backend's own measure: log2 of the amplitudes it
        may simulate (subspace pieces of one-hot groups), else None (``max_variables`` qubits)."""
        # 4^10 amplitudes (10 shipments of 4 plans) by default: 0.02 s per evaluation on 2 cores,
        # so a piece's optimisation takes seconds, not minutes (raise max_amplitudes' share with
        # [hybrid] subproblem_size, in the same log2 units).
        return float(min(np.log2(self.max_amplitudes), PIECE_LOG2_AMPLITUDES)) if self._subspace_pieces else None

    def unit_cost(self, sizes: np.ndarray) -> np.ndarray:
        """What a one-hot group of ``k`` plans costs a piece: log2(k) amplitude bits in the
        subspace, k qubits in the full space."""
        sizes = np.asarray(sizes, dtype=np.float64)
        return np.maximum(np.log2(np.maximum(sizes, 1.0)), 0.25) if self._subspace_pieces else sizes

    def _resolve_mixer(self, qubo: Qubo) -> str:
        return self.mixer if self.mixer != "auto" else ("xy-ring" if qubo.groups else "x")

    def layout(self, qubo: Qubo) -> Layout:
        """How ``qubo`` would be simulated; raises :class:`SolverError` when it cannot be.

        Subspace mode (statevector engine, XY mixer, one-hot groups): the amplitude count
        prod_g k_g * 2^(ungrouped) must be <= ``max_amplitudes``. Otherwise all n qubits are
        simulated: n <= ``max_variables`` (:class:`ProblemTooLarge`) and 2^n <= ``max_amplitudes``.
        Either way the state must fit in :data:`MEMORY_SHARE` of the memory available now.
        """
        mixer = self._resolve_mixer(qubo)
        n = qubo.num_variables
        grouped = sum(len(g) for g in qubo.groups)
        subspace = self.engine == "statevector" and mixer != "x" and bool(qubo.groups)
        if subspace:
            amplitudes = int(np.prod([len(g) for g in qubo.groups], dtype=object)) * 2 ** (n - grouped)
            where = "feasible subspace"
        else:
            if self.max_variables is not None and n > self.max_variables:
                raise ProblemTooLarge(self.name, n, self.max_variables)
            amplitudes = 2**n
            where = "state"
        if amplitudes > self.max_amplitudes:
            raise SolverError(f"qaoa: the {where} has {amplitudes} amplitudes, more than max_amplitudes = "
                              f"{self.max_amplitudes}; use smaller pieces (the hybrid pipeline sizes them with fits())")
        per_amplitude = BYTES_PER_AMPLITUDE
        if self.engine != "statevector" and self.noise is not None and self.estimate == "exact":
            per_amplitude = 16 * amplitudes  # Aer's density matrix: 4^n complex entries
        need = int(amplitudes * per_amplitude)
        free = available_memory()
        if need > MEMORY_SHARE * free:
            raise SolverError(f"qaoa: simulating {amplitudes} amplitudes needs about {need / 2**30:.2f} GiB, but only "
                              f"{free / 2**30:.2f} GiB of memory is available now (at most {MEMORY_SHARE:.0%} of it is "
                              f"used); lower max_amplitudes or use smaller pieces")
        return Layout(mixer=mixer, subspace=subspace, amplitudes=int(amplitudes), memory_bytes=need)

    def fits(self, qubo: Qubo) -> bool:
        """Whether this backend can take ``qubo`` whole (see :meth:`layout`); never raises."""
        try:
            self.layout(qubo)
        except SolverError:
            return False
        return True

    # ------------------------------------------------------------------ solve
    def solve(self, qubo: Qubo, *, seed: int, time_limit: float,
              initial: np.ndarray | None = None) -> SampleSet:
        start = time.perf_counter()
        deadline = Deadline(time_limit)
        n = qubo.num_variables
        if initial is not None:
            initial = np.asarray(initial, dtype=np.float64).ravel()
            if initial.shape != (n,) or np.any((initial < 0) | (initial > 1)):
                raise ValueError(f"qaoa: initial must be {n} values in [0, 1], got shape {initial.shape}")
        layout = self.layout(qubo)
        if n == 0:
            return SampleSet.from_samples(qubo, np.zeros((1, 0), np.uint8), solver=self.name,
                                          timing={"total": 0.0}, info={"evaluations": 0})
        # numba's kernels load from the cache (or compile) on first use in a process: inside the
        # budget, measured, reported.
        startup = kernels.warm_up() if (self.engine == "statevector" and self.kernel == "numba") else 0.0
        space = Space.one_hot(qubo) if layout.mixer != "x" else Space.full(qubo)
        rng = np.random.default_rng(seed)
        scale = space.move_scale()
        context = _Run(start=start, deadline=deadline, startup=startup, layout=layout, seed=seed)
        with kernels.threads(self.threads):
            if self.engine == "qiskit-optimization":
                return self._solve_qiskit_optimization(qubo, space, layout.mixer, scale, rng, initial, context)
            return self._solve_simulated(qubo, space, layout.mixer, scale, rng, initial, context)

    def _engine(self, space: Space, mixer: str, scale: float, initial):
        if self.engine == "statevector":
            from backends.qaoa.engine import StatevectorEngine

            return StatevectorEngine(space, mixer=mixer, scale=scale, initial=initial,
                                     epsilon=self.warm_start_epsilon, device=self.device, kernel=self.kernel)
        from backends.qaoa.circuits import AerEngine

        return AerEngine(space, reps=self.reps, mixer=mixer, scale=scale, initial=initial,
                         epsilon=self.warm_start_epsilon, estimate=self.estimate, shots=self.shots,
                         noise=self.noise, device=self.device, threads=self.threads)

    # ------------------------------------------------------------------ angles
    def transfer_key(self, space: Space, mixer: str, warm: bool) -> tuple:
        """What angles may be transferred between: QUBOs simulated the same way."""
        return (self.engine, self.reps, mixer, "full" if space.is_full else "subspace", warm, self.cvar_alpha,
                self.estimate)

    def _remember(self, key: tuple, x: np.ndarray) -> None:
        with self._lock:
            stored = self.angle_memory.setdefault(key, [])
            stored.append([float(v) for v in x])
            del stored[:-TRANSFER_MEMORY]

    def _transferred(self, key: tuple) -> tuple[np.ndarray, int] | None:
        if not self.transfer:
            return None
        with self._lock:
            stored = list(self.angle_memory.get(key, ()))
        if not stored:
            return None
        return np.median(np.asarray(stored), axis=0), len(stored)

    def _optimise(self, objective, rng: np.random.Generator, deadline: Deadline, reserve, key: tuple):
        """All starts (and INTERP levels).

        Returns (best angles, best objective, evaluations, start info for ``info``). A new start
        or INTERP level begins only when the time left covers one more evaluation and the final
        sampling (``reserve``); otherwise the angles found so far are used (padded to full depth
        by INTERP, unoptimised).
        """
        best_x, best_f, evaluations, stopped, slowest = None, np.inf, 0, False, 0.0
        transferred = self._transferred(key)
        start: dict[str, object] = {"angle_start": "transferred" if transferred is not None else (
            "ramp" if self.init == "fixed" else self.init)}
        if transferred is not None:
            start["transferred_from"] = transferred[1]

        def time_for_another() -> bool:
            return evaluations == 0 or deadline.remaining >= slowest + reserve(slowest)

        for restart in range(self.restarts + 1):
            if not time_for_another():
                stopped = True
                break
            random_start = restart > 0 or self.init == "random"
            if restart == 0 and transferred is not None:
                levels = [(self.reps, transferred[0], self.transfer_maxiter, TRANSFER_STEP)]
            elif self.init == "interp":
                levels = [(p, None, self.maxiter, 0.2) for p in range(1, self.reps + 1)]
            else:
                levels = [(self.reps, None, self.maxiter, 0.2)]
            x, f = None, np.inf
            for p, x0, maxiter, step in levels:
                if x is not None and not time_for_another():
                    stopped = True
                    while x.size // 2 < self.reps:
                        x = _interp(x)
                    break
                if x0 is not None:
                    x = x0
                elif x is None:
                    x = (np.concatenate([rng.uniform(0, 1.5, p), rng.uniform(-np.pi / 2, 0, p)])
                         if random_start else _ramp(p))
                else:
                    x = _interp(x)
                tracked = minimize(self.optimizer, lambda v, p=p: objective(v[:p], v[p:]), x,
                                   maxiter=maxiter, rng=rng, deadline=deadline, reserve=reserve, step=step)
                evaluations += tracked.evaluations
                slowest = max(slowest, tracked.slowest)
                x, f = tracked.best_x, tracked.best_f
                stopped = stopped or tracked.stopped
            if f < best_f or best_x is None:
                best_x, best_f = x, f
        if evaluations > 1:
            self._remember(key, best_x)
        start["stop"] = "time_limit" if stopped else "maxiter"
        return best_x, best_f, evaluations, start

    # ------------------------------------------------------------------ engines
    def _solve_simulated(self, qubo, space, mixer, scale, rng, initial, run):
        engine = self._engine(space, mixer, scale, initial)
        setup = time.perf_counter() - run.start - run.startup
        simulate = [0.0]
        shots_mode = self.estimate == "shots"

        def objective(gammas, betas) -> float:
            t0 = time.perf_counter()
            if self.engine == "aer":
                value = engine.objective(gammas, betas, self.cvar_alpha, rng)
            elif shots_mode:
                probs = engine.probabilities(gammas, betas)
                idx = _draw(rng, probs, self.shots)
                e = np.sort(engine.diag[idx])
                value = cvar(e, np.full(e.size, 1.0 / e.size), self.cvar_alpha)
            else:
                value = engine.objective(gammas, betas, self.cvar_alpha)
            simulate[0] += time.perf_counter() - t0
            return value

        # After the optimiser: the final state (about one evaluation) and its sampling.
        reserve = _sampling_reserve(space.dimension, self.shots)
        t_opt = time.perf_counter()
        key = self.transfer_key(space, mixer, initial is not None)
        x, objective_value, evaluations, start_info = self._optimise(objective, rng, run.deadline, reserve, key)
        optimise = time.perf_counter() - t_opt - simulate[0]
        gammas, betas = x[: self.reps], x[self.reps:]

        t0 = time.perf_counter()
        probs = None
        if self.engine == "statevector":
            probs = engine.probabilities(gammas, betas)
            idx = _draw(rng, probs, self.shots)
            idx, counts = np.unique(idx, return_counts=True)
            samples = space.decode(idx)
        else:
            # Aer simulates all n qubits whatever the mixer: its indices are full-space indices.
            if self.estimate == "exact":
                probs = engine.probabilities(gammas, betas)
            idx, counts = engine.sample(gammas, betas, self.shots, int(rng.integers(2**31 - 1)))
            samples = engine.full_space.decode(idx)
        sample_time = time.perf_counter() - t0
        space_diag = engine.diag if (self.engine == "statevector" or space.is_full) else _space_energies(space)
        info = self._info(qubo, space, mixer, scale, x, objective_value, evaluations, samples, counts,
                          (probs, engine.diag, idx) if probs is not None else None, space_diag, initial, run)
        info.update(start_info)
        timing = {"startup": run.startup, "setup": setup, "simulate": simulate[0], "optimise": max(optimise, 0.0),
                  "sample": sample_time, "total": time.perf_counter() - run.start}
        info["time"] = dict(timing)
        return SampleSet.from_samples(qubo, samples, counts=counts, origins="device", solver=self.name,
                                      timing=timing, info=info)

    def _solve_qiskit_optimization(self, qubo, space, mixer, scale, rng, initial, run):
        from scipy.optimize import OptimizeResult

        from backends.qaoa.circuits import run_qiskit_optimization

        p = self.reps
        reserve = _sampling_reserve(space.dimension, self.shots)
        record: dict[str, object] = {"evaluations": 0, "stopped": False}

        def minimizer(fun, x0, jac=None, bounds=None):
            tracked = minimize(self.optimizer, fun, np.asarray(x0), maxiter=self.maxiter, rng=rng,
                               deadline=run.deadline, reserve=reserve)
            record["evaluations"] = tracked.evaluations
            record["stopped"] = tracked.stopped
            return OptimizeResult(x=tracked.best_x, fun=tracked.best_f, nfev=tracked.evaluations)

        if self.init == "random":
            x0 = np.concatenate([rng.uniform(0, 1.5, p), rng.uniform(-np.pi / 2, 0, p)])
        else:
            # interp needs staged runs of the stock solver; it starts from the ramp instead.
            x0 = _ramp(p)
        # qiskit orders parameters by name: all betas, then all gammas, in raw energy units.
        stock_x0 = np.concatenate([x0[p:], x0[:p] / scale])
        t0 = time.perf_counter()
        X, counts, result = run_qiskit_optimization(
            space, reps=p, mixer=mixer, initial=initial, epsilon=self.warm_start_epsilon, shots=self.shots,
            alpha=self.cvar_alpha, seed=run.seed, minimizer=minimizer, initial_point=stock_x0,
            threads=self.threads, device=self.device, noise=self.noise)
        elapsed = time.perf_counter() - t0
        raw = np.asarray(result.min_eigen_solver_result.optimal_point, dtype=np.float64)
        x = np.concatenate([raw[p:] * scale, raw[:p]])
        # The stock objective is on qiskit's Ising operator without its constant: not reported.
        info = self._info(qubo, space, mixer, scale, x, None, int(record["evaluations"]),
                          X, counts, None, _space_energies(space), initial, run)
        info.update({"angle_start": "ramp" if self.init != "random" else "random",
                     "stop": "time_limit" if record["stopped"] else "maxiter"})
        timing = {"startup": 0.0, "setup": 0.0, "simulate": elapsed, "optimise": 0.0, "sample": 0.0,
                  "total": time.perf_counter() - run.start}
        # The stock solver interleaves simulation and optimisation; only the total is measurable.
        info["time"] = dict(timing)
        return SampleSet.from_samples(qubo, X, counts=counts, origins="device", solver=self.name, timing=timing,
                                      info=info)

    def _info(self, qubo, space, mixer, scale, x, objective_value, evaluations, samples, counts, exact,
              space_diag, initial, run) -> dict[str, object]:
        """The result's ``info`` (see the module docstring).

        ``exact`` is (final probabilities, energies of the same basis, sampled indices) when the
        engine has the exact final state; ``space_diag`` the energies of the ansatz's space (for
        E_min and E_max), None when too large to list.
        """
        p = self.reps
        energies = qubo.energies(samples)
        best = int(np.argmin(energies))
        shares = counts / counts.sum()
        feasible = space.feasible(samples)
        e_min = e_max = optimum_probability = None
        if space_diag is not None:
            e_min, e_max = float(space_diag.min()), float(space_diag.max())
        ground = qubo.metadata.get("ground_energy") if qubo.metadata else None
        if ground is not None and (e_min is None or space.is_full):
            e_min = float(ground)
        if exact is not None:
            probs, diag, idx = exact
            expectation = float(probs @ diag)
            best_probability = float(probs[idx[best]])
            if e_min is not None:
                # diag >= e_min everywhere: one comparison finds the optimum's basis states.
                optimum_probability = float(probs[diag <= e_min + 1e-9 * max(1.0, abs(e_min))].sum())
        else:
            expectation = float(shares @ energies)
            best_probability = float(shares[best])
        ratio = None
        if e_min is not None and e_max is not None and e_max > e_min:
            ratio = float((e_max - expectation) / (e_max - e_min))
        return {
            "engine": self.engine,
            "space": "full" if space.is_full else "feasible-subspace",
            "amplitudes": int(space.dimension),
            "memory_bytes": int(run.layout.memory_bytes),
            "mixer": mixer,
            "reps": p,
            "optimizer": self.optimizer,
            "init": self.init,
            "restarts": self.restarts,
            "cvar_alpha": self.cvar_alpha,
            "estimate": self.estimate,
            "noise": self.noise,
            "device": self.device,
            "threads": self.threads,
            "shots": self.shots,
            "seed": int(run.seed),
            "warm_start": initial is not None,
            "evaluations": int(evaluations),
            "final_parameters": {"gamma": [float(v) for v in x[:p]], "beta": [float(v) for v in x[p:]]},
            "cost_scale": float(scale),
            "objective": None if objective_value is None else float(objective_value),
            "expectation": expectation,
            "best_probability": best_probability,
            "optimum_energy": e_min,
            "optimum_probability": optimum_probability,
            "feasible_share": None if feasible is None else float(shares[feasible].sum()),
            "approximation_ratio": ratio,
        }


@dataclass(frozen=True)
class _Run:
    """What one solve call carries through its stages: its clock, start-up cost and layout."""

    start: float
    deadline: Deadline
    startup: float
    layout: Layout
    seed: int


def _sampling_reserve(dimension: int, shots: int):
    """Seconds to keep after the optimiser, given the slowest evaluation so far: the final state
    (one more evaluation) and its read-out (probabilities, cumulative sum, the optimum's mass:
    ~35 ns per amplitude measured at 4^12 on the 2-core box) and ``shots`` draws."""
    fixed = 4e-8 * dimension + 2e-6 * shots + 0.01
    return lambda slowest: slowest + fixed


def _space_energies(space: Space) -> np.ndarray | None:
    """Energies of every basis state of the ansatz's space, when small enough to list (2^26)."""
    return space.energies() if space.dimension <= 2**26 else None


def _draw(rng: np.random.Generator, probs: np.ndarray, shots: int) -> np.ndarray:
    """``shots`` basis indices from ``probs`` (inverse CDF: one cumulative sum, one search)."""
    cdf = np.cumsum(probs)
    return np.minimum(np.searchsorted(cdf, rng.random(shots) * cdf[-1], side="right"), probs.size - 1)
