"""Problem parsing never crashes, and what validates can be prepared: any corruption of a valid
document is an InputError naming a field (issue 15, item 2)."""

from __future__ import annotations

import copy
import time
import tomllib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from optimizer.errors import InputError
from optimizer.freight.problem import LIMITS, parse_problem, problem_schema
from optimizer.solving.config import parse_config
from optimizer.solving.pipeline import prepare, solve_problem
from tests.conftest import PROBLEMS

DOC = tomllib.loads((PROBLEMS / "china-core.toml").read_text())

junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                          st.integers(), max_size=2))
# Values hostile users try: extremes, non-finite floats, huge integers, bad text, odd date-times.
EDGE = [None, True, 0, -1, 1, 2, 7, 10**30, 10**400, 1e308, -1e308, 1e-308, float("nan"), float("inf"), 0.5, 5000,
        "", " ", "\ud800", "a\x00b", "x" * 300, "CTU", "S01", "2026-03-02T00:00:00+08:00", {}, [], [{}],
        datetime(2026, 3, 2, tzinfo=UTC), datetime(9999, 12, 31), datetime(2026, 3, 5, 12)]


def _mutation(value):
    """A plausible-or-hostile replacement for ``value``: most keep the type (so that many mutants
    validate and reach prepare), some come from EDGE."""
    if isinstance(value, bool):
        near = st.booleans()
    elif isinstance(value, int):
        near = st.sampled_from([0, 1, value + 1, value * 2, value * 10, value // 2, 10**6, -1])
    elif isinstance(value, float):
        near = st.sampled_from([0.0, value * 0.5, value * 2, value * 10, value * 100, 1e-3, 1.0, 400.0])
    elif isinstance(value, datetime):
        near = st.sampled_from([value + timedelta(hours=h) for h in (-1000, -100, -5, 1, 6, 48, 1000, 20000)
                                if datetime.min + timedelta(days=1000) < value.replace(tzinfo=None)
                                < datetime.max - timedelta(days=1000)] or [value])
    elif isinstance(value, str):
        near = st.sampled_from(["CTU", "SHA", "CGO", "S01", "B-YS", value + "x", value])
    else:
        near = st.just(value)
    return st.one_of(near, near, near, st.sampled_from(EDGE))


def _issues(doc) -> list[str]:
    with pytest.raises(InputError) as err:
        parse_problem(doc, source="case")
    assert err.value.issues and all(i.field for i in err.value.issues)
    return [i.render() for i in err.value.issues]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), value=junk)
def test_corrupted_documents_raise_input_error_naming_a_field(data, value):
    doc = copy.deepcopy(DOC)
    section = data.draw(st.sampled_from(sorted(doc)))
    target = doc[section]
    if isinstance(target, list):
        target = target[data.draw(st.integers(0, len(target) - 1))]
    key = data.draw(st.sampled_from(sorted(target) + ["__extra__"]))
    target[key] = value
    try:
        problem = parse_problem(doc, source="fuzz")
    except InputError as exc:
        assert exc.issues and all(issue.field for issue in exc.issues)
        assert "fuzz" in str(exc)
    else:
        # Some replacements are valid values (e.g. another integer); the problem then builds.
        assert problem.name


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), mutations=st.integers(1, 3))
def test_whatever_validates_prepares_or_fails_cleanly(data, mutations):
    """Bounded fuzz: mutated problem files through validate, then prepare (candidates, model,
    baselines, QUBO) and a short CP-SAT solve with its plan check and KPIs: nothing but
    InputError may escape, and nothing may hang."""
    doc = copy.deepcopy(DOC)
    for _ in range(mutations):
        section = data.draw(st.sampled_from(sorted(doc)))
        target = doc[section]
        if isinstance(target, list):
            if not target:
                continue
            target = target[data.draw(st.integers(0, len(target) - 1))]
        if not isinstance(target, dict):
            continue
        key = data.draw(st.sampled_from(sorted(target)))
        target[key] = data.draw(_mutation(target[key]))
    try:
        problem = parse_problem(doc, source="fuzz")
    except InputError:
        event("refused by validate")
        return
    event("validated")
    config = parse_config({"model": {"max_departure_slots": 2}, "solver": {"time_limit": 0.5},
                           "backends": {"cpsat": {"workers": 1}}})
    started = time.perf_counter()
    try:
        prep = prepare(problem, config)
        assert prep.qubo.num_variables > 0
        assert prep.model.is_feasible(prep.reference)[0]
        outcome = solve_problem(problem, config, prepared=prep)
        assert outcome.feasible and outcome.to_json()["plan"]
    except InputError:
        event("refused by prepare")
    assert time.perf_counter() - started < 60


