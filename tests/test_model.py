"""The constrained model and its QUBO: the penalty rule, round trips, and the cross-checks
against qiskit-optimization's converter and against CP-SAT."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.cpsat import CpSatSolver
from backends.exact import ExactSolver, all_energies
from optimizer.freight.candidates import generate_candidates
from optimizer.solve.config import Config
from optimizer.qubo.encoding import encode
from optimizer.freight.evaluate import decode, encode_plan
from optimizer.freight.baselines import greedy_dispatch
from optimizer.freight.model import build_model
from optimizer.solve.pipeline import prepare
from optimizer.freight.problem import load_problem
from optimizer.qubo import Qubo
from tests.conftest import PROBLEMS
from tests.freight_cases import small_problem


def all_model_assignments(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)


def min_over_slack(encoding, x: np.ndarray) -> float:
    sub, _ = encoding.qubo.clamp({i: int(v) for i, v in enumerate(x)})
    return float(all_energies(sub).min()) if sub.num_variables else sub.offset


def check_penalty_rule(problem, inequality="slack"):
    cset = generate_candidates(problem)
    model = build_model(cset)
    greedy = greedy_dispatch(cset)
    enc = encode(model, reference=greedy, inequality=inequality)
    X = all_model_assignments(model.num_variables)
    feasible = model.is_feasible(X)
    assert feasible.any()
    objective = model.objective(X)
    optimum = objective[feasible].min()
    # Feasible assignments: the lifted QUBO energy is the model objective.
    np.testing.assert_allclose(enc.qubo.energies(enc.lift(X[feasible])), objective[feasible], rtol=1e-9)
    # Infeasible ones: whatever the slack bits, the energy is above the optimum.
    for x in X[~feasible][:: max(1, (~feasible).sum() // 60)]:
        assert min_over_slack(enc, x) > optimum
    # So the QUBO minimum is the model optimum.
    if enc.qubo.num_variables <= 22:
        assert ExactSolver(max_variables=22).solve(enc.qubo, seed=0, time_limit=10).best_energy == \
            pytest.approx(optimum, rel=1e-9)
    return enc, optimum


def test_tiny_fits_a_device_and_penalty_rule_holds():
    problem = load_problem(PROBLEMS / "tiny.toml")
    enc, _ = check_penalty_rule(problem)
    assert enc.qubo.num_variables <= 20


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wagons=st.tuples(st.integers(5, 50), st.integers(5, 50), st.integers(5, 50)),
    corridor_capacity=st.integers(1, 2),
    yard_capacity=st.integers(0, 2),
    locomotives=st.integers(1, 3),
)
def test_qubo_energy_equals_objective_on_feasible_and_exceeds_optimum_otherwise(
        wagons, corridor_capacity, yard_capacity, locomotives):
    problem = small_problem(wagons=wagons, corridor_capacity=corridor_capacity, yard_capacity=yard_capacity,
                            locomotives=locomotives)
    check_penalty_rule(problem)


def test_decode_encode_round_trip():
    problem = load_problem(PROBLEMS / "tiny.toml")
    cset = generate_candidates(problem)
    model = build_model(cset)
    X = all_model_assignments(model.num_variables)
    for x in X[model.is_feasible(X)]:
        plan = decode(cset, x)
        assert not plan.problems
        np.testing.assert_array_equal(encode_plan(cset, plan), x)


def test_decode_reports_broken_one_hot_groups():
    problem = load_problem(PROBLEMS / "tiny.toml")
    cset = generate_candidates(problem)
    x = np.zeros(len(cset.candidates), dtype=np.uint8)
    x[list(cset.groups[0])[:2]] = 1
    plan = decode(cset, x)
    assert any("S1" in p and "got 2" in p for p in plan.problems)
    assert any("S2" in p and "got 0" in p for p in plan.problems)


def test_cpsat_on_model_agrees_with_exact_on_qubo_for_tiny():
    problem = load_problem(PROBLEMS / "tiny.toml")
    prep = prepare(problem, Config())
    exact = ExactSolver().solve(prep.qubo, seed=0, time_limit=10)
    sol = CpSatSolver(workers=1).solve_model(prep.model, seed=0, time_limit=10)
    assert sol.optimal
    assert sol.objective == pytest.approx(exact.best_energy, rel=1e-12)
    assert sol.bound == pytest.approx(sol.objective, rel=1e-9)
    np.testing.assert_array_equal(prep.encoding.project(exact.best), sol.x)


def test_unbalanced_penalisation_has_no_slack_and_is_checked():
    problem = load_problem(PROBLEMS / "tiny.toml")
    prep = prepare(problem, Config())
    enc = encode(prep.model, reference=prep.greedy, inequality="unbalanced")
    assert enc.qubo.num_variables == prep.model.num_variables
    best = ExactSolver().solve(enc.qubo, seed=0, time_limit=10).best
    # No guarantee: whatever it returns is judged by the model, not by its energy.
    assert isinstance(bool(prep.model.is_feasible(best)[0]), bool)


def test_energies_match_qiskit_optimization_converter():
    """Cross-check: same model through qiskit-optimization's QuadraticProgramToQubo.

    Both QUBOs add slack bits differently, so compare the minimum over slack bits for every
    model assignment: equal to the objective when feasible, above the optimum when not.
    """
    from qiskit_optimization import QuadraticProgram
    from qiskit_optimization.converters import QuadraticProgramToQubo

    # Small wagon counts keep qiskit's slack registers (it does not divide rows by their gcd)
    # small enough to enumerate.
    problem = small_problem(wagons=(3, 2, 2), wagons_per_train=4, locomotives=2)
    prep = prepare(problem, Config())
    model = prep.model
    assert model.num_rows >= 2
    qp = QuadraticProgram("small")
    for label in model.labels:
        qp.binary_var(label)
    P = model.P.tocoo()
    qp.minimize(linear=dict(zip(model.labels, model.c.tolist())),
                quadratic={(model.labels[i], model.labels[j]): v for i, j, v in zip(P.row, P.col, P.data)})
    for g, members in enumerate(model.groups):
        qp.linear_constraint({model.labels[i]: 1 for i in members}, "==", 1, name=f"g{g}")
    A = model.A.tocsr()
    for r in range(model.num_rows):
        s, e = A.indptr[r], A.indptr[r + 1]
        qp.linear_constraint({model.labels[i]: float(a) for i, a in zip(A.indices[s:e], A.data[s:e])}, "<=",
                             float(model.b[r]), name=f"r{r}")
    converted = QuadraticProgramToQubo(penalty=prep.encoding.penalty).convert(qp)
    names = [v.name for v in converted.variables]
    n = model.num_variables
    assert names[:n] == list(model.labels)
    num_slack = len(names) - n
    assert num_slack <= 20
    theirs = Qubo.from_dense(converted.objective.quadratic.to_array()
                             + np.diag(converted.objective.linear.to_array()),
                             offset=converted.objective.constant)
    X = all_model_assignments(n)
    feasible = model.is_feasible(X)
    optimum = model.objective(X)[feasible].min()
    for x, ok in zip(X, feasible):
        sub, _ = theirs.clamp({i: int(v) for i, v in enumerate(x)})
        qiskit_min = float(all_energies(sub).min())
        ours = min_over_slack(prep.encoding, x)
        if ok:
            assert ours == pytest.approx(qiskit_min, rel=1e-9)
            assert ours == pytest.approx(model.objective(x)[0], rel=1e-9)
        else:
            assert ours > optimum and qiskit_min > optimum
