"""Train batches: the trains that enter one corridor, in one direction, in one slot.

Under the wagonload rule (:data:`optimizer.freight.problem.TRAIN_FORMATION_RULE`) every batch
``b = (corridor, direction, slot)`` runs ``trains[b] = ceil(wagons entering / wagons_per_train)``
loaded trains, plus any light engines (locomotives repositioned without wagons). All trains of
a batch enter at the slot boundary and leave the corridor at the same minute (``exit``), so a
batch is the unit the model counts trains, paths, yard places and locomotives in.

- Paths: ``trains[b] <= capacity`` of the corridor (per slot per direction).
- Yard: a train arriving at hub ``h`` at minute ``t`` occupies one yard place in every slot that
  ``[t, t + handling)`` overlaps (the arrival slot alone when handling is 0).
- Fleet: the locomotive of each train leaves the origin hub at the entry and is available at
  the destination ``turnaround_hours`` after the exit. At every slot boundary where trains leave
  hub ``h``: initial fleet + arrivals available by then - departures so far >= 0.

The model gives each batch an integer ``trains[b]`` in ``0..upper[b]``, in binary (bounded
encoding: weights 1, 2, 4, ..., remainder summing to ``upper``), placed after the plan variables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from optimizer.freight.problem import Problem

__all__ = [
    "AuxLayout",
    "Batches",
    "bounded_weights",
    "build_batches",
    "fleet_times",
    "train_terms",
    "yard_occupancy",
]


def bounded_weights(upper: int) -> list[int]:
    """Integer weights whose subset sums cover exactly 0..upper: 1, 2, 4, ..., remainder."""
    if upper <= 0:
        return []
    m = max(1, math.floor(math.log2(upper)) + 1)
    weights = [1 << k for k in range(m - 1)]
    weights.append(upper - sum(weights))
    return weights


@dataclass(frozen=True, eq=False)
class Batches:
    """A typed table of train batches, one entry per batch (integer ids, numpy columns)."""

    corridor: np.ndarray  # index into problem.corridors
    direction: np.ndarray  # 0: corridor.origin -> corridor.destination; 1: the reverse
    slot: np.ndarray  # entry slot; trains enter at slot * slot_minutes
    exit: np.ndarray  # minute the batch's trains leave the corridor
    origin: np.ndarray  # hub index the trains leave
    destination: np.ndarray  # hub index the trains arrive at
    capacity: np.ndarray  # train paths of the corridor per slot per direction
    loaded_max: np.ndarray  # most loaded trains the batch can need: min(capacity, ceil(max wagons / W))
    light_max: np.ndarray  # light engines allowed on the batch

    def __len__(self) -> int:
        return int(self.corridor.size)

    @cached_property
    def upper(self) -> np.ndarray:
        """Largest value of trains[b] (loaded and light together)."""
        return np.minimum(self.capacity, self.loaded_max + self.light_max)

    @cached_property
    def index(self) -> dict[tuple[int, int, int], int]:
        return {(int(c), int(d), int(s)): b for b, (c, d, s) in
                enumerate(zip(self.corridor.tolist(), self.direction.tolist(), self.slot.tolist()))}

    def label(self, problem: Problem, b: int) -> str:
        c = problem.corridors[int(self.corridor[b])]
        a, z = (c.origin, c.destination) if self.direction[b] == 0 else (c.destination, c.origin)
        return f"{a}>{z}/t{int(self.slot[b]):02d}"


def build_batches(problem: Problem, network, batch_ids: dict[tuple[int, int, int], int], batch_exit: list[int],
                  candidates, groups, *, light_engines: int, group_batches: np.ndarray | None = None) -> Batches:
    """The batches the candidates use, plus light-engine batches where a fleet can run short.

    A light engine is useful only into a hub whose loaded departures could exceed its fleet:
    such batches are added on every corridor into that hub, in every slot from which a
    locomotive would be available there before its last possible departure.

    ``group_batches``, when given, is the (k, 2) array of distinct (shipment, batch) pairs of the
    candidates' uses (what is otherwise derived from ``candidates`` and ``groups``).
    """
    W = problem.costs.wagons_per_train
    hub_index = problem.hub_index
    B = len(batch_exit)
    keys = np.array(sorted(batch_ids, key=batch_ids.get), dtype=np.int64).reshape(-1, 3)
    # Most wagons a batch can carry: each shipment using it contributes its wagons once.
    if group_batches is None:
        pairs = {(g, b) for g, members in enumerate(groups) for i in members for b, _ in candidates[i].uses}
        group_batches = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    wagons = np.array([problem.shipments[g].wagons for g in range(len(groups))], dtype=np.int64)
    max_wagons = np.zeros(B, dtype=np.int64)
    if len(group_batches):
        np.add.at(max_wagons, group_batches[:, 1], wagons[group_batches[:, 0]])
    corridors = problem.corridors
    cap = np.array([corridors[c].capacity for c in keys[:, 0]], dtype=np.int64) if B else np.zeros(0, np.int64)
    loaded = np.minimum(cap, -(-max_wagons // W))

    def ends(c: int, d: int) -> tuple[int, int]:
        cor = corridors[c]
        a, z = (cor.origin, cor.destination) if d == 0 else (cor.destination, cor.origin)
        return hub_index[a], hub_index[z]

    rows = [(int(c), int(d), int(s), int(batch_exit[b]), *ends(int(c), int(d)), int(cap[b]), int(loaded[b]), 0)
            for b, (c, d, s) in enumerate(keys)]

    if light_engines > 0 and B:
        slot_min = problem.horizon.slot_minutes
        origins = np.array([r[4] for r in rows], dtype=np.int64)
        departures = np.bincount(origins, weights=loaded, minlength=len(problem.hubs))
        last_departure = np.full(len(problem.hubs), -1, dtype=np.int64)
        np.maximum.at(last_departure, origins, keys[:, 2])
        index = {(r[0], r[1], r[2]): k for k, r in enumerate(rows)}
        for h, hub in enumerate(problem.hubs):
            if departures[h] <= hub.locomotives or last_departure[h] < 0:
                continue
            turnaround = math.ceil(hub.turnaround_hours * 60.0 - 1e-9)
            latest = int(last_departure[h]) * slot_min
            for c, cor in enumerate(corridors):
                if cor.capacity <= 0 or hub.id not in (cor.origin, cor.destination):
                    continue
                d = 0 if cor.destination == hub.id else 1
                for s in range(int(last_departure[h]) + 1):
                    exit_, _ = network.run(cor, s * slot_min)
                    if exit_ is None or exit_ + turnaround > latest:
                        continue
                    k = index.get((c, d, s))
                    if k is None:
                        index[(c, d, s)] = len(rows)
                        rows.append((c, d, s, exit_, *ends(c, d), cor.capacity, 0, light_engines))
                    else:
                        r = rows[k]
                        rows[k] = (*r[:8], light_engines)
    table = np.array(rows, dtype=np.int64).reshape(-1, 9)
    return Batches(*(np.ascontiguousarray(table[:, j]) for j in range(9)))


def train_terms(problem: Problem, batches: Batches) -> np.ndarray:
    """(B, criteria) objective terms of ONE train of each batch: train-km cost, the locomotive's
    fuel over the corridor, and (diesel lines) its idling through the turnaround at the far end.
    Cost kept to the fen."""
    k = problem.costs
    out = np.zeros((len(batches), 5))
    for b in range(len(batches)):
        cor = problem.corridors[int(batches.corridor[b])]
        hub = problem.hubs[int(batches.destination[b])]
        tonne_km = k.locomotive_tonnes * cor.km
        if cor.traction == "diesel":
            idle = math.ceil(hub.turnaround_hours * 60.0 - 1e-9) / 60.0
            diesel = tonne_km * k.diesel_litres_per_gross_tonne_km + idle * k.diesel_litres_per_idle_locomotive_hour
            kwh = 0.0
        else:
            diesel, kwh = 0.0, tonne_km * k.electric_kwh_per_gross_tonne_km
        cost = round(cor.km * k.train_cost_per_km + diesel * k.diesel_price_per_litre
                     + kwh * k.electricity_price_per_kwh, 2)
        out[b] = (cost, 0.0, 0.0, diesel, diesel * k.co2_kg_per_diesel_litre + kwh * k.co2_kg_per_kwh)
    return out


def yard_occupancy(problem: Problem, batches: Batches) -> tuple[np.ndarray, np.ndarray]:
    """(batch, slot) pairs: the yard slots each batch's trains occupy at their destination."""
    slot_min = problem.horizon.slot_minutes
    handling = np.array([math.ceil(h.handling_hours * 60.0 - 1e-9) for h in problem.hubs], dtype=np.int64)
    arrive = batches.exit
    leave = arrive + handling[batches.destination]
    first = arrive // slot_min
    # Slots overlapping [arrive, leave): up to the slot holding leave - 1 (the arrival slot when leave == arrive).
    last = np.maximum(first, (leave - 1) // slot_min)
    counts = last - first + 1
    b = np.repeat(np.arange(len(batches)), counts)
    offsets = np.arange(b.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return b, first[b] + offsets


def fleet_times(problem: Problem, batches: Batches) -> np.ndarray:
    """Minute each batch's locomotives are available at the destination (exit + turnaround)."""
    turnaround = np.array([math.ceil(h.turnaround_hours * 60.0 - 1e-9) for h in problem.hubs], dtype=np.int64)
    return batches.exit + turnaround[batches.destination]


@dataclass(frozen=True, eq=False)
class AuxLayout:
    """Where each batch's ``trains`` integer lives in a model assignment: after the plans, one
    bounded-encoding bit group per batch with ``upper > 0``."""

    num_plans: int
    bit_batch: np.ndarray  # batch of each auxiliary bit
    bit_weight: np.ndarray  # its weight in the batch's integer
    num_batches: int

    @classmethod
    def of(cls, num_plans: int, batches: Batches) -> AuxLayout:
        bit_batch, bit_weight = [], []
        for b, upper in enumerate(batches.upper.tolist()):
            for w in bounded_weights(int(upper)):
                bit_batch.append(b)
                bit_weight.append(w)
        return cls(num_plans, np.array(bit_batch, dtype=np.int64), np.array(bit_weight, dtype=np.int64),
                   len(batches))

    @property
    def num_bits(self) -> int:
        return int(self.bit_batch.size)

    @property
    def num_variables(self) -> int:
        return self.num_plans + self.num_bits

    def trains(self, X: np.ndarray) -> np.ndarray:
        """(k, B) train counts of full model assignments X (k, n)."""
        X = np.atleast_2d(np.asarray(X))
        bits = X[:, self.num_plans:].astype(np.int64) * self.bit_weight[None, :]
        out = np.zeros((X.shape[0], self.num_batches), dtype=np.int64)
        for k in range(X.shape[0]):
            np.add.at(out[k], self.bit_batch, bits[k])
        return out

    def encode(self, trains: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Bits representing ``trains`` (B,) (clipped to 0..upper): largest weight first."""
        need = np.clip(np.asarray(trains, dtype=np.int64), 0, upper)
        bits = np.zeros(self.num_bits, dtype=np.uint8)
        starts = np.searchsorted(self.bit_batch, np.arange(self.num_batches))
        for b in np.flatnonzero(need):
            lo = starts[b]
            hi = lo + len(bounded_weights(int(upper[b])))
            weights = self.bit_weight[lo:hi]
            top = weights[-1]
            value = int(need[b])
            rest = value - top if value > upper[b] - top else value
            if value > upper[b] - top:
                bits[hi - 1] = 1
            for j in range(hi - lo - 1):
                bits[lo + j] = (rest >> j) & 1
        return bits
