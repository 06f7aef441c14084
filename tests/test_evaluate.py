"""Plans are checked against the problem itself (not the model) and measured by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.freight.candidates import generate_candidates
from optimizer.freight.evaluate import Assignment, Plan, check_plan, decode, simulate
from optimizer.freight.baselines import greedy_dispatch
from optimizer.freight.generate import generate_document
from optimizer.freight.model import build_model
from optimizer.freight.network import Network
from optimizer.freight.problem import load_problem, parse_problem
from tests.conftest import PROBLEMS
from tests.freight_cases import small_problem


@pytest.fixture(scope="module")
def china():
    return load_problem(PROBLEMS / "china-core.toml")


def test_greedy_plan_is_feasible_on_every_sample_problem(china):
    for problem in (load_problem(PROBLEMS / "tiny.toml"), china,
                    parse_problem(generate_document(hubs=12, shipments=60, seed=3), source="gen")):
        cset = generate_candidates(problem)
        x = greedy_dispatch(cset)
        assert build_model(cset).is_feasible(x)[0]
        assert check_plan(problem, decode(cset, x)) == []


def test_model_feasibility_agrees_with_independent_check_on_random_plans(china):
    cset = generate_candidates(china)
    model = build_model(cset)
    rng = np.random.default_rng(0)
    disagreements = 0
    feasible_seen = infeasible_seen = 0
    for _ in range(200):
        x = np.zeros(model.num_variables, dtype=np.uint8)
        for members in cset.groups:
            x[rng.choice(members)] = 1
        ok_model = bool(model.is_feasible(x)[0])
        ok_check = not check_plan(china, decode(cset, x))
        disagreements += ok_model != ok_check
        feasible_seen += ok_check
        infeasible_seen += not ok_check
    assert disagreements == 0
    assert infeasible_seen > 0


def test_check_catches_overloaded_corridor_and_early_departure():
    problem = small_problem(wagons=(30, 30, 20), corridor_capacity=1)
    route = ("A", "T", "B")
    plan = Plan((Assignment("S1", route, 0), Assignment("S2", route, 0), Assignment("S3", None, None)))
    violations = check_plan(problem, plan)
    assert any("corridor A>T in slot 0: 60 wagons > capacity 50" in v for v in violations)
    late_release = small_problem()
    bad = Plan((Assignment("S1", ("A", "T"), 0), Assignment("S2", None, None), Assignment("S3", None, None)))
    assert any("does not join A to B" in v for v in check_plan(late_release, bad))
    missing = Plan((Assignment("S1", None, None),))
    assert any("S2 has no plan" in v for v in check_plan(problem, missing))


def test_simulation_consolidates_shipments_entering_together():
    problem = small_problem(wagons=(20, 20, 20), corridor_capacity=2)
    route = ("A", "T", "B")
    together = simulate(problem, Plan((Assignment("S1", route, 0), Assignment("S2", route, 0),
                                       Assignment("S3", None, None))))
    apart = simulate(problem, Plan((Assignment("S1", route, 0), Assignment("S2", route, 1),
                                    Assignment("S3", None, None))))
    assert together.trains == 2 and apart.trains == 4  # two legs each
    assert together.diesel_litres < apart.diesel_litres
    assert together.deferred == 1 and together.moved == 2


def test_weather_slows_and_closure_holds_trains(china):
    net = Network(china)
    # Heavy rain on CGO-WUH from 06:00 on day 1 (factor 0.6).
    dry = net.traverse(("CGO", "WUH"), 0.0)
    wet = net.traverse(("CGO", "WUH"), 8.0)
    assert wet.legs[0].exit - wet.legs[0].enter == pytest.approx(
        (dry.legs[0].exit - dry.legs[0].enter) / 0.6)
    # Flood closes CTU-CKG for the first 12 hours: a train due out at 0 h leaves at 12 h.
    held = net.traverse(("CTU", "CKG"), 0.0)
    assert held.legs[0].enter == pytest.approx(12.0) and held.origin_wait == pytest.approx(12.0)


def test_kpis_on_time_and_lateness():
    problem = small_problem(due_hours=(1.0, 100.0, 100.0))
    cset = generate_candidates(problem)
    kpis = simulate(problem, decode(cset, greedy_dispatch(cset)))
    assert kpis.lateness_hours > 0
    assert kpis.on_time_share < 1.0
    assert 0 <= kpis.priority_weighted_on_time <= 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_route_reuse_across_weather_epochs_matches_direct_search(seed):
    """Candidate generation reuses dry-weather routes when the weather touches none of them;
    that must give the same routes as searching under the weather of each departure slot."""
    doc = generate_document(hubs=14, shipments=40, seed=seed)
    # Make the weather bite: slow a corridor heavily and close another for a while.
    doc["weather"][0]["speed_factor"] = 0.2
    c = doc["corridors"][seed % len(doc["corridors"])]
    doc["weather"].append({"corridor": f"{c['from']}-{c['to']}", "start": doc["horizon"]["start"],
                           "end": doc["weather"][0]["end"], "closed": True})
    problem = parse_problem(doc, source="gen")
    cset = generate_candidates(problem)
    net = Network(problem)
    got = {(c.shipment, c.slot, c.route) for c in cset.candidates if not c.deferred}
    want = set()
    for s in problem.shipments:
        slots = {c.slot for c in cset.candidates if c.shipment == s.id and not c.deferred}
        for slot in slots:
            for route in net.k_shortest_routes(s.origin, s.destination, 2, slot * problem.horizon.slot_hours):
                want.add((s.id, slot, route))
    assert got == want and len(got) > 100
