"""Plans, their independent check, the KPI simulation and the greedy dispatcher baseline.

Nothing here reads the QUBO or the model rows: a plan (route and departure slot per shipment)
is re-timed on the network and checked against the problem's own capacities, and KPIs come
from an event-driven replay in which shipments entering a corridor together are marshalled
into shared trains (first-fit decreasing by wagons).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from optimizer.freight.candidates import CandidateSet, movement_costs, trains_for
from optimizer.freight.network import Movement, Network
from optimizer.freight.problem import Problem

__all__ = ["Plan", "Assignment", "Kpis", "decode", "encode_plan", "check_plan", "simulate",
           "kpi_deltas", "plan_table", "KPI_LABELS"]


@dataclass(frozen=True)
class Assignment:
    shipment: str
    route: tuple[str, ...] | None  # None: deferred
    slot: int | None


@dataclass(frozen=True)
class Plan:
    """One decision per shipment (in problem order); ``problems`` lists decode failures."""

    assignments: tuple[Assignment, ...]
    problems: tuple[str, ...] = ()


def decode(cset: CandidateSet, x: np.ndarray) -> Plan:
    """Plan of one model assignment (variable i = candidate i). Shipments with no or several
    chosen plans are reported in ``problems`` and left out of ``assignments``."""
    x = np.asarray(x).ravel()
    assignments: list[Assignment] = []
    problems: list[str] = []
    for shipment, members in zip(cset.problem.shipments, cset.groups):
        chosen = [i for i in members if x[i]]
        if len(chosen) != 1:
            labels = ", ".join(cset.candidates[i].label for i in chosen) or "none"
            problems.append(f"shipment {shipment.id}: expected exactly one plan, got {len(chosen)} ({labels})")
            continue
        cand = cset.candidates[chosen[0]]
        assignments.append(Assignment(shipment.id, cand.route, cand.slot))
    return Plan(tuple(assignments), tuple(problems))


def encode_plan(cset: CandidateSet, plan: Plan) -> np.ndarray:
    """Model assignment of a plan (inverse of :func:`decode` for plans built from candidates)."""
    index = {(c.shipment, c.route, c.slot): i for i, c in enumerate(cset.candidates)}
    x = np.zeros(len(cset.candidates), dtype=np.uint8)
    for a in plan.assignments:
        x[index[(a.shipment, a.route, a.slot)]] = 1
    return x


def _movements(problem: Problem, plan: Plan, network: Network) -> dict[str, Movement]:
    moves = {}
    horizon = problem.horizon
    for a in plan.assignments:
        if a.route is not None:
            moves[a.shipment] = network.traverse(a.route, a.slot * horizon.slot_hours)
    return moves


def check_plan(problem: Problem, plan: Plan) -> list[str]:
    """Every violation of the problem's constraints by ``plan`` (empty list: feasible)."""
    violations = list(plan.problems)
    network = Network(problem)
    horizon = problem.horizon
    W = problem.costs.wagons_per_train
    shipments = {s.id: s for s in problem.shipments}
    seen: set[str] = set()
    corridor_wagons: dict[tuple[str, str, int], float] = defaultdict(float)
    yard_wagons: dict[tuple[str, int], float] = defaultdict(float)
    locos: dict[tuple[str, int], int] = defaultdict(int)
    for a in plan.assignments:
        s = shipments.get(a.shipment)
        if s is None:
            violations.append(f"unknown shipment {a.shipment}")
            continue
        if a.shipment in seen:
            violations.append(f"shipment {a.shipment} planned twice")
        seen.add(a.shipment)
        if a.route is None:
            continue
        if a.route[0] != s.origin or a.route[-1] != s.destination:
            violations.append(f"shipment {s.id}: route {'-'.join(a.route)} does not join {s.origin} to {s.destination}")
            continue
        if any(not network.graph.has_edge(u, v) for u, v in zip(a.route[:-1], a.route[1:])):
            violations.append(f"shipment {s.id}: route {'-'.join(a.route)} uses a missing or zero-capacity corridor")
            continue
        if not (0 <= a.slot < horizon.slots):
            violations.append(f"shipment {s.id}: departure slot {a.slot} outside the horizon (0..{horizon.slots - 1})")
            continue
        if a.slot * horizon.slot_hours < s.release - 1e-9:
            violations.append(f"shipment {s.id}: departs in slot {a.slot}, before its release")
        move = network.traverse(a.route, a.slot * horizon.slot_hours)
        for leg in move.legs:
            if network.speed_factor(leg.corridor, leg.enter) == 0.0:
                violations.append(f"shipment {s.id}: enters closed corridor {leg.corridor}")
            corridor_wagons[(leg.origin, leg.destination, horizon.slot_of(leg.enter))] += s.wagons
        for stop in move.stops:
            yard_wagons[(stop.hub, horizon.slot_of(stop.arrive))] += s.wagons
        for slot in range(horizon.slot_of(move.depart), horizon.slot_of(move.arrive) + 1):
            locos[(s.origin, slot)] += math.ceil(s.wagons / W)
    for s in problem.shipments:
        if s.id not in seen and not any(p.startswith(f"shipment {s.id}:") for p in plan.problems):
            violations.append(f"shipment {s.id} has no plan")
    for (a, b, slot), wagons in sorted(corridor_wagons.items()):
        cap = network.corridor(a, b).capacity * W
        if wagons > cap:
            violations.append(f"corridor {a}>{b} in slot {slot}: {wagons:g} wagons > capacity {cap:g}")
    for (hub, slot), wagons in sorted(yard_wagons.items()):
        cap = problem.hub(hub).yard_capacity * W
        if wagons > cap:
            violations.append(f"yard {hub} in slot {slot}: {wagons:g} wagons > capacity {cap:g}")
    for (hub, slot), count in sorted(locos.items()):
        if count > problem.hub(hub).locomotives:
            violations.append(f"locomotives at {hub} in slot {slot}: {count} needed > {problem.hub(hub).locomotives}")
    return violations


