"""Synthetic problem instances of any size (``qfreight generate``), reproducible from a seed.

Hubs are scattered over a 2,000 km square; corridors join each hub to its nearest neighbours
(a connected, sparse, roughly planar network, like a real trunk network). A quarter of the
hubs are transfer yards and a sixth are ports with a berth each. Shipments get random
origin-destination pairs, release times over the first two thirds of the horizon, and a due
time of 1.5 to 3 times the straight-line travel time. One weather event slows a corridor.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

__all__ = ["generate_document"]

_COMMODITIES = ("containers", "coal", "steel", "grain", "automobiles", "chemicals", "perishable fruit",
                "electronics")


def generate_document(*, hubs: int, shipments: int, seed: int, slots: int = 18, slot_minutes: int = 240,
                      start: datetime = datetime(2026, 3, 2)) -> dict[str, object]:
    """A problem document (the dict a TOML/JSON problem file parses to)."""
    if hubs < 2:
        raise ValueError("need at least 2 hubs")
    if shipments < 1:
        raise ValueError("need at least 1 shipment")
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 2000, size=(hubs, 2))  # km
    kinds = np.array(["inland"] * hubs, dtype=object)
    order = rng.permutation(hubs)
    kinds[order[: max(1, hubs // 4)]] = "transfer"
    kinds[order[max(1, hubs // 4): max(1, hubs // 4) + max(1, hubs // 6)]] = "port"
    ids = [f"H{i:03d}" for i in range(hubs)]

    hub_rows = []
    for i in range(hubs):
        hub_rows.append({
            "id": ids[i], "name": f"Hub {i}", "kind": str(kinds[i]),
            "lat": float(20 + xy[i, 1] / 111.0), "lon": float(100 + xy[i, 0] / 95.0),
            "yard_capacity": int(rng.integers(1, 4)) if kinds[i] == "transfer" else int(rng.integers(2, 6)),
            "handling_hours": float(rng.choice([2.0, 3.0, 4.0])),
            "locomotives": int(rng.integers(max(2, shipments // hubs), max(3, shipments // hubs) + 4)),
        })

    # Nearest-neighbour edges plus a chain through a random order, so the network is connected.
    dist = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
    np.fill_diagonal(dist, np.inf)
    pairs: set[tuple[int, int]] = set()
    k = min(3, hubs - 1)
    nearest = np.argsort(dist, axis=1)[:, :k]
    for i in range(hubs):
        for j in nearest[i]:
            pairs.add((min(i, int(j)), max(i, int(j))))
    chain = rng.permutation(hubs)
    for a, b in zip(chain[:-1], chain[1:]):
        if (min(a, b), max(a, b)) not in pairs and dist[a, b] < 800:
            pairs.add((min(int(a), int(b)), max(int(a), int(b))))
    # Ensure connectivity: join components through their closest pair.
    parent = list(range(hubs))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        parent[find(a)] = find(b)
    roots = {find(i) for i in range(hubs)}
    while len(roots) > 1:
        members = np.array([find(i) for i in range(hubs)])
        first = members == members[0]
        sub = dist[np.ix_(np.flatnonzero(first), np.flatnonzero(~first))]
        a, b = np.unravel_index(np.argmin(sub), sub.shape)
        a, b = int(np.flatnonzero(first)[a]), int(np.flatnonzero(~first)[b])
        pairs.add((min(a, b), max(a, b)))
        parent[find(a)] = find(b)
        roots = {find(i) for i in range(hubs)}

    corridor_rows = []
    for a, b in sorted(pairs):
        corridor_rows.append({
            "from": ids[a], "to": ids[b], "km": float(round(dist[a, b] * 1.25 + 10, 1)),
            "speed_kmh": float(rng.choice([60.0, 80.0, 100.0])),
            "capacity": int(rng.integers(1, 4)),
            "traction": str(rng.choice(["diesel", "electric"])),
        })

    ports = [ids[i] for i in range(hubs) if kinds[i] == "port"]
    horizon_hours = slots * slot_minutes / 60.0
    berth_rows = [{"id": f"B-{p}", "port": p, "cutoff": start + timedelta(hours=float(
        rng.uniform(0.6, 1.0) * horizon_hours + 24))} for p in ports]

    shipment_rows = []
    for s in range(shipments):
        o, d = rng.choice(hubs, size=2, replace=False)
        release = float(rng.uniform(0, horizon_hours * 2 / 3))
        release = round(release / (slot_minutes / 60)) * (slot_minutes / 60)
        travel = dist[o, d] * 1.25 / 70.0
        due = release + travel * float(rng.uniform(1.5, 3.0)) + 6
        row = {
            "id": f"S{s:05d}", "origin": ids[o], "destination": ids[d],
            "wagons": int(rng.integers(5, 41)), "tonnes": 0.0,
            "commodity": str(rng.choice(_COMMODITIES)), "priority": int(rng.integers(1, 6)),
            "release": start + timedelta(hours=release), "due": start + timedelta(hours=due),
        }
        row["tonnes"] = float(round(row["wagons"] * rng.uniform(40, 65), 1))
        if ids[d] in ports and rng.random() < 0.5:
            row["berth"] = f"B-{ids[d]}"
        shipment_rows.append(row)

    weather = []
    if corridor_rows:
        c = corridor_rows[int(rng.integers(len(corridor_rows)))]
        weather.append({"corridor": f"{c['from']}-{c['to']}", "start": start + timedelta(hours=horizon_hours / 4),
                        "end": start + timedelta(hours=horizon_hours / 2), "speed_factor": 0.5,
                        "description": "synthetic heavy rain"})

    doc: dict[str, object] = {
        "problem": {"name": f"synthetic-h{hubs}-s{shipments}-seed{seed}",
                    "description": f"qfreight generate --hubs {hubs} --shipments {shipments} --seed {seed}"},
        "horizon": {"start": start, "slot_minutes": slot_minutes, "slots": slots},
        "hubs": hub_rows, "corridors": corridor_rows, "shipments": shipment_rows, "weather": weather,
    }
    if berth_rows:
        doc["berths"] = berth_rows
    return doc
