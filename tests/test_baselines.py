"""Baseline dispatchers: feasible full assignments, each rule doing what it says, and the best one
chosen by the model objective."""

from __future__ import annotations

import numpy as np
import pytest

from backends.cpsat import CpSatSolver
from optimizer.freight.baselines import BASELINES, best_baseline
from optimizer.freight.candidates import generate_candidates
from optimizer.freight.evaluate import check_plan, decode, simulate
from optimizer.freight.generate import generate_document
from optimizer.freight.model import aux_layout, build_model, complete
from optimizer.freight.problem import load_problem, parse_problem
from tests.conftest import PROBLEMS
from tests.freight_cases import corridor, hub, network_problem, shipment


def _prepared(problem):
    cset = generate_candidates(problem)
    return cset, build_model(cset)


@pytest.fixture(scope="module")
def china():
    return _prepared(load_problem(PROBLEMS / "china-core.toml"))


def test_registry_is_explicit():
    assert list(BASELINES) == ["greedy", "priority-edd", "regret"]


@pytest.mark.parametrize("seed", [4, 5])
def test_every_baseline_returns_a_feasible_complete_assignment(seed):
    problem = parse_problem(generate_document(hubs=10, shipments=50, seed=seed), source="gen")
    cset, model = _prepared(problem)
    layout = aux_layout(cset)
    for name, dispatch in BASELINES.items():
        x = dispatch(cset, model)
        assert x.shape == (model.num_variables,) and model.is_feasible(x)[0], name
        # Train counts at their least feasible values: exactly what the chosen plans need.
        np.testing.assert_array_equal(x, complete(cset, x[: layout.num_plans]))
        assert check_plan(problem, decode(cset, x)) == [], name


def test_greedy_is_first_come_first_served_and_priority_edd_is_not():
    """One path per slot: the low-priority shipment released first (an hour before the horizon)
    takes the early path under FCFS; priority-then-due-date gives it to the urgent one."""
    problem = network_problem([hub("A"), hub("B")], [corridor("A", "B", capacity=1, km=80.0)],
                              [shipment("S1", "A", "B", wagons=40, release=-1.0, due=2.0, priority=1),
                               shipment("S2", "A", "B", wagons=40, release=0.0, due=2.0, priority=5)], slots=3)
    cset, model = _prepared(problem)
    plans = {name: {a.shipment: a.slot for a in decode(cset, run(cset, model)).assignments}
             for name, run in BASELINES.items()}
    assert plans["greedy"] == {"S1": 0, "S2": 1}
    assert plans["priority-edd"] == {"S2": 0, "S1": 1}


def test_greedy_tries_only_the_shortest_route_and_cheapest_dispatchers_consider_all():
    """The direct line is full: greedy waits for it, the cost-aware dispatchers may route round."""
    problem = network_problem([hub("A"), hub("B"), hub("C", handling=0.0)],
                              [corridor("A", "B", capacity=1, km=80.0), corridor("A", "C", km=40.0),
                               corridor("C", "B", km=40.0)],
                              [shipment("S1", "A", "B", wagons=40, due=1.5, priority=5),
                               shipment("S2", "A", "B", wagons=40, due=1.5, priority=5)], slots=4)
    cset, model = _prepared(problem)
    greedy = decode(cset, BASELINES["greedy"](cset, model))
    assert all(a.route == ("A", "B") for a in greedy.assignments)
    edd = decode(cset, BASELINES["priority-edd"](cset, model))
    assert {a.route for a in edd.assignments} == {("A", "B"), ("A", "C", "B")}
    assert simulate(problem, edd).lateness_hours < simulate(problem, greedy).lateness_hours


def test_marginal_cost_fills_trains_already_formed():
    """Two 20-wagon shipments with the same route: the second joins the first's train."""
    problem = network_problem([hub("A"), hub("B")], [corridor("A", "B", km=80.0)],
                              [shipment("S1", "A", "B", wagons=20), shipment("S2", "A", "B", wagons=20)], slots=3)
    cset, model = _prepared(problem)
    for name in ("priority-edd", "regret"):
        plan = decode(cset, BASELINES[name](cset, model))
        assert len({a.slot for a in plan.assignments}) == 1, name
        assert simulate(problem, plan).trains == 1


def test_regret_finds_the_optimum_of_tiny_and_greedy_does_not():
    cset, model = _prepared(load_problem(PROBLEMS / "tiny.toml"))
    sol = CpSatSolver(workers=1).solve_model(model, seed=0, time_limit=10)
    assert sol.optimal
    regret = BASELINES["regret"](cset, model)
    greedy = BASELINES["greedy"](cset, model)
    assert model.objective(regret)[0] == pytest.approx(sol.objective)
    assert model.objective(greedy)[0] > sol.objective + 1e5  # it leaves S2 behind
    assert best_baseline(cset, model)[0] == "regret"


def test_best_baseline_is_the_lowest_objective(china):
    cset, model = china
    plans = {name: run(cset, model) for name, run in BASELINES.items()}
    name, x = best_baseline(cset, model, plans)
    values = {k: float(model.objective(v)[0]) for k, v in plans.items()}
    assert values[name] == min(values.values()) and x is plans[name]
    # On china-core the rule-based dispatchers beat first-come-first-served by a wide margin.
    assert values[name] < 0.8 * values["greedy"]
