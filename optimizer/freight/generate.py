"""Synthetic problem instances of any size (``qfreight generate``), reproducible from a seed.

The instance is drawn to look like a national trunk network under a day's demand:

- **Network.** Hubs are scattered over a 2,000 km square. Corridors are the Euclidean minimum
  spanning tree (so the network is connected) plus each hub's three nearest neighbours: a
  sparse, roughly planar network. Line km are 1.25 x the straight line + 10 km. Ports are the
  sixth of the hubs nearest the east coast (largest x), each with one berth and a vessel
  cut-off between 60 % and 100 % of the horizon plus a day.
- **Demand.** Every hub has a size (lognormal, ports twice as large); origins and destinations
  are drawn in proportion to size. Releases fall in the first two thirds of the horizon, on slot
  boundaries; the due time is the release plus 1.5 to 3 times the fastest route's hours, plus
  6 h. Half of the shipments to a port are for its berth.
- **Capacity sized to demand.** Every shipment is routed on its fastest route to measure the
  trains each corridor, yard and hub fleet would carry (wagons / (wagons_per_train x 0.8 fill),
  spread over 80 % of the slots). Corridors get 1.3 to 2 times the busier direction's trains per
  slot as paths. The quarter of the hubs with the most through traffic (ports excluded) are
  transfer yards, sized at 0.8 to 1.1 times their load, so that they congest; other yards get 1.5
  to 2.5 times theirs. Fleets are 35 % to 60 % of a hub's departing trains, plus one. Every
  capacity is capped at the schema's maximum (so very many shipments on few hubs overload the
  network: give such demand more hubs).
- **Weather.** One event on one of the busiest tenth of the corridors: heavy rain halves the
  speed from a quarter to half of the horizon, with a six-hour closure in the middle of it.

Every draw comes from one ``numpy.random.Generator`` seeded with ``seed``, in a fixed order, so
a seed gives the same document. Memory and time are linear in shipments (the demand is routed
per distinct origin, in chunks) and about linear in hubs (k-d tree and Delaunay triangulation,
no hubs x hubs matrix). Sizes that the problem limits (:data:`optimizer.freight.problem.LIMITS`)
would refuse are refused up front with an :class:`~optimizer.errors.InputError` naming the flag.

:func:`write_document` writes a document to an open text file section by section and row by
row, so a 100,000-shipment file never exists as one string in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TextIO

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay, QhullError, cKDTree

from optimizer.errors import InputError, Issue
from optimizer.freight.problem import LIMITS, Costs, problem_schema

__all__ = ["generate_document", "write_document"]

_COMMODITIES = ("containers", "coal", "steel", "grain", "automobiles", "chemicals", "perishable fruit",
                "electronics")
_SOURCE = "qfreight generate"
#: Most corridors a generated network can have per hub (MST edges plus three neighbours each).
_CORRIDORS_PER_HUB = 4
#: Origins routed per Dijkstra call (a chunk holds origins x hubs distances and predecessors).
_ROUTE_CHUNK = 256
#: Share of a train's wagon places used on average when sizing capacity from demand.
_FILL = 0.8


def _schema_max(section: str, name: str) -> int:
    """The largest value the problem schema accepts for ``[[section]] name``."""
    return int(problem_schema()["properties"][section]["items"]["properties"][name]["maximum"])


def _check_sizes(hubs: int, shipments: int, slots: int, slot_minutes: int) -> None:
    """Refuse, before allocating anything, sizes a problem file could not have."""
    issues = []
    for flag, value, lo, hi in (("--hubs", hubs, 2, LIMITS["hubs"]), ("--shipments", shipments, 1, LIMITS["shipments"]),
                                ("--slots", slots, 1, None)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            issues.append(Issue(flag, "expected a whole number", value))
        elif value < lo or (hi is not None and value > hi):
            issues.append(Issue(flag, f"expected {lo} to {hi:,}" if hi else f"expected at least {lo}", value))
    if not isinstance(slot_minutes, (int, np.integer)) or slot_minutes < 1:
        issues.append(Issue("slot_minutes", "expected a whole number of minutes, at least 1", slot_minutes))
    if issues:
        raise InputError(_SOURCE, issues)
    corridors = _CORRIDORS_PER_HUB * hubs
    for flag, size, limit, what in (
            ("--slots", slots * slot_minutes, "horizon_minutes", "slots x slot_minutes"),
            ("--shipments", shipments * slots, "shipments_x_slots", "shipments x slots"),
            ("--hubs", hubs * slots, "hubs_x_slots", "hubs x slots"),
            ("--hubs", hubs * slots * slots, "hubs_x_slots_squared", "hubs x slots^2"),
            ("--hubs", corridors, "corridors", f"corridors (up to {_CORRIDORS_PER_HUB} per hub)"),
            ("--hubs", corridors * slots, "corridors_x_slots", "corridors x slots")):
        if size > LIMITS[limit]:
            issues.append(Issue(flag, f"{what} = {size:,} exceeds the problem limit {limit} = {LIMITS[limit]:,}; "
                                      "a problem file that large would be refused", size))
    if issues:
        raise InputError(_SOURCE, issues)


def _corridor_pairs(xy: np.ndarray) -> np.ndarray:
    """(k, 2) hub pairs a < b: Euclidean MST (connected) plus three nearest neighbours."""
    n = len(xy)
    if n <= 3:
        return np.array([(a, b) for a in range(n) for b in range(a + 1, n)], dtype=np.int64)
    try:
        tri = Delaunay(xy)
        simplex_edges = np.concatenate([tri.simplices[:, [0, 1]], tri.simplices[:, [1, 2]], tri.simplices[:, [0, 2]]])
    except QhullError:  # degenerate (collinear) points: every pair is a candidate edge
        simplex_edges = np.array([(a, b) for a in range(n) for b in range(a + 1, n)], dtype=np.int64)
    e = np.unique(np.sort(simplex_edges, axis=1), axis=0)
    length = np.linalg.norm(xy[e[:, 0]] - xy[e[:, 1]], axis=1)
    # The EMST is a subgraph of the Delaunay triangulation; tiny offset keeps zero lengths as edges.
    mst = minimum_spanning_tree(sp.coo_array((length + 1e-9, (e[:, 0], e[:, 1])), shape=(n, n))).tocoo()
    _, nearest = cKDTree(xy).query(xy, k=min(4, n))
    near = np.stack([np.repeat(np.arange(n), nearest.shape[1] - 1), nearest[:, 1:].ravel()], axis=1)
    pairs = np.concatenate([np.stack([mst.row, mst.col], axis=1), near]).astype(np.int64)
    return np.unique(np.sort(pairs, axis=1), axis=0)


def generate_document(*, hubs: int, shipments: int, seed: int, slots: int = 18, slot_minutes: int = 240,
                      start: datetime = datetime(2026, 3, 2)) -> dict[str, object]:
    """A problem document (the dict a TOML/JSON problem file parses to); see the module docstring."""
    _check_sizes(hubs, shipments, slots, slot_minutes)
    H, N = int(hubs), int(shipments)
    rng = np.random.default_rng(seed)
    slot_h = slot_minutes / 60.0
    horizon_hours = slots * slot_h
    W = Costs().wagons_per_train

    # Network.
    xy = rng.uniform(0, 2000, size=(H, 2))  # km
    port = np.zeros(H, dtype=bool)
    port[np.argsort(-xy[:, 0], kind="stable")[: max(1, H // 6)]] = True
    pairs = _corridor_pairs(xy)
    C = len(pairs)
    straight = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1)
    km = np.round(straight * 1.25 + 10, 1)
    speed = rng.choice([60.0, 80.0, 100.0], size=C)
    traction = rng.choice(["diesel", "electric"], size=C)
    handling = rng.choice([2.0, 3.0, 4.0], size=H)
    hours = km / speed + (handling[pairs[:, 0]] + handling[pairs[:, 1]]) / 2
    graph = sp.csr_array((np.concatenate([hours, hours]),
                          (np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]]))),
                         shape=(H, H))
    # Directed corridor lookup: code a * H + b -> corridor, direction (0: pairs[c, 0] -> pairs[c, 1]).
    dir_code = np.concatenate([pairs[:, 0] * H + pairs[:, 1], pairs[:, 1] * H + pairs[:, 0]])
    dir_order = np.argsort(dir_code)
    dir_code = dir_code[dir_order]

    # Demand.
    size = rng.lognormal(0.0, 0.75, size=H) * np.where(port, 2.0, 1.0)
    p = size / size.sum()
    origin = rng.choice(H, size=N, p=p)
    destination = rng.choice(H, size=N, p=p)
    same = np.flatnonzero(origin == destination)
    while same.size:
        destination[same] = rng.choice(H, size=same.size, p=p)
        same = same[origin[same] == destination[same]]
    wagons = rng.integers(5, 41, size=N)
    tonnes = np.round(wagons * rng.uniform(40, 65, size=N), 1)
    commodity = rng.integers(len(_COMMODITIES), size=N)
    priority = rng.integers(1, 6, size=N)
    release = np.round(rng.uniform(0, horizon_hours * 2 / 3, size=N) / slot_h) * slot_h
    slack = rng.uniform(1.5, 3.0, size=N)
    to_berth = port[destination] & (rng.random(size=N) < 0.5)

    # Route every shipment on its fastest path: hours for the due time, wagons for the capacities.
    fastest = np.zeros(N)
    flow = np.zeros(2 * C)  # wagons per directed corridor: c forward (pairs[c, 0] -> pairs[c, 1]), C + c back
    through = np.zeros(H)  # wagons passing through (not starting or ending) at each hub
    arriving = np.zeros(H)  # wagons arriving at each hub (through traffic included)
    by_origin = np.argsort(origin, kind="stable")
    origins, first = np.unique(origin[by_origin], return_index=True)
    bounds = np.append(first, N)
    for lo in range(0, origins.size, _ROUTE_CHUNK):
        chunk = origins[lo:lo + _ROUTE_CHUNK]
        dist, pred = dijkstra(graph, indices=chunk, return_predecessors=True)
        members = by_origin[bounds[lo]:bounds[min(lo + _ROUTE_CHUNK, origins.size)]]
        row = np.searchsorted(chunk, origin[members])
        fastest[members] = dist[row, destination[members]]
        cur = destination[members].copy()
        w = wagons[members].astype(np.float64)
        home = origin[members]
        while cur.size:
            prev = pred[row, cur]
            k = dir_order[np.searchsorted(dir_code, prev * H + cur)]
            np.add.at(flow, k, w)
            np.add.at(arriving, cur, w)
            going = prev != home
            np.add.at(through, prev[going], w[going])
            row, cur, w, home = row[going], prev[going], w[going], home[going]
    due_minutes = np.floor((release + fastest * slack + 6.0) * 60.0).astype(np.int64)  # whole minutes

    active = max(1.0, 0.8 * slots)
    trains_per_slot = flow / (W * _FILL) / active
    busier = np.maximum(trains_per_slot[:C], trains_per_slot[C:])  # flow: C forward, then C backward
    # Capacities follow demand up to what the schema accepts (beyond it the network is simply
    # too small for the demand: spread it over more hubs).
    paths = np.clip(np.ceil(busier * rng.uniform(1.3, 2.0, size=C)), 1, _schema_max("corridors", "capacity"))
    paths = paths.astype(np.int64)
    transfer = np.zeros(H, dtype=bool)
    inland = np.flatnonzero(~port)
    busiest_through = inland[np.argsort(-through[inland], kind="stable")]
    transfer[busiest_through[: max(1, H // 4)]] = True
    yard_load = arriving / (W * _FILL) / active * (1.0 + handling / slot_h)
    yard = np.where(transfer, np.maximum(1, np.ceil(yard_load * rng.uniform(0.8, 1.1, size=H))),
                    np.maximum(2, np.ceil(yard_load * rng.uniform(1.5, 2.5, size=H))))
    yard = np.minimum(yard, _schema_max("hubs", "yard_capacity")).astype(np.int64)
    departing = np.zeros(H)
    np.add.at(departing, np.concatenate([pairs[:, 0], pairs[:, 1]]), flow / (W * _FILL))
    fleet = np.minimum(np.ceil(departing * rng.uniform(0.35, 0.6, size=H)) + 1,
                       _schema_max("hubs", "locomotives")).astype(np.int64)
    cutoff_minutes = np.floor((rng.uniform(0.6, 1.0, size=H) * horizon_hours + 24) * 60.0).astype(np.int64)

    # Rows.
    hub_width = max(3, len(str(H - 1)))
    ids = [f"H{i:0{hub_width}d}" for i in range(H)]
    kinds = np.where(port, "port", np.where(transfer, "transfer", "inland"))
    hub_rows = [{"id": ids[i], "name": f"Hub {i}", "kind": str(kinds[i]), "lat": float(20 + xy[i, 1] / 111.0),
                 "lon": float(100 + xy[i, 0] / 95.0), "yard_capacity": int(yard[i]),
                 "handling_hours": float(handling[i]), "locomotives": int(fleet[i])} for i in range(H)]
    corridor_rows = [{"from": ids[a], "to": ids[b], "km": float(km[c]), "speed_kmh": float(speed[c]),
                      "capacity": int(paths[c]), "traction": str(traction[c])}
                     for c, (a, b) in enumerate(pairs.tolist())]
    berth_rows = [{"id": f"B-{ids[i]}", "port": ids[i], "cutoff": start + timedelta(minutes=int(cutoff_minutes[i]))}
                  for i in np.flatnonzero(port).tolist()]
    ship_width = max(5, len(str(N - 1)))
    shipment_rows = []
    o_list, d_list = origin.tolist(), destination.tolist()
    for s, (w_s, t_s, c_s, p_s, r_s, u_s, b_s) in enumerate(zip(
            wagons.tolist(), tonnes.tolist(), commodity.tolist(), priority.tolist(), release.tolist(), due_minutes.tolist(),
            to_berth.tolist())):
        row = {"id": f"S{s:0{ship_width}d}", "origin": ids[o_list[s]], "destination": ids[d_list[s]],
               "wagons": w_s, "tonnes": t_s, "commodity": _COMMODITIES[c_s], "priority": p_s,
               "release": start + timedelta(hours=r_s), "due": start + timedelta(minutes=u_s)}
        if b_s:
            row["berth"] = f"B-{ids[d_list[s]]}"
        shipment_rows.append(row)

    weather = []
    if C:
        top = np.argsort(-(flow[:C] + flow[C:]), kind="stable")[: max(1, C // 10)]
        c = corridor_rows[int(top[rng.integers(top.size)])]
        cid = f"{c['from']}-{c['to']}"
        mid = 3 * horizon_hours / 8
        weather = [
            {"corridor": cid, "start": start + timedelta(hours=horizon_hours / 4),
             "end": start + timedelta(hours=horizon_hours / 2), "speed_factor": 0.5,
             "description": "synthetic heavy rain"},
            {"corridor": cid, "start": start + timedelta(hours=mid - 3), "end": start + timedelta(hours=mid + 3),
             "closed": True, "description": "synthetic heavy rain: line closed"},
        ]

    doc: dict[str, object] = {
        "problem": {"name": f"synthetic-h{H}-s{N}-seed{seed}",
                    "description": f"qfreight generate --hubs {H} --shipments {N} --seed {seed} --slots {slots}"},
        "horizon": {"start": start, "slot_minutes": slot_minutes, "slots": slots},
        "hubs": hub_rows, "corridors": corridor_rows, "shipments": shipment_rows, "weather": weather,
    }
    if berth_rows:
        doc["berths"] = berth_rows
    return doc


def _chunks(rows: list, size: int = 2000) -> Iterable[list]:
    for k in range(0, len(rows), size):
        yield rows[k:k + size]


def write_document(doc: dict[str, object], out: TextIO, *, fmt: str = "toml") -> None:
    """Write a problem document to ``out`` as TOML (``[[shipments]]`` tables) or JSON, a chunk of
    rows at a time (memory stays that of the document, not of its text)."""
    if fmt == "json":
        out.write("{")
        for n, (key, value) in enumerate(doc.items()):
            out.write(("," if n else "") + f"\n {json.dumps(key)}: ")
            if isinstance(value, list):
                out.write("[")
                for k, rows in enumerate(_chunks(value)):
                    out.write(("," if k else "") + ",".join(
                        "\n  " + json.dumps(r, default=_iso) for r in rows))
                out.write("\n ]")
            else:
                out.write(json.dumps(value, default=_iso))
        out.write("\n}\n")
        return
    if fmt != "toml":
        raise ValueError(f"unknown format {fmt!r}; expected 'toml' or 'json'")
    import tomli_w

    tables = {k: v for k, v in doc.items() if not isinstance(v, list)}
    out.write(tomli_w.dumps(tables))
    for key, value in doc.items():
        if isinstance(value, list):
            for rows in _chunks(value):
                out.write("".join(f"\n[[{key}]]\n" + tomli_w.dumps(r) for r in rows))


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
