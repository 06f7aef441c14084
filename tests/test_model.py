"""The constrained model and its QUBO: the penalty rule (rows with negative coefficients
included), round trips, and the cross-checks against qiskit-optimization's converter and CP-SAT."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.cpsat import CpSatSolver
from backends.exact import ExactSolver, all_energies
from optimizer.freight.baselines import best_baseline
from optimizer.freight.candidates import CandidateOptions, generate_candidates
from optimizer.freight.evaluate import decode, encode_plan
from optimizer.freight.model import aux_layout, build_model
from optimizer.freight.problem import load_problem
from optimizer.qubo import Qubo
from optimizer.qubo.encoding import encode
from optimizer.qubo.model import BinaryModel
from optimizer.solving.config import Config
from optimizer.solving.pipeline import prepare
from tests.conftest import PROBLEMS
from tests.freight_cases import small_problem


def all_model_assignments(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)


def min_over_slack(encoding, x: np.ndarray) -> float:
    """Brute force over the slack bits (independent of Encoding.lift).

    With the model variables fixed, the slack bits of different rows do not interact, so the
    minimum is taken block by block (each row's bits enumerated, the others at 0)."""
    n = encoding.num_model_variables
    sub, _ = encoding.qubo.clamp({i: int(v) for i, v in enumerate(x)})
    if not sub.num_variables:
        return sub.offset
    blocks = [np.asarray(s.columns) - n for s in encoding.slack_rows if s.columns]
    block_of = np.full(sub.num_variables, -1)
    for k, cols in enumerate(blocks):
        block_of[cols] = k
    coo = sub.Q.tocoo()
    assert (block_of[coo.row] == block_of[coo.col]).all(), "slack bits of different rows interact"
    total = sub.offset
    for cols in blocks:
        X = np.zeros((1 << cols.size, sub.num_variables), dtype=np.uint8)
        X[:, cols] = all_model_assignments(cols.size)
        total += float(sub.energies(X).min()) - sub.offset
    return total


def check_penalty_rule(model: BinaryModel, reference: np.ndarray, inequality: str = "slack", *, rng=None):
    enc = encode(model, reference=reference, inequality=inequality)
    X = all_model_assignments(model.num_variables)
    feasible = model.is_feasible(X)
    assert feasible.any() and (~feasible).any()
    objective = model.objective(X)
    optimum = objective[feasible].min()
    lifted = enc.qubo.energies(enc.lift(X))
    # Feasible assignments: the lifted QUBO energy is the model objective.
    np.testing.assert_allclose(lifted[feasible], objective[feasible], rtol=1e-9)
    # The lift sets every slack to its best value (checked by brute force on a sample).
    rng = rng or np.random.default_rng(0)
    for k in rng.choice(X.shape[0], size=min(24, X.shape[0]), replace=False):
        assert lifted[k] == pytest.approx(min_over_slack(enc, X[k]), rel=1e-9, abs=1e-6)
    # Infeasible ones: whatever the slack bits, the energy is above the optimum.
    assert (lifted[~feasible] > optimum).all()
    # So the QUBO minimum is the model optimum.
    if enc.qubo.num_variables <= 22:
        assert ExactSolver(max_variables=22).solve(enc.qubo, seed=0, time_limit=10).best_energy == \
            pytest.approx(optimum, rel=1e-9)
    return enc, optimum


def freight_model(problem, light_engines: int = 0):
    cset = generate_candidates(problem, CandidateOptions(light_engines=light_engines))
    model = build_model(cset)
    _, reference = best_baseline(cset, model)
    return cset, model, reference


def test_tiny_fits_a_device_and_penalty_rule_holds():
    cset, model, reference = freight_model(load_problem(PROBLEMS / "tiny.toml"), light_engines=1)
    enc, _ = check_penalty_rule(model, reference)
    # 8 plans and 4 train counts; every row is a conflict or an implication: no slack bit at all.
    assert len(cset.candidates) == 8 and model.num_variables == 12
    assert enc.qubo.num_variables == 12 and not enc.slack_rows


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wagons=st.tuples(st.integers(5, 50), st.integers(5, 50), st.integers(5, 50)),
    corridor_capacity=st.integers(1, 2),
    yard_capacity=st.integers(0, 2),
    locomotives=st.integers(1, 3),
    locomotives_t=st.integers(0, 1),
    slots=st.integers(1, 2),
)
def test_qubo_energy_equals_objective_on_feasible_and_exceeds_optimum_otherwise(
        wagons, corridor_capacity, yard_capacity, locomotives, locomotives_t, slots):
    problem = small_problem(wagons=wagons, corridor_capacity=corridor_capacity, yard_capacity=yard_capacity,
                            locomotives=locomotives, locomotives_t=locomotives_t, slots=slots)
    _, model, reference = freight_model(problem)
    assert model.num_variables <= 17  # the sizes drawn give 3 to 17 variables: enumeration stays cheap
    check_penalty_rule(model, reference)


