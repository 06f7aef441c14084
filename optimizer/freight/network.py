"""The rail network over time: weather-adjusted travel and the movement of one train along a route.

Operating rules (shared by candidate generation, the plan checker and the simulation):
- A train leaves its origin at the start of its departure slot.
- On each corridor it runs at ``speed_kmh`` times the speed factor of the weather in force at
  each moment (the worst event wins); a speed change in mid-run is integrated piecewise. The run
  time is rounded up to the whole minute.
- A train may not enter a corridor that it cannot leave before a closure starts: it waits at the
  hub until the closure ends and leaves at the next slot boundary (the wait is dwell).
- At an intermediate hub the train is handled (``handling_hours``, rounded up to the minute) and
  its wagons leave at the first slot boundary after handling (yards release trains on timetable
  paths). The time between arrival and departure is dwell.
- At the destination, the cargo is delivered on arrival; a port berth additionally needs the
  port's handling time before the vessel cut-off.

Internally every time is a whole number of minutes since the horizon start; :class:`Leg` and
:class:`Stop` report hours (minutes / 60).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cached_property

import networkx as nx

from optimizer.freight.problem import Corridor, Problem

__all__ = ["Leg", "Movement", "Network", "Stop", "minutes"]


def minutes(hours: float) -> int:
    """Hours that are whole minutes (as qfreight keeps them) back to an exact integer."""
    return int(round(hours * 60.0))


@dataclass(frozen=True)
class Leg:
    corridor: str  # corridor id
    origin: str
    destination: str
    enter: float  # hours since horizon start (a slot boundary)
    exit: float
    km: float
    traction: str


@dataclass(frozen=True)
class Stop:
    hub: str
    arrive: float
    depart: float

    @property
    def dwell(self) -> float:
        return self.depart - self.arrive


@dataclass(frozen=True)
class Movement:
    """One shipment's timed path: legs in order, intermediate stops, and waits before legs."""

    route: tuple[str, ...]  # hub ids
    depart: float
    legs: tuple[Leg, ...]
    stops: tuple[Stop, ...]  # intermediate hubs only
    origin_wait: float  # hours held at the origin by a closure

    @property
    def arrive(self) -> float:
        return self.legs[-1].exit

    @property
    def km(self) -> float:
        return sum(leg.km for leg in self.legs)


