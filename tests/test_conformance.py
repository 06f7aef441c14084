"""One conformance suite that every registered backend passes (pattern: dimod.testing).

Each backend is built with FAST_OPTIONS (small budgets for CI). What a heuristic may miss is
declared as data on the backend class (``heuristic``), never by skipping silently.
"""

from __future__ import annotations

import importlib.metadata
import time

import numpy as np
import pytest

from backends import ENTRY_POINT_GROUP, REGISTRY, create_solver
from backends.exact import ExactSolver
from optimizer.errors import ProblemTooLarge
from tests.conftest import one_hot_qubo, random_qubo

# Small budgets so the whole suite stays fast on two cores.
FAST_OPTIONS: dict[str, dict[str, object]] = {
    "exact": {},
    "anneal": {"num_reads": 32, "num_sweeps": 500},
    "cpsat": {"workers": 1},
    "qaoa": {"reps": 2, "maxiter": 60, "shots": 512},
    "photonic": {"samples": 100, "modes": 12, "train_steps": 10, "train_samples": 50},
}

#: Every built-in backend, plus one third-party backend that joins only through the entry-point
#: group (its installed metadata is faked for the test; the registry code path is the real one).
THIRD_PARTY = "toy"
BACKENDS = sorted(REGISTRY) + [THIRD_PARTY]
CASES = {
    "random8": random_qubo(8, seed=11),
    "integer10": random_qubo(10, seed=12, integer=True),
    "onehot3x3": one_hot_qubo(3, 3, seed=13),
}


def make(name: str, **overrides):
    return create_solver(name, {**FAST_OPTIONS.get(name, {}), **overrides})


def install_toy_entry_point(monkeypatch) -> None:
    """Make ``importlib.metadata`` report an installed distribution declaring the toy backend."""
    real = importlib.metadata.entry_points
    toy = importlib.metadata.EntryPoint(name=THIRD_PARTY, value="tests.toy_backend:SteepestDescentSolver",
                                        group=ENTRY_POINT_GROUP)

    def entry_points(**selection):
        found = list(real(**selection))
        return found + [toy] if selection.get("group") == ENTRY_POINT_GROUP else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    REGISTRY.refresh()


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    if request.param == THIRD_PARTY:
        install_toy_entry_point(monkeypatch)
        yield THIRD_PARTY
        monkeypatch.undo()
        REGISTRY.refresh()
        assert THIRD_PARTY not in REGISTRY
    else:
        yield request.param


def test_third_party_backend_joins_only_through_entry_points(monkeypatch):
    assert THIRD_PARTY not in REGISTRY
    install_toy_entry_point(monkeypatch)
    try:
        spec = REGISTRY[THIRD_PARTY]
        assert spec.target == "tests.toy_backend:SteepestDescentSolver"
        assert create_solver(THIRD_PARTY, {"starts": 4}).starts == 4
    finally:
        monkeypatch.undo()
        REGISTRY.refresh()


def test_entry_point_cannot_take_over_a_builtin_name(monkeypatch):
    real = importlib.metadata.entry_points
    evil = importlib.metadata.EntryPoint(name="cpsat", value="tests.toy_backend:SteepestDescentSolver",
                                         group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **sel: list(real(**sel)) + ([evil] if sel.get("group") == ENTRY_POINT_GROUP else []))
    REGISTRY.refresh()
    try:
        assert REGISTRY["cpsat"].target == "backends.cpsat:CpSatSolver"
        assert any("'cpsat'" in p for p in REGISTRY.problems)
    finally:
        monkeypatch.undo()
        REGISTRY.refresh()


@pytest.mark.parametrize("case", sorted(CASES))
def test_energies_recomputed_sorted_and_shaped(backend, case):
    qubo = CASES[case]
    result = make(backend).solve(qubo, seed=3, time_limit=20)
    assert result.samples.dtype == np.uint8
    assert result.samples.shape[1] == qubo.num_variables
    assert set(np.unique(result.samples)) <= {0, 1}
    np.testing.assert_allclose(result.energies, qubo.energies(result.samples), rtol=0, atol=1e-9)
    assert np.all(np.diff(result.energies) >= 0)
    assert np.all(result.counts >= 1)
    assert len(np.unique(result.samples, axis=0)) == len(result)


@pytest.mark.parametrize("case", sorted(CASES))
def test_finds_exact_optimum_on_small_cases(backend, case):
    qubo = CASES[case]
    optimum = ExactSolver().solve(qubo, seed=0, time_limit=10).best_energy
    solver = make(backend)
    result = solver.solve(qubo, seed=5, time_limit=20)
    assert result.best_energy >= optimum - 1e-9, "no backend may beat the exact optimum"
    if "optimum" in type(solver).heuristic:
        # A declared heuristic must still produce a reasonable energy: within the lower
        # half of the range between the optimum and the mean energy of random assignments.
        rng = np.random.default_rng(0)
        mean_random = qubo.energies(rng.integers(0, 2, (2000, qubo.num_variables))).mean()
        assert result.best_energy <= optimum + 0.5 * (mean_random - optimum)
    else:
        assert result.best_energy == pytest.approx(optimum, abs=1e-7)


def test_same_seed_same_result(backend):
    qubo = CASES["integer10"]
    a = make(backend).solve(qubo, seed=42, time_limit=20)
    b = make(backend).solve(qubo, seed=42, time_limit=20)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.energies, b.energies)


def test_oversize_input_refused_clearly(backend):
    qubo = random_qubo(6, seed=1)
    solver = make(backend, max_variables=4)
    with pytest.raises(ProblemTooLarge, match=r"at most 4 binary variables; this QUBO has 6"):
        solver.solve(qubo, seed=0, time_limit=5)


def test_input_not_mutated(backend):
    qubo = CASES["onehot3x3"]
    Q_before, h_before = qubo.Q.toarray().copy(), qubo.h.copy()
    make(backend).solve(qubo, seed=1, time_limit=20)
    np.testing.assert_array_equal(qubo.Q.toarray(), Q_before)
    np.testing.assert_array_equal(qubo.h, h_before)


def test_time_limit_respected(backend):
    qubo = random_qubo(12, seed=7)
    limit = 1.0
    start = time.perf_counter()
    make(backend).solve(qubo, seed=0, time_limit=limit)
    # Grace covers interpreter-level set-up (imports are warmed by earlier tests) on a loaded CI box.
    assert time.perf_counter() - start <= limit + 4.0


def test_info_is_json_serialisable(backend):
    import json

    result = make(backend).solve(CASES["random8"], seed=0, time_limit=20)
    json.dumps(dict(result.info))
    json.dumps(dict(result.timing))