def test_fleet_rows_with_negative_coefficients_keep_the_rule():
    """Locomotives arriving at T count negatively in T's fleet rows: the slack must span down to
    the row's smallest activity (with slack sized from the bound alone, feasible plans whose
    arrivals exceed the departures would be penalised)."""
    problem = small_problem(wagons=(30, 30, 20), corridor_capacity=2, yard_capacity=2, locomotives=3,
                            locomotives_t=0, slots=1)
    _, model, reference = freight_model(problem)
    fleet = [r for r, name in enumerate(model.row_names) if name.startswith("fleet T")]
    assert fleet and any((model.A[[r]].toarray() < 0).any() for r in fleet)
    enc, _ = check_penalty_rule(model, reference)
    spans = {model.row_names[s.row]: s.slack_range for s in enc.slack_rows}
    assert any(name.startswith("fleet T") and span > model.b[model.row_names.index(name)]
               for name, span in spans.items())


def test_implication_and_conflict_shortcuts_are_exact():
    """sum a_i x_i <= B y with sum a_i <= B is x_i <= y (no slack); a row with a negative
    coefficient that is no implication keeps its slack bits."""
    import scipy.sparse as sp

    labels = ("a", "b", "c", "y")
    # Row 0: 3a + 2b - 5y <= 0 (implication); row 1: a + c - y <= 0 where a and c may both be on
    # when y is (not pairwise: a negative coefficient).
    A = sp.csr_array(np.array([[3, 2, 0, -5], [1, 0, 1, -1]], dtype=float))
    model = BinaryModel(labels=labels, c=np.array([-1.0, -2.0, -1.5, 2.5]), P=sp.csr_array((4, 4)), offset=0.0,
                        groups=(), A=A, b=np.array([0.0, 1.0]), row_names=("imp", "mixed"))
    enc, optimum = check_penalty_rule(model, np.zeros(4, dtype=np.uint8))
    assert [model.row_names[s.row] for s in enc.slack_rows] == ["mixed"]
    assert optimum == pytest.approx(-2.0)  # a, b, c and y on: -1 - 2 - 1.5 + 2.5


def test_decode_encode_round_trip_with_train_counts():
    problem = load_problem(PROBLEMS / "tiny.toml")
    cset = generate_candidates(problem)
    model = build_model(cset)
    X = all_model_assignments(model.num_variables)
    feasible = X[model.is_feasible(X)]
    assert len(feasible) > 3
    for x in feasible:
        plan = decode(cset, x)
        assert not plan.problems
        again = encode_plan(cset, plan)
        np.testing.assert_array_equal(again[: len(cset.candidates)], x[: len(cset.candidates)])
        np.testing.assert_array_equal(aux_layout(cset).trains(again), aux_layout(cset).trains(x))
        assert decode(cset, again) == plan


def test_decode_reports_broken_one_hot_groups_and_missing_trains():
    problem = load_problem(PROBLEMS / "tiny.toml")
    cset = generate_candidates(problem)
    x = np.zeros(build_model(cset).num_variables, dtype=np.uint8)
    x[list(cset.groups[0])[:2]] = 1
    plan = decode(cset, x)
    assert any("S1" in p and "got 2" in p for p in plan.problems)
    assert any("S2" in p and "got 0" in p for p in plan.problems)
    assert any(p.startswith("trains CTU>XIY/t00: 0 trains for 25 wagons") for p in plan.problems)


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
    problem = small_problem(locomotives_t=0)
    prep = prepare(problem, Config())
    enc = encode(prep.model, reference=prep.reference, inequality="unbalanced")
    assert enc.qubo.num_variables == prep.model.num_variables
    best = ExactSolver().solve(enc.qubo, seed=0, time_limit=10).best
    # No guarantee: whatever it returns is judged by the model, not by its energy.
    assert isinstance(bool(prep.model.is_feasible(best)[0]), bool)


