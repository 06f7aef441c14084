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
from functools import cached_property

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.freight.crews import duty_violations
from optimizer.freight.network import Movement, Network, minutes
from optimizer.freight.problem import Problem, Shipment
from optimizer.freight.trains import Batches, build_batches

__all__ = [
    "MAX_CANDIDATES",
    "Candidate",
    "Restriction",
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
class Restriction:
    """What a re-plan leaves open for one shipment (see :mod:`optimizer.freight.replan`).

    - ``pinned``: the plan ``(route, slot)`` is fixed.
    - ``route`` without ``pinned``: the frozen prefix (origin to the hub its last frozen leg
      reaches) of a train that left in ``slot``; only the continuation from that hub is open (the
      k shortest routes from it under the weather at ``not_before``).
    - no ``route``: any plan whose first leg enters at or after ``not_before``.

    Every leg that is not frozen enters at or after ``not_before`` (minutes since the horizon
    start). ``keep`` (route, slot), the plan in force, is offered too when it meets that rule, so
    a re-plan can always keep it. The defer candidate stays in every group (``may_defer`` says
    whether the re-plan model allows it).
    """

    route: tuple[str, ...] | None = None
    slot: int | None = None
    pinned: bool = False
    not_before: int = 0
    keep: tuple[tuple[str, ...], int] | None = None

    def plans(self, origin: str, destination: str, first: int, last: int, slots: int, slot_minutes: int, routes_at):
        """(slot, route) pairs to time; ``first``/``last`` bound the slots of a free shipment;
        ``routes_at(a, b, slot)`` lists the routes from a to b under the weather of departure
        slot ``slot`` (0..slots-1)."""
        if self.pinned:
            yield self.slot, self.route
            return
        if self.route is not None:
            for tail in routes_at(self.route[-1], destination, min(self.not_before // slot_minutes, slots - 1)):
                if self.route[-1] == destination or set(tail[1:]).isdisjoint(self.route):
                    yield self.slot, self.route + tail[1:]
        else:
            for slot in range(max(first, self.not_before // slot_minutes), last):
                for route in routes_at(origin, destination, slot):
                    yield slot, route
        if self.keep is not None and (self.route is not None or self.keep[1] >= first):
            yield self.keep[1], self.keep[0]

    def allows(self, movement: Movement) -> bool:
        if self.pinned:
            return True
        frozen = 0 if self.route is None else len(self.route) - 1
        return frozen >= len(movement.legs) or minutes(movement.legs[frozen].enter) >= self.not_before

    @property
    def may_defer(self) -> bool:
        return self.route is None


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

    # Column views of the candidates, for vectorised consumers (model, baselines, pieces).
    # :func:`generate_candidates` fills them as it builds the candidates; a set built by hand
    # derives them on first use.
    @cached_property
    def use_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr, batch, wagons)``: candidate i puts ``wagons[k]`` wagons on train batch
        ``batch[k]`` for k in ``indptr[i]:indptr[i + 1]``, legs in route order."""
        counts = np.fromiter((len(c.uses) for c in self.candidates), dtype=np.int64, count=len(self.candidates))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        flat = [u for c in self.candidates for u in c.uses]
        pairs = np.array(flat, dtype=np.int64).reshape(-1, 2)
        return indptr, np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])

    @cached_property
    def terms_matrix(self) -> np.ndarray:
        """(candidates, criteria) objective terms (:data:`optimizer.freight.objective.CRITERIA`)."""
        return np.array([c.terms for c in self.candidates], dtype=np.float64).reshape(len(self.candidates), -1)

    @cached_property
    def group_of(self) -> np.ndarray:
        """(candidates,) the shipment (group) index of each candidate."""
        out = np.full(len(self.candidates), -1, dtype=np.int64)
        for g, members in enumerate(self.groups):
            out[list(members)] = g
        return out


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


def generate_candidates(problem: Problem, options: CandidateOptions = CandidateOptions(), *,
                        restrictions: Mapping[str, Restriction] | None = None) -> CandidateSet:
    """All candidate plans of every shipment (deterministic; no randomness involved).

    ``restrictions`` (shipment id -> :class:`Restriction`) narrows the plans of the shipments it
    names, for re-planning from a running plan.

    Work is shared wherever shipments share it: routes per (origin, destination, weather
    epoch), a movement per (route, departure slot), the list of plans per (origin, destination,
    departure window). The per-candidate terms (which depend on the shipment's wagons, tonnes,
    release, due time, priority and berth) are computed for all candidates at once, column by
    column, with the same floating-point operations in the same order as
    :func:`movement_terms`, so every value equals the scalar definition exactly.
    """
    _check_size(problem, options)
    network = Network(problem)
    horizon = problem.horizon
    slot_min = horizon.slot_minutes
    route_cache: dict[tuple[str, str, int], list[tuple[str, ...]]] = {}
    dry_cache: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    epochs = network.weather_epochs
    hit_by_weather: dict[int, set[str]] = {}
    corridor_index = problem.corridor_index
    closed_yards = {h.id for h in problem.hubs if h.yard_capacity == 0}
    duty_limited = problem.operations.crew_duty_hours is not None
    # Weather epoch of each departure slot (routes change only with the weather).
    slot_epoch = np.searchsorted(epochs, np.arange(horizon.slots) * horizon.slot_hours, side="right").tolist()

    def routes_at(o: str, d: str, slot: int) -> list[tuple[str, ...]]:
        epoch = slot_epoch[slot]
        key = (o, d, epoch)
        if key in route_cache:
            return route_cache[key]
        hour = slot * horizon.slot_hours
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

    # Movements, one per (route, departure slot), as rows of a table.
    move_id: dict[tuple[tuple[str, ...], int], int] = {}
    moves: list[Movement] = []
    move_slot: list[int] = []
    move_text: list[str] = []  # "-".join(route)
    move_blocked: list[bool] = []  # passes a yard that handles no train, or breaks the crew duty limit

    def movement(route: tuple[str, ...], slot: int) -> int:
        key = (route, slot)
        m = move_id.get(key)
        if m is None:
            m = move_id[key] = len(moves)
            moves.append(network.traverse(route, slot * horizon.slot_hours))
            move_slot.append(slot)
            move_text.append("-".join(route))
            # A yard that handles no train, or a crew stretch past the duty limit: no such plan.
            move_blocked.append(bool(closed_yards.intersection(route[1:])) or
                                (duty_limited and bool(duty_violations(problem, moves[-1]))))
        return m

    def plans(o: str, d: str, first: int, last: int) -> list[int]:
        """Movement ids of the plans of a shipment from o to d departing in first..last-1."""
        out: list[int] = []
        seen: set[tuple[tuple[str, ...], float]] = set()
        for slot in range(first, last):
            for route in routes_at(o, d, slot):
                m = movement(route, slot)
                signature = (route, moves[m].legs[0].enter)
                if signature in seen:
                    continue  # held at the origin until a departure already listed
                seen.add(signature)
                if move_blocked[m]:
                    continue  # a yard that handles no train: no plan through it is feasible
                out.append(m)
        return out

    def restricted(rule: Restriction, shipment: Shipment, first: int) -> list[int]:
        """Movement ids of the plans a re-plan's restriction leaves open."""
        begin = max(first, rule.not_before // slot_min)
        last = horizon.slots if not options.max_departure_slots else \
            min(horizon.slots, begin + options.max_departure_slots)
        out: list[int] = []
        seen: set[tuple[tuple[str, ...], float]] = set()
        for slot, route in rule.plans(shipment.origin, shipment.destination, first, last, horizon.slots, slot_min,
                                      routes_at):
            m = movement(route, slot)
            signature = (route, moves[m].legs[0].enter)
            if signature not in seen and rule.allows(moves[m]) and not move_blocked[m]:
                seen.add(signature)
                out.append(m)
        return out

    template: dict[tuple[str, str, int, int], list[int]] = {}
    plan_move: list[int] = []  # per plan candidate: its movement
    plan_count: list[int] = []  # per shipment: how many plans (its defer comes after them)
    for shipment in problem.shipments:
        first = max(0, -(-minutes(shipment.release) // slot_min))
        last = horizon.slots if not options.max_departure_slots else \
            min(horizon.slots, first + options.max_departure_slots)
        key = (shipment.origin, shipment.destination, first, last)
        rule = restrictions.get(shipment.id) if restrictions else None
        mine = template.get(key) if rule is None else restricted(rule, shipment, first)
        if mine is None:
            mine = template[key] = plans(*key)
        plan_move.extend(mine)
        plan_count.append(len(mine))

    G = len(problem.shipments)
    P = len(plan_move)
    pm = np.asarray(plan_move, dtype=np.int64)
    counts = np.asarray(plan_count, dtype=np.int64)
    ps = np.repeat(np.arange(G, dtype=np.int64), counts)  # shipment of each plan

    # Movement columns (hours, as the Movement reports them) and legs padded to the longest route.
    M = len(moves)
    L = max((len(mv.legs) for mv in moves), default=0)
    enter0 = np.array([mv.legs[0].enter for mv in moves], dtype=np.float64)
    arrive = np.array([mv.arrive for mv in moves], dtype=np.float64)
    stops_dwell = np.array([sum(stop.dwell for stop in mv.stops) for mv in moves], dtype=np.float64)
    kinds = {h.id: h.kind for h in problem.hubs}
    stops_transfer = np.array([sum(stop.dwell for stop in mv.stops if kinds[stop.hub] == "transfer")
                               for mv in moves], dtype=np.float64)
    leg_km = np.zeros((M, L))
    leg_diesel = np.zeros((M, L), dtype=bool)
    leg_count = np.zeros(M, dtype=np.int64)
    leg_exit: list[int] = []
    corridors = problem.corridors
    raw_keys: list[tuple[int, int, int]] = []  # (corridor, direction, entry slot) per leg, movements in order
    for m, mv in enumerate(moves):
        leg_count[m] = len(mv.legs)
        for j, leg in enumerate(mv.legs):
            leg_km[m, j] = leg.km
            leg_diesel[m, j] = leg.traction == "diesel"
            c = corridor_index[leg.corridor]
            raw_keys.append((c, 0 if leg.origin == corridors[c].origin else 1, minutes(leg.enter) // slot_min))
            leg_exit.append(minutes(leg.exit))
    keys_arr = np.array(raw_keys, dtype=np.int64).reshape(-1, 3)
    span = int(keys_arr[:, 2].max()) + 1 if keys_arr.size else 1
    leg_key = (keys_arr[:, 0] * 2 + keys_arr[:, 1]) * span + keys_arr[:, 2]
    leg_exit_arr = np.asarray(leg_exit, dtype=np.int64)
    leg_ptr = np.concatenate([[0], np.cumsum(leg_count)]).astype(np.int64)

    # Shipment columns.
    k = problem.costs
    sh = problem.shipments
    wagons = np.array([s.wagons for s in sh], dtype=np.int64)
    tonnes = np.array([s.tonnes for s in sh], dtype=np.float64)
    release = np.array([s.release for s in sh], dtype=np.float64)
    due = np.array([s.due for s in sh], dtype=np.float64)
    priority = np.array([s.priority for s in sh], dtype=np.int64)
    origin_transfer = np.array([kinds[s.origin] == "transfer" for s in sh], dtype=bool)
    handling_h = np.array([math.ceil(problem.hub(s.destination).handling_hours * 60.0 - 1e-9) / 60.0 for s in sh])
    cutoff = np.array([problem.berth(s.berth).cutoff if s.berth is not None else np.inf for s in sh])

    # Terms of every plan, as movement_terms computes them (same operations, same order).
    wt = (tonnes + wagons * k.tare_tonnes_per_wagon)[ps]
    diesel = np.zeros(P)
    electric = np.zeros(P)
    for j in range(L):
        gtkm = wt * leg_km[pm, j]
        on_diesel = leg_diesel[pm, j]
        diesel += np.where(on_diesel, gtkm * k.diesel_litres_per_gross_tonne_km, 0.0)
        electric += np.where(on_diesel, 0.0, gtkm * k.electric_kwh_per_gross_tonne_km)
    origin_wait = enter0[pm] - np.maximum(release[ps], 0.0)
    stops = stops_dwell[pm]
    transfer = np.where(origin_transfer[ps], stops_transfer[pm] + origin_wait, stops_transfer[pm])
    late = np.maximum(0.0, arrive[pm] - due[ps])
    ready = arrive[pm] + handling_h[ps]
    missed = ready > cutoff[ps] + 1e-9
    berth_miss = np.where(missed, k.berth_miss_cost, 0.0)
    berth_late = np.where(missed, ready - cutoff[ps], 0.0)
    worst = np.maximum(late, berth_late)
    dwell = origin_wait + stops
    pri = priority[ps]
    weighted = worst * pri
    fuel_cny = diesel * k.diesel_price_per_litre + electric * k.electricity_price_per_kwh
    dwell_cny = dwell * wagons[ps] * k.dwell_cost_per_wagon_hour
    lateness_cny = worst * pri * k.lateness_cost_per_priority_hour
    # Costs are kept to the fen (0.01 CNY) so CP-SAT can prove optima exactly (Python's round,
    # correctly rounded, as the scalar definition uses).
    cost = [round(v, 2) for v in (((fuel_cny + dwell_cny) + lateness_cny) + berth_miss).tolist()]
    co2 = diesel * k.co2_kg_per_diesel_litre + electric * k.co2_kg_per_kwh
    term_cols = (diesel, electric, dwell, transfer, late, weighted, fuel_cny, dwell_cny, lateness_cny, berth_miss)
    term_rows = np.column_stack(term_cols).tolist() if P else []
    criteria = np.column_stack([np.asarray(cost, dtype=np.float64), weighted, transfer, diesel, co2]) if P \
        else np.zeros((0, 5))

    # Train batches (corridor, direction, entry slot), numbered in order of first use.
    use_ptr_plan = np.concatenate([[0], np.cumsum(leg_count[pm])]).astype(np.int64)
    n_uses = int(use_ptr_plan[-1])
    use_owner = np.repeat(np.arange(P, dtype=np.int64), leg_count[pm])
    use_leg = leg_ptr[pm][use_owner] + np.arange(n_uses) - use_ptr_plan[:-1][use_owner]
    codes = leg_key[use_leg] if n_uses else np.zeros(0, dtype=np.int64)
    uniq, first_at, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first_at, kind="stable")
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    use_batch = rank[inverse.ravel()] if n_uses else np.zeros(0, dtype=np.int64)
    use_wagons = wagons[ps][use_owner]
    batch_codes = uniq[order]
    batch_ids = {(int(c // 2), int(c % 2), int(s)): b for b, (c, s) in
                 enumerate(zip((batch_codes // span).tolist(), (batch_codes % span).tolist()))}
    batch_exit = leg_exit_arr[use_leg[first_at[order]]].tolist() if n_uses else []

    # Deferral: one slot later than the latest plan (see optimizer.freight.objective).
    latest_late = np.maximum(0.0, horizon.hours - due) * priority
    if P:
        np.maximum.at(latest_late, ps, weighted)
    defer_late = latest_late + priority * horizon.slot_hours

    # The candidate objects: each shipment's plans, then its defer.
    pairs = list(zip(use_batch.tolist(), use_wagons.tolist()))
    bounds = use_ptr_plan.tolist()
    crit = criteria.tolist()
    on_time = (weighted == 0.0).tolist()
    move_list = pm.tolist()
    candidates: list[Candidate] = []
    groups: list[tuple[int, ...]] = []
    keys = ("diesel_litres", "electric_kwh", "dwell_hours", "transfer_dwell_hours", "lateness_hours",
            "weighted_lateness_hours", "fuel_cny", "dwell_cny", "lateness_cny", "berth_cny")
    defer_rows: list[int] = []
    p = 0
    for g, shipment in enumerate(sh):
        mine = []
        for _ in range(plan_count[g]):
            m = move_list[p]
            mv = moves[m]
            mine.append(len(candidates))
            candidates.append(Candidate(
                shipment.id, f"{shipment.id}/{move_text[m]}/t{move_slot[m]:02d}", mv.route, move_slot[m], mv,
                cost[p], dict(zip(keys, term_rows[p])), tuple(pairs[bounds[p]:bounds[p + 1]]), tuple(crit[p]),
                on_time=on_time[p]))
            p += 1
        defer_cost = deferral_cost(problem, shipment, network)
        late_g = float(defer_late[g])
        mine.append(len(candidates))
        defer_rows.append(len(candidates))
        candidates.append(Candidate(shipment.id, f"{shipment.id}/defer", None, None, None, defer_cost,
                                    {"defer_cny": defer_cost}, (), (defer_cost, late_g, 0.0, 0.0, 0.0)))
        groups.append(tuple(mine))

    _check_span(problem, batch_ids, batch_exit)
    B = len(batch_exit)
    pair_code = np.unique(ps[use_owner] * max(B, 1) + use_batch)
    group_batches = np.stack([pair_code // max(B, 1), pair_code % max(B, 1)], axis=1)
    batches = build_batches(problem, network, batch_ids, batch_exit, candidates, groups,
                            light_engines=options.light_engines, group_batches=group_batches)
    cset = CandidateSet(problem, tuple(candidates), tuple(groups), batches, options)

    # Column views in candidate order (plans and defers interleaved by shipment).
    n = len(candidates)
    is_defer = np.zeros(n, dtype=bool)
    is_defer[defer_rows] = True
    plan_rows = np.flatnonzero(~is_defer)
    per_cand = np.zeros(n, dtype=np.int64)
    per_cand[plan_rows] = leg_count[pm]
    indptr = np.concatenate([[0], np.cumsum(per_cand)]).astype(np.int64)
    matrix = np.empty((n, 5))
    matrix[plan_rows] = criteria
    matrix[defer_rows] = np.array([c.terms for c in (candidates[i] for i in defer_rows)], dtype=np.float64)
    cset.__dict__["use_arrays"] = (indptr, use_batch.astype(np.int64), use_wagons.astype(np.int64))
    cset.__dict__["terms_matrix"] = matrix
    cset.__dict__["group_of"] = np.repeat(np.arange(G, dtype=np.int64), counts + 1)
    return cset
