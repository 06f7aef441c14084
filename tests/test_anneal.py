"""The annealing backend: a time budget it uses and honours, a target it stops at, a fixed-work mode
that is deterministic, sample origins, Ctrl-C, and (with the public data) time-to-target against
dwave-samplers called directly.

Public files used (through the ``shared_data`` fixture; see shared/data/README.md): Beasley's
OR-Library bqp50 (J.E. Beasley, J. Oper. Res. Soc. 41 (1990)), with its published optima.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from backends import create_solver
from backends.anneal import AnnealSolver, _ising, default_beta_range, to_bqm
from optimizer.qubo import Qubo
from optimizer.qubo.formats import read_qubos
from tests.conftest import one_hot_qubo, random_qubo, require_data


def sparse_qubo(n: int, couplings: int, *, seed: int) -> Qubo:
    rng = np.random.default_rng(seed)
    return Qubo.from_terms(n, linear=rng.normal(size=n) * 5, rows=rng.integers(0, n, couplings),
                           cols=rng.integers(0, n, couplings), weights=rng.normal(size=couplings) * 10)


# ------------------------------------------------------------------ schedule = the library's defaults
@pytest.mark.parametrize("seed", [0, 1])
def test_beta_range_is_dwave_samplers_default(seed):
    from dwave.samplers.sa.sampler import default_beta_range as library_rule

    qubo = random_qubo(30, seed=seed, integer=True) if seed else one_hot_qubo(4, 3, seed=2)
    mine = default_beta_range(*_ising(qubo)[:4])
    np.testing.assert_allclose(mine, library_rule(to_bqm(qubo)), rtol=1e-12)


# ------------------------------------------------------------------ budget mode
@pytest.mark.timeout(60)
def test_budget_is_used_until_the_limit():
    qubo = sparse_qubo(300, 3000, seed=1)
    start = time.perf_counter()
    result = AnnealSolver().solve(qubo, seed=0, time_limit=1.0)
    elapsed = time.perf_counter() - start
    # A budget, not a fixed read count: it keeps sampling (tabu restarts and SA batches) until the limit.
    assert result.info["mode"] == "budget" and result.info["stop_reason"] == "time_limit"
    assert result.info["reads"] > 64 and result.info["tabu_reads"] > 0 and result.info["sa_reads"] > 0
    assert 0.9 <= elapsed <= 1.1 + result.info["startup_s"] + 0.1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n, couplings, limit", [(2_000, 20_000, 1.0), (60_000, 600_000, 2.0)])
def test_time_limit_covers_the_whole_call(n, couplings, limit):
    # The large case is the shape of a 1,000-shipment freight QUBO: one read there takes many
    # milliseconds and one kernel call a measurable set-up, so batches must be sized to the budget.
    qubo = sparse_qubo(n, couplings, seed=2)
    start = time.perf_counter()
    result = AnnealSolver().solve(qubo, seed=0, time_limit=limit)
    elapsed = time.perf_counter() - start
    allowance = result.info["startup_s"] + 0.15  # stated: set-up before the first read, plus result assembly
    assert elapsed <= 1.10 * limit + allowance, (elapsed, result.info)
    assert elapsed >= 0.8 * limit  # and the budget is used, not left idle
    np.testing.assert_allclose(result.energies, qubo.energies(result.samples))


@pytest.mark.parametrize("options", [{}, {"num_reads": 10}, {"method": "tabu"}])
def test_a_budget_too_short_for_anything_still_returns_one_read(options):
    qubo = random_qubo(20, seed=9)
    result = AnnealSolver(**options).solve(qubo, seed=0, time_limit=1e-6)
    assert result.info["reads"] >= 1 and result.info["stop_reason"] == "time_limit"
    assert result.origins[0] == "device"


def test_target_stops_early_and_reports_time_to_target():
    qubo = random_qubo(14, seed=5, integer=True)
    optimum = create_solver("exact", {}).solve(qubo, seed=0, time_limit=30).best_energy
    start = time.perf_counter()
    result = AnnealSolver(target=optimum).solve(qubo, seed=3, time_limit=20)
    elapsed = time.perf_counter() - start
    assert result.best_energy == pytest.approx(optimum)
    assert result.info["stop_reason"] == "target" and result.info["reached_target"] is True
    assert 0 < result.info["time_to_target_s"] <= elapsed < 2.0
    # An unreachable target: the whole budget is used and the report says it was not reached.
    missed = AnnealSolver(target=optimum - 1.0).solve(qubo, seed=3, time_limit=0.3)
    assert missed.info["reached_target"] is False and missed.info["time_to_target_s"] is None
    assert missed.info["stop_reason"] == "time_limit"


# ------------------------------------------------------------------ fixed-work mode
def test_fixed_work_is_deterministic_and_exact_in_reads():
    qubo = sparse_qubo(200, 2000, seed=3)
    a = AnnealSolver(num_reads=40, num_sweeps=200).solve(qubo, seed=11, time_limit=60)
    b = AnnealSolver(num_reads=40, num_sweeps=200).solve(qubo, seed=11, time_limit=60)
    assert a.info["mode"] == "work" and a.info["reads"] == 40 and a.num_reads == 40
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.counts, b.counts)
    c = AnnealSolver(num_reads=40, num_sweeps=200).solve(qubo, seed=12, time_limit=60)
    assert not np.array_equal(a.samples, c.samples)
    t = AnnealSolver(method="tabu", num_reads=4, tabu_restarts=1).solve(qubo, seed=11, time_limit=60)
    u = AnnealSolver(method="tabu", num_reads=4, tabu_restarts=1).solve(qubo, seed=11, time_limit=60)
    np.testing.assert_array_equal(t.samples, u.samples)


def test_negative_and_huge_seeds_are_valid_and_distinct():
    qubo = random_qubo(10, seed=1)
    solver = AnnealSolver(num_reads=8, num_sweeps=100)
    results = [solver.solve(qubo, seed=s, time_limit=10) for s in (-1, 2**64 - 1, 2**70, 1)]
    np.testing.assert_array_equal(results[0].samples, results[1].samples)  # -1 is 2^64 - 1
    assert all(len(r) >= 1 for r in results)


def test_bad_options_are_refused():
    for options in ({"method": "annealing"}, {"num_reads": 0}, {"num_sweeps": -3}, {"beta_range": [0.1]},
                    {"target": float("nan")}, {"tabu_restarts": -1}):
        with pytest.raises(ValueError):
            AnnealSolver(**options)
    with pytest.raises(ValueError, match="tabu_max_variables"):
        AnnealSolver(method="tabu", tabu_max_variables=10).solve(random_qubo(12, seed=0), seed=0, time_limit=1)


# ------------------------------------------------------------------ origins and Ctrl-C
def test_warm_start_row_is_initial_and_the_rest_device():
    qubo = one_hot_qubo(3, 3, seed=4)
    warm = np.zeros(qubo.num_variables, dtype=np.uint8)
    warm[[0, 3, 6]] = 1
    for solver in (AnnealSolver(num_reads=8, num_sweeps=50), AnnealSolver()):
        result = solver.solve(qubo, seed=0, time_limit=0.2, initial=warm)
        origins = dict(zip(map(bytes, result.samples), result.origins))
        assert origins[bytes(warm)] == "initial"
        assert set(result.origins) <= {"initial", "device"} and "device" in result.origins
        assert result.origin_counts["initial"] == 1


@pytest.mark.timeout(60)
def test_ctrl_c_returns_the_best_so_far():
    qubo = sparse_qubo(3_000, 30_000, seed=6)
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    start = time.perf_counter()
    result = AnnealSolver().solve(qubo, seed=0, time_limit=30)
    elapsed = time.perf_counter() - start
    assert result.info["interrupted"] is True and result.info["stop_reason"] == "interrupted"
    assert elapsed < 5.0 and result.info["reads"] >= 1
    np.testing.assert_allclose(result.best_energy, qubo.energy(result.best))
    # The handler is restored: a later Ctrl-C raises as usual.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ------------------------------------------------------------------ against dwave-samplers directly
def _peer_time_to_target(sample, target: float, budget: float) -> float | None:
    start = time.perf_counter()
    seed = 0
    while time.perf_counter() - start < budget:
        if sample(seed).first.energy <= target + 1e-9:
            return time.perf_counter() - start
        seed += 1
    return None


def test_time_to_target_within_1_5x_of_dwave_samplers_on_bqp50(shared_data):
    """CI-sized form of benchmarks/published.py: bqp50 #1-5, three seeds, generous bound (3x)."""
    from dwave.samplers import SimulatedAnnealingSampler, TabuSampler

    path, optima_path = require_data(shared_data, "bqp/bqp50.txt", "bqp/bqp50_optima.json")
    optima = json.loads(optima_path.read_text())
    sa, tabu = SimulatedAnnealingSampler(), TabuSampler()
    ours, peer_sa, peer_tabu, hits = [], [], [], 0
    AnnealSolver().solve(read_qubos(path)[0], seed=0, time_limit=0.1)  # imports and first-call set-up
    for qubo in read_qubos(path)[:5]:
        target = -float(optima[qubo.metadata["name"]]["value"])
        bqm = to_bqm(qubo)
        for seed in range(3):
            start = time.perf_counter()
            result = AnnealSolver(target=target).solve(qubo, seed=seed, time_limit=5)
            ours.append(time.perf_counter() - start)
            hits += result.best_energy <= target + 1e-9
            peer_sa.append(_peer_time_to_target(lambda s: sa.sample(bqm, num_reads=1, seed=s + 100 * seed), target, 5))
            peer_tabu.append(_peer_time_to_target(
                lambda s: tabu.sample(bqm, num_reads=1, seed=s + 100 * seed, energy_threshold=target), target, 5))
    assert hits == len(ours)
    best_peer = min(np.mean([t for t in peer if t is not None]) for peer in (peer_sa, peer_tabu))
    assert np.mean(ours) <= 3.0 * best_peer, (np.mean(ours), best_peer)
