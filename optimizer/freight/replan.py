"""Re-planning from a running plan: the frozen state at a time, and what it leaves open.

Conventions (minutes since the horizon start, like :mod:`optimizer.freight.network`):

- At minute ``at``, a leg is *frozen* when its train entered the corridor before ``at``. A
  shipment with a frozen leg has *departed*: it keeps its route up to the hub its last frozen leg
  reaches (its next yard), and its departure slot. When every leg is frozen the whole plan is
  *pinned*. Everything else (shipments not departed, deferred ones, new ones) is open, with every
  leg entering at or after ``at``. A departure at exactly ``at`` is still open.
- Light engines that entered before ``at`` are frozen too, and so is every train count of a batch
  entering before ``at`` (the model may neither add nor remove trains in the past).
- Events contradict the frozen part (:func:`conflicts`) when a closure or slow-down would change
  the run of a frozen train, a delayed release concerns a shipment whose train has left before
  the new release, a due-time change concerns a shipment already delivered, or an outage takes
  locomotives that frozen trains need.
- Stability: every candidate whose (route, departure slot) differs from the plan in force costs
  ``change_cost`` CNY more, in the cost criterion (:func:`with_stability`); so does moving a
  shipment the plan deferred. New shipments have no plan in force and cost nothing extra.

Locomotive outages (``locomotive`` events) are rows of the derived model (:func:`outage_rows`)
and an independent check of plans (:func:`outage_violations`): at every moment of the outage,
at least ``count`` locomotives stand at the hub, so ``count`` fewer can leave.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError, Issue
from optimizer.freight.candidates import CandidateSet, Restriction
from optimizer.freight.evaluate import Assignment, LightEngine, Plan, train_batches
from optimizer.freight.events import Event, Outage
from optimizer.freight.model import aux_layout
from optimizer.freight.network import Leg, Movement, Network, minutes
from optimizer.freight.problem import Problem
from optimizer.freight.trains import Batches, fleet_times

__all__ = [
    "Frozen",
    "conflicts",
    "departed_rows",
    "fixed_assignment",
    "freeze",
    "frozen_rows",
    "frozen_violations",
    "keep_plan",
    "outage_rows",
    "outage_violations",
    "plan_changes",
    "plan_diff",
    "plan_from_table",
    "restrictions",
    "with_light_engines",
    "with_stability",
]


@dataclass(frozen=True, eq=False)
class Frozen:
    """A running plan's state at minute ``at``."""

    at: int  # minutes since the horizon start
    problem: Problem  # the problem the plan was made for
    plan: Plan
    moves: Mapping[str, Movement]  # every moved shipment's movement under ``problem``
    frozen_legs: Mapping[str, tuple[Leg, ...]]  # departed shipments: their legs entered before ``at``
    light_engines: tuple[LightEngine, ...]  # the plan's light engines that entered before ``at``
    trains_before: Mapping[tuple[int, int, int], int]  # (corridor, direction, slot) entering before at -> trains

    @property
    def departed(self) -> frozenset[str]:
        return frozenset(self.frozen_legs)

    def pinned(self, shipment: str) -> bool:
        legs = self.frozen_legs.get(shipment)
        return legs is not None and len(legs) == len(self.moves[shipment].legs)


def _key(problem: Problem, corridor: str, origin: str, slot: int) -> tuple[int, int, int]:
    c = problem.corridor_index[corridor]
    return c, 0 if problem.corridors[c].origin == origin else 1, slot


