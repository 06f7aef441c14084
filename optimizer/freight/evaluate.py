"""Plans, their independent check and the KPI replay.

Nothing here reads the QUBO, the model rows or the candidates' cost terms: a plan (route and
departure slot per shipment, plus light-engine moves) is re-timed on the network
(:meth:`Network.traverse`, the one set of operating rules) and checked against the problem's
own capacities, and KPIs come from an event replay that forms trains by the wagonload rule
(:data:`optimizer.freight.problem.TRAIN_FORMATION_RULE`): the wagons entering a corridor in one
direction at one slot boundary make ``ceil(wagons / wagons_per_train)`` trains, whatever order
the shipments come in. Every locomotive travels with its train and is available at the far end
after the hub's turnaround time; a hub's fleet may never go negative.

Costs are kept to the fen per shipment movement, per train and per deferral, as the model
keeps them, so a feasible plan's replayed cost equals its model objective (tested).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from optimizer.freight.crews import duty_violations
from optimizer.freight.network import Movement, Network, minutes
from optimizer.freight.problem import Problem

__all__ = [
    "KPI_LABELS",
    "LOWER_IS_BETTER",
    "Assignment",
    "Kpis",
    "LightEngine",
    "Plan",
    "check_plan",
    "decode",
    "encode_plan",
    "kpi_deltas",
    "plan_table",
    "simulate",
    "train_batches",
]


@dataclass(frozen=True)
class Assignment:
    shipment: str
    route: tuple[str, ...] | None  # None: deferred
    slot: int | None


@dataclass(frozen=True)
class LightEngine:
    """``count`` locomotives running without wagons from ``origin`` to ``destination``, entering
    the corridor at the start of ``slot``."""

    corridor: str
    origin: str
    destination: str
    slot: int
    count: int = 1


@dataclass(frozen=True)
class Plan:
    """One decision per shipment (in problem order) and light-engine moves; ``problems`` lists
    decode failures."""

    assignments: tuple[Assignment, ...]
    problems: tuple[str, ...] = ()
    light_engines: tuple[LightEngine, ...] = ()


def decode(cset, x: np.ndarray) -> Plan:
    """Plan of a model assignment: variable i = candidate i; the train counts after the plans
    (when given) add light engines wherever a batch runs more trains than its wagons need.

    Shipments with no or several chosen plans, and batches with fewer trains than their wagons
    need, are reported in ``problems``.
    """
    from optimizer.freight.model import aux_layout

    x = np.asarray(x).ravel()
    n_plans = len(cset.candidates)
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
    light: list[LightEngine] = []
    if x.size > n_plans:
        layout = aux_layout(cset)
        trains = layout.trains(x[None, :])[0]
        wagons = np.zeros(len(cset.batches), dtype=np.int64)
        for i in np.flatnonzero(x[:n_plans]):
            for b, w in cset.candidates[i].uses:
                wagons[b] += w
        need = -(-wagons // cset.problem.costs.wagons_per_train)
        problem = cset.problem
        for b in np.flatnonzero(trains != need):
            label = cset.batches.label(problem, int(b))
            if trains[b] < need[b]:
                problems.append(f"trains {label}: {trains[b]} trains for {wagons[b]} wagons "
                                f"(need {need[b]} of {problem.costs.wagons_per_train})")
                continue
            c = problem.corridors[int(cset.batches.corridor[b])]
            a, z = (c.origin, c.destination) if cset.batches.direction[b] == 0 else (c.destination, c.origin)
            light.append(LightEngine(c.id, a, z, int(cset.batches.slot[b]), int(trains[b] - need[b])))
    return Plan(tuple(assignments), tuple(problems), tuple(light))


def encode_plan(cset, plan: Plan) -> np.ndarray:
    """Full model assignment of a plan built from candidates (inverse of :func:`decode`): plans,
    then every batch's trains (wagons' need plus the plan's light engines)."""
    from optimizer.freight.model import aux_layout, complete

    index = {(c.shipment, c.route, c.slot): i for i, c in enumerate(cset.candidates)}
    x = np.zeros(len(cset.candidates), dtype=np.uint8)
    for a in plan.assignments:
        x[index[(a.shipment, a.route, a.slot)]] = 1
    full = complete(cset, x)
    if plan.light_engines:
        layout = aux_layout(cset)
        trains = layout.trains(full[None, :])[0]
        problem = cset.problem
        for le in plan.light_engines:
            c = problem.corridor_index[le.corridor]
            d = 0 if problem.corridors[c].origin == le.origin else 1
            trains[cset.batches.index[(c, d, le.slot)]] += le.count
        full[len(cset.candidates):] = layout.encode(trains, cset.batches.upper)
    return full


