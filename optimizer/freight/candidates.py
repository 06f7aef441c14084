"""Candidate plans per shipment: route (k shortest, weather-aware) x departure slot, plus "defer".

Each candidate carries its resource use (wagons on corridor-slots and at yard-slots,
locomotives tied up per slot at its origin) and its cost terms in CNY, so the model builder
and the greedy dispatcher never re-derive them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from optimizer.freight.network import Movement, Network
from optimizer.freight.problem import Problem, Shipment

__all__ = ["Candidate", "CandidateSet", "CandidateOptions", "generate_candidates", "movement_costs",
           "consolidation_saving"]


@dataclass(frozen=True)
class CandidateOptions:
    """How many plans each shipment gets (``[model]`` in the config file)."""

    k_routes: int = 2
    max_departure_slots: int = 4

    def __post_init__(self) -> None:
        if self.k_routes < 1 or self.max_departure_slots < 1:
            raise ValueError("k_routes and max_departure_slots must be at least 1")


@dataclass(frozen=True)
class Candidate:
    shipment: str
    label: str  # "S01/CTU-XIY-ZZN/t03" or "S01/defer"
    route: tuple[str, ...] | None  # None: deferred (not moved in this horizon)
    slot: int | None
    movement: Movement | None
    cost: float  # CNY, the sum of cost_terms
    cost_terms: Mapping[str, float] = field(default_factory=dict)
    uses: tuple[tuple[str, float], ...] = ()  # (resource key, amount)

    @property
    def deferred(self) -> bool:
        return self.route is None


@dataclass(frozen=True)
class CandidateSet:
    problem: Problem
    candidates: tuple[Candidate, ...]  # grouped by shipment, in shipment order
    groups: tuple[tuple[int, ...], ...]  # candidate indices per shipment
    bounds: Mapping[str, float]  # resource key -> capacity (wagons, or locomotives)

    def by_label(self) -> dict[str, int]:
        return {c.label: i for i, c in enumerate(self.candidates)}


def corridor_key(a: str, b: str, slot: int) -> str:
    return f"corridor {a}>{b} @{slot}"


def yard_key(hub: str, slot: int) -> str:
    return f"yard {hub} @{slot}"


def loco_key(hub: str, slot: int) -> str:
    return f"locos {hub} @{slot}"


def trains_for(shipment: Shipment, problem: Problem) -> int:
    return math.ceil(shipment.wagons / problem.costs.wagons_per_train)


def movement_costs(problem: Problem, shipment: Shipment, movement: Movement) -> dict[str, float]:
    """Cost terms (CNY) and physical quantities of one shipment moving alone on its own train(s).

    Keys ending in ``_cny`` are money; ``diesel_litres``, ``electric_kwh``, ``dwell_hours``,
    ``lateness_hours`` are the physical quantities behind them.
    """
    k = problem.costs
    trains = trains_for(shipment, problem)
    gross = shipment.tonnes + shipment.wagons * k.tare_tonnes_per_wagon + trains * k.locomotive_tonnes
    diesel = electric = train_km = 0.0
    for leg in movement.legs:
        train_km += trains * leg.km
        if leg.traction == "diesel":
            diesel += gross * leg.km * k.diesel_litres_per_gross_tonne_km
        else:
            electric += gross * leg.km * k.electric_kwh_per_gross_tonne_km
    dwell = movement.origin_wait + sum(stop.dwell for stop in movement.stops)
    # Diesel locomotives idle through yard dwell; electric ones are switched off.
    idle = sum(stop.dwell for stop, leg in zip(movement.stops, movement.legs) if leg.traction == "diesel")
    diesel += idle * trains * k.diesel_litres_per_idle_locomotive_hour
    lateness = max(0.0, movement.arrive - shipment.due)
    berth_miss = 0.0
    berth_late = 0.0
    if shipment.berth is not None:
        ready = movement.arrive + problem.hub(shipment.destination).handling_hours
        berth = problem.berth(shipment.berth)
        if ready > berth.cutoff:
            berth_miss = k.berth_miss_cost
            berth_late = ready - berth.cutoff
    terms = {
        "diesel_litres": diesel,
        "electric_kwh": electric,
        "dwell_hours": dwell,
        "lateness_hours": lateness,
        "fuel_cny": diesel * k.diesel_price_per_litre + electric * k.electricity_price_per_kwh,
        "train_cny": train_km * k.train_cost_per_km,
        "dwell_cny": dwell * shipment.wagons * k.dwell_cost_per_wagon_hour,
        "lateness_cny": max(lateness, berth_late) * shipment.priority * k.lateness_cost_per_priority_hour,
        "berth_cny": berth_miss,
    }
    return terms


def consolidation_saving(problem: Problem, km: float, traction: str) -> float:
    """CNY saved on one corridor when two shipments share a train: one locomotive run less."""
    k = problem.costs
    if traction == "diesel":
        fuel = k.locomotive_tonnes * km * k.diesel_litres_per_gross_tonne_km * k.diesel_price_per_litre
    else:
        fuel = k.locomotive_tonnes * km * k.electric_kwh_per_gross_tonne_km * k.electricity_price_per_kwh
    return round(km * k.train_cost_per_km + fuel, 2)


def _resource_uses(problem: Problem, shipment: Shipment, movement: Movement) -> list[tuple[str, float]]:
    slot_of = problem.horizon.slot_of
    uses: list[tuple[str, float]] = []
    for leg in movement.legs:
        uses.append((corridor_key(leg.origin, leg.destination, slot_of(leg.enter)), shipment.wagons))
    for stop in movement.stops:
        uses.append((yard_key(stop.hub, slot_of(stop.arrive)), shipment.wagons))
    trains = trains_for(shipment, problem)
    for slot in range(slot_of(movement.depart), slot_of(movement.arrive) + 1):
        uses.append((loco_key(shipment.origin, slot), trains))
    return uses


def resource_bounds(problem: Problem, keys) -> dict[str, float]:
    """Capacity of each resource key: wagons per corridor- or yard-slot, locomotives per hub-slot."""
    W = problem.costs.wagons_per_train
    corridor_cap = {}
    for c in problem.corridors:
        corridor_cap[(c.origin, c.destination)] = c.capacity * W
        corridor_cap[(c.destination, c.origin)] = c.capacity * W
    bounds: dict[str, float] = {}
    for key in keys:
        kind, where, _ = key.split(" ")
        if kind == "corridor":
            a, b = where.split(">")
            bounds[key] = corridor_cap[(a, b)]
        elif kind == "yard":
            bounds[key] = problem.hub(where).yard_capacity * W
        else:
            bounds[key] = problem.hub(where).locomotives
    return bounds


def generate_candidates(problem: Problem, options: CandidateOptions = CandidateOptions()) -> CandidateSet:
    """All candidate plans of every shipment (deterministic; no randomness involved)."""
    network = Network(problem)
    horizon = problem.horizon
    route_cache: dict[tuple[str, str, int], list[tuple[str, ...]]] = {}
    dry_cache: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    epochs = network.weather_epochs
    hit_by_weather: dict[int, set[str]] = {}

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

    candidates: list[Candidate] = []
    groups: list[tuple[int, ...]] = []
    pending: list[tuple[Candidate, list[tuple[str, float]]]] = []
    for shipment in problem.shipments:
        first = max(0, math.ceil(shipment.release / horizon.slot_hours - 1e-9))
        slots = range(first, min(horizon.slots, first + options.max_departure_slots))
        mine: list[tuple[Candidate, list[tuple[str, float]]]] = []
        for slot in slots:
            depart = slot * horizon.slot_hours
            for route in routes_at(shipment.origin, shipment.destination, depart):
                movement = network.traverse(route, depart)
                terms = movement_costs(problem, shipment, movement)
                # Costs are kept to the fen (0.01 CNY) so CP-SAT can prove optima exactly.
                cost = round(sum(v for key, v in terms.items() if key.endswith("_cny")), 2)
                uses = _resource_uses(problem, shipment, movement)
                label = f"{shipment.id}/{'-'.join(route)}/t{slot:02d}"
                mine.append((Candidate(shipment.id, label, route, slot, movement, cost, terms), uses))
        defer_cost = round(problem.costs.defer_cost_per_priority * shipment.priority, 2)
        mine.append((Candidate(shipment.id, f"{shipment.id}/defer", None, None, None, defer_cost,
                               {"defer_cny": defer_cost}), []))
        pending.extend(mine)

    bounds = resource_bounds(problem, {key for _, uses in pending for key, _ in uses})
    by_shipment: dict[str, list[int]] = {}
    for cand, uses in pending:
        # A plan that alone exceeds a capacity (e.g. a yard with no capacity) is never feasible.
        if any(amount > bounds[key] for key, amount in uses):
            continue
        by_shipment.setdefault(cand.shipment, []).append(len(candidates))
        candidates.append(Candidate(cand.shipment, cand.label, cand.route, cand.slot, cand.movement,
                                    cand.cost, cand.cost_terms, tuple(uses)))
    groups = [tuple(by_shipment[s.id]) for s in problem.shipments]
    used = {key for c in candidates for key, _ in c.uses}
    return CandidateSet(problem, tuple(candidates), tuple(groups), {k: bounds[k] for k in sorted(used)})
