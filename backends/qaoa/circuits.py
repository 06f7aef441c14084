"""QAOA as qiskit circuits on qiskit-aer, and the stock qiskit-optimization route.

:func:`build_circuit` writes exactly the unitary the statevector engine simulates (see
:mod:`backends.qaoa.space`): initial state, then per layer the cost
``exp(-i gamma E / s)`` as RZZ / RZ gates of the Ising form (x = (1 - z) / 2, global phase
dropped), then the mixer (RX, the warm-start RY RZ RY, or XX+YY partial mixers on a group).

qiskit is imported here only, so importing the backend registry stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from backends.qaoa.space import Space, group_edges
from optimizer.errors import MissingDependency, SolverError

__all__ = ["build_circuit", "initial_state_circuit", "mixer_circuit", "AerEngine", "noise_backend", "aer_simulator", "run_qiskit_optimization",
           "NOISE_BACKENDS"]

#: Noise sources by config name -> (module, class). "generic" is qiskit's GenericBackendV2
#: (all-to-all, basis id/rz/sx/x/cx, randomised but seeded error rates); the IBM fakes need
#: qiskit-ibm-runtime.
NOISE_BACKENDS: dict[str, tuple[str, str]] = {
    "generic": ("qiskit.providers.fake_provider", "GenericBackendV2"),
    "fake_manila": ("qiskit_ibm_runtime.fake_provider", "FakeManilaV2"),
    "fake_nairobi": ("qiskit_ibm_runtime.fake_provider", "FakeNairobiV2"),
    "fake_guadalupe": ("qiskit_ibm_runtime.fake_provider", "FakeGuadalupeV2"),
    "fake_brisbane": ("qiskit_ibm_runtime.fake_provider", "FakeBrisbane"),
}

#: Exact noisy probabilities need a density matrix (4^n entries): refuse beyond this.
DENSITY_MATRIX_MAX_QUBITS = 14


def initial_state_circuit(space: Space, *, initial: np.ndarray | None = None, epsilon: float = 0.25):
    """|psi_0>: H (or the warm-start RY) per plain qubit, a W / warm-start state per group."""
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import StatePreparation

    qc = QuantumCircuit(space.qubo.num_variables, name="initial")
    for block, a in zip(space.blocks, space.initial_amplitudes(initial, epsilon)):
        if block.is_group:
            # Amplitude a[c] on the basis state with only group[c] set (bit c of the sub-register).
            vector = np.zeros(1 << block.size)
            vector[1 << np.arange(block.size)] = a
            qc.append(StatePreparation(vector), list(block.variables))
        else:
            theta = float(2.0 * np.arctan2(a[1], a[0]))
            if _is_plus(theta):
                qc.h(block.variables[0])
            else:
                qc.ry(theta, block.variables[0])
    return qc


def mixer_circuit(space: Space, beta, *, mixer: str, initial: np.ndarray | None = None,
                  epsilon: float = 0.25):
    """One mixer layer at angle ``beta`` (a number or a Parameter / expression)."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(space.qubo.num_variables, name="mixer")
    thetas = iter(space.qubit_thetas(initial, epsilon))
    for block in space.blocks:
        if block.is_group:
            for a, b in group_edges(block.size, mixer):
                qc.append(_xy_gate(2.0 * beta), [block.variables[a], block.variables[b]])
            continue
        q, theta = block.variables[0], float(next(thetas))
        if _is_plus(theta):
            qc.rx(2.0 * beta, q)
        else:
            # RY(theta) RZ(2 beta) RY(-theta): the warm-start mixer (Egger et al. 2021).
            qc.ry(-theta, q)
            qc.rz(2.0 * beta, q)
            qc.ry(theta, q)
    return qc


def _is_plus(theta: float) -> bool:
    return bool(np.isclose(theta, np.pi / 2, rtol=0, atol=1e-15))


