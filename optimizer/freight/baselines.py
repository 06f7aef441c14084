"""Baseline dispatchers: the plans a dispatcher's rules give, to compare every solver with.

Each baseline builds its plan shipment by shipment on top of the trains already formed
(wagonload: a shipment fills spare room in a batch's trains before a new train is started),
keeping every path, yard and fleet limit, and returns a feasible full model assignment
(variable i = candidate i; every ``trains[b]`` at its least feasible value, no light engines).

- ``greedy``: first come first served (release, then priority), shortest route, earliest slot
  with room on every resource; otherwise defer. The naive rule.
- ``priority-edd``: by priority, then earliest due date; each shipment takes its cheapest
  still-feasible candidate over all routes and slots (marginal cost given the trains already
  formed, in the model's objective), deferral included.
- ``regret``: regret insertion; repeatedly the shipment whose best feasible option is most
  cheaper than its second best takes its best option.

:func:`best_baseline` returns the one with the lowest model objective.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from optimizer.freight.trains import fleet_times, yard_occupancy

__all__ = ["BASELINES", "best_baseline", "greedy_dispatch", "priority_edd_dispatch", "regret_dispatch"]


class _Dispatch:
    """Resources used so far (wagons and trains per batch, yard places, locomotive balances) and
    the marginal model cost of adding one candidate."""

    def __init__(self, cset, model):
        from optimizer.freight.model import aux_layout

        self.cset = cset
        problem = cset.problem
        batches = cset.batches
        self.W = problem.costs.wagons_per_train
        self.capacity = batches.upper.astype(np.int64)
        B = len(batches)
        self.wagons = np.zeros(B, dtype=np.int64)
        self.trains = np.zeros(B, dtype=np.int64)
        layout = aux_layout(cset)
        c = np.asarray(model.c)
        # Objective of one train of each batch: any bit's coefficient divided by its weight.
        self.train_cost = np.full(B, np.inf)
        first = np.searchsorted(layout.bit_batch, np.arange(B))
        has = first < layout.num_bits
        has[has] = layout.bit_batch[first[has]] == np.arange(B)[has]
        self.train_cost[has] = c[layout.num_plans + first[has]] / layout.bit_weight[first[has]]
        self.plan_cost = c[: layout.num_plans]
        # Yard places: (hub, slot) keys each batch occupies.
        occ_b, occ_s = yard_occupancy(problem, batches)
        keys: dict[tuple[int, int], int] = {}
        self.yard_keys: list[list[int]] = [[] for _ in range(B)]
        for b, s in zip(occ_b.tolist(), occ_s.tolist()):
            k = keys.setdefault((int(batches.destination[b]), s), len(keys))
            self.yard_keys[b].append(k)
        self.yard_cap = np.array([problem.hubs[h].yard_capacity for h, _ in keys], dtype=np.int64)
        self.yard_used = np.zeros(len(keys), dtype=np.int64)
        # Locomotive balance per hub at every slot boundary: initial + available arrivals - departures.
        slot_min = problem.horizon.slot_minutes
        self.avail_slot = -(-fleet_times(problem, batches) // slot_min)
        S = int(max(batches.slot.max(initial=0), self.avail_slot.max(initial=0))) + 2
        self.balance = np.repeat(np.array([[h.locomotives] for h in problem.hubs], dtype=np.int64), S, axis=1)
        self.origin = batches.origin
        self.destination = batches.destination
        self.slot = batches.slot

    def delta(self, i: int) -> dict[int, int] | None:
        """Extra trains per batch that candidate i needs, or None when it does not fit."""
        cand = self.cset.candidates[i]
        extra: dict[int, int] = {}
        for b, w in cand.uses:
            d = -(-(self.wagons[b] + w) // self.W) - self.trains[b]
            if d:
                if self.trains[b] + d > self.capacity[b]:
                    return None
                extra[b] = int(d)
        if not extra:
            return extra
        yard: dict[int, int] = defaultdict(int)
        for b, d in extra.items():
            for k in self.yard_keys[b]:
                yard[k] += d
        if any(self.yard_used[k] + d > self.yard_cap[k] for k, d in yard.items()):
            return None
        hubs = {int(self.origin[b]) for b in extra} | {int(self.destination[b]) for b in extra}
        trial = {h: self.balance[h].copy() for h in hubs}
        for b, d in extra.items():
            trial[int(self.origin[b])][self.slot[b]:] -= d
            trial[int(self.destination[b])][self.avail_slot[b]:] += d
        if any(trial[h].min() < 0 for h in hubs):
            return None
        return extra

    def marginal(self, i: int) -> float | None:
        """Model objective added by candidate i given the trains formed so far (None: it does not fit)."""
        extra = self.delta(i)
        if extra is None:
            return None
        return float(self.plan_cost[i] + sum(d * self.train_cost[b] for b, d in extra.items()))

    def take(self, i: int, extra: dict[int, int] | None = None) -> dict[int, int]:
        extra = self.delta(i) if extra is None else extra
        assert extra is not None, "taking a candidate that does not fit"
        for b, w in self.cset.candidates[i].uses:
            self.wagons[b] += w
        for b, d in extra.items():
            self.trains[b] += d
            for k in self.yard_keys[b]:
                self.yard_used[k] += d
            self.balance[int(self.origin[b])][self.slot[b]:] -= d
            self.balance[int(self.destination[b])][self.avail_slot[b]:] += d
        return extra


def _finish(cset, chosen: list[int]) -> np.ndarray:
    from optimizer.freight.model import complete

    x = np.zeros(len(cset.candidates), dtype=np.uint8)
    x[chosen] = 1
    return complete(cset, x)


def _model(cset, model):
    if model is None:
        from optimizer.freight.model import build_model

        model = build_model(cset)
    return model


def _defer(cset, members) -> int:
    return next(i for i in members if cset.candidates[i].deferred)


def greedy_dispatch(cset, model=None) -> np.ndarray:
    """Naive baseline: first come first served (release, then priority), shortest route, earliest
    slot with room on every resource; otherwise defer."""
    state = _Dispatch(cset, _model(cset, model))
    problem = cset.problem
    order = sorted(range(len(problem.shipments)),
                   key=lambda s: (problem.shipments[s].release, -problem.shipments[s].priority, s))
    chosen = []
    for s in order:
        members = cset.groups[s]
        # Shortest route per departure slot: the first candidate listed for that slot.
        first_per_slot: dict[int, int] = {}
        for i in members:
            if not cset.candidates[i].deferred:
                first_per_slot.setdefault(cset.candidates[i].slot, i)
        choice = _defer(cset, members)
        for slot in sorted(first_per_slot):
            extra = state.delta(first_per_slot[slot])
            if extra is not None:
                choice = first_per_slot[slot]
                state.take(choice, extra)
                break
        chosen.append(choice)
    return _finish(cset, chosen)


def _cheapest(state: _Dispatch, members) -> tuple[float, int, float]:
    """(best marginal cost, its candidate, second best cost) over the feasible candidates."""
    best = second = math.inf
    best_i = -1
    for i in members:
        m = state.marginal(i)
        if m is None:
            continue
        if m < best:
            best, second, best_i = m, best, i
        elif m < second:
            second = m
    return best, best_i, second


def priority_edd_dispatch(cset, model=None) -> np.ndarray:
    """By priority (high first), then earliest due date: each shipment takes its cheapest
    still-feasible candidate over all routes and slots, deferral included."""
    state = _Dispatch(cset, _model(cset, model))
    problem = cset.problem
    order = sorted(range(len(problem.shipments)),
                   key=lambda s: (-problem.shipments[s].priority, problem.shipments[s].due,
                                  problem.shipments[s].release, s))
    chosen = []
    for s in order:
        _, i, _ = _cheapest(state, cset.groups[s])
        state.take(i)
        chosen.append(i)
    return _finish(cset, chosen)


def regret_dispatch(cset, model=None) -> np.ndarray:
    """Regret insertion: the shipment with the largest gap between its best and second-best
    feasible option (deferral included) goes first, with its best option.

    Options are re-priced lazily: after each choice, only the shipments whose prices can have
    moved are re-priced: those sharing a batch with it (the room in its trains changed), and those
    whose current best or second-best option uses a yard place or a hub's locomotives that the
    new trains took (that option may no longer fit). A shipment is re-priced again when it comes
    to the top of the queue and put back if its regret fell below the next one's.
    """
    state = _Dispatch(cset, _model(cset, model))
    problem = cset.problem
    G = len(problem.shipments)
    by_batch: dict[int, set[int]] = defaultdict(set)
    for g, members in enumerate(cset.groups):
        for i in members:
            for b, _ in cset.candidates[i].uses:
                by_batch[b].add(g)
    watch: dict[tuple[str, int], set[int]] = defaultdict(set)  # resource -> shipments whose options use it
    stamp = np.zeros(G, dtype=np.int64)
    heap: list[tuple[float, int, int, int, int]] = []

    def price(g: int) -> tuple[float, int, int]:
        best = second = math.inf
        best_i = second_i = -1
        for i in cset.groups[g]:
            m = state.marginal(i)
            if m is None:
                continue
            if m < best:
                best, second, best_i, second_i = m, best, i, best_i
            elif m < second:
                second, second_i = m, i
        return (second - best if math.isfinite(second) else 0.0), best_i, second_i

    def push(g: int) -> None:
        regret, i, j = price(g)
        stamp[g] += 1
        heapq.heappush(heap, (-regret, -problem.shipments[g].priority, g, int(stamp[g]), i))
        for k in (i, j):
            for b, _ in cset.candidates[k].uses if k >= 0 else ():
                watch[("hub", int(state.origin[b]))].add(g)
                for y in state.yard_keys[b]:
                    watch[("yard", y)].add(g)

    for g in range(G):
        push(g)
    done = np.zeros(G, dtype=bool)
    chosen = [0] * G
    while heap:
        _, _, g, st, i = heapq.heappop(heap)
        if done[g] or st != stamp[g]:
            continue
        regret, i, _ = price(g)
        if heap and -regret > heap[0][0] + 1e-9 * max(1.0, abs(regret)):
            push(g)  # fell behind another shipment: back into the queue with its new regret
            continue
        extra = state.take(i)
        done[g] = True
        chosen[g] = i
        touched: set[int] = set()
        for b, _ in cset.candidates[i].uses:
            touched |= by_batch[b]
        for b in extra:
            for key in [("hub", int(state.origin[b])), *(("yard", y) for y in state.yard_keys[b])]:
                touched |= watch.pop(key, set())
        for h in sorted(touched):
            if not done[h]:
                push(h)
    return _finish(cset, chosen)


#: Name -> dispatcher(cset, model) returning a feasible full model assignment.
BASELINES: dict[str, Callable] = {
    "greedy": greedy_dispatch,
    "priority-edd": priority_edd_dispatch,
    "regret": regret_dispatch,
}


def best_baseline(cset, model, baselines: dict[str, np.ndarray] | None = None) -> tuple[str, np.ndarray]:
    """(name, assignment) of the baseline with the lowest model objective (first listed on ties)."""
    plans = baselines if baselines is not None else {name: run(cset, model) for name, run in BASELINES.items()}
    name = min(plans, key=lambda k: (float(model.objective(plans[k])[0]), list(plans).index(k)))
    return name, plans[name]