def _movements(problem: Problem, plan: Plan, network: Network) -> dict[str, Movement]:
    moves = {}
    horizon = problem.horizon
    for a in plan.assignments:
        if a.route is not None:
            moves[a.shipment] = network.traverse(a.route, a.slot * horizon.slot_hours)
    return moves


@dataclass(frozen=True)
class _Batch:
    corridor: str
    origin: str
    destination: str
    enter: int  # minute
    exit: int  # minute
    km: float
    traction: str
    wagons: int
    tonnes: float  # cargo + tare
    loaded_trains: int
    light: int

    @property
    def trains(self) -> int:
        return self.loaded_trains + self.light


def train_batches(problem: Problem, plan: Plan, moves: Mapping[str, Movement] | None = None,
                  network: Network | None = None) -> list[_Batch]:
    """The trains a plan runs: every (corridor, direction, entry minute) with its wagons, as
    ``ceil(wagons / wagons_per_train)`` loaded trains plus the plan's light engines there."""
    network = network or Network(problem)
    moves = _movements(problem, plan, network) if moves is None else moves
    k = problem.costs
    shipments = {s.id: s for s in problem.shipments}
    # Event queue of leg entries; entries with the same key join one batch whatever their order.
    queue: list[tuple[int, str, str, int]] = []
    for sid, move in moves.items():
        for j, leg in enumerate(move.legs):
            heapq.heappush(queue, (minutes(leg.enter), leg.corridor, sid, j))
    groups: dict[tuple[int, str, str], list[tuple[str, int]]] = defaultdict(list)
    while queue:
        t, corridor, sid, j = heapq.heappop(queue)
        groups[(t, corridor, moves[sid].legs[j].origin)].append((sid, j))
    light: dict[tuple[int, str, str], int] = defaultdict(int)
    slot_min = problem.horizon.slot_minutes
    for le in plan.light_engines:
        light[(le.slot * slot_min, le.corridor, le.origin)] += le.count
    out = []
    for key in sorted(set(groups) | set(light)):
        t, corridor, origin = key
        members = groups.get(key, [])
        if members:
            leg = moves[members[0][0]].legs[members[0][1]]
            destination, exit_, km, traction = leg.destination, minutes(leg.exit), leg.km, leg.traction
        else:
            c = problem.corridors[problem.corridor_index[corridor]]
            destination = c.destination if c.origin == origin else c.origin
            exit_, _ = network.run(c, t)
            exit_ = -1 if exit_ is None else exit_
            km, traction = c.km, c.traction
        wagons = sum(shipments[s].wagons for s, _ in members)
        tonnes = sum(shipments[s].tonnes + shipments[s].wagons * k.tare_tonnes_per_wagon for s, _ in members)
        out.append(_Batch(corridor, origin, destination, t, exit_, km, traction, wagons, tonnes,
                          -(-wagons // k.wagons_per_train), light.get(key, 0)))
    return out


def check_plan(problem: Problem, plan: Plan) -> list[str]:
    """Every violation of the problem's constraints by ``plan`` (empty list: feasible)."""
    violations = list(plan.problems)
    network = Network(problem)
    horizon = problem.horizon
    slot_min = horizon.slot_minutes
    shipments = {s.id: s for s in problem.shipments}
    closures: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for e in problem.weather:
        if e.closed:
            closures[e.corridor].append((minutes(e.start), minutes(e.end)))
    seen: set[str] = set()
    moves: dict[str, Movement] = {}
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
        if a.slot * slot_min < minutes(s.release):
            violations.append(f"shipment {s.id}: departs in slot {a.slot}, before its release")
        move = network.traverse(a.route, a.slot * horizon.slot_hours)
        moves[s.id] = move
        violations.extend(f"shipment {s.id}: {v}" for v in duty_violations(problem, move))
        for leg in move.legs:
            enter, exit_ = minutes(leg.enter), minutes(leg.exit)
            for start, end in closures.get(leg.corridor, ()):
                if enter < end and start < exit_:
                    violations.append(f"shipment {s.id}: runs on {leg.corridor} from minute {enter} to {exit_} "
                                      f"through its closure ({start} to {end})")
    for s in problem.shipments:
        if s.id not in seen and not any(p.startswith(f"shipment {s.id}:") for p in plan.problems):
            violations.append(f"shipment {s.id} has no plan")
    for le in plan.light_engines:
        c = problem.corridor_index.get(le.corridor)
        cor = None if c is None else problem.corridors[c]
        if cor is None or cor.capacity <= 0 or le.origin not in (cor.origin, cor.destination) or le.count < 1 \
                or le.slot < 0:
            violations.append(f"light engine {le}: no such corridor, direction, slot or count")
            continue
        if network.run(cor, le.slot * slot_min)[0] is None:
            violations.append(f"light engine on {le.corridor} in slot {le.slot}: a closure stops it")
    if violations:
        return violations

    batches = train_batches(problem, plan, moves, network)
    corridors = {c.id: c for c in problem.corridors}
    yard: dict[tuple[str, int], int] = defaultdict(int)
    events: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # hub -> (minute, order, change)
    for b in batches:
        slot = b.enter // slot_min
        cap = corridors[b.corridor].capacity
        if b.trains > cap:
            violations.append(f"corridor {b.origin}>{b.destination} in slot {slot}: {b.trains} trains "
                              f"({b.wagons} wagons, {b.light} light) > {cap} paths")
        hub = problem.hub(b.destination)
        handling = math.ceil(hub.handling_hours * 60.0 - 1e-9)
        first = b.exit // slot_min
        for occupied in range(first, max(first, (b.exit + handling - 1) // slot_min) + 1):
            yard[(b.destination, occupied)] += b.trains
        turnaround = math.ceil(hub.turnaround_hours * 60.0 - 1e-9)
        # Arrivals available at a minute count before departures at that minute.
        events[b.origin].append((b.enter, 1, -b.trains))
        events[b.destination].append((b.exit + turnaround, 0, b.trains))
    for (hub_id, slot), trains in sorted(yard.items()):
        cap = problem.hub(hub_id).yard_capacity
        if trains > cap:
            violations.append(f"yard {hub_id} in slot {slot}: {trains} trains > capacity {cap}")
    for hub_id, evs in sorted(events.items()):
        stock = problem.hub(hub_id).locomotives
        for minute, _, change in sorted(evs):
            stock += change
            if stock < 0:
                violations.append(f"locomotives at {hub_id} at minute {minute} (slot {minute // slot_min}): "
                                  f"{-stock} more leave than are there")
                break
    return violations


@dataclass(frozen=True)
class Kpis:
    """Operator KPIs of one plan. Hours, litres, kWh, kg, tonnes, CNY."""

    shipments: int
    moved: int
    deferred: int
    deferred_tonnes: float
    on_time_share: float  # of all shipments: delivered by due (and berth cut-off)
    priority_weighted_on_time: float
    lateness_hours: float  # sum over moved shipments, against the due time
    priority_weighted_lateness_hours: float  # sum of priority x max(late vs due, late vs berth cut-off)
    dwell_hours_transfer: float  # shipment-hours at transfer yards (origin waits there included)
    dwell_hours_total: float  # at origins (from the release), intermediate hubs and closure holds
    diesel_litres: float
    electric_kwh: float
    co2_kg: float
    tonne_km: float  # net cargo tonne-km moved
    diesel_litres_per_tonne_km: float  # per moved net tonne-km (0 when nothing moved)
    electric_kwh_per_tonne_km: float
    trains: int  # trains run, one per corridor leg (loaded and light)
    light_engines: int
    train_km: float
    berth_misses: int
    cost_cny: float  # the plan's cost, trains as formed by the wagonload rule

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


KPI_LABELS: Mapping[str, tuple[str, str]] = {
    "dwell_hours_transfer": ("Dwell at transfer yards", "h"),
    "diesel_litres": ("Diesel", "L"),
    "electric_kwh": ("Electricity", "kWh"),
    "co2_kg": ("CO2", "kg"),
    "diesel_litres_per_tonne_km": ("Diesel per moved tonne-km", "L"),
    "electric_kwh_per_tonne_km": ("Electricity per moved t-km", "kWh"),
    "on_time_share": ("On-time share", "%"),
    "priority_weighted_on_time": ("Priority-weighted on-time", "%"),
    "lateness_hours": ("Lateness", "h"),
    "priority_weighted_lateness_hours": ("Priority-weighted lateness", "h"),
    "deferred": ("Deferred shipments", ""),
    "deferred_tonnes": ("Deferred freight", "t"),
    "trains": ("Trains run", ""),
    "light_engines": ("Light-engine moves", ""),
    "train_km": ("Train-km", "km"),
    "berth_misses": ("Vessel cut-offs missed", ""),
    "cost_cny": ("Cost", "CNY"),
}

#: KPIs where a higher value is better (every other KPI: lower is better).
HIGHER_IS_BETTER = frozenset({"on_time_share", "priority_weighted_on_time"})
LOWER_IS_BETTER = frozenset(KPI_LABELS) - HIGHER_IS_BETTER


def _deferral_value(problem: Problem, network: Network, s) -> float:
    if s.value_cny is not None:
        return s.value_cny * s.priority
    return s.tonnes * problem.costs.revenue_per_tonne_km * network.shortest_km(s.origin, s.destination) * s.priority


def simulate(problem: Problem, plan: Plan) -> Kpis:
    """Replay ``plan`` and measure it (the plan should pass :func:`check_plan`)."""
    network = Network(problem)
    k = problem.costs
    shipments = {s.id: s for s in problem.shipments}
    moves = _movements(problem, plan, network)
    cost = 0.0
    diesel = electric = train_km = 0.0
    trains = light = 0
    for b in train_batches(problem, plan, moves, network):
        # The wagons' (cargo + tare) share of the fuel is the shipments'; each train adds its locomotive.
        loco_tkm = k.locomotive_tonnes * b.km
        if b.traction == "diesel":
            turnaround = math.ceil(problem.hub(b.destination).turnaround_hours * 60.0 - 1e-9) / 60.0
            per_train_diesel = loco_tkm * k.diesel_litres_per_gross_tonne_km + \
                turnaround * k.diesel_litres_per_idle_locomotive_hour
            per_train_kwh = 0.0
        else:
            per_train_diesel, per_train_kwh = 0.0, loco_tkm * k.electric_kwh_per_gross_tonne_km
        per_train_cost = round(b.km * k.train_cost_per_km + per_train_diesel * k.diesel_price_per_litre
                               + per_train_kwh * k.electricity_price_per_kwh, 2)
        cost += b.trains * per_train_cost
        diesel += b.trains * per_train_diesel
        electric += b.trains * per_train_kwh
        trains += b.trains
        light += b.light
        train_km += b.trains * b.km

    lateness = weighted_lateness = 0.0
    on_time = on_time_weight = 0.0
    berth_misses = 0
    tonne_km = 0.0
    dwell_transfer = dwell_total = 0.0
    for sid, move in moves.items():
        s = shipments[sid]
        wagon_tonnes = s.tonnes + s.wagons * k.tare_tonnes_per_wagon
        d = sum(wagon_tonnes * leg.km * k.diesel_litres_per_gross_tonne_km for leg in move.legs
                if leg.traction == "diesel")
        e = sum(wagon_tonnes * leg.km * k.electric_kwh_per_gross_tonne_km for leg in move.legs
                if leg.traction != "diesel")
        diesel += d
        electric += e
        tonne_km += s.tonnes * move.km
        origin_wait = move.legs[0].enter - max(s.release, 0.0)
        waits = origin_wait + sum(stop.dwell for stop in move.stops)
        dwell_total += waits
        dwell_transfer += sum(stop.dwell for stop in move.stops if problem.hub(stop.hub).kind == "transfer")
        if problem.hub(s.origin).kind == "transfer":
            dwell_transfer += origin_wait
        late = max(0.0, move.arrive - s.due)
        worst = late
        missed = False
        if s.berth is not None:
            ready = move.arrive + math.ceil(problem.hub(s.destination).handling_hours * 60.0 - 1e-9) / 60.0
            cutoff = problem.berth(s.berth).cutoff
            if ready > cutoff + 1e-9:
                missed = True
                worst = max(worst, ready - cutoff)
        lateness += late
        weighted_lateness += worst * s.priority
        berth_misses += int(missed)
        if worst == 0.0:
            on_time += 1
            on_time_weight += s.priority
        cost += round(d * k.diesel_price_per_litre + e * k.electricity_price_per_kwh
                      + waits * s.wagons * k.dwell_cost_per_wagon_hour
                      + worst * s.priority * k.lateness_cost_per_priority_hour
                      + (k.berth_miss_cost if missed else 0.0), 2)
    deferred = [s for s in problem.shipments if s.id not in moves]
    cost += sum(round(_deferral_value(problem, network, s), 2) for s in deferred)
    n = len(problem.shipments)
    total_priority = sum(s.priority for s in problem.shipments)
    return Kpis(
        shipments=n, moved=len(moves), deferred=len(deferred), deferred_tonnes=sum(s.tonnes for s in deferred),
        on_time_share=on_time / n if n else 1.0,
        priority_weighted_on_time=on_time_weight / total_priority if total_priority else 1.0,
        lateness_hours=lateness, priority_weighted_lateness_hours=weighted_lateness,
        dwell_hours_transfer=dwell_transfer, dwell_hours_total=dwell_total,
        diesel_litres=diesel, electric_kwh=electric,
        co2_kg=diesel * k.co2_kg_per_diesel_litre + electric * k.co2_kg_per_kwh,
        tonne_km=tonne_km,
        diesel_litres_per_tonne_km=diesel / tonne_km if tonne_km else 0.0,
        electric_kwh_per_tonne_km=electric / tonne_km if tonne_km else 0.0,
        trains=trains, light_engines=light, train_km=train_km, berth_misses=berth_misses, cost_cny=cost,
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