def build_circuit(space: Space, *, reps: int, mixer: str, scale: float,
                  initial: np.ndarray | None = None, epsilon: float = 0.25):
    """The QAOA circuit on n qubits with ParameterVectors ``gamma`` and ``beta`` (length ``reps``).

    ``space`` says which variables are one-hot groups (XY mixer, W / warm-start initial state)
    and which are plain qubits; the circuit itself always acts on all n qubits.
    """
    from qiskit.circuit import ParameterVector

    qubo = space.qubo
    gamma = ParameterVector("gamma", reps)
    beta = ParameterVector("beta", reps)
    qc = initial_state_circuit(space, initial=initial, epsilon=epsilon)
    J, g, _ = qubo.ising()
    J = J.tocoo()
    for layer in range(reps):
        # Cost: exp(-i gamma E / s) with E = z^T J z + g^T z + const (global phase dropped).
        for i, j, w in zip(J.row, J.col, J.data):
            if w != 0:
                qc.rzz(2.0 * float(w) / scale * gamma[layer], int(i), int(j))
        for i in np.flatnonzero(g):
            qc.rz(2.0 * float(g[i]) / scale * gamma[layer], int(i))
        qc.compose(mixer_circuit(space, beta[layer], mixer=mixer, initial=initial, epsilon=epsilon),
                   inplace=True)
    qc.name = "qaoa"
    return qc, gamma, beta


def _xy_gate(theta):
    """exp(-i theta/4 (XX + YY)): qiskit's XXPlusYYGate with beta = 0 (theta = 2 * QAOA beta)."""
    from qiskit.circuit.library import XXPlusYYGate

    return XXPlusYYGate(theta, 0.0)


def noise_backend(name: str, num_qubits: int):
    """The fake backend a noise model is taken from (see :data:`NOISE_BACKENDS`)."""
    import importlib

    try:
        module_name, class_name = NOISE_BACKENDS[name]
    except KeyError:
        raise ValueError(f"noise must be one of {sorted(NOISE_BACKENDS)} or none, got {name!r}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependency("qaoa", module_name.split(".")[0].replace("_", "-"),
                                f"noise = {name!r} needs qiskit-ibm-runtime's fake backends: "
                                "pip install qiskit-ibm-runtime (or use noise = \"generic\")") from exc
    cls = module.__dict__[class_name]
    if name == "generic":
        # Fixed seed: the same error rates every run, so noisy results are reproducible.
        return cls(num_qubits, seed=1234)
    backend = cls()
    if backend.num_qubits < num_qubits:
        raise SolverError(f"noise backend {name!r} has {backend.num_qubits} qubits; the QUBO needs {num_qubits}")
    return backend


def aer_simulator(*, method: str, device: str, threads: int, noise_model=None):
    """An AerSimulator pinned to ``threads`` threads; says clearly when the GPU build is missing."""
    from qiskit_aer import AerSimulator

    if device == "GPU" and "GPU" not in AerSimulator().available_devices():
        raise MissingDependency(
            "qaoa", "qiskit-aer-gpu",
            "device = \"GPU\" needs qiskit-aer's GPU build (pip install qiskit-aer-gpu, CUDA 12, Linux); "
            f"this qiskit-aer offers only {AerSimulator().available_devices()}; use device = \"CPU\"",
        )
    return AerSimulator(method=method, device=device, noise_model=noise_model,
                        max_parallel_threads=threads, max_parallel_experiments=1, max_parallel_shots=1)


