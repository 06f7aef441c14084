"""Candidate plans per shipment: route (k shortest, weather-aware) x departure slot, plus "defer".

A shipment may depart in any slot from its release to the last slot of the horizon
(``[model] max_departure_slots`` caps the window; 0 = the whole horizon). Waiting at the origin
from the release to the departure is dwell at the origin hub. Plans whose movement is the same
(a closure holds an early departure until a later slot) are kept once.

Each candidate carries the wagons it puts on each train batch (:mod:`optimizer.freight.trains`)
and its objective terms (:data:`optimizer.freight.objective.CRITERIA`), so the model builder
and the baselines never re-derive them. Costs of a train (train-km, the locomotive's fuel and
its idling through the turnaround) belong to the batch's train count, not to the plans.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.freight.network import Movement, Network, minutes
from optimizer.freight.problem import Problem, Shipment
from optimizer.freight.trains import Batches, build_batches

__all__ = [
    "MAX_CANDIDATES",
    "Candidate",
    "CandidateOptions",
    "CandidateSet",
    "deferral_cost",
    "generate_candidates",
    "movement_terms",
]

#: Most candidate plans one problem may have (about 2 kB each in memory).
MAX_CANDIDATES = 1_000_000


@dataclass(frozen=True)
class CandidateOptions:
    """How many plans each shipment gets, and light engines (``[model]`` in the config file)."""

    k_routes: int = 2
    max_departure_slots: int = 0  # 0: every slot from the release to the end of the horizon
    light_engines: int = 1  # light-engine moves allowed per corridor, direction and slot, where useful

    def __post_init__(self) -> None:
        if self.k_routes < 1 or self.max_departure_slots < 0 or self.light_engines < 0:
            raise ValueError("k_routes must be at least 1; max_departure_slots and light_engines at least 0")


@dataclass(frozen=True)
class Candidate:
    shipment: str
    label: str  # "S01/CTU-XIY-ZZN/t03" or "S01/defer"
    route: tuple[str, ...] | None  # None: deferred (not moved in this horizon)
    slot: int | None
    movement: Movement | None
    cost: float  # CNY, the cost criterion of terms
    cost_terms: Mapping[str, float] = field(default_factory=dict)
    uses: tuple[tuple[int, int], ...] = ()  # (train batch id, wagons)
    terms: tuple[float, ...] = ()  # one value per objective criterion (CRITERIA)
    on_time: bool = False

    @property
    def deferred(self) -> bool:
        return self.route is None


@dataclass(frozen=True, eq=False)
class CandidateSet:
    problem: Problem
    candidates: tuple[Candidate, ...]  # grouped by shipment, in shipment order
    groups: tuple[tuple[int, ...], ...]  # candidate indices per shipment
    batches: Batches  # the train batches the candidates (and light engines) use
    options: CandidateOptions = CandidateOptions()

    def by_label(self) -> dict[str, int]:
        return {c.label: i for i, c in enumerate(self.candidates)}

    @property
    def num_plans(self) -> int:
        return len(self.candidates)


def _fuel(problem: Problem, gross_tonne_km: float, traction: str) -> tuple[float, float]:
    """(diesel litres, kWh) for hauling ``gross_tonne_km`` on a line of the given traction."""
    k = problem.costs
    if traction == "diesel":
        return gross_tonne_km * k.diesel_litres_per_gross_tonne_km, 0.0
    return 0.0, gross_tonne_km * k.electric_kwh_per_gross_tonne_km


def movement_terms(problem: Problem, shipment: Shipment, movement: Movement) -> dict[str, float]:
    """Cost terms (CNY) and physical quantities of one shipment's wagons along ``movement``.

    The cargo and the wagons' tare are hauled on every leg; the trains that haul them are
    costed on the train batches. Keys ending in ``_cny`` are money; ``diesel_litres``,
    ``electric_kwh``, ``dwell_hours`` (origin wait and intermediate stops), ``transfer_dwell_hours``,
    ``lateness_hours`` and ``weighted_lateness_hours`` are the quantities behind them.
    """
    k = problem.costs
    wagon_tonnes = shipment.tonnes + shipment.wagons * k.tare_tonnes_per_wagon
    diesel = electric = 0.0
    for leg in movement.legs:
        d, e = _fuel(problem, wagon_tonnes * leg.km, leg.traction)
        diesel += d
        electric += e
    origin_wait = movement.legs[0].enter - max(shipment.release, 0.0)
    stops = sum(stop.dwell for stop in movement.stops)
    transfer = sum(stop.dwell for stop in movement.stops if problem.hub(stop.hub).kind == "transfer")
    if problem.hub(shipment.origin).kind == "transfer":
        transfer += origin_wait
    late = max(0.0, movement.arrive - shipment.due)
    berth_late = 0.0
    berth_miss = 0.0
    if shipment.berth is not None:
        handling = math.ceil(problem.hub(shipment.destination).handling_hours * 60.0 - 1e-9) / 60.0
        ready = movement.arrive + handling
        cutoff = problem.berth(shipment.berth).cutoff
        if ready > cutoff + 1e-9:
            berth_miss = k.berth_miss_cost
            berth_late = ready - cutoff
    worst = max(late, berth_late)
    dwell = origin_wait + stops
    return {
        "diesel_litres": diesel,
        "electric_kwh": electric,
        "dwell_hours": dwell,
        "transfer_dwell_hours": transfer,
        "lateness_hours": late,
        "weighted_lateness_hours": worst * shipment.priority,
        "fuel_cny": diesel * k.diesel_price_per_litre + electric * k.electricity_price_per_kwh,
        "dwell_cny": dwell * shipment.wagons * k.dwell_cost_per_wagon_hour,
        "lateness_cny": worst * shipment.priority * k.lateness_cost_per_priority_hour,
        "berth_cny": berth_miss,
    }


def deferral_cost(problem: Problem, shipment: Shipment, network: Network) -> float:
    """CNY of not moving ``shipment`` in the horizon: its ``value_cny``, or tonnes x revenue per
    tonne-km x the shortest route's km; times its priority; kept to the fen."""
    if shipment.value_cny is not None:
        value = shipment.value_cny
    else:
        value = shipment.tonnes * problem.costs.revenue_per_tonne_km * \
            network.shortest_km(shipment.origin, shipment.destination)
    return round(value * shipment.priority, 2)


