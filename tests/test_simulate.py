"""Rolling-horizon evaluation and the seeded weather model: same seed, same result."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

import pytest

from optimizer.errors import InputError
from optimizer.freight.events import EventFile, RateRow, WeatherModel, parse_events, season_of
from optimizer.freight.problem import load_problem
from optimizer.solving.config import Config
from optimizer.solving.replan import add_simulate_arguments, run_simulate, simulate_stream
from tests.conftest import PROBLEMS

CONFIG = Config().override(backend="cpsat", time_limit=10.0, seed=0)

STREAM = {
    "stream": {"name": "tiny storms"},
    "events": [
        {"kind": "release", "shipment": "S2", "release": "2026-03-02T07:00", "announced": "2026-03-02T05:00"},
    ],
    "weather_model": {"seed": 11, "lead_hours": 1.0, "rates": [
        {"corridor": "*", "season": "spring", "closures_per_day": 2.0, "closure_hours_min": 1.0,
         "closure_hours_max": 4.0, "slowdowns_per_day": 4.0, "slowdown_hours_min": 1.0, "slowdown_hours_max": 6.0},
        {"corridor": "*", "season": "summer", "closures_per_day": 0.0},
    ]},
}


def _without_seconds(doc):
    """The document without wall-clock fields (the only things allowed to differ between runs)."""
    if isinstance(doc, dict):
        return {k: _without_seconds(v) for k, v in doc.items() if k not in ("seconds", "initial_plan_seconds")}
    if isinstance(doc, list):
        return [_without_seconds(v) for v in doc]
    return doc


def test_same_seed_same_result():
    problem = load_problem(PROBLEMS / "tiny.toml")
    stream = parse_events(STREAM, source="storms")
    events = stream.stream(problem)
    drawn = [e for e in events if e.drawn]
    assert len(drawn) >= 2, "the rates should draw some weather over the 12-hour horizon"
    first = simulate_stream(problem, events, config=CONFIG)
    again = simulate_stream(problem, stream.stream(problem), config=CONFIG)
    assert json.dumps(_without_seconds(first), sort_keys=True) == json.dumps(_without_seconds(again), sort_keys=True)
    assert set(first["policies"]) == {"static", "replan", "baseline"}
    for policy in first["policies"].values():
        assert set(policy["kpis"]) >= {"on_time_share", "dwell_hours_transfer", "diesel_litres", "deferred_tonnes"}
    # Another seed draws other weather (so the seed is what makes the result repeatable).
    other = stream.stream(problem, seed=12)
    assert [e.to_document() for e in other if e.drawn] != [e.to_document() for e in drawn]


def test_weather_model_rates_by_corridor_and_season():
    problem = load_problem(PROBLEMS / "typhoon-pearl-river.toml")  # August: summer
    assert season_of(problem.horizon.start) == "summer"
    winter_only = WeatherModel(5, 0.0, (RateRow("*", "winter", 5.0, (1, 2), 5.0, (1, 2), (0.5, 0.6)),))
    assert winter_only.draw(problem) == ()
    one = WeatherModel(5, 2.0, (RateRow("CAN-SZX", "summer", 3.0, (1, 2), 0.0, (1, 2), (0.5, 0.6)),
                                RateRow("*", "all", 0.0, (1, 2), 0.0, (1, 2), (0.5, 0.6))))
    draws = one.draw(problem)
    assert draws and {e.fields["corridor"] for e in draws} == {"CAN-SZX"}
    assert all(e.kind == "closure" and 1.0 <= (e.fields["end"] - e.fields["start"]).total_seconds() / 3600 <= 2.0 + 1 / 60
               for e in draws)
    assert all((e.fields["start"] - e.announced).total_seconds() == 7200 for e in draws)
    # Each corridor draws from its own stream: another corridor's rates leave these draws alone.
    more = WeatherModel(5, 2.0, (RateRow("CAN-SZX", "summer", 3.0, (1, 2), 0.0, (1, 2), (0.5, 0.6)),
                                 RateRow("*", "all", 1.0, (1, 2), 1.0, (1, 2), (0.5, 0.6))))
    assert [e for e in more.draw(problem) if e.fields["corridor"] == "CAN-SZX"] == list(draws)
    with pytest.raises(InputError, match="weather_model.rates\\[0\\].closure_hours_max"):
        parse_events({"weather_model": {"seed": 1, "rates": [{"corridor": "*", "closure_hours_min": 5,
                                                               "closure_hours_max": 2}]}}, source="w")


def test_cli_simulate_writes_the_comparison(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    args = parser.parse_args([str(PROBLEMS / "tiny.toml"), "--events", str(PROBLEMS / "events" / "tiny-closure.toml"),
                              "--time-limit", "10", "--out", str(tmp_path / "sim")])
    assert run_simulate(args) == 0
    doc = json.loads((tmp_path / "sim" / "simulate.json").read_text())
    assert doc["replan_times"] == 0 and doc["announced_upfront"] == 1  # announced at the start: in the first plan
    table = (tmp_path / "sim" / "simulate.md").read_text()
    assert "| On-time share | % |" in table and "re-plan - static" in table
    with pytest.raises(InputError, match="--policies"):
        run_simulate(parser.parse_args([str(PROBLEMS / "tiny.toml"), "--events",
                                        str(PROBLEMS / "events" / "tiny-closure.toml"), "--policies", "oracle"]))
    capsys.readouterr()


def test_events_announced_during_the_horizon_are_replanned():
    problem = load_problem(PROBLEMS / "tiny.toml")
    stream = EventFile(parse_events({"events": [
        {"kind": "closure", "corridor": "XIY-CGO", "start": "2026-03-02T10:00", "end": "2026-03-02T20:00",
         "announced": "2026-03-02T03:00"}]}, source="s").events)
    doc = simulate_stream(problem, stream.stream(problem), config=CONFIG)
    assert doc["replan_times"] == 1
    replan = doc["policies"]["replan"]
    assert replan["feasible"] and len(replan["steps"]) == 1
    assert replan["steps"][0]["at"] == datetime(2026, 3, 2, 3).isoformat()
    static = doc["policies"]["static"]
    assert static["changes"] == 0
    # The comparison rows are the policies' own KPIs, differences included.
    row = next(r for r in doc["comparison"] if r["kpi"] == "on_time_share")
    assert row["replan_minus_static"] == pytest.approx(replan["kpis"]["on_time_share"] - static["kpis"]["on_time_share"])


def test_compare_with_events_puts_the_rolling_horizon_comparison_in_the_report(tmp_path, capsys):
    from optimizer.cli import main

    out = tmp_path / "cmp"
    events = str(PROBLEMS / "events" / "tiny-closure.toml")
    assert main(["compare", str(PROBLEMS / "tiny.toml"), "--backends", "cpsat", "--seeds", "1", "--time-limit", "5",
                 "--events", events, "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    sim = doc["rolling_horizon"]["tiny"]
    assert set(sim["policies"]) == {"static", "replan", "baseline"} and len(sim["events"]) == 1
    cost = next(r for r in sim["comparison"] if r["kpi"] == "cost_cny")
    for text in ((out / "report.md").read_text(), (out / "report.html").read_text()):
        assert "Rolling horizon under disruption" in text
        assert f"{cost['replan']:,.1f}" in text and f"{cost['baseline']:,.1f}" in text
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0  # rebuilt from results.json alone
    assert "Rolling horizon under disruption" in (out / "report.md").read_text()
    # A stream naming hubs a problem lacks is refused before any run, naming both files.
    capsys.readouterr()
    assert main(["compare", str(PROBLEMS / "tiny.toml"), "--backends", "cpsat", "--seeds", "1",
                 "--events", str(PROBLEMS / "events" / "typhoon-weather.toml"), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "typhoon-weather.toml" in err and "tiny.toml" in err and "unknown corridor id" in err
    assert not (tmp_path / "bad" / "results.json").exists()