def _counts_to_indices(counts: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Aer counts (bitstrings, qubit 0 rightmost, maybe hex) -> (basis indices, counts)."""
    keys = list(counts)
    idx = np.array([int(k.replace(" ", ""), 16 if k.startswith("0x") else 2) for k in keys], dtype=np.int64)
    return idx, np.array([counts[k] for k in keys], dtype=np.int64)


class AerEngine:
    """The QAOA circuit run on qiskit-aer: exact probabilities or shot sampling, optionally noisy.

    ``estimate="exact"`` saves the probabilities (statevector method, or density matrix with a
    noise model); ``"shots"`` estimates each objective from ``shots`` measurements.
    """

    def __init__(self, space: Space, *, reps: int, mixer: str, scale: float, initial, epsilon: float,
                 estimate: str, shots: int, noise: str | None, device: str, threads: int):
        from qiskit import transpile
        from qiskit_aer.noise import NoiseModel

        t0 = time.perf_counter()
        self.space = space
        self.shots = shots
        self.estimate = estimate
        n = space.qubo.num_variables
        qc, self.gamma, self.beta = build_circuit(space, reps=reps, mixer=mixer, scale=scale,
                                                  initial=initial, epsilon=epsilon)
        noise_model, target = None, None
        if noise is not None:
            target = noise_backend(noise, n)
            noise_model = NoiseModel.from_backend(target)
            if estimate == "exact" and n > DENSITY_MATRIX_MAX_QUBITS:
                raise SolverError(f"exact noisy simulation keeps a 4^n density matrix; n = {n} > "
                                  f"{DENSITY_MATRIX_MAX_QUBITS}: use estimate = \"shots\"")
        method = "density_matrix" if (noise_model is not None and estimate == "exact") else "statevector"
        self.simulator = aer_simulator(method=method, device=device, threads=threads, noise_model=noise_model)
        sampler_sim = self.simulator if method == "statevector" else aer_simulator(
            method="statevector", device=device, threads=threads, noise_model=noise_model)
        self.sampler_simulator = sampler_sim
        measured = qc.copy()
        measured.measure_all()
        if target is not None:
            # To the noise backend's basis (so its errors apply), then save the probabilities of
            # the physical qubits that hold virtual qubits 0..n-1 at the end (layout and routing).
            exact = transpile(qc, backend=target, optimization_level=1, seed_transpiler=0)
            final = exact.layout.final_index_layout() if exact.layout is not None else list(range(n))
            exact.save_probabilities(qubits=list(final[:n]), label="probs")
            self._measured = transpile(measured, backend=target, optimization_level=1, seed_transpiler=0)
        else:
            exact = qc.copy()
            exact.save_probabilities(label="probs")
            exact = transpile(exact, self.simulator, optimization_level=0)
            self._measured = transpile(measured, sampler_sim, optimization_level=0)
        self._exact = exact
        self.noise = noise
        self.method = method
        # Aer's probabilities and counts index all 2^n basis states, whatever the mixer.
        self.full_space = Space.full(space.qubo)
        self.diag = self.full_space.energies() if n <= 26 else None
        self.setup_seconds = time.perf_counter() - t0
        self.evaluations = 0
        self._order: np.ndarray | None = None

    def _bind(self, circuit, gammas, betas):
        values = {**dict(zip(self.gamma, map(float, gammas))), **dict(zip(self.beta, map(float, betas)))}
        return circuit.assign_parameters(values)

    def probabilities(self, gammas, betas) -> np.ndarray:
        """Exact basis-state probabilities (qiskit's little-endian index) from the simulator."""
        self.evaluations += 1
        result = self.simulator.run(self._bind(self._exact, gammas, betas)).result()
        return np.asarray(result.data(0)["probs"], dtype=np.float64)

    def sample(self, gammas, betas, shots: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(basis indices, counts) of ``shots`` measurements."""
        result = self.sampler_simulator.run(self._bind(self._measured, gammas, betas), shots=shots,
                                            seed_simulator=seed).result()
        return _counts_to_indices(result.get_counts(0))

    def energies_of(self, indices: np.ndarray) -> np.ndarray:
        if self.diag is not None:
            return self.diag[indices]
        return self.space.qubo.energies(self.full_space.decode(indices))

    def objective(self, gammas, betas, alpha: float, rng: np.random.Generator) -> float:
        from backends.qaoa.engine import cvar

        if self.estimate == "exact":
            probs = self.probabilities(gammas, betas)
            if alpha >= 1.0:
                return float(probs @ self.diag)
            if self._order is None:
                self._order = np.argsort(self.diag, kind="stable")
            return cvar(self.diag[self._order], probs[self._order], alpha)
        self.evaluations += 1
        idx, counts = self.sample(gammas, betas, self.shots, int(rng.integers(2**31 - 1)))
        energies = self.energies_of(idx)
        order = np.argsort(energies, kind="stable")
        return cvar(energies[order], counts[order] / counts.sum(), alpha)


def run_qiskit_optimization(space: Space, *, reps: int, mixer: str, initial: np.ndarray | None,
                            epsilon: float, shots: int, alpha: float, seed: int, minimizer: Callable,
                            initial_point: Sequence[float], threads: int, device: str, noise: str | None):
    """Stock ``MinimumEigenOptimizer(QAOA(AerSampler, ...))`` on the QUBO.

    The stock QAOA gets this backend's initial state and mixer circuits only when they differ
    from its defaults (warm start or XY mixers), so plain runs are the textbook stock QAOA.
    ``initial_point`` is in qiskit's parameter order (all betas, then all gammas, in the raw
    energy units of its cost operator). Returns (samples, counts, stock result).
    """
    from qiskit_aer.noise import NoiseModel
    from qiskit_aer.primitives import SamplerV2
    from qiskit_optimization import QuadraticProgram
    from qiskit_optimization.algorithms import MinimumEigenOptimizer
    from qiskit_optimization.minimum_eigensolvers import QAOA

    qubo = space.qubo
    n = qubo.num_variables
    qp = QuadraticProgram("qfreight")
    for i in range(n):
        qp.binary_var(f"x{i}")
    coo = qubo.Q.tocoo()
    qp.minimize(constant=float(qubo.offset), linear=np.asarray(qubo.h, dtype=float).tolist(),
                quadratic={(f"x{i}", f"x{j}"): float(w) for i, j, w in zip(coo.row, coo.col, coo.data)})
    backend_options: dict[str, object] = {"max_parallel_threads": threads, "max_parallel_experiments": 1,
                                          "max_parallel_shots": 1, "device": device}
    if device == "GPU":
        aer_simulator(method="statevector", device=device, threads=threads)  # raises clearly if absent
    from qiskit.transpiler import generate_preset_pass_manager

    if noise is not None:
        target = noise_backend(noise, n)
        backend_options["noise_model"] = NoiseModel.from_backend(target)
    else:
        target = aer_simulator(method="statevector", device="CPU", threads=threads)
    # The stock QAOA leaves transpilation to a pass manager (Aer cannot run its un-decomposed
    # evolution, state-preparation or XX+YY blocks).
    pass_manager = generate_preset_pass_manager(optimization_level=1, backend=target, seed_transpiler=0)
    sampler = SamplerV2(default_shots=shots, seed=seed, options={"backend_options": backend_options})
    custom: dict[str, object] = {}
    if initial is not None or not space.is_full:
        from qiskit.circuit import Parameter

        custom["initial_state"] = initial_state_circuit(space, initial=initial, epsilon=epsilon)
        custom["mixer"] = mixer_circuit(space, Parameter("beta"), mixer=mixer, initial=initial, epsilon=epsilon)
    qaoa = QAOA(sampler=sampler, optimizer=minimizer, reps=reps, initial_point=np.asarray(initial_point),
                aggregation=alpha if alpha < 1.0 else None, pass_manager=pass_manager, **custom)
    result = MinimumEigenOptimizer(qaoa).solve(qp)
    X = np.array([s.x for s in result.samples], dtype=np.float64).round().astype(np.uint8)
    probs = np.array([s.probability for s in result.samples])
    counts = np.maximum(1, np.round(probs * shots)).astype(np.int64)
    return X, counts, result