@dataclass(frozen=True)
class Kpis:
    """Operator KPIs of one plan. Hours, litres, kWh, CNY."""

    shipments: int
    moved: int
    deferred: int
    on_time_share: float  # of all shipments: delivered by due (and berth cut-off)
    priority_weighted_on_time: float
    lateness_hours: float  # sum over moved shipments
    dwell_hours_transfer: float  # shipment-hours at transfer yards
    dwell_hours_total: float  # at all intermediate hubs and closure holds
    diesel_litres: float
    electric_kwh: float
    trains: int  # trains run after consolidation (one per corridor leg)
    train_km: float
    berth_misses: int
    cost_cny: float  # the plan's cost with actual train formation

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


KPI_LABELS: Mapping[str, tuple[str, str]] = {
    "dwell_hours_transfer": ("Dwell at transfer yards", "h"),
    "diesel_litres": ("Diesel", "L"),
    "electric_kwh": ("Electricity", "kWh"),
    "on_time_share": ("On-time share", "%"),
    "priority_weighted_on_time": ("Priority-weighted on-time", "%"),
    "lateness_hours": ("Lateness", "h"),
    "deferred": ("Deferred shipments", ""),
    "trains": ("Trains run", ""),
    "train_km": ("Train-km", "km"),
    "berth_misses": ("Vessel cut-offs missed", ""),
    "cost_cny": ("Cost", "CNY"),
}


