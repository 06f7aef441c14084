"""The rail network over time: weather-adjusted travel and the movement of one train along a route.

Operating rules (shared by candidate generation, the plan checker and the simulation):
- A train leaves its origin at the start of its departure slot.
- On each corridor it runs at ``speed_kmh * speed_factor`` of the weather event active when it
  enters; if the corridor is closed then, it waits at the hub until the closure ends and leaves
  at the next slot boundary.
- At an intermediate hub the train is handled (``handling_hours``) and leaves at the first slot
  boundary after handling (yards release trains on timetable paths). The time between arrival
  and departure is dwell.
- At the destination, the cargo is delivered on arrival; a port berth additionally needs the
  port's handling time before the vessel cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import networkx as nx

from optimizer.freight.problem import Corridor, Problem

__all__ = ["Leg", "Movement", "Network"]


@dataclass(frozen=True)
class Leg:
    corridor: str  # corridor id
    origin: str
    destination: str
    enter: float  # hours since horizon start
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
        self._events: dict[str, list] = {}
        for event in problem.weather:
            self._events.setdefault(event.corridor, []).append(event)

    def corridor(self, a: str, b: str) -> Corridor:
        return self.graph.edges[a, b]["corridor"]

    def speed_factor(self, corridor_id: str, hour: float) -> float:
        """Multiplier on the speed of a train entering at ``hour`` (0 = closed); worst event wins."""
        factor = 1.0
        for event in self._events.get(corridor_id, ()):
            if event.start <= hour < event.end:
                factor = min(factor, event.speed_factor)
        return factor

    def closure_end(self, corridor_id: str, hour: float) -> float:
        """When a corridor closed at ``hour`` reopens (chained closures followed)."""
        t = hour
        moved = True
        while moved:
            moved = False
            for event in self._events.get(corridor_id, ()):
                if event.closed and event.start <= t < event.end:
                    t = event.end
                    moved = True
        return t

    def traverse(self, route: tuple[str, ...], depart: float) -> Movement:
        """Time a train along ``route`` leaving its origin at ``depart`` (hours)."""
        horizon = self.problem.horizon
        t = depart
        legs: list[Leg] = []
        stops: list[Stop] = []
        origin_wait = 0.0
        for k, (a, b) in enumerate(zip(route[:-1], route[1:])):
            c = self.corridor(a, b)
            if self.speed_factor(c.id, t) == 0.0:
                reopen = horizon.next_boundary(self.closure_end(c.id, t))
                if k == 0:
                    origin_wait += reopen - t
                else:
                    # The held time is added to the stop's dwell below.
                    stops[-1] = Stop(stops[-1].hub, stops[-1].arrive, reopen)
                t = reopen
            travel = c.km / (c.speed_kmh * self.speed_factor(c.id, t))
            legs.append(Leg(c.id, a, b, t, t + travel, c.km, c.traction))
            t += travel
            if k < len(route) - 2:
                hub = self.problem.hub(b)
                leave = horizon.next_boundary(t + hub.handling_hours)
                stops.append(Stop(b, t, leave))
                t = leave
        return Movement(tuple(route), depart, tuple(legs), tuple(stops), origin_wait)

    def nominal_hours(self, a: str, b: str) -> float:
        c = self.corridor(a, b)
        return c.km / c.speed_kmh

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
