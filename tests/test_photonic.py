"""Photonic backend: compatibility layer, GBS statistics, training, post-processing, determinism.

Runtime: the first GBS sample in a process loads thewalrus's numba kernels (compiled once per
machine, then cached on disk); the module-scoped ``warm`` fixture pays that cost once and logs it.
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from backends import create_solver
from backends.exact import ExactSolver
from backends.photonic import compat
from backends.photonic.device import DeviceSpec, GBSSampler, encode, isolated_global_rng
from backends.photonic.postprocess import QuboStructure, local_search, random_subsets
from optimizer.errors import ConfigError
from optimizer.qubo import Qubo
from optimizer.solving.stop import Deadline
from tests.conftest import REPO, SHARED_DATA, one_hot_qubo, random_qubo

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def warm():
    log.info("loading Strawberry Fields and thewalrus's numba kernels (slow only on first use per machine)")
    sf = compat.import_strawberryfields()
    dev = DeviceSpec(modes=3, mean_photons=0.5)
    GBSSampler(encode(np.ones((3, 3)) - np.eye(3), dev), dev).sample(2, seed=0)
    GBSSampler(encode(np.ones((3, 3)) - np.eye(3), dev), DeviceSpec(modes=3, detectors="pnr")).sample(2, seed=0)
    return sf


# --------------------------------------------------------------------------- compatibility layer
def test_simps_shim_matches_simpson_with_positional_x():
    from scipy.integrate import simpson

    x = np.linspace(0.0, 2.0, 41)
    y = np.sin(x) * np.exp(-x)
    assert compat.simps(y, x) == pytest.approx(simpson(y, x=x))
    Y = np.vstack([y, 2 * y])
    np.testing.assert_allclose(compat.simps(Y, x, axis=1), simpson(Y, x=x, axis=1))
    assert compat.simps(y, dx=0.05) == pytest.approx(simpson(y, dx=0.05))


def test_apply_is_idempotent_and_leaves_a_real_simps_alone(monkeypatch):
    import scipy.integrate

    compat.apply()
    first = scipy.integrate.simps
    compat.apply()
    assert scipy.integrate.simps is first
    sentinel = object()
    monkeypatch.setattr(scipy.integrate, "simps", sentinel, raising=False)
    compat.apply()
    assert scipy.integrate.simps is sentinel


def test_strawberryfields_imports_and_runs_through_the_layer(warm):
    sf = warm
    from strawberryfields.backends.states import BaseGaussianState  # the module that imported simps

    assert BaseGaussianState is not None
    prog = sf.Program(1)
    with prog.context as q:
        sf.ops.Sgate(0.4) | q[0]
    state = sf.Engine("gaussian").run(prog).state
    assert state.mean_photon(0)[0] == pytest.approx(np.sinh(0.4) ** 2)
    # The Gaussian state's quadrature marginal integrates (via the shimmed simps) to ~1.
    xvec = np.linspace(-8, 8, 401)
    assert np.trapezoid(state.x_quad_values(0, xvec, xvec), xvec) == pytest.approx(1.0, abs=1e-3)


def test_importing_the_backend_stays_cheap():
    code = ("import sys, backends.photonic; "
            "print(sorted(m for m in ('strawberryfields', 'thewalrus', 'networkx', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- device and statistics
def _independent_covariance(A: np.ndarray, transmissivity: float) -> np.ndarray:
    """Covariance of the GBS state of A built with thewalrus alone (no Strawberry Fields)."""
    from thewalrus.quantum import Covmat
    from thewalrus.symplectic import loss

    n = len(A)
    X = np.block([[np.zeros((n, n)), np.eye(n)], [np.eye(n), np.zeros((n, n))]])
    Abig = np.block([[A, np.zeros((n, n))], [np.zeros((n, n)), A.conj()]])
    cov = np.real(Covmat(np.linalg.inv(np.eye(2 * n) - X @ Abig), hbar=2))
    mu = np.zeros(2 * n)
    for k in range(n):
        mu, cov = loss(mu, cov, transmissivity, k, hbar=2)
    return cov


def _chi_square_pvalue(observed: dict, expected_probs: dict, shots: int) -> float:
    from scipy.stats import chisquare

    keys = [k for k, p in expected_probs.items() if p * shots >= 5]
    obs = [observed.get(k, 0) for k in keys]
    exp = [expected_probs[k] * shots for k in keys]
    rest_obs, rest_exp = shots - sum(obs), shots - sum(exp)
    if rest_exp >= 5:
        obs.append(rest_obs)
        exp.append(rest_exp)
    exp = np.asarray(exp) * (sum(obs) / sum(exp))
    return float(chisquare(obs, exp).pvalue)


def _graph(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = np.triu((rng.random((n, n)) < 0.6) * (0.5 + rng.random((n, n))), 1)
    return A + A.T


@pytest.mark.parametrize("detectors,n,transmissivity", [("threshold", 5, 0.8), ("pnr", 4, 1.0)])
def test_click_frequencies_match_exact_probabilities(warm, detectors, n, transmissivity):
    from thewalrus import threshold_detection_prob
    from thewalrus.quantum import probabilities

    dev = DeviceSpec(modes=n, mean_photons=1.0, transmissivity=transmissivity, detectors=detectors)
    circuit = encode(_graph(n, seed=n), dev)
    sampler = GBSSampler(circuit, dev)
    cov = _independent_covariance(circuit.A, transmissivity)
    # The SF program (squeezers, Clements interferometer, loss) prepares exactly this state.
    np.testing.assert_allclose(sampler.cov, cov, atol=1e-8)
    shots = 1000 if detectors == "threshold" else 1500
    X = sampler.sample(shots, seed=2024)
    observed: dict = {}
    for row in map(tuple, X):
        observed[row] = observed.get(row, 0) + 1
    mu = np.zeros(2 * n)
    if detectors == "threshold":
        expected = {p: float(np.real(threshold_detection_prob(mu, cov, np.array(p), hbar=2)))
                    for p in itertools.product((0, 1), repeat=n)}
    else:
        probs = probabilities(mu, cov, cutoff=5, hbar=2)
        expected = {p: float(probs[p]) for p in itertools.product(range(5), repeat=n)}
    assert sum(expected.values()) == pytest.approx(1.0, abs=2e-2)
    pvalue = _chi_square_pvalue(observed, expected, shots)
    assert pvalue > 1e-3, f"GBS samples disagree with thewalrus's exact probabilities (p = {pvalue:.2g})"


def test_engine_path_and_state_path_give_the_same_samples(warm):
    dev = DeviceSpec(modes=5, mean_photons=1.5, transmissivity=0.9)
    circuit = encode(_graph(5, seed=1), dev)
    a = GBSSampler(circuit, dev, sampler="state").sample(20, seed=7)
    engine = GBSSampler(circuit, dev, sampler="engine")
    b = engine.sample(20, seed=7)
    c = engine.sample(20, seed=7)  # a second run on the same engine starts from the vacuum again
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(b, c)


def test_encoding_hits_target_photons_and_respects_squeezing_cap(warm):
    A = _graph(6, seed=3)
    free = encode(A, DeviceSpec(modes=6, mean_photons=3.0))
    assert free.mean_photons == pytest.approx(3.0, rel=1e-6) and not free.squeezing_capped
    capped = encode(A, DeviceSpec(modes=6, mean_photons=3.0, max_squeezing=0.5))
    assert capped.squeezing_capped and capped.squeezing.max() <= 0.5 + 1e-9
    assert capped.mean_photons < 3.0


def test_global_rng_is_isolated(warm):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    with isolated_global_rng(5):
        a = np.random.random(3)
    with isolated_global_rng(5):
        b = np.random.random(3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    solver = create_solver("photonic", {"samples": 30, "modes": 8, "train_steps": 3, "train_samples": 20})
    solver.solve(random_qubo(6, seed=2), seed=1, time_limit=10)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


# --------------------------------------------------------------------------- training and post-processing
def test_vectorised_gradient_matches_strawberry_fields_stochastic(warm):
    from strawberryfields.apps import train

    from backends.photonic.vgbs import make_vgbs, stochastic_cost_and_grad

    A = encode(_graph(4, seed=4), DeviceSpec(modes=4, mean_photons=2.0)).A
    rng = np.random.default_rng(0)
    samples = (rng.random((12, 4)) < 0.4).astype(int)
    vgbs = make_vgbs(A, threshold=True, samples=samples)
    h = lambda s: float(np.dot(s, [1.0, -2.0, 0.5, -1.0]))  # noqa: E731
    params = np.array([0.1, -0.05, 0.2, 0.0])
    cost, grad = stochastic_cost_and_grad(vgbs, np.array([h(s) for s in samples]), samples, params)
    reference = train.Stochastic(h, vgbs)
    assert cost == pytest.approx(reference.evaluate(params, 12))
    np.testing.assert_allclose(grad, reference.grad(params, 12), rtol=1e-8, atol=1e-12)


def test_local_search_ends_in_one_flip_local_minima():
    qubo = one_hot_qubo(3, 4, seed=8)
    rng = np.random.default_rng(1)
    X, evaluated = local_search(QuboStructure.of(qubo), rng.integers(0, 2, (20, 12)), deadline=Deadline(10))
    assert evaluated > 0
    for x in X:
        assert np.all(qubo.local_fields(x) >= -1e-9)


def test_random_subsets_keep_sizes():
    sizes = np.array([0, 1, 3, 5, 5])
    X = random_subsets(sizes, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(X.sum(axis=1), sizes)


def test_conflict_structure_detection(shared_data):
    assert QuboStructure.of(one_hot_qubo(2, 3, seed=1)).has_conflict_structure()
    assert not QuboStructure.of(random_qubo(8, seed=11)).has_conflict_structure()
    assert QuboStructure.of(_railway("qubo_1t_delays_no_2_2.0_4.0")).has_conflict_structure()


# --------------------------------------------------------------------------- a GBS matrix that carries the costs
def _capacity_model(seed: int = 3):
    """Two shipments of three plans, one capacity row that plans 1 and 4 cannot share: a QUBO with
    one-hot groups, slack bits and a penalty that dwarfs the cost differences."""
    import scipy.sparse as sp

    from optimizer.qubo.encoding import encode
    from optimizer.qubo.model import BinaryModel

    rng = np.random.default_rng(seed)
    c = np.round(rng.uniform(10, 40, 6), 1)
    A = sp.csr_array(np.array([[0, 2, 1, 0, 2, 1]], dtype=float))
    model = BinaryModel(labels=tuple(f"S{g}/p{k}" for g in range(2) for k in range(3)), c=c,
                        P=sp.csr_array((6, 6)), offset=0.0, groups=((0, 1, 2), (3, 4, 5)), A=A,
                        b=np.array([3.0]), row_names=("corridor",))
    return model, encode(model, reference=np.array([1, 0, 0, 1, 0, 0]))


def test_plan_costs_remove_the_penalty_and_reoptimise_the_slack():
    from backends.photonic.postprocess import plan_costs

    model, enc = _capacity_model()
    qubo = enc.qubo
    assert qubo.num_variables > 6 and enc.penalty > np.ptp(model.c)   # slack bits; the penalty dominates h
    costs = plan_costs(qubo)
    # Brute force: only plan i on, slack bits at their best, against nothing on, plus the one-hot penalty.
    free = np.arange(6, qubo.num_variables)
    S = ((np.arange(2 ** free.size)[:, None] >> np.arange(free.size)) & 1).astype(np.uint8)

    def best(plan):
        X = np.zeros((len(S), qubo.num_variables), np.uint8)
        X[:, free] = S
        if plan is not None:
            X[:, plan] = 1
        return qubo.energies(X).min()

    expected = np.array([best(i) - best(None) + enc.penalty for i in range(6)])
    np.testing.assert_allclose(costs[:6], expected, rtol=1e-9)
    np.testing.assert_allclose(costs[:6], model.c, rtol=1e-9)   # every plan fits the row on its own
    assert np.isnan(costs[6:]).all()
    # -h alone cannot tell the plans apart this way: the slack rows' penalty terms differ per plan.
    assert not np.allclose(-qubo.h[:6] - (-qubo.h[:6]).min(), model.c.max() - model.c)


def test_one_shipment_piece_gets_cost_weighted_squeezing_not_the_identity(warm):
    from optimizer.qubo.encoding import encode
    from optimizer.qubo.restrict import submodel

    model, _ = _capacity_model()
    sub = submodel(model, np.array([1, 0, 0, 1, 0, 0]), np.array(model.groups[0]))
    piece = encode(sub, reference=np.array([1, 0, 0])).qubo
    structure = QuboStructure.of(piece)
    A = structure.clique_matrix()
    assert not np.allclose(A, A[0, 0] * np.eye(len(A)))
    plans = np.arange(3)
    cheapest, dearest = int(np.argmin(sub.c)), int(np.argmax(sub.c))
    assert A[cheapest, cheapest] > A[dearest, dearest]
    result = create_solver("photonic", {"samples": 300, "postprocess": False, "modes": 8}).solve(
        piece, seed=1, time_limit=20)
    X = np.repeat(result.samples, result.counts, axis=0)[:, plans]
    assert X[:, cheapest].mean() > X[:, dearest].mean()


# --------------------------------------------------------------------------- raw is raw
@pytest.mark.parametrize("device", ["spatial", "borealis"])
def test_postprocess_false_returns_device_samples_only(warm, device):
    qubo = one_hot_qubo(2, 4, seed=5)
    opts = {"samples": 40, "postprocess": False, **({"device": "borealis"} if device == "borealis" else {"modes": 8})}
    optimum = ExactSolver().solve(qubo, seed=0, time_limit=10).best
    result = create_solver("photonic", opts).solve(qubo, seed=3, time_limit=20, initial=optimum)
    assert set(result.origins) == {"device"}
    assert result.origin_counts == {"device": 40} and result.num_reads == 40
    assert result.info["origins"]["initial"] == 0 and result.info["origins"]["postprocessed_from_initial"] == 0


@pytest.mark.parametrize("device", ["spatial", "borealis"])
def test_origins_keep_device_postprocessed_and_warm_start_apart(warm, device):
    qubo = one_hot_qubo(3, 4, seed=6)
    opts = {"samples": 30, **({"device": "borealis"} if device == "borealis" else {"modes": 12})}
    optimum = ExactSolver().solve(qubo, seed=0, time_limit=10)
    # A warm start at the optimum: nothing can beat it, so the best sample is credited to it.
    top = create_solver("photonic", opts).solve(qubo, seed=4, time_limit=20, initial=optimum.best)
    assert top.best_origin == "initial" and top.best_energy == pytest.approx(optimum.best_energy)
    info = top.info
    assert info["origins"]["postprocessed_from_initial"] == 1 and info["origins"]["initial"] == 1
    assert info["best_energy_postprocessed_from_initial"] == pytest.approx(optimum.best_energy)
    # A poor warm start: its local search is counted as post-processing from the warm start, apart
    # from what started at device samples; the reads by origin add up.
    poor = np.zeros(12, np.uint8)
    res = create_solver("photonic", opts).solve(qubo, seed=4, time_limit=20, initial=poor)
    o = res.info["origins"]
    assert res.origin_counts["device"] == o["device"] == res.info["samples_drawn"]
    assert res.origin_counts["initial"] == 1
    from_device = int(np.sum(res.counts)) - o["device"] - 1   # reads: device + post-processed + initial
    assert res.origin_counts["postprocessed"] == from_device
    assert o["postprocessed_from_initial"] == 1
    ls, _ = local_search(QuboStructure.of(qubo), poor[None], deadline=Deadline(10))
    assert res.info["best_energy_postprocessed_from_initial"] == pytest.approx(float(qubo.energies(ls)[0]))


# --------------------------------------------------------------------------- the time limit is a contract
@pytest.mark.parametrize("device", ["spatial", "borealis"])
def test_time_limit_covers_the_whole_call(warm, device):
    """A workload far beyond the limit: 10^6 samples of a bright 20-mode device (about 20 ms each)
    asked for in batches of up to 500 (10 s a batch), training uncapped. The call ends within 10 %
    of the limit plus its measured start-up (``timing["startup"]``)."""
    import time

    qubo = one_hot_qubo(5, 4, seed=2)
    bright = {"detection": "threshold", "squeezing_range": [1.0, 1.212], "source_efficiency": 1.0,
              "detector_efficiency": 1.0, "loop_efficiencies": [1.0, 1.0, 1.0], "channel_efficiencies": [1.0]}
    opts = {"samples": 10**6, "train_steps": 10**6, "batch_size": 500}
    opts.update({"device": "borealis", "borealis": bright} if device == "borealis"
                else {"modes": 20, "mean_photons": 14.0, "max_squeezing": 2.0})
    limit = 3.0
    start = time.perf_counter()
    result = create_solver("photonic", opts).solve(qubo, seed=0, time_limit=limit)
    elapsed = time.perf_counter() - start
    assert elapsed <= 1.1 * limit + result.timing["startup"], (elapsed, dict(result.timing))
    assert result.timing["total"] <= elapsed
    assert 50 < result.info["samples_drawn"] < 10**6


# --------------------------------------------------------------------------- the solver
def _railway(stem: str) -> Qubo:
    """A railway rescheduling QUBO from iitis/quantum-stochastic-optimization-railways (QUBOs/gates);
    Domino, Kundu, Salehi, Krawiec, Quantum Inf. Process. 21:337 (2022). See shared/data/README.md."""
    rows = [line.split() for line in (SHARED_DATA / "railway_qubo" / f"{stem}.qubo.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    n = int(rows[0][0])
    i, j, w = zip(*((int(a), int(b), float(c)) for a, b, c in rows[1:]))
    return Qubo.from_terms(n, rows=i, cols=j, weights=w)


def test_clique_mode_reaches_published_ground_energy_on_a_railway_qubo(warm, shared_data):
    stem = "qubo_2t_delays_no_2_2.0_4.0"
    published = json.loads((shared_data / "railway_qubo" / f"{stem}.json").read_text())["ground_energy"]
    solver = create_solver("photonic", {"samples": 60, "modes": 24, "ablation": True})
    result = solver.solve(_railway(stem), seed=0, time_limit=20)
    assert result.info["mode"] == "clique"
    assert result.best_energy == pytest.approx(published)
    assert result.info["best_energy_postprocessed"] <= result.info["best_energy_raw"]
    assert "best_energy_postprocessed" in result.info["ablation"]


def test_vgbs_mode_trains_and_reports(warm):
    qubo = random_qubo(8, seed=21)
    solver = create_solver("photonic", {"samples": 40, "modes": 8, "mode": "vgbs", "train_steps": 6,
                                        "train_samples": 30, "resample_every": 3, "detectors": "pnr"})
    result = solver.solve(qubo, seed=4, time_limit=20)
    info = result.info
    assert info["mode"] == "vgbs" and info["training_steps"] == 6 and info["training_resamples"] == 2
    assert info["samples_drawn"] == 2 * 30 + 40
    assert info["mean_photons_per_sample"] > 0
    assert {"train", "simulate", "postprocess", "total"} <= set(result.timing)
    json.dumps(info)
    optimum = ExactSolver().solve(qubo, seed=0, time_limit=10).best_energy
    assert result.best_energy >= optimum - 1e-9


@pytest.mark.parametrize("mode", ["clique", "vgbs"])
def test_same_seed_same_result_in_both_modes(warm, mode):
    qubo = one_hot_qubo(2, 4, seed=5)
    opts = {"samples": 30, "modes": 8, "mode": mode, "train_steps": 4, "train_samples": 20, "ablation": True}
    a = create_solver("photonic", opts).solve(qubo, seed=9, time_limit=20)
    b = create_solver("photonic", opts).solve(qubo, seed=9, time_limit=20)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.info["ablation"] == b.info["ablation"]


def test_options_are_validated():
    with pytest.raises(ConfigError, match="detectors"):
        create_solver("photonic", {"detectors": "bolometer"})
    with pytest.raises(ConfigError, match="max_variables"):
        create_solver("photonic", {"modes": 8, "max_variables": 9})
    with pytest.raises(ConfigError, match="unknown option"):
        create_solver("photonic", {"squeezing": 1.0})
    assert create_solver("photonic", {"modes": 10}).max_variables == 10


def test_freight_tiny_clique_mode_postprocessing_never_ends_above_raw():
    """The tiny freight QUBO (one-hot groups plus slack bits): post-processing starts from the
    raw samples as well as the cliques, so it can only improve on them; it reaches the optimum."""
    from backends import create_solver
    from backends.exact import ExactSolver
    from optimizer.solving.config import Config
    from optimizer.solving.pipeline import prepare
    from optimizer.freight.problem import load_problem
    from tests.conftest import PROBLEMS

    qubo = prepare(load_problem(PROBLEMS / "tiny.toml"), Config()).qubo
    result = create_solver("photonic", {"mode": "clique", "samples": 100}).solve(qubo, seed=0, time_limit=20)
    assert result.info["best_energy_postprocessed"] <= result.info["best_energy_raw"] + 1e-6
    assert result.best_energy == pytest.approx(ExactSolver().solve(qubo, seed=0, time_limit=10).best_energy, rel=1e-9)
