"""Small freight instances for model and evaluation tests (built in code, validated like files)."""

from __future__ import annotations

from datetime import datetime, timedelta

from optimizer.freight.problem import Problem, parse_problem

START = datetime(2026, 3, 2)


def small_document(*, shipments: int = 3, wagons: tuple[int, ...] = (30, 30, 20), slots: int = 2,
                   corridor_capacity: int = 1, yard_capacity: int = 1, locomotives: int = 3,
                   due_hours: tuple[float, ...] = (30, 36, 15), wagons_per_train: int = 50,
                   locomotives_t: int = 1, locomotives_b: int = 1) -> dict:
    """A -> T -> B line (T a transfer yard) with shipments from A to B or T; shapes mimic tiny.toml."""
    doc = {
        "problem": {"name": "small"},
        "horizon": {"start": START, "slot_minutes": 360, "slots": slots},
        "hubs": [
            {"id": "A", "name": "A", "kind": "inland", "lat": 30.0, "lon": 104.0, "yard_capacity": 2,
             "handling_hours": 3.0, "locomotives": locomotives},
            {"id": "T", "name": "T", "kind": "transfer", "lat": 34.0, "lon": 109.0, "yard_capacity": yard_capacity,
             "handling_hours": 4.0, "locomotives": locomotives_t},
            {"id": "B", "name": "B", "kind": "port", "lat": 34.5, "lon": 113.0, "yard_capacity": 2,
             "handling_hours": 3.0, "locomotives": locomotives_b},
        ],
        "corridors": [
            {"from": "A", "to": "T", "km": 800.0, "speed_kmh": 80.0, "capacity": corridor_capacity,
             "traction": "electric"},
            {"from": "T", "to": "B", "km": 500.0, "speed_kmh": 80.0, "capacity": 2, "traction": "diesel"},
        ],
        "shipments": [],
        "costs": {"wagons_per_train": wagons_per_train},
    }
    for s in range(shipments):
        doc["shipments"].append({
            "id": f"S{s + 1}", "origin": "A", "destination": "B" if s % 3 != 2 else "T",
            "wagons": wagons[s % len(wagons)], "tonnes": 50.0 * wagons[s % len(wagons)],
            "commodity": "containers", "priority": 1 + s % 5, "release": START,
            "due": START + timedelta(hours=due_hours[s % len(due_hours)]),
        })
    return doc


def small_problem(**kw) -> Problem:
    return parse_problem(small_document(**kw), source="small")


def hub(hub_id: str, *, kind: str = "inland", yard: int = 5, handling: float = 1.0, locomotives: int = 5,
        turnaround: float = 1.0) -> dict:
    return {"id": hub_id, "name": hub_id, "kind": kind, "lat": 30.0, "lon": 110.0, "yard_capacity": yard,
            "handling_hours": handling, "locomotives": locomotives, "turnaround_hours": turnaround}


def corridor(a: str, b: str, *, km: float = 160.0, speed: float = 80.0, capacity: int = 2,
             traction: str = "diesel") -> dict:
    return {"from": a, "to": b, "km": km, "speed_kmh": speed, "capacity": capacity, "traction": traction}


def shipment(sid: str, origin: str, destination: str, *, wagons: int = 10, release: float = 0.0,
             due: float = 48.0, priority: int = 2, **extra) -> dict:
    return {"id": sid, "origin": origin, "destination": destination, "wagons": wagons, "tonnes": 40.0 * wagons,
            "commodity": "containers", "priority": priority, "release": START + timedelta(hours=release),
            "due": START + timedelta(hours=due), **extra}


def network_document(hubs: list[dict], corridors: list[dict], shipments: list[dict], *, slots: int = 4,
                     slot_minutes: int = 60, wagons_per_train: int = 50, weather: list[dict] | None = None) -> dict:
    doc = {"problem": {"name": "case"}, "horizon": {"start": START, "slot_minutes": slot_minutes, "slots": slots},
           "hubs": hubs, "corridors": corridors, "shipments": shipments,
           "costs": {"wagons_per_train": wagons_per_train}}
    if weather:
        doc["weather"] = weather
    return doc


def network_problem(*args, **kw) -> Problem:
    return parse_problem(network_document(*args, **kw), source="case")