def test_energies_match_qiskit_optimization_converter():
    """Cross-check: same model through qiskit-optimization's QuadraticProgramToQubo.

    Both QUBOs add slack bits differently, so compare the minimum over slack bits for every
    model assignment: equal to the objective when feasible, above the optimum when not. The
    model has rows with negative coefficients (train counts), which qiskit's
    InequalityToEquality sizes from the row's smallest activity, as ours does.
    """
    from qiskit_optimization import QuadraticProgram
    from qiskit_optimization.converters import QuadraticProgramToQubo

    # Small wagon counts keep qiskit's slack registers (it does not divide rows by their gcd)
    # small enough to enumerate.
    problem = small_problem(wagons=(3, 2, 2), wagons_per_train=4, locomotives=2, slots=1)
    _, model, reference = freight_model(problem)
    enc = encode(model, reference=reference)
    assert model.num_rows >= 2 and (model.A.data < 0).any()
    qp = QuadraticProgram("small")
    for label in model.labels:
        qp.binary_var(label)
    qp.minimize(linear=dict(zip(model.labels, model.c.tolist())))
    for g, members in enumerate(model.groups):
        qp.linear_constraint({model.labels[i]: 1 for i in members}, "==", 1, name=f"g{g}")
    A = model.A.tocsr()
    for r in range(model.num_rows):
        s, e = A.indptr[r], A.indptr[r + 1]
        qp.linear_constraint({model.labels[i]: float(a) for i, a in zip(A.indices[s:e], A.data[s:e])}, "<=",
                             float(model.b[r]), name=f"r{r}")
    converted = QuadraticProgramToQubo(penalty=enc.penalty).convert(qp)
    names = [v.name for v in converted.variables]
    n = model.num_variables
    assert names[:n] == list(model.labels)
    assert len(names) - n <= 20
    theirs = Qubo.from_dense(converted.objective.quadratic.to_array()
                             + np.diag(converted.objective.linear.to_array()),
                             offset=converted.objective.constant)
    X = all_model_assignments(n)
    feasible = model.is_feasible(X)
    optimum = model.objective(X)[feasible].min()
    ours_all = enc.qubo.energies(enc.lift(X))
    rng = np.random.default_rng(1)
    picks = np.concatenate([np.flatnonzero(feasible), rng.choice(np.flatnonzero(~feasible), 40, replace=False)])
    for k in picks:
        sub, _ = theirs.clamp({i: int(v) for i, v in enumerate(X[k])})
        qiskit_min = float(all_energies(sub).min())
        if feasible[k]:
            assert ours_all[k] == pytest.approx(qiskit_min, rel=1e-9)
            assert ours_all[k] == pytest.approx(model.objective(X[k])[0], rel=1e-9)
        else:
            assert ours_all[k] > optimum and qiskit_min > optimum


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from([0.0, 1.0, -2.0, 0.5, 0.25, 0.125, 3.7, 0.001, 1e-6, 50.0, 0.3]),
                              min_size=1, max_size=6), min_size=1, max_size=8))
def test_row_scales_are_each_rows_own_integer_scale(rows):
    """CP-SAT's rows are made integral all at once; each row must get exactly the scale the
    one-row rule gives (the smallest power of ten that makes it integral)."""
    import scipy.sparse as sp

    from backends.cpsat import _integer_scale, _row_scales

    width = max(len(r) for r in rows)
    dense = np.array([r + [0.0] * (width - len(r)) for r in rows])
    A = sp.csr_array(dense)
    expected = [_integer_scale(dense[i]) for i in range(len(rows))]
    assert _row_scales(A).tolist() == expected


def test_cpsat_refuses_a_row_that_no_power_of_ten_makes_integral():
    import scipy.sparse as sp

    model = BinaryModel(labels=("a", "b"), c=np.array([1.0, -1.0]), P=sp.csr_array((2, 2)), offset=0.0, groups=(),
                        A=sp.csr_array(np.array([[1.0 / 3.0, 1.0]])), b=np.array([1.0]), row_names=("third",))
    with pytest.raises(Exception, match="not integral"):
        CpSatSolver(workers=1).solve_model(model, seed=0, time_limit=2)