def test_naive_horizon_with_time_zone_aware_release_is_an_input_error():
    doc = copy.deepcopy(DOC)
    doc["shipments"][0]["release"] = datetime(2026, 3, 2, 4, tzinfo=timezone(timedelta(hours=8)))
    assert any("shipments[0].release: mixes a date-time with a UTC offset" in i for i in _issues(doc))
    # Both aware (any offsets) is fine, and compares as instants.
    doc["horizon"]["start"] = datetime(2026, 3, 1, 20, tzinfo=UTC)
    for section in ("shipments", "berths", "weather"):
        for row in doc.get(section, []):
            for key in ("release", "due", "cutoff", "start", "end"):
                if isinstance(row.get(key), datetime) and row[key].tzinfo is None:
                    row[key] = row[key].replace(tzinfo=timezone(timedelta(hours=8)))
    problem = parse_problem(doc, source="case")
    assert problem.shipments[0].release == pytest.approx(0.0)


@pytest.mark.parametrize("path,value,expected", [
    (("costs",), 1, "costs: expected a table"),
    (("costs", "diesel_price_per_litre"), 1e308, "costs.diesel_price_per_litre: must be <= 100"),
    (("shipments", 0, "tonnes"), 1e308, "shipments[0].tonnes: must be <= 48000"),
    (("shipments", 0, "tonnes"), 10**400, "shipments[0].tonnes: expected a finite number"),
    (("corridors", 0, "speed_kmh"), 1e-308, "corridors[0].speed_kmh: must be >= 5"),
    (("corridors", 0, "km"), 1e308, "corridors[0].km: must be <= 10000"),
    (("hubs", 0, "handling_hours"), 1e308, "hubs[0].handling_hours: must be <= 168"),
    (("horizon", "slot_minutes"), 10**9, "horizon.slot_minutes: must be <= 10080"),
    (("horizon", "slots"), 9000, "longer than a year (limit horizon_minutes"),
    (("hubs", 0, "id"), "\ud800", "hubs[0].id: contains a lone surrogate"),
    (("hubs", 0, "name"), "Cheng\ud800du", "hubs[0].name: contains a lone surrogate"),
    (("problem", "name"), "bad\x00name", "problem.name: contains a control or unassigned character"),
    (("problem", "name"), "x" * 300, "problem.name: longer than 120 characters (limit name_length)"),
    (("shipments", 0, "id"), "S" * 65, "shipments[0].id: longer than 64 characters (limit id_length)"),
    (("weather", 0, "speed_factor"), 1e-308, "weather[0].speed_factor: must be >= 0.05"),
    (("horizon", "start"), datetime(9999, 12, 31), "horizon.start: year must be between 1970 and 2200"),
    (("shipments", 0, "wagons"), 51, "shipments[0].wagons: exceeds costs.wagons_per_train"),
])
def test_out_of_range_values_are_refused_naming_the_field(path, value, expected):
    doc = copy.deepcopy(DOC)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    issues = _issues(doc)
    assert any(expected in i for i in issues), issues


def test_model_size_limits_are_named():
    doc = copy.deepcopy(DOC)
    doc["horizon"]["slot_minutes"] = 1
    doc["horizon"]["slots"] = 5000
    assert any("exceeds the limit hubs_x_slots_squared" in i for i in _issues(doc))
    doc["horizon"]["slots"] = 20_000
    assert any("horizon.slots: must be <= 10000" in i for i in _issues(doc))


def test_an_empty_fleet_is_refused():
    doc = copy.deepcopy(DOC)
    for row in doc["hubs"]:
        row["locomotives"] = 0
    assert any("hubs.locomotives: the fleet is empty" in i for i in _issues(doc))


def test_every_corridor_closed_for_days_still_prepares_and_solves_quickly():
    from optimizer.solving.config import Config
    from optimizer.solving.pipeline import solve_problem

    doc = copy.deepcopy(DOC)
    start = doc["horizon"]["start"]
    doc["weather"] = [{"corridor": f"{c['from']}-{c['to']}", "start": start, "end": start + timedelta(days=4),
                       "closed": True} for c in doc["corridors"]]
    problem = parse_problem(doc, source="closed")
    t = time.perf_counter()
    outcome = solve_problem(problem, Config().override(backend="cpsat", time_limit=5.0))
    assert outcome.feasible and time.perf_counter() - t < 60
    # Nothing can leave before the lines reopen on day 5: every shipment waits or is deferred.
    assert all(row["status"] == "deferred" or row["legs"][0]["enter"] >= "2026-03-06" for row in
               outcome.to_json()["plan"])


def test_schema_states_the_ranges_and_the_train_formation_rule():
    schema = problem_schema()
    assert "Wagonload" in schema["description"] and "hubs_x_slots_squared" in schema["description"]
    corridor = schema["properties"]["corridors"]["items"]["properties"]
    assert corridor["km"]["maximum"] == 10_000 and corridor["speed_kmh"]["minimum"] == 5
    assert "train paths" in corridor["capacity"]["description"].lower()
    assert schema["properties"]["hubs"]["items"]["properties"]["id"]["maxLength"] == LIMITS["id_length"]
    assert "turnaround_hours" in schema["properties"]["hubs"]["items"]["properties"]
    assert "value_cny" in schema["properties"]["shipments"]["items"]["properties"]
    costs = schema["properties"]["costs"]["properties"]
    assert all("maximum" in f and "minimum" in f for f in costs.values())