class Network:
    """Corridor graph of a problem plus its weather, with timing of routes."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.graph = nx.Graph()
        for hub in problem.hubs:
            self.graph.add_node(hub.id)
        for c in problem.corridors:
            if c.capacity > 0:
                self.graph.add_edge(c.origin, c.destination, corridor=c)
        # Per corridor: events as (start, end, factor) in minutes, and the sorted moments the weather changes.
        self._events: dict[str, list[tuple[int, int, float]]] = {}
        for event in problem.weather:
            self._events.setdefault(event.corridor, []).append(
                (minutes(event.start), minutes(event.end), event.speed_factor))
        self._breaks = {cid: sorted({t for s, e, _ in evs for t in (s, e)}) for cid, evs in self._events.items()}
        self._slot = problem.horizon.slot_minutes
        self._handling = {h.id: math.ceil(h.handling_hours * 60.0 - 1e-9) for h in problem.hubs}
        self._legs: dict[tuple[str, str, int], tuple[Leg, int, int]] = {}

    def corridor(self, a: str, b: str) -> Corridor:
        return self.graph.edges[a, b]["corridor"]

    # ------------------------------------------------------------------ weather
    def _factor(self, corridor_id: str, minute: float) -> float:
        factor = 1.0
        for start, end, f in self._events.get(corridor_id, ()):
            if start <= minute < end:
                factor = min(factor, f)
        return factor

    def speed_factor(self, corridor_id: str, hour: float) -> float:
        """Multiplier on the speed at ``hour`` (0 = closed); the worst event in force wins."""
        return self._factor(corridor_id, hour * 60.0)

    def _closure_end(self, corridor_id: str, minute: float) -> int:
        """When a corridor closed at ``minute`` reopens (chained and overlapping closures followed)."""
        t = minute
        moved = True
        while moved:
            moved = False
            for start, end, f in self._events.get(corridor_id, ()):
                if f == 0.0 and start <= t < end:
                    t = end
                    moved = True
        return int(t)

    def run(self, corridor: Corridor, enter: int) -> tuple[int | None, int | None]:
        """Run a train over ``corridor`` entering at minute ``enter``.

        Returns ``(exit, None)`` with the exit minute (rounded up), or ``(None, reopen)`` when a
        closure is in force at entry or starts before the train would leave; ``reopen`` is the
        minute that closure ends.
        """
        breaks = self._breaks.get(corridor.id, ())
        t = float(enter)
        remaining = corridor.km
        while True:
            f = self._factor(corridor.id, t)
            if f == 0.0:
                return None, self._closure_end(corridor.id, t)
            per_minute = corridor.speed_kmh * f / 60.0
            k = bisect.bisect_right(breaks, t)
            nxt = breaks[k] if k < len(breaks) else math.inf
            if (nxt - t) * per_minute >= remaining:
                return math.ceil(t + remaining / per_minute - 1e-9), None
            remaining -= (nxt - t) * per_minute
            t = nxt

    def first_run(self, corridor: Corridor, ready: int) -> tuple[int, int]:
        """The earliest slot boundary at or after minute ``ready`` from which a train can run the
        whole corridor without meeting a closure, and its exit minute: ``(enter, exit)``."""
        enter = -(-ready // self._slot) * self._slot
        while True:
            exit_, reopen = self.run(corridor, enter)
            if exit_ is not None:
                return enter, exit_
            enter = -(-reopen // self._slot) * self._slot

    def leg_exit(self, corridor: Corridor, enter_hours: float) -> float | None:
        """Exit hour of a train entering at ``enter_hours``, or None when a closure stops it."""
        exit_, _ = self.run(corridor, minutes(enter_hours))
        return None if exit_ is None else exit_ / 60.0

    # ------------------------------------------------------------------ movements
    def traverse(self, route: tuple[str, ...], depart: float) -> Movement:
        """Time a train along ``route`` leaving its origin at ``depart`` (hours, a slot boundary)."""
        t = minutes(depart)
        legs: list[Leg] = []
        stops: list[Stop] = []
        origin_wait = 0
        last = len(route) - 2
        for k, (a, b) in enumerate(zip(route[:-1], route[1:])):
            leg, enter, exit_ = self._leg(a, b, t)
            if k == 0:
                origin_wait = enter - t
            elif enter > t:
                # Held at the intermediate hub by a closure ahead: that is dwell there too.
                stops[-1] = Stop(stops[-1].hub, stops[-1].arrive, enter / 60.0)
            legs.append(leg)
            if k < last:
                leave = -(-(exit_ + self._handling[b]) // self._slot) * self._slot
                stops.append(Stop(b, exit_ / 60.0, leave / 60.0))
                t = leave
        return Movement(tuple(route), depart, tuple(legs), tuple(stops), origin_wait / 60.0)

    def _leg(self, a: str, b: str, ready: int) -> tuple[Leg, int, int]:
        """The leg a->b of a train ready at minute ``ready``, with its entry and exit minutes.

        Routes and departure slots share legs (every route through a corridor, every slot whose
        train reaches it at the same minute), so each is timed once per network; legs are
        immutable, so movements share the objects."""
        key = (a, b, ready)
        hit = self._legs.get(key)
        if hit is None:
            c = self.corridor(a, b)
            enter, exit_ = self.first_run(c, ready)
            hit = self._legs[key] = (Leg(c.id, a, b, enter / 60.0, exit_ / 60.0, c.km, c.traction), enter, exit_)
        return hit

    def nominal_hours(self, a: str, b: str) -> float:
        c = self.corridor(a, b)
        return c.km / c.speed_kmh

    def shortest_km(self, origin: str, destination: str) -> float:
        """Line kilometres of the shortest route (by distance) between two hubs."""
        return float(self._km_lengths(origin).get(destination, math.inf))

    def _km_lengths(self, origin: str) -> dict[str, float]:
        cache = self.__dict__.setdefault("_km_cache", {})
        if origin not in cache:
            cache[origin] = nx.single_source_dijkstra_path_length(
                self.graph, origin, weight=lambda a, b, d: d["corridor"].km)
        return cache[origin]

    def k_shortest_routes(self, origin: str, destination: str, k: int, hour: float | None) -> list[tuple[str, ...]]:
        """Up to k loop-free routes, shortest first by travel time under the weather at ``hour``
        (None: no weather), plus handling at the hubs passed through.

        Corridors closed at ``hour`` are avoided when an open alternative exists.
        """
        routes: list[tuple[str, ...]] = []
        for graph in (self._weighted_graph(hour), self._weighted_graph(None)):
            try:
                for path in nx.shortest_simple_paths(graph, origin, destination, weight="hours"):
                    if tuple(path) not in routes:
                        routes.append(tuple(path))
                    if len(routes) >= k:
                        return routes
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                pass
            if routes:
                return routes
        return routes

    def _weighted_graph(self, hour: float | None) -> nx.Graph:
        """The corridor graph with numeric ``hours`` weights for the weather at ``hour``
        (None: no weather), closed corridors removed; cached per weather epoch.

        Handling is split half to each end so the weight stays symmetric; along a path that
        adds the full handling of every hub passed through plus a constant for the two ends,
        which does not change the ranking of routes between the same hubs.
        """
        epoch = -1 if hour is None else sum(1 for e in self.weather_epochs if e <= hour)
        cache = self.__dict__.setdefault("_graph_cache", {})
        if epoch not in cache:
            graph = nx.Graph()
            graph.add_nodes_from(self.graph.nodes)
            for a, b, data in self.graph.edges(data=True):
                c = data["corridor"]
                factor = 1.0 if hour is None else self.speed_factor(c.id, hour)
                if factor == 0.0:
                    continue
                handling = (self.problem.hub(a).handling_hours + self.problem.hub(b).handling_hours) / 2
                graph.add_edge(a, b, hours=c.km / (c.speed_kmh * factor) + handling)
            cache[epoch] = graph
        return cache[epoch]

    @cached_property
    def weather_epochs(self) -> list[float]:
        """Hours at which the weather changes (routes only need recomputing there)."""
        return sorted({e.start for e in self.problem.weather} | {e.end for e in self.problem.weather})
