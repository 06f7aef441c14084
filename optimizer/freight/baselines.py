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

``fixed`` (every dispatcher): a full model assignment to start from, for re-planning. The plans
it chooses are kept as they are (their groups are not dispatched) and no batch runs fewer trains
than it has there (its light engines stay), so the dispatcher works around what already runs.
``locomotives_out`` (outages: objects with ``hub``, ``count``, ``start`` and ``end`` minutes, end
None for good, such as :class:`optimizer.freight.events.Outage`): that many locomotives stand
unusable at the hub in every slot the outage touches.
"""

from __future__ import annotations

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
            if d > 0:  # a batch may already run more trains than its wagons need (light engines kept)
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

    def fix(self, fixed: np.ndarray | None) -> dict[int, int]:
        """Commit the plans chosen in ``fixed`` and its train counts; returns {group: candidate}."""
        if fixed is None:
            return {}
        from optimizer.freight.model import aux_layout

        x = np.asarray(fixed).ravel()
        kept: dict[int, int] = {}
        for g, members in enumerate(self.cset.groups):
            chosen = [i for i in members if x[i]]
            if chosen:
                kept[g] = chosen[0]
                for b, w in self.cset.candidates[chosen[0]].uses:
                    self.wagons[b] += w
        trains = np.maximum(aux_layout(self.cset).trains(x[None, :])[0], -(-self.wagons // self.W))
        for b in np.flatnonzero(trains).tolist():
            d = int(trains[b])
            self.trains[b] += d
            for k in self.yard_keys[b]:
                self.yard_used[k] += d
            self.balance[int(self.origin[b])][self.slot[b]:] -= d
            self.balance[int(self.destination[b])][self.avail_slot[b]:] += d
        return kept

    def reserve(self, outages) -> None:
        """Take the locomotives of each outage out of the hub's balance in every slot it touches."""
        slot_min = self.cset.problem.horizon.slot_minutes
        S = self.balance.shape[1]
        for out in outages:
            h = self.cset.problem.hub_index[out.hub]
            last = S if out.end is None else min(S, -(-out.end // slot_min))
            self.balance[h][max(0, out.start // slot_min):last] -= out.count

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


def _finish(cset, chosen: list[int], state: _Dispatch | None = None) -> np.ndarray:
    """The full assignment; with ``state`` (a dispatch from ``fixed``), its trains as formed."""
    from optimizer.freight.model import aux_layout, complete

    x = np.zeros(len(cset.candidates), dtype=np.uint8)
    x[chosen] = 1
    if state is None:
        return complete(cset, x)
    return np.concatenate([x, aux_layout(cset).encode(state.trains, cset.batches.upper)])


def _model(cset, model):
    if model is None:
        from optimizer.freight.model import build_model

        model = build_model(cset)
    return model


def _defer(cset, members) -> int:
    return next(i for i in members if cset.candidates[i].deferred)


def greedy_dispatch(cset, model=None, *, fixed: np.ndarray | None = None, locomotives_out=()) -> np.ndarray:
    """Naive baseline: first come first served (release, then priority), shortest route, earliest
    slot with room on every resource; otherwise defer."""
    state = _Dispatch(cset, _model(cset, model))
    kept = state.fix(fixed)
    state.reserve(locomotives_out)
    problem = cset.problem
    order = sorted(range(len(problem.shipments)),
                   key=lambda s: (problem.shipments[s].release, -problem.shipments[s].priority, s))
    chosen = list(kept.values())
    for s in order:
        if s in kept:
            continue
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
    return _finish(cset, chosen, state if fixed is not None else None)


def priority_edd_dispatch(cset, model=None, *, fixed: np.ndarray | None = None, locomotives_out=()) -> np.ndarray:
    """By priority (high first), then earliest due date: each shipment takes its cheapest
    still-feasible candidate over all routes and slots, deferral included."""
    state = _Dispatch(cset, _model(cset, model))
    kept = state.fix(fixed)
    state.reserve(locomotives_out)
    prices = _Regret(cset, state, price_all=False)  # the marginal prices of _Dispatch, vectorised
    problem = cset.problem
    order = sorted(range(len(problem.shipments)),
                   key=lambda s: (-problem.shipments[s].priority, problem.shipments[s].due,
                                  problem.shipments[s].release, s))
    chosen = list(kept.values())
    for s in order:
        if s in kept:
            continue
        members = np.asarray(cset.groups[s], dtype=np.int64)
        i = int(members[np.argmin(prices.reprice(members))])  # the first cheapest that fits
        prices.take(i, track=False)
        chosen.append(i)
    return _finish(cset, chosen, state if fixed is not None else None)


def regret_dispatch(cset, model=None, *, fixed: np.ndarray | None = None, locomotives_out=()) -> np.ndarray:
    """Regret insertion: the shipment with the largest gap between its best and second-best
    feasible option (deferral included) goes first, with its best option (ties: higher priority,
    then problem order).

    Exact (every choice is the one an eager implementation, re-pricing every option of every
    open shipment, would make), and incremental (:class:`_Regret`): after each choice only the
    candidates whose price can have moved are re-priced, and only shipments whose best or
    second-best option can have changed are re-ranked.
    """
    state = _Dispatch(cset, _model(cset, model))
    kept = state.fix(fixed)
    state.reserve(locomotives_out)
    problem = cset.problem
    G = len(problem.shipments)
    regret_of = _Regret(cset, state)
    sizes = np.array([len(m) for m in cset.groups], dtype=np.int64)
    gptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    gmem = np.fromiter((i for m in cset.groups for i in m), dtype=np.int64, count=int(gptr[-1]))
    group_of = cset.group_of
    priority = np.array([s.priority for s in problem.shipments], dtype=np.int64)
    done = np.zeros(G, dtype=bool)
    chosen = [0] * G
    for g, i in kept.items():
        done[g] = True
        chosen[g] = i
    ranks = _Ranks(G)
    open_groups = np.flatnonzero(~done)
    if open_groups.size:
        ranks.update(open_groups, *_group_best(regret_of.price, gptr, gmem, open_groups))
    # The next shipment: largest regret, then highest priority, then first in the problem. A scan
    # per choice (two passes over an array of shipments) costs less than keeping a heap current
    # through the many regret changes a choice causes.
    key = np.where(done, -np.inf, ranks.regret)
    group_scratch = np.full(G, -1, dtype=np.int64)
    for _ in range(int(open_groups.size)):
        tied = np.flatnonzero(key == key.max())
        if tied.size > 1:
            tied = tied[priority[tied] == priority[tied].max()]
        g = int(tied[0])
        i = int(ranks.best[g])
        hit = regret_of.take(i)
        done[g] = True
        chosen[g] = i
        key[g] = -np.inf
        hit = hit[~done[group_of[hit]]]
        if hit.size == 0:
            continue
        old = regret_of.price[hit]
        new = regret_of.reprice(hit)
        moved = new != old
        hit, new = hit[moved], new[moved]
        regret_of.price[hit] = new
        owner = group_of[hit]
        # A shipment's best and second best can only change through one of them, or through an
        # option that is now at most the second-best price.
        rerank = (hit == ranks.best[owner]) | (hit == ranks.second[owner]) | (new <= ranks.second_price[owner])
        groups = _dedupe(owner[rerank], group_scratch)
        if groups.size:
            ranks.update(groups, *_group_best(regret_of.price, gptr, gmem, groups))
            key[groups] = ranks.regret[groups]
    return _finish(cset, chosen, state if fixed is not None else None)


class _Ranks:
    """Per shipment: regret, best and second-best option and the second-best price."""

    def __init__(self, G: int):
        self.regret = np.zeros(G)
        self.best = np.full(G, -1, dtype=np.int64)
        self.second = np.full(G, -1, dtype=np.int64)
        self.second_price = np.full(G, np.inf)

    def update(self, groups, regret, best, second, second_price) -> None:
        self.regret[groups] = regret
        self.best[groups] = best
        self.second[groups] = second
        self.second_price[groups] = second_price


class _Regret:
    """Every candidate's marginal price under a :class:`_Dispatch`, kept current as plans are taken.

    The price of candidate i is ``plan_cost[i] + sum of train_cost[b] x extra trains on b`` when it
    fits and infinity when it does not, exactly as :meth:`_Dispatch.marginal` defines it (same
    operations, same order). It changes only when something it reads changes, and each of those
    is tracked, so that a plan taken re-prices only the candidates it can affect:

    - the room in the trains of a batch the taken plan uses: entries there whose extra trains or
      path check changed;
    - the yard room of a batch (its fullest yard slot): entries that no longer fit it;
    - a hub's locomotive balance: entries whose check at that hub changed answer.

    Routes are loop-free (each hub at most once), so a candidate adds at most one departure and
    one arrival per hub, and the locomotive check at a hub is three range minima of its balance
    (answered from a sparse table per hub). A hub whose balance is at least ``dmax`` (the most
    extra trains one entry can need) in every slot passes every check and is not queried.
    """

    def __init__(self, cset, state: _Dispatch, *, price_all: bool = True):
        self.s = state
        n = len(cset.candidates)
        indptr, batch, wagons = cset.use_arrays
        self.indptr, self.ebatch, self.ewagons = indptr, batch, wagons
        counts = np.diff(indptr)
        self.eowner = np.repeat(np.arange(n, dtype=np.int64), counts)
        self.epos = np.arange(batch.size, dtype=np.int64) - indptr[:-1][self.eowner]
        last = np.zeros(batch.size, dtype=bool)
        last[indptr[1:][counts > 0] - 1] = True
        self.elast = last
        H, S = state.balance.shape
        self.S = S
        eo, ed = state.origin[batch], state.destination[batch]
        for hubs in (eo, ed):
            code = np.sort(self.eowner * H + hubs)
            if np.any(code[1:] == code[:-1]):
                raise ValueError("regret dispatch needs loop-free routes (a candidate passes a hub twice)")
        self.eorigin, self.edest = eo, ed
        self.eslot = state.slot[batch]
        self.eavail = state.avail_slot[batch]
        B = len(state.capacity)
        self.by_batch = _csr(batch, B)
        self.departing = _csr(eo, H)  # entries leaving each hub (their visit there includes the arrival)
        ends = np.flatnonzero(last)
        self.ending = _csr(ed[ends], H, values=ends)  # last entries, arriving at each hub
        self.dmax = int(max(1, -(-int(wagons.max(initial=0)) // state.W)))
        kb = np.repeat(np.arange(B, dtype=np.int64), [len(ks) for ks in state.yard_keys])
        kk = np.fromiter((k for ks in state.yard_keys for k in ks), dtype=np.int64, count=kb.size)
        self.batch_keys = _csr(kb, B, values=kk)
        self.key_batches = _csr(kk, len(state.yard_cap), values=kb)
        self.yard_room = self._yard_room(np.arange(B, dtype=np.int64))
        self.levels = max(1, int(S).bit_length())
        self.table = np.empty((self.levels, H, S), dtype=np.int64)
        self.tight = np.zeros(H, dtype=bool)  # some slot's balance is below dmax
        for h in range(H):
            self._rebuild(h)
        self.log2 = np.zeros(S + 1, dtype=np.int64)
        self.log2[1:] = np.floor(np.log2(np.arange(1, S + 1))).astype(np.int64)
        self.scratch = np.full(n, -1, dtype=np.int64)
        self.batch_scratch = np.full(B, -1, dtype=np.int64)
        self.price = self.reprice(np.arange(n, dtype=np.int64)) if price_all else None

    # ------------------------------------------------------------------ resources
    def _yard_room(self, batches: np.ndarray) -> np.ndarray:
        """Least free yard places over the slots each batch occupies (large when none)."""
        ptr, keys = self.batch_keys
        idx, owner = _ranges(ptr[batches], ptr[batches + 1])
        out = np.full(batches.size, _BIG, dtype=np.int64)
        if idx.size:
            np.minimum.at(out, owner, self.s.yard_cap[keys[idx]] - self.s.yard_used[keys[idx]])
        return out

    def _rebuild(self, h: int) -> None:
        """Sparse table of hub h's balance: table[k, h, t] = min(balance[h, t : t + 2^k])."""
        T, S = self.table, self.S
        T[0, h] = self.s.balance[h]
        for k in range(1, self.levels):
            step = 1 << (k - 1)
            T[k, h, : S - step] = np.minimum(T[k - 1, h, : S - step], T[k - 1, h, step:])
            T[k, h, S - step:] = T[k - 1, h, S - step:]
        self.tight[h] = T[0, h].min() < self.dmax

    def _hub_ok(self, table, h, s, d_dep, a, d_arr) -> np.ndarray:
        """Whether a hub's balance stays >= 0 at every slot with d_dep departures from slot s and
        d_arr arrivals available from slot a (s or a = S: none). ``table``: one hub's sparse table
        (h None) or every hub's."""
        first, second = np.minimum(s, a), np.maximum(s, a)
        q = s.size
        lo = np.concatenate([np.zeros_like(s), first, second])
        hi = np.concatenate([first, second, np.full_like(s, self.S)])
        need = np.concatenate([np.zeros_like(s), np.where(s <= a, d_dep, -d_arr), d_dep - d_arr])
        ok = hi <= lo  # an empty range asks nothing
        q_ = np.flatnonzero(~ok)
        if q_.size:
            l, r = lo[q_], hi[q_]
            k = self.log2[r - l]
            if h is None:
                m = np.minimum(table[k, l], table[k, r - (1 << k)])
            else:
                hh = np.concatenate([h, h, h])[q_]
                m = np.minimum(table[k, hh, l], table[k, hh, r - (1 << k)])
            ok[q_] = m >= need[q_]
        return ok[:q] & ok[q:2 * q] & ok[2 * q:]

    def _arrivals(self, E: np.ndarray, d: np.ndarray, contiguous: bool):
        """(arrivals, their available slot) at the origin hub of each entry: the previous leg's
        extra trains (S where there are none). ``contiguous``: E lists whole candidates in leg
        order, so the previous leg's ``d`` is the previous element."""
        prev = np.flatnonzero(self.epos[E] > 0)
        d_arr = np.zeros_like(d)
        d_arr[prev] = d[prev - 1] if contiguous else self.extra(E[prev] - 1)
        a = np.full(E.size, self.S, dtype=np.int64)
        arrives = np.flatnonzero(d_arr > 0)
        a[arrives] = self.eavail[E[arrives] - 1]
        return d_arr, a

    # ------------------------------------------------------------------ prices
    def extra(self, E: np.ndarray) -> np.ndarray:
        """Extra trains entry E's wagons need on its batch, given the trains formed there."""
        s = self.s
        b = self.ebatch[E]
        return np.maximum(0, -(-(s.wagons[b] + self.ewagons[E]) // s.W) - s.trains[b])

    def reprice(self, C: np.ndarray) -> np.ndarray:
        """Current marginal price of each candidate in C (infinity: it does not fit)."""
        s = self.s
        E, owner = _ranges(self.indptr[C], self.indptr[C + 1])
        prices = s.plan_cost[C].astype(np.float64, copy=True)
        if E.size == 0:
            return prices
        b = self.ebatch[E]
        d = self.extra(E)
        new = d > 0
        ok = ~new | ((s.trains[b] + d <= s.capacity[b]) & (d <= self.yard_room[b]))
        # Locomotives, at tight hubs only: this leg's departures and the previous leg's arrivals.
        d_arr, a = self._arrivals(E, d, contiguous=True)
        v = np.flatnonzero((new | (d_arr > 0)) & self.tight[self.eorigin[E]])
        if v.size:
            ok[v] &= self._hub_ok(self.table, self.eorigin[E[v]], np.where(new[v], self.eslot[E[v]], self.S), d[v],
                                  a[v], d_arr[v])
        end = np.flatnonzero(self.elast[E] & new & self.tight[self.edest[E]])
        if end.size:
            Ee = E[end]
            ok[end] &= self._hub_ok(self.table, self.edest[Ee], np.full(end.size, self.S), np.zeros_like(Ee),
                                    self.eavail[Ee], d[end])
        cost = np.zeros(E.size)
        cost[new] = d[new] * s.train_cost[b[new]]
        extra = np.zeros(C.size)
        pos = self.epos[E]
        for j in range(int(pos.max()) + 1):
            at = pos == j  # one entry per candidate: the sum runs in leg order, as marginal() adds
            extra[owner[at]] += cost[at]
        prices += extra
        prices[owner[~ok]] = np.inf
        return prices

    # ------------------------------------------------------------------ taking a plan
    def take(self, i: int, *, track: bool = True) -> np.ndarray:
        """Commit candidate i; returns the candidates whose price may have changed (each once;
        none when not ``track``-ing)."""
        s = self.s
        E = np.arange(self.indptr[i], self.indptr[i + 1])
        if E.size == 0:
            return E
        if not np.isfinite(self.reprice(np.array([i]))[0]):
            raise AssertionError("taking a candidate that does not fit")
        b = self.ebatch[E]
        d = self.extra(E)
        bp, be = self.by_batch
        nb, nd = b[d > 0], d[d > 0]
        hubs = sorted(set(s.origin[nb].tolist()) | set(s.destination[nb].tolist()))
        if track:
            on_b = be[_ranges(bp[b], bp[b + 1])[0]]
            d_on_b = self.extra(on_b)
            cap_on_b = s.trains[self.ebatch[on_b]] + d_on_b <= s.capacity[self.ebatch[on_b]]
            tables = {h: self.table[:, h].copy() for h in hubs}
        s.wagons[b] += self.ewagons[E]
        s.trains[nb] += nd
        keys_hit = []
        for bb, dd in zip(nb.tolist(), nd.tolist()):
            for k in s.yard_keys[bb]:
                s.yard_used[k] += dd
                keys_hit.append(k)
            s.balance[int(s.origin[bb])][s.slot[bb]:] -= dd
            s.balance[int(s.destination[bb])][s.avail_slot[bb]:] += dd
        if not track:
            for h in hubs:
                self._rebuild(h)
            if keys_hit:
                kp, kb = self.key_batches
                keys = np.asarray(keys_hit, dtype=np.int64)
                batches = _dedupe(kb[_ranges(kp[keys], kp[keys + 1])[0]], self.batch_scratch)
                self.yard_room[batches] = self._yard_room(batches)
            return E[:0]
        # Entries on the batches this plan uses: their extra trains or path check changed.
        d_now = self.extra(on_b)
        cap_now = s.trains[self.ebatch[on_b]] + d_now <= s.capacity[self.ebatch[on_b]]
        hit = [self.eowner[on_b[(d_now != d_on_b) | (cap_now != cap_on_b)]]]
        # Entries that no longer fit the yard room of their batch.
        if keys_hit:
            kp, kb = self.key_batches
            keys = np.asarray(keys_hit, dtype=np.int64)
            batches = _dedupe(kb[_ranges(kp[keys], kp[keys + 1])[0]], self.batch_scratch)
            room = self._yard_room(batches)
            was = self.yard_room[batches]
            self.yard_room[batches] = room
            low = room < np.minimum(was, self.dmax)
            if low.any():
                lows = batches[low]
                idx, which = _ranges(bp[lows], bp[lows + 1])
                Eb = be[idx]
                dd = self.extra(Eb)
                hit.append(self.eowner[Eb[(dd > 0) & (dd <= was[low][which]) & (dd > room[low][which])]])
        # Entries whose locomotive check at a hub whose balance moved changed answer.
        for h in hubs:
            was_tight = bool(self.tight[h])
            self._rebuild(h)
            if not (was_tight or self.tight[h]):
                continue  # every check passes before and after
            old, now = tables[h], self.table[:, h]
            if np.array_equal(np.clip(old[0], -self.dmax - 1, self.dmax), np.clip(now[0], -self.dmax - 1, self.dmax)):
                continue  # balances are only ever compared with thresholds in [-dmax, dmax]
            dp, de = self.departing
            Ed = de[dp[h]:dp[h + 1]]
            dd = self.extra(Ed)
            d_arr, a = self._arrivals(Ed, dd, contiguous=False)
            act = np.flatnonzero((dd > 0) | (d_arr > 0))
            Ed, dd, a, d_arr = Ed[act], dd[act], a[act], d_arr[act]
            dep = np.where(dd > 0, self.eslot[Ed], self.S)
            flip = self._hub_ok(old, None, dep, dd, a, d_arr) != self._hub_ok(now, None, dep, dd, a, d_arr)
            hit.append(self.eowner[Ed[flip]])
            ep, ee = self.ending
            Ee = ee[ep[h]:ep[h + 1]]
            de_ = self.extra(Ee)
            Ee, de_ = Ee[de_ > 0], de_[de_ > 0]
            if Ee.size:
                none = np.full(Ee.size, self.S)
                av = self.eavail[Ee]
                zero = np.zeros_like(de_)
                flip = self._hub_ok(old, None, none, zero, av, de_) != self._hub_ok(now, None, none, zero, av, de_)
                hit.append(self.eowner[Ee[flip]])
        return _dedupe(np.concatenate(hit), self.scratch)


def _dedupe(values: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``values`` without repeats, in linear time (``scratch``: an int array covering the values,
    left as it was)."""
    if values.size < 2:
        return values
    scratch[values] = np.arange(values.size)
    keep = values[scratch[values] == np.arange(values.size)]
    scratch[values] = -1
    return keep


_BIG = np.iinfo(np.int64).max // 4


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(lo[k], hi[k])`` and the k each element came from."""
    counts = hi - lo
    owner = np.repeat(np.arange(lo.size, dtype=np.int64), counts)
    idx = np.repeat(lo, counts) + np.arange(owner.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return idx, owner


def _csr(keys: np.ndarray, size: int, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, items): items with key k are items[indptr[k]:indptr[k + 1]] (positions, or ``values``)."""
    order = np.argsort(keys, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=size))]).astype(np.int64)
    return ptr, (order if values is None else values[order]).astype(np.int64)


def _group_best(price: np.ndarray, gptr: np.ndarray, gmem: np.ndarray, G: np.ndarray):
    """(regret, best, second, second price) of each shipment in G: its first cheapest member,
    the cheapest of the others, and the gap between them (0 when only one member fits)."""
    idx, owner = _ranges(gptr[G], gptr[G + 1])
    vals = price[gmem[idx]]
    counts = gptr[G + 1] - gptr[G]
    starts = np.cumsum(counts) - counts
    positions = np.arange(vals.size)
    best = np.minimum.reduceat(vals, starts)
    first = np.minimum.reduceat(np.where(vals == best[owner], positions, vals.size), starts)
    rest = vals.copy()
    rest[first] = np.inf
    second = np.minimum.reduceat(rest, starts)
    second_at = np.minimum.reduceat(np.where(rest == second[owner], positions, vals.size), starts)
    second_i = np.where(second_at < vals.size, gmem[idx[np.minimum(second_at, vals.size - 1)]], -1)
    regret = np.where(np.isfinite(second), second - best, 0.0)
    return regret, gmem[idx[first]], second_i, second


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
