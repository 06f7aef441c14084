"""Re-planning from a running plan: frozen legs, stability, no-op events, refusals, outages."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta

import pytest

from optimizer.errors import InputError
from optimizer.freight.evaluate import Assignment, Plan, check_plan, simulate, train_batches
from optimizer.freight.events import apply_events, load_events, parse_events, problem_document
from optimizer.freight.network import Network, minutes
from optimizer.freight.problem import load_problem, parse_problem
from optimizer.freight.replan import freeze, outage_violations
from optimizer.solving.config import Config
from optimizer.solving.pipeline import solve_problem
from optimizer.solving.replan import (
    ReplanSettings,
    add_replan_arguments,
    load_replan_config,
    replan,
    run_replan,
)
from tests.conftest import PROBLEMS
from tests.freight_cases import small_document

CONFIG = Config().override(backend="cpsat", time_limit=20.0, seed=0)
TYPHOON_START = datetime(2026, 8, 10)


def minute_of(problem, when: datetime) -> int:
    return int((when - problem.horizon.start).total_seconds() // 60)


@pytest.fixture(scope="module")
def typhoon():
    """The typhoon sample and its proven-optimal CP-SAT plan."""
    problem = load_problem(PROBLEMS / "typhoon-pearl-river.toml")
    outcome = solve_problem(problem, CONFIG)
    assert outcome.feasible and outcome.optimal
    return problem, outcome.plan


def events(*rows, source="events.toml"):
    return parse_events({"events": list(rows)}, source=source).events


def legs_before(problem, plan, at):
    network = Network(problem)
    out = {}
    for a in plan.assignments:
        if a.route is None:
            continue
        move = network.traverse(a.route, a.slot * problem.horizon.slot_hours)
        legs = [(leg.corridor, minutes(leg.enter), minutes(leg.exit)) for leg in move.legs if minutes(leg.enter) < at]
        if legs:
            out[a.shipment] = legs
    return out


def test_frozen_legs_never_change(typhoon):
    problem, plan = typhoon
    at = minute_of(problem, TYPHOON_START + timedelta(hours=12))
    before = legs_before(problem, plan, at)
    assert len(before) >= 5, "the test needs trains under way at the re-plan time"
    # A closure ahead of the trains in transit, a delayed release and an urgent new shipment: the
    # optimiser has every reason to move things, but nothing that already left may change.
    evs = events(
        {"kind": "closure", "corridor": "CGO-WUH", "start": TYPHOON_START + timedelta(hours=20),
         "end": TYPHOON_START + timedelta(hours=32)},
        {"kind": "release", "shipment": "S17", "release": TYPHOON_START + timedelta(hours=28)},
        {"kind": "shipment", "id": "S99", "origin": "WUH", "destination": "SZX", "wagons": 20, "tonnes": 1000.0,
         "commodity": "medical supplies", "priority": 5, "release": TYPHOON_START + timedelta(hours=12),
         "due": TYPHOON_START + timedelta(hours=36)})
    result = replan(problem, plan, evs, at=at, config=CONFIG, settings=ReplanSettings(change_cost_cny=0.0))
    assert result.new.feasible, result.new.violations
    assert result.new.changes > 0, "the events should move something that has not left"
    after = legs_before(result.problem, result.new.plan, at)
    assert after == before
    # Frozen light engines stay too.
    frozen = {(le.corridor, le.origin, le.slot) for le in plan.light_engines if le.slot * 240 < at}
    assert frozen <= {(le.corridor, le.origin, le.slot) for le in result.new.plan.light_engines}
    # The trains that entered before the re-plan time are exactly the plan's, light engines included.
    def past(problem_, plan_):
        return sorted((b.corridor, b.origin, b.enter, b.trains, b.light) for b in train_batches(problem_, plan_)
                      if b.enter < at)

    assert past(result.problem, result.new.plan) == past(problem, plan)
    # The model itself forbids running fewer or more trains in the past (not only this answer).
    model, x = result.outcome.prepared.model, result.outcome.x
    cset = result.outcome.prepared.candidates
    from optimizer.freight.model import aux_layout

    layout = aux_layout(cset)
    slot_min = problem.horizon.slot_minutes
    past_bits = [k for k, b in enumerate(layout.bit_batch.tolist()) if cset.batches.slot[b] * slot_min < at]
    assert past_bits
    for k in past_bits[:20]:
        y = x.copy()
        y[layout.num_plans + k] ^= 1
        assert any(name.startswith("frozen trains") for name in model.violated_rows(y))
    # Every re-plan alternative keeps them as well.
    for checked in (*result.baselines.values(), result.keep):
        assert legs_before(result.problem, checked.plan, at) == before
    # And what is open starts at or after the re-plan time.
    network = Network(result.problem)
    for a in result.new.plan.assignments:
        if a.route is None:
            continue
        move = network.traverse(a.route, a.slot * result.problem.horizon.slot_hours)
        for leg in move.legs[len(before.get(a.shipment, ())):]:
            assert minutes(leg.enter) >= at


def test_noop_event_returns_the_same_plan(typhoon):
    problem, plan = typhoon
    at = minute_of(problem, TYPHOON_START + timedelta(hours=12))
    # A short slow-down where and when no train of the plan runs.
    evs = events({"kind": "slowdown", "corridor": "XIY-CGO", "start": TYPHOON_START + timedelta(hours=68),
                  "end": TYPHOON_START + timedelta(hours=70), "speed_factor": 0.9})
    result = replan(problem, plan, evs, at=at, config=CONFIG)
    assert result.new.feasible
    assert result.new.plan.assignments == plan.assignments
    assert sorted(result.new.plan.light_engines, key=repr) == sorted(plan.light_engines, key=repr)
    assert result.diff == [] and result.new.changes == 0
    assert result.keep.feasible and result.keep.kpis == result.new.kpis
    # Nothing changed, so the plan measures exactly as before the event.
    assert result.new.kpis == simulate(problem, plan)


def _twins() -> tuple:
    """Two identical shipments on a line with one train path per slot: which goes first is a tie."""
    doc = small_document(shipments=2, wagons=(30, 30), due_hours=(40, 40), slots=3, corridor_capacity=1)
    for row in doc["shipments"]:
        row["priority"] = 2
        row["destination"] = "B"
    return parse_problem(doc, source="twins")


def test_stability_term_lowers_churn_at_equal_objective():
    problem = _twins()
    first = solve_problem(problem, CONFIG)
    assert first.feasible and first.optimal
    by_id = {a.shipment: a for a in first.plan.assignments}
    assert by_id["S1"].slot != by_id["S2"].slot, "the twins must take different slots for the tie to exist"
    # The plan in force: the other optimum (the twins swapped).
    swapped = Plan(tuple(Assignment(a.shipment, a.route, by_id["S2" if a.shipment == "S1" else "S1"].slot)
                         for a in first.plan.assignments), (), first.plan.light_engines)
    assert not check_plan(problem, swapped)
    noop = events({"kind": "slowdown", "corridor": "A-T", "start": datetime(2026, 3, 4), "end": datetime(2026, 3, 4, 1),
                   "speed_factor": 0.9})
    free = replan(problem, swapped, noop, at=0, config=CONFIG, settings=ReplanSettings(change_cost_cny=0.0))
    stable = replan(problem, swapped, noop, at=0, config=CONFIG, settings=ReplanSettings(change_cost_cny=500.0))
    assert free.new.feasible and stable.new.feasible
    assert free.new.changes >= 1, "without the stability term CP-SAT should pick its own optimum here"
    assert stable.new.changes < free.new.changes
    assert stable.new.changes == 0
    assert stable.new.objective == pytest.approx(free.new.objective, abs=1e-6)
    assert stable.new.kpis.cost_cny == pytest.approx(free.new.kpis.cost_cny, abs=1e-6)


def test_events_that_contradict_the_frozen_part_are_refused(typhoon):
    problem, plan = typhoon
    at = minute_of(problem, TYPHOON_START + timedelta(hours=12))
    # S01 runs CAN-SZX from 08:00 to 10:27 (frozen at 12:00); S03 left Xi'an at 00:00.
    evs = events({"kind": "closure", "corridor": "CAN-SZX", "start": TYPHOON_START + timedelta(hours=9),
                  "end": TYPHOON_START + timedelta(hours=14)},
                 {"kind": "release", "shipment": "S03", "release": TYPHOON_START + timedelta(hours=6)},
                 {"kind": "due", "shipment": "S01", "due": TYPHOON_START + timedelta(hours=11)})
    with pytest.raises(InputError) as err:
        replan(problem, plan, evs, at=at, config=CONFIG, source="events.toml")
    fields = [issue.field for issue in err.value.issues]
    assert fields == ["events[0].start", "events[1].release", "events[2].due"]
    assert err.value.exit_code == 2
    assert "S01" in str(err.value) and "events.toml" in str(err.value)
    # The same closure starting after the train has cleared the corridor is accepted.
    later = events({"kind": "closure", "corridor": "CAN-SZX", "start": TYPHOON_START + timedelta(hours=11),
                    "end": TYPHOON_START + timedelta(hours=14)})
    assert replan(problem, plan, later, at=at, config=CONFIG).new.feasible


def test_event_files_are_validated_like_problem_files(tmp_path):
    problem = load_problem(PROBLEMS / "tiny.toml")
    with pytest.raises(InputError) as err:
        parse_events({"events": [{"kind": "landslide"}, {"kind": "slowdown", "corridor": "CTU-XIY",
                                                         "start": "2026-03-02T06:00", "end": "2026-03-02T05:00",
                                                         "speed_factor": 1.5, "colour": "red"}]}, source="e.toml")
    fields = [i.field for i in err.value.issues]
    assert fields == ["events[0].kind", "events[1].colour", "events[1].speed_factor"]
    bad = parse_events({"events": [
        {"kind": "closure", "corridor": "NOPE", "start": "2026-03-02T06:00", "end": "2026-03-02T08:00"},
        {"kind": "release", "shipment": "S2", "release": "2026-03-04T06:00"},
        {"kind": "shipment", "id": "S9", "origin": "CTU", "destination": "XXX", "wagons": 5, "tonnes": 100.0,
         "commodity": "x", "priority": 3, "release": "2026-03-02T00:00", "due": "2026-03-03T00:00"},
        {"kind": "release", "shipment": "S1", "release": "2026-03-01T00:00"},
    ]}, source="e.toml")
    with pytest.raises(InputError) as err:
        apply_events(problem, bad.events, source="e.toml")
    got = {i.field: i.message for i in err.value.issues}
    assert set(got) == {"events[0].corridor", "events[1].release", "events[2].destination", "events[3].release"}
    assert "unknown corridor" in got["events[0].corridor"]
    assert "due" in got["events[1].release"]  # the new release is after the shipment's due time
    assert "later than the current" in got["events[3].release"]
    # The sample event files validate against their problems.
    for name, target in (("typhoon-replan.toml", "typhoon-pearl-river.toml"), ("typhoon-weather.toml",
                                                                                "typhoon-pearl-river.toml"),
                         ("tiny-closure.toml", "tiny.toml")):
        f = load_events(PROBLEMS / "events" / name)
        apply_events(load_problem(PROBLEMS / target), f.stream(load_problem(PROBLEMS / target)), source=name)


def test_problem_document_round_trips():
    for name in ("tiny", "typhoon-pearl-river", "port-rush", "china-core"):
        problem = load_problem(PROBLEMS / f"{name}.toml")
        again = parse_problem(problem_document(problem), source=problem.source)
        assert (again.hubs, again.corridors, again.shipments, again.berths, again.weather, again.costs,
                again.horizon) == (problem.hubs, problem.corridors, problem.shipments, problem.berths, problem.weather,
                                   problem.costs, problem.horizon)


def test_locomotive_outage_is_respected_and_checked():
    problem = load_problem(PROBLEMS / "tiny.toml")
    first = solve_problem(problem, CONFIG)
    start = problem.horizon.start
    # Chengdu's only locomotive breaks down before anything leaves: nothing can leave Chengdu.
    evs = events({"kind": "locomotive", "hub": "CTU", "count": 1, "start": start, "end": start + timedelta(hours=30)})
    result = replan(problem, first.plan, evs, at=0, config=CONFIG)
    assert result.new.feasible
    assert all(a.route is None for a in result.new.plan.assignments)
    assert not result.keep.feasible
    assert any("locomotive outage events[0]" in v for v in result.keep.violations)
    assert outage_violations(result.problem, result.new.plan, result.outages) == []
    # Once the train has left Chengdu (the optimum waits for S2 until 06:00), the same outage from
    # 00:00 contradicts it.
    at = 7 * 60
    frozen = freeze(problem, first.plan, at)
    assert frozen.departed
    with pytest.raises(InputError) as err:
        replan(problem, first.plan, evs, at=at, config=CONFIG)
    assert err.value.issues[0].field == "events[0].count"


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_replan_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_replan_writes_new_numbered_folders_and_chains(tmp_path, capsys):
    problem = load_problem(PROBLEMS / "tiny.toml")
    outcome = solve_problem(problem, CONFIG)
    run = tmp_path / "tiny-cpsat"
    run.mkdir()
    doc = outcome.to_json()
    doc["source"] = str(PROBLEMS / "tiny.toml")
    (run / "results.json").write_text(json.dumps(doc))
    config = tmp_path / "replan.toml"
    config.write_text("[solver]\ntime_limit = 10.0\n[replan]\nchange_cost_cny = 250\n")
    assert load_replan_config(config)[1].change_cost_cny == 250
    ev = PROBLEMS / "events" / "tiny-closure.toml"
    assert run_replan(_args(str(run), "--events", str(ev), "--at", "2026-03-02T00:00", "--config", str(config),
                            "--quiet")) == 0
    assert run_replan(_args(str(run), "--events", str(ev), "--at", "2026-03-02T00:00", "--config", str(config),
                            "--quiet")) == 0
    first, second = run / "replan-01", run / "replan-02"
    assert (first / "results.json").is_file() and (second / "results.json").is_file()
    out = json.loads((first / "results.json").read_text())
    assert out["kind"] == "replan" and out["change_cost_cny"] == 250 and out["diff"]
    # A re-plan's results are themselves a plan in force: chain one more from them.
    later = tmp_path / "later.toml"
    later.write_text('[[events]]\nkind = "release"\nshipment = "S2"\nrelease = 2026-03-02T07:00:00\n')
    assert run_replan(_args(str(first), "--events", str(later), "--at", "2026-03-02T00:00", "--quiet",
                            "--out", str(tmp_path / "chained"))) == 0
    chained = json.loads((tmp_path / "chained" / "results.json").read_text())
    assert chained["parent"].endswith("replan-01/results.json")
    assert len(chained["events"]) == 1
    # A bad --at and a bad [replan] key are refused with the field named.
    with pytest.raises(InputError, match="--at"):
        run_replan(_args(str(run), "--events", str(ev), "--at", "2027-01-01T00:00"))
    config.write_text("[replan]\nchange_costs = 1\n")
    with pytest.raises(InputError, match="replan.change_costs"):
        run_replan(_args(str(run), "--events", str(ev), "--at", "2026-03-02T00:00", "--config", str(config)))
    capsys.readouterr()
