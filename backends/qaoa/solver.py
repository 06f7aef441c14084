"""QaoaSolver: options, the angle optimisation loop, final sampling and the result's ``info``.

Angles. ``x = [gamma_1..gamma_p, beta_1..beta_p]`` in normalised units: the cost unitary is
exp(-i gamma E / s) with s = ``info["cost_scale"]`` (RMS local field, :func:`space.cost_scale`).
Initialisation (``init``):

* ``"fixed"``: the linear ramp gamma_l = 0.75 (l + 1/2) / p, beta_l = -0.75 (1 - (l + 1/2) / p)
  (a discretised annealing path, as in Sack & Serbyn's TQA initialisation). beta is negative
  because the mixer is exp(-i beta sum X) (qiskit's RX(2 beta)) and |+> is the *highest*
  eigenstate of sum X: annealing towards the minimum of E runs the mixer backwards;
* ``"random"``: gamma ~ U(0, 1.5), beta ~ U(-pi/2, 0) from the seeded Generator;
* ``"interp"``: optimise p = 1 from the ramp, then for each p -> p + 1 start from the INTERP
  interpolation of the optimised angles (Zhou et al., PRX 10, 021067 (2020)); ``maxiter`` per level.

``restarts`` extra starts use random angles (for ``interp``: a random p = 1 start); the start with
the lowest objective wins. The objective is CVaR_alpha of the energy (``cvar_alpha = 1``: the
expectation), exact on the statevector engine.

Reported ``info`` (JSON-serialisable):

* ``evaluations``: objective evaluations over all starts and levels;
* ``final_parameters``: ``{"gamma": [...], "beta": [...]}`` (normalised units) and ``cost_scale``;
* ``expectation``: <E> of the final state (exact where the engine can, else from the final shots);
* ``best_probability``: probability of the best sampled bitstring in the final state (exact where
  available, else its share of shots); ``optimum_probability``: total probability of the
  optimum of the simulated space (None when that optimum is unknown);
* ``feasible_share``: share of shots satisfying every one-hot group (None without groups);
* ``approximation_ratio``: (E_max - <E>) / (E_max - E_min) over the simulated space (the
  feasible subspace for XY mixers): 1 means all weight on the optimum, 0 on the worst state,
  about 0.5 for a uniform superposition. None when E_min / E_max are unknown;
* ``time``: seconds split into setup / simulate / optimise (classical overhead) / sample.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from backends.qaoa import kernels
from backends.qaoa.engine import cvar
from backends.qaoa.optimizers import OPTIMIZERS, minimize
from backends.qaoa.space import MIXERS, Space, cost_scale
from optimizer.errors import SolverError
from optimizer.qubo import Qubo
from optimizer.solve.stop import Deadline
from optimizer.solve.solver import SampleSet, check_size

__all__ = ["QaoaSolver"]

ENGINES = ("statevector", "aer", "qiskit-optimization")
INITS = ("fixed", "random", "interp")
RAMP = 0.75


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
    threads: threads for Aer, numba and BLAS (default 1: two-core machines are easily
        oversubscribed, and Aer with default threading ran ~19x slower there).
    warm_start_epsilon: regularisation of a warm start (Egger et al. 2021), in (0, 0.5].
    max_variables: largest QUBO accepted (a simulated device's size).
    max_amplitudes: largest simulated state (2^n, or prod k_g * 2^free in the subspace).
    kernel: "numba" (CPU kernels) or "array" (array-library code; always used on a GPU).
    """

    name: ClassVar[str] = "qaoa"
    # A sampler of a variational state: the optimum can be missed.
    heuristic: ClassVar[frozenset[str]] = frozenset({"optimum"})

    def __init__(self, *, engine: str = "statevector", reps: int = 2, optimizer: str = "COBYLA",
                 maxiter: int = 200, shots: int = 1024, restarts: int = 0, init: str = "fixed",
                 cvar_alpha: float = 1.0, mixer: str = "auto", estimate: str = "exact",
                 noise: str | None = None, device: str = "CPU", threads: int = 1,
                 warm_start_epsilon: float = 0.25, max_variables: int | None = 24,
                 max_amplitudes: int = 2**25, kernel: str = "numba"):
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
        if reps < 1 or maxiter < 0 or shots < 1 or restarts < 0 or threads < 1:
            problems.append("reps, shots and threads must be >= 1; maxiter and restarts >= 0")
        if not 0.0 < cvar_alpha <= 1.0:
            problems.append(f"cvar_alpha must be in (0, 1], got {cvar_alpha}")
        if not 0.0 < warm_start_epsilon <= 0.5:
            problems.append(f"warm_start_epsilon must be in (0, 0.5], got {warm_start_epsilon}")
        if noise is not None and engine == "statevector":
            problems.append("noise needs engine = \"aer\" or \"qiskit-optimization\" (the statevector engine is exact)")
        if max_variables is not None and max_variables < 1:
            problems.append("max_variables must be positive or None")
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
        if device == "GPU":
            self._check_gpu()

    def _check_gpu(self) -> None:
        """Fail at configuration time, naming the package to install, when no GPU path exists."""
        if self.engine == "statevector":
            from backends.qaoa.engine import array_module

            array_module("GPU")
        else:
            from backends.qaoa.circuits import aer_simulator

            aer_simulator(method="statevector", device="GPU", threads=self.threads)

    # ------------------------------------------------------------------ solve
    def solve(self, qubo: Qubo, *, seed: int, time_limit: float,
              initial: np.ndarray | None = None) -> SampleSet:
        check_size(self, qubo)
        start = time.perf_counter()
        n = qubo.num_variables
        if initial is not None:
            initial = np.asarray(initial, dtype=np.float64).ravel()
            if initial.shape != (n,) or np.any((initial < 0) | (initial > 1)):
                raise ValueError(f"qaoa: initial must be {n} values in [0, 1], got shape {initial.shape}")
        if n == 0:
            return SampleSet.from_samples(qubo, np.zeros((1, 0), np.uint8), solver=self.name,
                                          timing={"total": 0.0}, info={"evaluations": 0})
        mixer = self.mixer if self.mixer != "auto" else ("xy-ring" if qubo.groups else "x")
        space = Space.one_hot(qubo) if mixer != "x" else Space.full(qubo)
        if self.engine == "statevector" and space.dimension > self.max_amplitudes:
            raise SolverError(f"qaoa: the {'feasible subspace' if not space.is_full else 'state'} has "
                              f"{space.dimension} amplitudes, more than max_amplitudes = {self.max_amplitudes}")
        rng = np.random.default_rng(seed)
        scale = cost_scale(qubo)
        with kernels.threads(self.threads):
            if self.engine == "qiskit-optimization":
                return self._solve_qiskit_optimization(qubo, space, mixer, scale, rng, seed, time_limit,
                                                       initial, start)
            return self._solve_simulated(qubo, space, mixer, scale, rng, seed, time_limit, initial, start)

    def _engine(self, space: Space, mixer: str, scale: float, initial):
        if self.engine == "statevector":
            from backends.qaoa.engine import StatevectorEngine

            return StatevectorEngine(space, mixer=mixer, scale=scale, initial=initial,
                                     epsilon=self.warm_start_epsilon, device=self.device, kernel=self.kernel)
        from backends.qaoa.circuits import AerEngine

        return AerEngine(space, reps=self.reps, mixer=mixer, scale=scale, initial=initial,
                         epsilon=self.warm_start_epsilon, estimate=self.estimate, shots=self.shots,
                         noise=self.noise, device=self.device, threads=self.threads)

    def _optimise(self, objective, rng: np.random.Generator, deadline: Deadline):
        """All starts (and INTERP levels); returns (best angles, best objective, evaluations)."""
        best_x, best_f, evaluations = None, np.inf, 0
        for restart in range(self.restarts + 1):
            if deadline.expired() and best_x is not None:
                break
            random_start = restart > 0 or self.init == "random"
            levels = range(1, self.reps + 1) if self.init == "interp" else [self.reps]
            x = None
            for p in levels:
                if x is None:
                    x = (np.concatenate([rng.uniform(0, 1.5, p), rng.uniform(-np.pi / 2, 0, p)])
                         if random_start else _ramp(p))
                else:
                    x = _interp(x)
                tracked = minimize(self.optimizer, lambda v, p=p: objective(v[:p], v[p:]), x,
                                   maxiter=self.maxiter, rng=rng, deadline=deadline)
                evaluations += tracked.evaluations
                x = tracked.best_x
                if deadline.expired() and p < self.reps:
                    # Out of time mid-INTERP: pad to full depth by interpolation, unoptimised.
                    while x.size // 2 < self.reps:
                        x = _interp(x)
                    tracked.best_f = float(objective(x[: self.reps], x[self.reps:]))
                    evaluations += 1
                    break
            if tracked.best_f < best_f:
                best_x, best_f = x, tracked.best_f
        return best_x, best_f, evaluations

    def _solve_simulated(self, qubo, space, mixer, scale, rng, seed, time_limit, initial, start):
        engine = self._engine(space, mixer, scale, initial)
        setup = time.perf_counter() - start
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

        # Leave ~10% of the budget (and the set-up already spent) for the final sampling.
        deadline = Deadline(max(0.0, 0.9 * time_limit - setup))
        t_opt = time.perf_counter()
        x, objective_value, evaluations = self._optimise(objective, rng, deadline)
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
                          (probs, engine.diag, idx) if probs is not None else None, space_diag, initial, seed)
        timing = {"setup": setup, "simulate": simulate[0], "optimise": max(optimise, 0.0),
                  "sample": sample_time, "total": time.perf_counter() - start}
        info["time"] = dict(timing)
        return SampleSet.from_samples(qubo, samples, counts=counts, solver=self.name, timing=timing, info=info)

    def _solve_qiskit_optimization(self, qubo, space, mixer, scale, rng, seed, time_limit, initial, start):
        from scipy.optimize import OptimizeResult

        from backends.qaoa.circuits import run_qiskit_optimization

        p = self.reps
        deadline = Deadline(0.9 * time_limit)
        record: dict[str, object] = {"evaluations": 0}

        def minimizer(fun, x0, jac=None, bounds=None):
            tracked = minimize(self.optimizer, fun, np.asarray(x0), maxiter=self.maxiter, rng=rng,
                               deadline=deadline)
            record["evaluations"] = tracked.evaluations
            record["best"] = tracked.best_f
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
            alpha=self.cvar_alpha, seed=seed, minimizer=minimizer, initial_point=stock_x0,
            threads=self.threads, device=self.device, noise=self.noise)
        elapsed = time.perf_counter() - t0
        raw = np.asarray(result.min_eigen_solver_result.optimal_point, dtype=np.float64)
        x = np.concatenate([raw[p:] * scale, raw[:p]])
        # The stock objective is on qiskit's Ising operator without its constant: not reported.
        info = self._info(qubo, space, mixer, scale, x, None, int(record["evaluations"]),
                          X, counts, None, _space_energies(space), initial, seed)
        timing = {"setup": 0.0, "simulate": elapsed, "optimise": 0.0, "sample": 0.0,
                  "total": time.perf_counter() - start}
        # The stock solver interleaves simulation and optimisation; only the total is measurable.
        info["time"] = dict(timing)
        return SampleSet.from_samples(qubo, X, counts=counts, solver=self.name, timing=timing, info=info)

    def _info(self, qubo, space, mixer, scale, x, objective_value, evaluations, samples, counts, exact,
              space_diag, initial, seed) -> dict[str, object]:
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
                optimum_probability = float(probs[np.abs(diag - e_min) <= 1e-9 * max(1.0, abs(e_min))].sum())
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
            "seed": int(seed),
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


def _space_energies(space: Space) -> np.ndarray | None:
    """Energies of every basis state of the ansatz's space, when small enough to list (2^26)."""
    return space.energies() if space.dimension <= 2**26 else None


def _draw(rng: np.random.Generator, probs: np.ndarray, shots: int) -> np.ndarray:
    """``shots`` basis indices from ``probs`` (inverse CDF: one cumulative sum, one search)."""
    cdf = np.cumsum(probs)
    return np.minimum(np.searchsorted(cdf, rng.random(shots) * cdf[-1], side="right"), probs.size - 1)
