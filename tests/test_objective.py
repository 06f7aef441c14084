"""Objectives an operator sets: weights, the exact lexicographic service-first mode, the baseline
guard, the trade-off front, and config errors naming the field."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

from backends.cpsat import CpSatSolver
from backends.exact import ExactSolver
from optimizer.cli import main
from optimizer.freight.baselines import best_baseline
from optimizer.freight.candidates import CandidateOptions, generate_candidates
from optimizer.freight.evaluate import decode, simulate
from optimizer.freight.model import GUARD_ROWS, add_guard, build_model, model_terms
from optimizer.freight.objective import Objective
from optimizer.freight.problem import load_problem, parse_problem
from optimizer.qubo.encoding import encode
from optimizer.solving.config import parse_config
from optimizer.solving.pareto import nondominated, sweep_weights
from optimizer.solving.pipeline import prepare, solve_problem
from tests.conftest import PROBLEMS
from tests.freight_cases import corridor, hub, network_document, shipment


def _all(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)


@pytest.mark.parametrize("body,field", [
    ("[objective]\ncost = -1\n", "objective.cost: weight must be a finite number"),
    ("[objective]\nlateness = nan\n", "objective.lateness: weight must be a finite number"),
    ("[objective]\ndwell = 1e9\n", "objective.dwell: weight must be a finite number in [0, 1e+06]"),
    ('[objective]\nmode = "fastest"\n', "objective.mode: expected one of 'weighted', 'service-first'"),
    ("[objective]\nguard_baseline = 1\n", "objective.guard_baseline: expected true or false"),
    ("[objective]\ncost = 0\n", "objective.cost: at least one weight must be positive"),
    ("[objective]\ncots = 1\n", "objective.cots: unknown key"),
    ("[model]\nlight_engines = -1\n", "model.light_engines: must be between 0 and 100"),
    ("[model]\nmax_departure_slots = -2\n", "model.max_departure_slots: must be"),
])
def test_bad_objective_and_model_settings_exit_2_naming_the_field(tmp_path, capsys, body, field):
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    code = main(["solve", str(PROBLEMS / "tiny.toml"), "--config", str(cfg), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and field in err and str(cfg) in err and "Traceback" not in err


def test_weighted_objective_is_the_weighted_sum_of_the_criteria():
    problem = load_problem(PROBLEMS / "tiny.toml")
    cset = generate_candidates(problem)
    terms = model_terms(cset)
    objective = Objective(cost=0.5, lateness=100.0, dwell=20.0, diesel=3.0, co2=0.25)
    model = build_model(cset, objective)
    np.testing.assert_allclose(model.c, terms @ np.array([0.5, 100.0, 20.0, 3.0, 0.25]), atol=1e-6)
    assert not model.tiers
    # A heavy dwell weight moves the optimum to a plan with less transfer-yard dwell.
    X = _all(model.num_variables)
    plain = build_model(cset)
    heavy = build_model(cset, Objective(dwell=1e5))
    ok = plain.is_feasible(X)
    best_plain = X[ok][np.argmin(plain.objective(X[ok]))]
    best_heavy = X[ok][np.argmin(heavy.objective(X[ok]))]
    assert terms[:, 2] @ best_heavy < terms[:, 2] @ best_plain


def _service_first_case():
    """S1 (urgent) could wait an hour to share S2's train: cheaper, but late. Lateness is priced
    low (1 CNY per priority-hour) so that cost alone prefers the late plan."""
    doc = network_document([hub("A"), hub("B")], [corridor("A", "B", km=80.0)],
                           [shipment("S1", "A", "B", wagons=20, due=1.0, priority=5),
                            shipment("S2", "A", "B", wagons=20, release=1.0, due=2.0, priority=1)], slots=3)
    doc["costs"]["lateness_cost_per_priority_hour"] = 1.0
    problem = parse_problem(doc, source="case")
    cset = generate_candidates(problem, CandidateOptions(light_engines=0))
    return problem, cset, build_model(cset, Objective(mode="service-first"))


def test_service_first_is_exactly_lexicographic_in_cpsat_and_in_the_qubo():
    """Brute force: minimise priority-weighted lateness, then cost. CP-SAT's two phases and the
    big-M scalarisation the QUBO uses both reach exactly that plan."""
    problem, cset, model = _service_first_case()
    lateness, weighted = model.tiers
    X = _all(model.num_variables)
    ok = model.is_feasible(X)
    late = X[ok] @ lateness
    first = X[ok][late == late.min()]
    want = first[np.argmin(first @ weighted)]
    # Lateness first really costs something here: the cheapest plan is later.
    cheapest = X[ok][np.argmin(X[ok] @ weighted)]
    assert cheapest @ lateness > want @ lateness and cheapest @ weighted < want @ weighted
    sol = CpSatSolver(workers=1).solve_model(model, seed=0, time_limit=20)
    assert sol.optimal and sol.x @ lateness == want @ lateness and sol.x @ weighted == pytest.approx(want @ weighted)
    assert sol.bound == pytest.approx(model.objective(want)[0], rel=1e-12)
    assert float(model.objective(X[ok]).min()) == pytest.approx(float(model.objective(want)[0]), rel=1e-15)
    _, reference = best_baseline(cset, model)
    enc = encode(model, reference=reference)
    if enc.qubo.num_variables <= 24:
        best = enc.project(ExactSolver().solve(enc.qubo, seed=0, time_limit=30).best)
        assert best @ lateness == want @ lateness and best @ weighted == pytest.approx(want @ weighted)


def test_guard_rows_admit_the_baseline_and_bind_on_the_three_kpis():
    problem, cset, model = _service_first_case()
    name, reference = best_baseline(cset, model)
    guarded = add_guard(model, cset, reference)
    assert guarded.row_names[-3:] == GUARD_ROWS
    assert guarded.is_feasible(reference)[0]
    X = _all(model.num_variables)
    ok = guarded.is_feasible(X)
    base = simulate(problem, decode(cset, reference))
    for x in X[ok]:
        k = simulate(problem, decode(cset, x))
        assert k.on_time_share >= base.on_time_share and k.cost_cny <= base.cost_cny + 0.01 * 10
        assert k.dwell_hours_transfer <= base.dwell_hours_transfer + 1e-9
    assert (model.is_feasible(X) & ~ok).any()  # the guard does cut plans


def test_service_first_on_china_core_dominates_the_best_baseline():
    """Issue 11's done-when on china-core: on-time share not lower, transfer-yard dwell not higher,
    cost not higher than the best baseline (the guard makes it hold at any time limit)."""
    problem = load_problem(PROBLEMS / "china-core.toml")
    config = parse_config({"objective": {"mode": "service-first"}, "solver": {"time_limit": 8.0}})
    outcome = solve_problem(problem, config)
    assert outcome.feasible and outcome.prepared.model.tiers
    k, b = outcome.kpis, outcome.baseline_kpis
    assert k.on_time_share >= b.on_time_share and k.dwell_hours_transfer <= b.dwell_hours_transfer + 1e-9
    assert k.cost_cny <= b.cost_cny + 1e-6
    result = outcome.to_json()
    assert result["objective"] == {"mode": "service-first", "guarded": True}
    assert set(result["baselines"]) == {"greedy", "priority-edd", "regret"}
    assert result["baseline"] == outcome.prepared.best_baseline


def test_sweep_weights_and_front():
    weights = sweep_weights(5, cost=1000.0, lateness=10.0, dwell=0.0)
    assert weights[0] == {"cost": 1.0, "lateness": 0.0, "dwell": 0.0}
    assert weights[-1]["cost"] == 0.0 and all(w["lateness"] >= 0 and w["dwell"] >= 0 for w in weights)
    assert len({tuple(w.values()) for w in weights}) == 5
    rows = [{"kpis": {"cost_cny": 10, "on_time_share": 0.5, "dwell_hours_transfer": 5}},
            {"kpis": {"cost_cny": 12, "on_time_share": 0.5, "dwell_hours_transfer": 6}},  # dominated by row 0
            {"kpis": {"cost_cny": 12, "on_time_share": 0.9, "dwell_hours_transfer": 6}},
            {"kpis": {"cost_cny": 10, "on_time_share": 0.5, "dwell_hours_transfer": 5}},  # repeat of row 0
            {"kpis": None}]
    assert nondominated(rows) == [True, False, True, False, False]


def test_pareto_cli_writes_the_front_with_baselines(tmp_path, capsys):
    out = tmp_path / "front"
    code = main(["pareto", str(PROBLEMS / "tiny.toml"), "--backend", "cpsat", "--points", "3", "--time-limit", "5",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "pareto.json").read_text())
    assert len(doc["points"]) == 3 and set(doc["baselines"]) == {"greedy", "priority-edd", "regret"}
    assert any(p["on_front"] for p in doc["points"])
    csv_text = (out / "pareto.csv").read_text()
    assert csv_text.startswith("plan,weight_cost") and "baseline regret" in csv_text
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = main(["pareto", str(PROBLEMS / "tiny.toml"), "--points", "0", "--out", str(out)])
    assert code == 2 and "--points" in capsys.readouterr().err


def test_prepare_keeps_every_baseline_and_builds_the_qubo_on_first_use():
    prep = prepare(load_problem(PROBLEMS / "tiny.toml"), parse_config({}))
    assert set(prep.baselines) == {"greedy", "priority-edd", "regret"}
    assert "encoding" not in prep.__dict__
    assert prep.qubo.num_variables == prep.model.num_variables == 12
    assert prep.model.objective(prep.reference)[0] == min(prep.model.objective(x)[0] for x in prep.baselines.values())
    assert dataclasses.is_dataclass(prep)