def freeze(problem: Problem, plan: Plan, at: int) -> Frozen:
    """The frozen part of ``plan`` at minute ``at`` (see the module docstring)."""
    network = Network(problem)
    slot_min = problem.horizon.slot_minutes
    moves = {a.shipment: network.traverse(a.route, a.slot * problem.horizon.slot_hours)
             for a in plan.assignments if a.route is not None}
    frozen_legs = {}
    for sid, move in moves.items():
        legs = tuple(leg for leg in move.legs if minutes(leg.enter) < at)
        if legs:
            frozen_legs[sid] = legs
    engines = tuple(le for le in plan.light_engines if le.slot * slot_min < at)
    trains = {}
    for b in train_batches(problem, plan, moves, network):
        if b.enter < at:
            trains[_key(problem, b.corridor, b.origin, b.enter // slot_min)] = b.trains
    return Frozen(at, problem, plan, moves, frozen_legs, engines, trains)


# ---------------------------------------------------------------------------- contradictions
def _minute(problem: Problem, when, rounding: str) -> int:
    seconds = (when - problem.horizon.start).total_seconds()
    return math.ceil(seconds / 60.0 - 1e-9) if rounding == "up" else math.floor(seconds / 60.0 + 1e-9)


def conflicts(frozen: Frozen, events: Sequence[Event]) -> list[Issue]:
    """Every way ``events`` contradict the frozen part of the plan (empty: none)."""
    problem = frozen.problem
    slot_min = problem.horizon.slot_minutes
    issues: list[Issue] = []
    network = Network(problem)
    runs: dict[str, list[tuple[int, int, str]]] = defaultdict(list)  # corridor -> (enter, exit, what)
    for sid, legs in frozen.frozen_legs.items():
        for leg in legs:
            runs[leg.corridor].append((minutes(leg.enter), minutes(leg.exit), f"shipment {sid}'s train"))
    for le in frozen.light_engines:
        c = problem.corridors[problem.corridor_index[le.corridor]]
        enter = le.slot * slot_min
        exit_, _ = network.run(c, enter)
        runs[le.corridor].append((enter, enter if exit_ is None else exit_, f"a light engine {le.origin}>{le.destination}"))
    at_text = problem.hours_to_datetime(frozen.at / 60.0).isoformat()
    for event in events:
        f = event.fields
        if (f.get("start") is not None and (f["start"].tzinfo is None) != (problem.horizon.start.tzinfo is None)):
            continue  # reported when the events are applied
        if event.kind in ("closure", "slowdown"):
            start, end = _minute(problem, f["start"], "down"), _minute(problem, f["end"], "up")
            for enter, exit_, what in runs.get(f["corridor"], ()):
                if start < exit_ and enter < end:
                    issues.append(Issue(f"{event.path}.start", f"{'closes' if event.kind == 'closure' else 'slows'} "
                                        f"{f['corridor']} while {what}, frozen at {at_text}, runs on it from "
                                        f"{problem.hours_to_datetime(enter / 60).isoformat()} to "
                                        f"{problem.hours_to_datetime(exit_ / 60).isoformat()}; start it after that "
                                        "or re-plan from a later time", f["start"].isoformat()))
                    break
        elif event.kind == "release":
            legs = frozen.frozen_legs.get(f["shipment"])
            if legs and _minute(problem, f["release"], "up") > minutes(legs[0].enter):
                issues.append(Issue(f"{event.path}.release", f"shipment {f['shipment']} left at "
                                    f"{problem.hours_to_datetime(legs[0].enter).isoformat()}, before {at_text}",
                                    f["release"].isoformat()))
        elif event.kind == "due":
            sid = f["shipment"]
            if frozen.pinned(sid) and minutes(frozen.moves[sid].arrive) < frozen.at:
                issues.append(Issue(f"{event.path}.due", f"shipment {sid} was delivered at "
                                    f"{problem.hours_to_datetime(frozen.moves[sid].arrive).isoformat()}, before "
                                    f"{at_text}", f["due"].isoformat()))
        elif event.kind == "locomotive" and f["hub"] in problem.hub_index:
            start = _minute(problem, f["start"], "down")
            end = None if f.get("end") is None else _minute(problem, f["end"], "up")
            short = _fleet_shortfall(problem, frozen_batches(frozen), Outage(f["hub"], f["count"], start, end,
                                                                              event.path), before=frozen.at)
            if short is not None:
                issues.append(Issue(f"{event.path}.count", f"trains frozen at {at_text} need these locomotives: "
                                    f"{short}", f["count"]))
    return issues


def frozen_batches(frozen: Frozen):
    """The trains of the frozen part (batches entering before ``at``), as :func:`train_batches` gives them."""
    part = Plan(tuple(Assignment(a.shipment, a.route, a.slot) for a in frozen.plan.assignments
                      if a.shipment in frozen.frozen_legs), (), frozen.light_engines)
    batches = train_batches(frozen.problem, part)
    return [b for b in batches if b.enter < frozen.at]


def _fleet_shortfall(problem: Problem, batches, outage: Outage, *, before: int | None = None) -> str | None:
    """Why ``count`` locomotives cannot stand at the hub through the outage, given ``batches``
    (the trains run); None when they can. With ``before``, only moments before it are checked
    (what the frozen part alone decides)."""
    hub = problem.hub(outage.hub)
    turnaround = math.ceil(hub.turnaround_hours * 60.0 - 1e-9)
    changes: list[tuple[int, int, int]] = []  # (minute, order: arrivals first, change)
    for b in batches:
        if b.origin == hub.id:
            changes.append((b.enter, 1, -b.trains))
        if b.destination == hub.id:
            changes.append((b.exit + turnaround, 0, b.trains))
    changes.sort()
    end = math.inf if outage.end is None else outage.end
    stock = hub.locomotives
    checks = [outage.start] + [m for m, order, _ in changes if order == 1 and outage.start < m < end]
    if before is not None:
        checks = [t for t in checks if t < before]
    k = 0
    for t in sorted(checks):
        while k < len(changes) and changes[k][0] <= t:
            stock += changes[k][2]
            k += 1
        if stock < outage.count:
            return (f"at {problem.hours_to_datetime(t / 60).isoformat()} only {max(stock, 0)} locomotive(s) are at "
                    f"{hub.id}, {outage.count} out of service")
    return None


# ---------------------------------------------------------------------------- what stays open
def restrictions(frozen: Frozen, problem: Problem) -> dict[str, Restriction]:
    """Per shipment of the (derived) ``problem``: pinned, a frozen prefix, or open from ``at``."""
    old = {a.shipment: a for a in frozen.plan.assignments}
    out: dict[str, Restriction] = {}
    for s in problem.shipments:
        a = old.get(s.id)
        keep = None if a is None or a.route is None else (a.route, a.slot)
        legs = frozen.frozen_legs.get(s.id)
        if legs is None:
            out[s.id] = Restriction(not_before=frozen.at, keep=keep)
        elif frozen.pinned(s.id):
            out[s.id] = Restriction(route=a.route, slot=a.slot, pinned=True)
        else:
            out[s.id] = Restriction(route=a.route[: len(legs) + 1], slot=a.slot, not_before=frozen.at, keep=keep)
    return out


def with_light_engines(cset: CandidateSet, engines: Mapping[tuple[int, int, int], int]) -> CandidateSet:
    """``cset`` with batches that can run at least the given light engines (corridor, direction,
    slot) -> count, so that the plan in force (and its frozen light engines) stays representable.
    Batches a closure now stops are left out."""
    if not engines:
        return cset
    problem = cset.problem
    network = Network(problem)
    slot_min = problem.horizon.slot_minutes
    b = cset.batches
    cols = {name: list(getattr(b, name).tolist()) for name in
            ("corridor", "direction", "slot", "exit", "origin", "destination", "capacity", "loaded_max", "light_max")}
    index = dict(b.index)
    for (c, d, s), count in sorted(engines.items()):
        k = index.get((c, d, s))
        if k is None:
            cor = problem.corridors[c]
            exit_, _ = network.run(cor, s * slot_min)
            if exit_ is None:
                continue
            a, z = (cor.origin, cor.destination) if d == 0 else (cor.destination, cor.origin)
            for name, value in (("corridor", c), ("direction", d), ("slot", s), ("exit", exit_),
                                ("origin", problem.hub_index[a]), ("destination", problem.hub_index[z]),
                                ("capacity", cor.capacity), ("loaded_max", 0), ("light_max", count)):
                cols[name].append(value)
            index[(c, d, s)] = len(cols["slot"]) - 1
        else:
            cols["light_max"][k] = max(cols["light_max"][k], count)
    batches = Batches(*(np.array(cols[name], dtype=np.int64) for name in
                        ("corridor", "direction", "slot", "exit", "origin", "destination", "capacity", "loaded_max",
                         "light_max")))
    return replace(cset, batches=batches)


def plan_changes(cset: CandidateSet, plan: Plan) -> np.ndarray:
    """(candidates,) 1 where a candidate differs from ``plan`` in route or departure slot (moving
    a shipment the plan deferred included); 0 for the plan's own choice and new shipments."""
    old = {a.shipment: (a.route, a.slot) for a in plan.assignments}
    out = np.zeros(len(cset.candidates))
    for i, cand in enumerate(cset.candidates):
        if cand.shipment in old and old[cand.shipment] != (cand.route, cand.slot):
            out[i] = 1.0
    return out


def with_stability(cset: CandidateSet, plan: Plan, change_cost: float) -> CandidateSet:
    """``cset`` whose candidates that change ``plan`` cost ``change_cost`` CNY more (in the cost
    criterion, kept to the fen; the change appears as ``change_cny`` in the cost terms)."""
    if change_cost <= 0:
        return cset
    cost = round(float(change_cost), 2)
    changed = plan_changes(cset, plan)
    candidates = tuple(
        replace(c, cost=round(c.cost + cost, 2), cost_terms={**c.cost_terms, "change_cny": cost},
                terms=(round(c.terms[0] + cost, 2), *c.terms[1:])) if changed[i] else c
        for i, c in enumerate(cset.candidates))
    return replace(cset, candidates=candidates)


# ---------------------------------------------------------------------------- model rows
def _batch_bits(cset: CandidateSet) -> tuple[np.ndarray, np.ndarray]:
    """(B + 1,) start of each batch's bits among the auxiliary bits, and the bits' weights."""
    layout = aux_layout(cset)
    return np.searchsorted(layout.bit_batch, np.arange(layout.num_batches + 1)), layout.bit_weight


def _append_rows(model, rows: list[tuple[list[int], list[float], float, str]]):
    if not rows:
        return model
    n = model.num_variables
    r = [k for k, (cols, _, _, _) in enumerate(rows) for _ in cols]
    c = [j for cols, _, _, _ in rows for j in cols]
    v = [x for _, vals, _, _ in rows for x in vals]
    extra = sp.csr_array((np.array(v, dtype=np.float64), (np.array(r, dtype=np.int64), np.array(c, dtype=np.int64))),
                         shape=(len(rows), n))
    return replace(model, A=sp.vstack([model.A, extra]).tocsr(), b=np.concatenate([model.b, [row[2] for row in rows]]),
                   row_names=model.row_names + tuple(row[3] for row in rows))


def frozen_rows(model, cset: CandidateSet, frozen: Frozen):
    """``model`` plus rows that keep every train count of a batch entering before ``at`` at the
    plan's value (frozen light engines stay; none is added in the past)."""
    problem = cset.problem
    slot_min = problem.horizon.slot_minutes
    starts, weights = _batch_bits(cset)
    n_plans = len(cset.candidates)
    rows = []
    batches = cset.batches
    for b in np.flatnonzero(batches.slot * slot_min < frozen.at).tolist():
        upper = int(batches.upper[b])
        value = frozen.trains_before.get((int(batches.corridor[b]), int(batches.direction[b]), int(batches.slot[b])), 0)
        if value == 0 and upper == 0:
            continue
        if value > upper:
            raise InputError(None, Issue("(re-plan)", f"batch {cset.batches.label(problem, b)} ran {value} trains "
                                         f"before the re-plan time but can now run at most {upper}"))
        cols = list(range(n_plans + starts[b], n_plans + starts[b + 1]))
        w = weights[starts[b]:starts[b + 1]].astype(float).tolist()
        label = cset.batches.label(problem, b)
        rows.append((cols, w, float(value), f"frozen trains {label} <= {value}"))
        if value > 0:
            rows.append((cols, [-x for x in w], -float(value), f"frozen trains {label} >= {value}"))
    missing = set(frozen.trains_before) - set(cset.batches.index)
    if missing:
        raise InputError(None, Issue("(re-plan)", f"{len(missing)} train batch(es) of the frozen part are not in the "
                                     "re-plan's candidate set"))
    return _append_rows(model, rows)


def departed_rows(model, cset: CandidateSet, rules: Mapping[str, Restriction]):
    """``model`` plus a row ``x <= 0`` on the defer candidate of every shipment that has departed
    (a train on the network cannot be deferred)."""
    rows = [([i], [1.0], 0.0, f"departed {c.shipment}: no deferral") for i, c in enumerate(cset.candidates)
            if c.deferred and c.shipment in rules and not rules[c.shipment].may_defer]
    return _append_rows(model, rows)


def outage_rows(model, cset: CandidateSet, outages: Sequence[Outage]):
    """``model`` plus, per outage, one row at its start and one at every departure boundary
    during it: departures so far - locomotives available from arrivals <= fleet - count."""
    problem = cset.problem
    batches = cset.batches
    slot_min = problem.horizon.slot_minutes
    starts, weights = _batch_bits(cset)
    n_plans = len(cset.candidates)
    avail = fleet_times(problem, batches)
    upper = batches.upper
    rows = []
    for out in outages:
        h = problem.hub_index[out.hub]
        end = math.inf if out.end is None else out.end
        dep = np.flatnonzero((batches.origin == h) & (upper > 0))
        arr = np.flatnonzero((batches.destination == h) & (upper > 0))
        times = sorted({out.start} | {int(s) * slot_min for s in batches.slot[dep].tolist()
                                      if out.start < int(s) * slot_min < end})
        for t in times:
            cols: list[int] = []
            vals: list[float] = []
            for members, sign, when in ((dep, 1.0, batches.slot[dep] * slot_min), (arr, -1.0, avail[arr])):
                for b in members[when <= t].tolist():
                    cols.extend(range(n_plans + starts[b], n_plans + starts[b + 1]))
                    vals.extend((sign * weights[starts[b]:starts[b + 1]]).astype(float).tolist())
            if cols:
                rows.append((cols, vals, float(problem.hub(out.hub).locomotives - out.count),
                             f"outage {out.hub} @{problem.hours_to_datetime(t / 60).isoformat()} ({out.path})"))
            elif problem.hub(out.hub).locomotives < out.count:
                raise InputError(None, Issue(f"{out.path}.count", f"{out.hub} has only "
                                             f"{problem.hub(out.hub).locomotives} locomotive(s)", out.count))
    return _append_rows(model, rows)


def fixed_assignment(cset: CandidateSet, frozen: Frozen) -> np.ndarray:
    """A partial model assignment for the dispatchers: the departed shipments' plans in force
    (re-timed under the new weather) and the frozen trains; every other group left open."""
    old = {a.shipment: (a.route, a.slot) for a in frozen.plan.assignments}
    layout = aux_layout(cset)
    x = np.zeros(layout.num_variables, dtype=np.uint8)
    for members in cset.groups:
        sid = cset.candidates[members[0]].shipment
        if sid not in frozen.frozen_legs:
            continue
        match = [i for i in members if (cset.candidates[i].route, cset.candidates[i].slot) == old[sid]]
        x[match[0] if match else next(i for i in members if not cset.candidates[i].deferred)] = 1
    trains = np.zeros(layout.num_batches, dtype=np.int64)
    for key, value in frozen.trains_before.items():
        trains[cset.batches.index[key]] = value
    x[layout.num_plans:] = layout.encode(trains, cset.batches.upper)
    return x


# ---------------------------------------------------------------------------- checks
def outage_violations(problem: Problem, plan: Plan, outages: Sequence[Outage]) -> list[str]:
    """Independent check of a plan against locomotive outages (empty: none violated)."""
    if not outages:
        return []
    batches = train_batches(problem, plan)
    out = []
    for outage in outages:
        why = _fleet_shortfall(problem, batches, outage)
        if why is not None:
            out.append(f"locomotive outage {outage.path}: {why}")
    return out


def frozen_violations(frozen: Frozen, problem: Problem, plan: Plan) -> list[str]:
    """Frozen legs that ``plan`` (for the derived ``problem``) does not keep exactly (corridor,
    entry and exit minute), and frozen light engines it drops."""
    network = Network(problem)
    by_id = {a.shipment: a for a in plan.assignments}
    out = []
    for sid, legs in frozen.frozen_legs.items():
        a = by_id.get(sid)
        if a is None or a.route is None:
            out.append(f"shipment {sid}: departed before the re-plan time but has no route")
            continue
        move = network.traverse(a.route, a.slot * problem.horizon.slot_hours)
        got = [(leg.corridor, minutes(leg.enter), minutes(leg.exit)) for leg in move.legs[: len(legs)]]
        want = [(leg.corridor, minutes(leg.enter), minutes(leg.exit)) for leg in legs]
        if got != want:
            out.append(f"shipment {sid}: frozen legs changed ({want} -> {got})")
    have = defaultdict(int)
    for le in plan.light_engines:
        have[(le.corridor, le.origin, le.slot)] += le.count
    for le in frozen.light_engines:
        if have[(le.corridor, le.origin, le.slot)] < le.count:
            out.append(f"light engine {le.origin}>{le.destination} in slot {le.slot}: frozen but dropped")
    return out


def keep_plan(frozen: Frozen, problem: Problem) -> Plan:
    """The plan in force, for the derived ``problem``: new shipments deferred."""
    old = {a.shipment: a for a in frozen.plan.assignments}
    return Plan(tuple(old.get(s.id, Assignment(s.id, None, None)) for s in problem.shipments), (),
                frozen.plan.light_engines)


# ---------------------------------------------------------------------------- results files
def plan_from_table(problem: Problem, rows: object, engines: object, *, source: str | None) -> Plan:
    """A plan from a results document's ``plan`` and ``light_engines`` lists (as
    :func:`optimizer.freight.evaluate.plan_table` writes them); issues name the row."""
    issues: list[Issue] = []
    if not isinstance(rows, list):
        raise InputError(source, Issue("plan", "expected a list of plan rows"))
    got: dict[str, Assignment] = {}
    slots = problem.horizon.slots
    for k, row in enumerate(rows):
        path = f"plan[{k}]"
        if not isinstance(row, Mapping) or not isinstance(row.get("shipment"), str):
            issues.append(Issue(path, "expected a table with a shipment id"))
            continue
        sid = row["shipment"]
        if sid in got:
            issues.append(Issue(f"{path}.shipment", "planned twice", sid))
            continue
        if row.get("status") == "deferred":
            got[sid] = Assignment(sid, None, None)
            continue
        route, slot = row.get("route"), row.get("departure_slot")
        if not (isinstance(route, list) and len(route) >= 2 and all(isinstance(h, str) for h in route)):
            issues.append(Issue(f"{path}.route", "expected a list of at least two hub ids", route))
            continue
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < slots:
            issues.append(Issue(f"{path}.departure_slot", f"expected an integer slot in 0..{slots - 1}", slot))
            continue
        got[sid] = Assignment(sid, tuple(route), slot)
    known = {s.id for s in problem.shipments}
    for sid in sorted(set(got) - known):
        issues.append(Issue("plan", "shipment not in the problem", sid))
    for s in problem.shipments:
        if s.id not in got:
            issues.append(Issue("plan", "the problem's shipment has no plan row", s.id))
    light: list[LightEngine] = []
    if engines is not None and not isinstance(engines, list):
        issues.append(Issue("light_engines", "expected a list"))
        engines = []
    for k, row in enumerate(engines or ()):
        try:
            light.append(LightEngine(str(row["corridor"]), str(row["from"]), str(row["to"]), int(row["slot"]),
                                     int(row.get("count", 1))))
        except (KeyError, TypeError, ValueError):
            issues.append(Issue(f"light_engines[{k}]", "expected corridor, from, to, slot and count"))
    if issues:
        raise InputError(source, issues)
    return Plan(tuple(got[s.id] for s in problem.shipments), (), tuple(light))


def plan_diff(old_problem: Problem, old_plan: Plan, new_problem: Problem, new_plan: Plan) -> list[dict[str, object]]:
    """Each shipment whose plan changed: what changed (route, departure, arrival, status) and the
    old and new plan (ISO times). The old plan is timed as it was planned."""
    old_net, new_net = Network(old_problem), Network(new_problem)
    old = {a.shipment: a for a in old_plan.assignments}
    dues = {s.id: s.due for s in new_problem.shipments}

    def view(problem, network, a) -> dict[str, object] | None:
        if a is None:
            return None
        if a.route is None:
            return {"status": "deferred"}
        move = network.traverse(a.route, a.slot * problem.horizon.slot_hours)
        return {"status": "moved", "route": list(a.route), "departure_slot": a.slot,
                "depart": problem.hours_to_datetime(move.legs[0].enter).isoformat(),
                "arrive": problem.hours_to_datetime(move.arrive).isoformat(),
                "late_hours": round(max(0.0, move.arrive - dues[a.shipment]), 3)}

    out = []
    for a in new_plan.assignments:
        before, after = view(old_problem, old_net, old.get(a.shipment)), view(new_problem, new_net, a)
        if before is None:
            changed = ["new shipment"]
        elif before["status"] != after["status"]:
            changed = [f"{before['status']} -> {after['status']}"]
        elif after["status"] == "deferred":
            changed = []
        else:
            changed = [what for what, key in (("route", "route"), ("departure", "depart"), ("arrival", "arrive"))
                       if before[key] != after[key]]
        if changed:
            out.append({"shipment": a.shipment, "changed": changed, "old": before, "new": after})
    return out