def _criteria(problem: Problem, shipment: Shipment, t: Mapping[str, float], cost: float) -> tuple[float, ...]:
    k = problem.costs
    co2 = t["diesel_litres"] * k.co2_kg_per_diesel_litre + t["electric_kwh"] * k.co2_kg_per_kwh
    return (cost, t["weighted_lateness_hours"], t["transfer_dwell_hours"], t["diesel_litres"], co2)


def _check_size(problem: Problem, options: CandidateOptions) -> None:
    horizon = problem.horizon
    window = 0
    for s in problem.shipments:
        first = max(0, -(-minutes(s.release) // horizon.slot_minutes))
        slots = max(0, horizon.slots - first)
        window += min(slots, options.max_departure_slots) if options.max_departure_slots else slots
    estimate = window * options.k_routes + len(problem.shipments)
    if estimate > MAX_CANDIDATES:
        raise InputError(problem.source, Issue(
            "[model] max_departure_slots / k_routes",
            f"about {estimate:,} candidate plans (departure slots x routes summed over shipments) exceed the "
            f"limit of {MAX_CANDIDATES:,}; cap the departure window with [model] max_departure_slots",
            options.max_departure_slots))


def _check_span(problem: Problem, batch_ids, batch_exit) -> None:
    """Trains run past the last departure slot (later legs, long runs): the slots they span, not
    only the horizon's, size the locomotive balance rows (hubs x slots^2) and the yard rows."""
    from optimizer.freight.problem import LIMITS

    if not batch_exit:
        return
    slot_min = problem.horizon.slot_minutes
    span = max(max(s for _, _, s in batch_ids), max(batch_exit) // slot_min) + 1
    handling = max(h.handling_hours for h in problem.hubs) * 60.0
    occupancy = len(batch_exit) * (handling / slot_min + 1)
    for size, limit, what in ((len(problem.hubs) * span * span, LIMITS["hubs_x_slots_squared"],
                               f"hubs x slots^2 = {len(problem.hubs)} x {span}^2 over the {span:,} slots the trains "
                               "span (departures, later legs and runs past the horizon)"),
                              (occupancy, 50_000_000, f"train batches x slots of handling = {occupancy:,.0f} yard "
                                                      "occupancies")):
        if size > limit:
            raise InputError(problem.source, Issue(
                "horizon.slot_minutes", f"slots of {slot_min} minutes are too short for these runs: {what} exceed "
                                        f"the limit {limit:,}; use longer slots", slot_min))


def generate_candidates(problem: Problem, options: CandidateOptions = CandidateOptions()) -> CandidateSet:
    """All candidate plans of every shipment (deterministic; no randomness involved)."""
    _check_size(problem, options)
    network = Network(problem)
    horizon = problem.horizon
    route_cache: dict[tuple[str, str, int], list[tuple[str, ...]]] = {}
    dry_cache: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    move_cache: dict[tuple[tuple[str, ...], int], Movement] = {}
    epochs = network.weather_epochs
    hit_by_weather: dict[int, set[str]] = {}
    corridor_index = problem.corridor_index
    closed_yards = {h.id for h in problem.hubs if h.yard_capacity == 0}

    def routes_at(o: str, d: str, hour: float) -> list[tuple[str, ...]]:
        epoch = int(np.searchsorted(epochs, hour, side="right"))  # routes change only with the weather
        key = (o, d, epoch)
        if key in route_cache:
            return route_cache[key]
        if (o, d) not in dry_cache:
            dry_cache[(o, d)] = network.k_shortest_routes(o, d, options.k_routes, None)
        if epoch not in hit_by_weather:
            hit_by_weather[epoch] = {c.id for c in problem.corridors if network.speed_factor(c.id, hour) < 1.0}
        hit = hit_by_weather[epoch]
        dry = dry_cache[(o, d)]
        # Weather only slows or closes corridors: if none of the k fastest dry routes is
        # touched, no other route can overtake them, and the dry answer stands.
        if not any(network.corridor(a, b).id in hit for route in dry for a, b in zip(route[:-1], route[1:])):
            route_cache[key] = dry
        else:
            route_cache[key] = network.k_shortest_routes(o, d, options.k_routes, hour)
        return route_cache[key]

    def movement(route: tuple[str, ...], slot: int) -> Movement:
        # Shipments with the same route and slot move identically: time each path once.
        key = (route, slot)
        if key not in move_cache:
            move_cache[key] = network.traverse(route, slot * horizon.slot_hours)
        return move_cache[key]

    # Batch keys (corridor index, direction, entry slot) -> batch id, in order of first use.
    batch_ids: dict[tuple[int, int, int], int] = {}
    batch_exit: list[int] = []
    candidates: list[Candidate] = []
    groups: list[tuple[int, ...]] = []
    for shipment in problem.shipments:
        first = max(0, -(-minutes(shipment.release) // horizon.slot_minutes))
        last = horizon.slots if not options.max_departure_slots else \
            min(horizon.slots, first + options.max_departure_slots)
        mine: list[int] = []
        seen: set[tuple[tuple[str, ...], float]] = set()
        latest_late = max(0.0, horizon.hours - shipment.due) * shipment.priority
        for slot in range(first, last):
            for route in routes_at(shipment.origin, shipment.destination, slot * horizon.slot_hours):
                move = movement(route, slot)
                signature = (route, move.legs[0].enter)
                if signature in seen:
                    continue  # held at the origin until a departure already listed
                seen.add(signature)
                if closed_yards.intersection(route[1:]):
                    continue  # a yard that handles no train: no plan through it is feasible
                terms = movement_terms(problem, shipment, move)
                # Costs are kept to the fen (0.01 CNY) so CP-SAT can prove optima exactly.
                cost = round(sum(v for key, v in terms.items() if key.endswith("_cny")), 2)
                uses = []
                for leg in move.legs:
                    c = corridor_index[leg.corridor]
                    direction = 0 if leg.origin == problem.corridors[c].origin else 1
                    key = (c, direction, minutes(leg.enter) // horizon.slot_minutes)
                    if key not in batch_ids:
                        batch_ids[key] = len(batch_exit)
                        batch_exit.append(minutes(leg.exit))
                    uses.append((batch_ids[key], shipment.wagons))
                criteria = _criteria(problem, shipment, terms, cost)
                latest_late = max(latest_late, criteria[1])
                mine.append(len(candidates))
                candidates.append(Candidate(
                    shipment.id, f"{shipment.id}/{'-'.join(route)}/t{slot:02d}", route, slot, move, cost, terms,
                    tuple(uses), criteria, on_time=terms["weighted_lateness_hours"] == 0.0))
        defer_cost = deferral_cost(problem, shipment, network)
        # Deferring counts one slot later than the latest plan (see optimizer.freight.objective).
        defer_late = latest_late + shipment.priority * horizon.slot_hours
        mine.append(len(candidates))
        candidates.append(Candidate(shipment.id, f"{shipment.id}/defer", None, None, None, defer_cost,
                                    {"defer_cny": defer_cost}, (), (defer_cost, defer_late, 0.0, 0.0, 0.0)))
        groups.append(tuple(mine))

    _check_span(problem, batch_ids, batch_exit)
    batches = build_batches(problem, network, batch_ids, batch_exit, candidates, groups,
                            light_engines=options.light_engines)
    return CandidateSet(problem, tuple(candidates), tuple(groups), batches, options)