def simulate(problem: Problem, plan: Plan) -> Kpis:
    """Replay ``plan`` event by event and measure it (the plan should pass :func:`check_plan`)."""
    network = Network(problem)
    k = problem.costs
    W = k.wagons_per_train
    shipments = {s.id: s for s in problem.shipments}
    moves = _movements(problem, plan, network)

    # Event queue: (time, order, kind, shipment, leg index). Corridor entries at the same time
    # and place are marshalled together into trains.
    events: list[tuple[float, int, str, str, int]] = []
    for sid, move in moves.items():
        for j, leg in enumerate(move.legs):
            heapq.heappush(events, (leg.enter, 0, "enter", sid, j))
        heapq.heappush(events, (move.arrive, 1, "deliver", sid, -1))
    diesel = electric = train_km = cost = 0.0
    trains = 0
    lateness = 0.0
    on_time = on_time_weight = 0.0
    berth_misses = 0
    while events:
        t, _, kind, sid, j = heapq.heappop(events)
        if kind == "enter":
            batch = [(sid, j)]
            while events and events[0][0] == t and events[0][2] == "enter" and \
                    moves[events[0][3]].legs[events[0][4]].corridor == moves[sid].legs[j].corridor and \
                    moves[events[0][3]].legs[events[0][4]].origin == moves[sid].legs[j].origin:
                _, _, _, sid2, j2 = heapq.heappop(events)
                batch.append((sid2, j2))
            leg = moves[sid].legs[j]
            # First-fit decreasing: shipments' wagon blocks into trains of at most W wagons.
            loads: list[list[str]] = []
            fill: list[int] = []
            for s2, _ in sorted(batch, key=lambda b: -shipments[b[0]].wagons):
                w = shipments[s2].wagons
                slot = next((n for n, f in enumerate(fill) if f + w <= W), None)
                if slot is None:
                    loads.append([s2])
                    fill.append(w)
                else:
                    loads[slot].append(s2)
                    fill[slot] += w
            for load in loads:
                gross = k.locomotive_tonnes + sum(shipments[s].tonnes + shipments[s].wagons * k.tare_tonnes_per_wagon
                                                  for s in load)
                trains += 1
                train_km += leg.km
                cost += leg.km * k.train_cost_per_km
                if leg.traction == "diesel":
                    diesel += gross * leg.km * k.diesel_litres_per_gross_tonne_km
                else:
                    electric += gross * leg.km * k.electric_kwh_per_gross_tonne_km
        else:
            s = shipments[sid]
            move = moves[sid]
            terms = movement_costs(problem, s, move)
            idle = sum(stop.dwell for stop, leg in zip(move.stops, move.legs) if leg.traction == "diesel")
            diesel += idle * trains_for(s, problem) * k.diesel_litres_per_idle_locomotive_hour
            cost += terms["dwell_cny"] + terms["lateness_cny"] + terms["berth_cny"]
            lateness += terms["lateness_hours"]
            missed = terms["berth_cny"] > 0
            berth_misses += int(missed)
            if terms["lateness_hours"] <= 1e-9 and not missed:
                on_time += 1
                on_time_weight += s.priority
    cost += diesel * k.diesel_price_per_litre + electric * k.electricity_price_per_kwh
    deferred = [s for s in problem.shipments if s.id not in moves]
    cost += sum(k.defer_cost_per_priority * s.priority for s in deferred)
    dwell_transfer = sum(stop.dwell for m in moves.values() for stop in m.stops
                         if problem.hub(stop.hub).kind == "transfer")
    dwell_total = sum(m.origin_wait + sum(stop.dwell for stop in m.stops) for m in moves.values())
    n = len(problem.shipments)
    total_priority = sum(s.priority for s in problem.shipments)
    return Kpis(
        shipments=n, moved=len(moves), deferred=len(deferred),
        on_time_share=on_time / n if n else 1.0,
        priority_weighted_on_time=on_time_weight / total_priority if total_priority else 1.0,
        lateness_hours=lateness, dwell_hours_transfer=dwell_transfer, dwell_hours_total=dwell_total,
        diesel_litres=diesel, electric_kwh=electric, trains=trains, train_km=train_km,
        berth_misses=berth_misses, cost_cny=cost,
    )


def kpi_deltas(plan: Kpis, baseline: Kpis) -> dict[str, float | None]:
    """Percentage change of each KPI against the baseline (None where the baseline is 0)."""
    out: dict[str, float | None] = {}
    for key in KPI_LABELS:
        a, b = getattr(plan, key), getattr(baseline, key)
        out[key] = None if b == 0 else 100.0 * (a - b) / abs(b)
    return out


def plan_table(problem: Problem, plan: Plan) -> list[dict[str, object]]:
    """JSON-ready description of each shipment's plan, with times as ISO date-times."""
    network = Network(problem)
    shipments = {s.id: s for s in problem.shipments}
    rows: list[dict[str, object]] = []
    for a in plan.assignments:
        s = shipments[a.shipment]
        if a.route is None:
            rows.append({"shipment": s.id, "status": "deferred"})
            continue
        move = network.traverse(a.route, a.slot * problem.horizon.slot_hours)
        rows.append({
            "shipment": s.id,
            "status": "moved",
            "route": list(a.route),
            "departure_slot": a.slot,
            "depart": problem.hours_to_datetime(move.depart).isoformat(),
            "arrive": problem.hours_to_datetime(move.arrive).isoformat(),
            "due": problem.hours_to_datetime(s.due).isoformat(),
            "late_hours": round(max(0.0, move.arrive - s.due), 3),
            "legs": [{"corridor": leg.corridor, "from": leg.origin, "to": leg.destination,
                      "enter": problem.hours_to_datetime(leg.enter).isoformat(),
                      "exit": problem.hours_to_datetime(leg.exit).isoformat()} for leg in move.legs],
            "stops": [{"hub": st.hub, "arrive": problem.hours_to_datetime(st.arrive).isoformat(),
                       "depart": problem.hours_to_datetime(st.depart).isoformat(),
                       "dwell_hours": round(st.dwell, 3)} for st in move.stops],
        })
    return rows
