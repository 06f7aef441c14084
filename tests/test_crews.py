"""Crew duty limits: relief at transfer yards, origin and destination; no plan past the limit in
the model, and the plan check refuses one."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.cli import main
from optimizer.errors import InputError
from optimizer.freight.candidates import generate_candidates
from optimizer.freight.crews import duty_stretches, duty_violations
from optimizer.freight.evaluate import check_plan, decode
from optimizer.freight.events import problem_document
from optimizer.freight.network import Network
from optimizer.freight.problem import parse_problem
from tests.freight_cases import corridor, hub, network_document, shipment


def line(*, middle: str, duty: float | None) -> dict:
    """A -> M -> B, 2 h per corridor (160 km at 80 km/h), 1 h handling at M, hourly slots."""
    doc = network_document([hub("A"), hub("M", kind=middle), hub("B")],
                           [corridor("A", "M"), corridor("M", "B")],
                           [shipment("S1", "A", "B", due=20.0)], slots=6)
    if duty is not None:
        doc["operations"] = {"crew_duty_hours": duty}
    return doc


def test_a_crew_works_from_relief_to_relief_stops_at_other_hubs_included():
    through = parse_problem(line(middle="inland", duty=None), source="t")
    move = Network(through).traverse(("A", "M", "B"), 0.0)
    # No relief at an inland hub: one crew, 2 h + 1 h handling + 2 h.
    assert duty_stretches(through, move) == [("A", "B", pytest.approx(5.0))]
    relieved = parse_problem(line(middle="transfer", duty=None), source="t")
    move = Network(relieved).traverse(("A", "M", "B"), 0.0)
    assert [(a, b) for a, b, _ in duty_stretches(relieved, move)] == [("A", "M"), ("M", "B")]
    assert [h for _, _, h in duty_stretches(relieved, move)] == pytest.approx([2.0, 2.0])


def test_the_model_offers_no_plan_past_the_duty_limit_and_relief_at_a_yard_restores_it():
    limited = parse_problem(line(middle="inland", duty=4.0), source="t")
    plans = [c for c in generate_candidates(limited).candidates if not c.deferred]
    assert plans == []  # every A-M-B train needs one crew for 5 h
    relieved = parse_problem(line(middle="transfer", duty=4.0), source="t")
    plans = [c for c in generate_candidates(relieved).candidates if not c.deferred]
    assert plans and all(not duty_violations(relieved, c.movement)
                         for c in plans)


def test_the_plan_check_refuses_a_plan_past_the_duty_limit():
    free = parse_problem(line(middle="inland", duty=None), source="t")
    cset = generate_candidates(free)
    x = np.zeros(len(cset.candidates), dtype=np.uint8)
    x[next(i for i, c in enumerate(cset.candidates) if not c.deferred)] = 1
    plan = decode(cset, x)
    assert check_plan(free, plan) == []
    limited = parse_problem(line(middle="inland", duty=4.0), source="t")
    violations = check_plan(limited, plan)
    assert any("crew on duty 5.00 h from A to B" in v for v in violations)


def test_the_duty_limit_survives_the_problem_document_round_trip():
    problem = parse_problem(line(middle="inland", duty=7.5), source="t")
    assert parse_problem(problem_document(problem), source="t").operations.crew_duty_hours == 7.5
    assert "operations" not in problem_document(parse_problem(line(middle="inland", duty=None), source="t"))


@pytest.mark.parametrize("value", [0, -1, 0.5, 49, "long", float("nan"), True])
def test_bad_duty_limits_are_refused_naming_the_field(value, tmp_path, capsys):
    doc = line(middle="inland", duty=None)
    doc["operations"] = {"crew_duty_hours": value}
    with pytest.raises(InputError, match="operations.crew_duty_hours"):
        parse_problem(doc, source="t")
    import tomli_w

    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(doc))
    assert main(["validate", str(path)]) == 2
    assert "operations.crew_duty_hours" in capsys.readouterr().err
