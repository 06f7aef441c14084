"""Disruption event files (TOML or JSON) and the seeded weather stream model.

An event file lists what happened (or is forecast) after a plan was made::

    [stream]                      # optional
    name = "typhoon-day-2"
    description = "free text"

    [[events]]
    kind = "closure"              # closure | slowdown | release | due | cutoff | locomotive | shipment
    corridor = "CAN-SZX"
    start = 2026-08-10T16:00:00
    end = 2026-08-11T10:00:00
    announced = 2026-08-10T12:00:00   # optional: when the dispatcher learns of it (default below)

    [weather_model]               # optional: closures and slow-downs drawn from seeded rates
    seed = 7
    lead_hours = 2.0              # announced this long before they start
    [[weather_model.rates]]
    corridor = "*"                # a corridor id, or "*" for every corridor
    season = "summer"             # winter | spring | summer | autumn | all
    closures_per_day = 0.2
    slowdowns_per_day = 0.5

Kinds and their fields (every time an ISO 8601 date-time, kept to the whole minute with the
rounding of problem files):

- ``closure``: ``corridor``, ``start``, ``end``: no train may run on the corridor then;
- ``slowdown``: ``corridor``, ``start``, ``end``, ``speed_factor`` in [0.05, 1];
- ``release``: ``shipment``, ``release``: a delayed release (later than the current one);
- ``due``: ``shipment``, ``due``: a changed due time;
- ``cutoff``: ``berth``, ``cutoff``: a changed vessel cut-off;
- ``locomotive``: ``hub``, ``count``, ``start``, optional ``end``: locomotives out of service at a
  hub (they stand there, unusable, from ``start`` to ``end`` or for good);
- ``shipment``: every field of a problem file's ``[[shipments]]`` row: a new shipment.

``announced`` defaults to the event's ``start`` (closure, slow-down, locomotive), to the new
shipment's ``release``, and to the new time itself for ``release``, ``due`` and ``cutoff`` changes,
each capped to the horizon's start.

Applying events to a problem (:func:`apply_events`) rebuilds the problem document with the
changes and validates it with :func:`optimizer.freight.problem.parse_problem`, so every
cross-check of problem files applies to events too; an issue is reported against the event
that caused it (``events[3].corridor: unknown corridor id``). Locomotive outages are not part of
the problem schema: they come back as :class:`Outage` records that the re-planner turns into
model rows and checks (:mod:`optimizer.freight.replan`).

The weather model draws, per corridor, closures and slow-downs as Poisson processes whose
rates (per day) depend on the corridor and the meteorological season (northern hemisphere:
December-February winter, March-May spring, June-August summer, September-November autumn),
with uniform durations and speed factors between the given bounds. Each corridor draws from
its own stream, ``numpy.random.default_rng([seed, corridor position])``, so the same seed gives
the same events and adding a corridor leaves the other corridors' draws unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.freight.problem import (
    _F,
    _SECTIONS,
    LIMITS,
    Problem,
    _check_value,
    _Collector,
    _Field,
    _minutes_since,
    _text_problem,
    parse_problem,
    read_document,
)

__all__ = [
    "EVENT_KINDS",
    "SEASONS",
    "Disrupted",
    "Event",
    "EventFile",
    "Outage",
    "RateRow",
    "WeatherModel",
    "apply_events",
    "events_schema",
    "load_events",
    "parse_events",
    "problem_document",
    "season_of",
]

SEASONS = ("winter", "spring", "summer", "autumn")
_MONTH_SEASON = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
                 6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
#: Most events one file may list (drawn events included).
MAX_EVENTS = 10_000

_COMMON = (
    _F("kind", "string", "What happened", enum=("closure", "slowdown", "release", "due", "cutoff", "locomotive",
                                                "shipment")),
    _F("announced", "datetime", "When the dispatcher learns of it (ISO 8601; default: see the kind)",
       required=False),
    _F("description", "text", "Free text", required=False, default=""),
)
_WINDOW = (
    _F("start", "datetime", "Start (ISO 8601)"),
    _F("end", "datetime", "End (ISO 8601)"),
)
#: Fields of each kind, beyond kind / announced / description.
KIND_FIELDS: Mapping[str, tuple[_Field, ...]] = {
    "closure": (_F("corridor", "id", "Corridor id"), *_WINDOW),
    "slowdown": (_F("corridor", "id", "Corridor id"), *_WINDOW,
                 _F("speed_factor", "number", "Speed multiplier", minimum=0.05, maximum=1)),
    "release": (_F("shipment", "id", "Shipment id"),
                _F("release", "datetime", "New (later) release, ISO 8601")),
    "due": (_F("shipment", "id", "Shipment id"), _F("due", "datetime", "New due time, ISO 8601")),
    "cutoff": (_F("berth", "id", "Berth id"), _F("cutoff", "datetime", "New vessel cut-off, ISO 8601")),
    "locomotive": (_F("hub", "id", "Hub id"),
                   _F("count", "integer", "Locomotives out of service", minimum=1, maximum=100_000),
                   _F("start", "datetime", "Out of service from (ISO 8601)"),
                   _F("end", "datetime", "Back in service at (ISO 8601; default: not in this horizon)",
                      required=False)),
    "shipment": _SECTIONS["shipments"],
}
EVENT_KINDS = tuple(KIND_FIELDS)

_STREAM = (
    _F("name", "string", "Stream name", required=False, default=""),
    _F("description", "text", "Free text", required=False, default=""),
)
_MODEL = (
    _F("seed", "integer", "Seed of the draws", minimum=0, maximum=2**32 - 1),
    _F("lead_hours", "number", "Hours before its start that a drawn event is announced", required=False,
       minimum=0, maximum=24 * 366, default=0.0),
)
_RATE = (
    _F("corridor", "string", "Corridor id, or * for every corridor"),
    _F("season", "string", "Season the rates hold in", required=False, enum=(*SEASONS, "all"), default="all"),
    _F("closures_per_day", "number", "Expected closures starting per day", required=False, minimum=0, maximum=24,
       default=0.0),
    _F("closure_hours_min", "number", "Shortest closure, hours", required=False, exclusive_minimum=0, maximum=24 * 30,
       default=4.0),
    _F("closure_hours_max", "number", "Longest closure, hours", required=False, exclusive_minimum=0, maximum=24 * 30,
       default=12.0),
    _F("slowdowns_per_day", "number", "Expected slow-downs starting per day", required=False, minimum=0, maximum=24,
       default=0.0),
    _F("slowdown_hours_min", "number", "Shortest slow-down, hours", required=False, exclusive_minimum=0,
       maximum=24 * 30, default=4.0),
    _F("slowdown_hours_max", "number", "Longest slow-down, hours", required=False, exclusive_minimum=0,
       maximum=24 * 30, default=12.0),
    _F("speed_factor_min", "number", "Lowest slow-down speed factor", required=False, minimum=0.05, maximum=1,
       default=0.4),
    _F("speed_factor_max", "number", "Highest slow-down speed factor", required=False, minimum=0.05, maximum=1,
       default=0.8),
)


# ---------------------------------------------------------------------------- types
@dataclass(frozen=True)
class Event:
    """One event as the file states it (date-times, not yet hours)."""

    kind: str
    path: str  # where it came from: "events[3]", or "weather_model (corridor X, draw 2)"
    fields: Mapping[str, object]  # the kind's fields (date-times as datetime)
    announced: datetime | None = None  # None: the kind's default
    description: str = ""
    drawn: bool = False  # drawn by the weather model

    def get(self, name: str) -> object:
        return self.fields.get(name)

    @property
    def subject(self) -> str:
        """What it is about, for messages: a corridor, shipment, berth or hub id."""
        for key in ("corridor", "shipment", "berth", "hub", "id"):
            if self.fields.get(key) is not None:
                return str(self.fields[key])
        return ""

    def announced_at(self, start: datetime) -> datetime:
        """When the dispatcher learns of it (never before the horizon's ``start``)."""
        if self.announced is not None:
            when = self.announced
        else:
            key = {"closure": "start", "slowdown": "start", "locomotive": "start", "shipment": "release",
                   "release": "release", "due": "due", "cutoff": "cutoff"}[self.kind]
            when = self.fields[key]
        return max(when, start) if (when.tzinfo is None) == (start.tzinfo is None) else when

    def describe(self) -> str:
        f = self.fields
        if self.kind in ("closure", "slowdown"):
            what = "closed" if self.kind == "closure" else f"slowed to {f['speed_factor']:g} of its speed"
            return f"{f['corridor']} {what} from {f['start'].isoformat()} to {f['end'].isoformat()}"
        if self.kind == "release":
            return f"{f['shipment']} released only at {f['release'].isoformat()}"
        if self.kind == "due":
            return f"{f['shipment']} now due at {f['due'].isoformat()}"
        if self.kind == "cutoff":
            return f"vessel cut-off of {f['berth']} moved to {f['cutoff'].isoformat()}"
        if self.kind == "locomotive":
            until = f" until {f['end'].isoformat()}" if f.get("end") else ""
            return f"{f['count']} locomotive(s) out of service at {f['hub']} from {f['start'].isoformat()}{until}"
        return f"new shipment {f['id']} {f['origin']} -> {f['destination']}, released {f['release'].isoformat()}"

    def to_document(self) -> dict[str, object]:
        """The event as a file row (JSON-ready: date-times as ISO strings)."""
        row: dict[str, object] = {"kind": self.kind}
        for key, value in self.fields.items():
            if value is not None:
                row[key] = value.isoformat() if isinstance(value, datetime) else value
        if self.announced is not None:
            row["announced"] = self.announced.isoformat()
        if self.description:
            row["description"] = self.description
        return row


@dataclass(frozen=True)
class RateRow:
    corridor: str  # id or "*"
    season: str  # a season or "all"
    closures_per_day: float
    closure_hours: tuple[float, float]
    slowdowns_per_day: float
    slowdown_hours: tuple[float, float]
    speed_factor: tuple[float, float]


@dataclass(frozen=True)
class WeatherModel:
    """Closure and slow-down rates per corridor and season; draws are reproducible from ``seed``."""

    seed: int
    lead_hours: float = 0.0
    rates: tuple[RateRow, ...] = ()

    def rate(self, corridor: str, season: str) -> RateRow | None:
        """The most specific row for a corridor in a season: the corridor's own before ``*``, a
        season's own before ``all``; the first such row in the file."""
        best, rank = None, 4
        for row in self.rates:
            if row.corridor not in (corridor, "*") or row.season not in (season, "all"):
                continue
            r = (0 if row.corridor == corridor else 2) + (0 if row.season == season else 1)
            if r < rank:
                best, rank = row, r
        return best

    def draw(self, problem: Problem, *, seed: int | None = None) -> tuple[Event, ...]:
        """Closures and slow-downs over the horizon, announced ``lead_hours`` before they start."""
        seed = self.seed if seed is None else seed
        start = problem.horizon.start
        hours = problem.horizon.hours
        out: list[Event] = []
        for k, cor in enumerate(problem.corridors):
            rng = np.random.default_rng([seed, k])
            for kind in ("closure", "slowdown"):
                # Thinning: candidate starts at the highest rate of the horizon, each kept with
                # probability rate(t) / highest, so seasons may change inside the horizon.
                rates = {s: self._per_hour(cor.id, s, kind) for s in SEASONS}
                top = max(rates.values())
                if top <= 0:
                    continue
                t = 0.0
                draw = 0
                while True:
                    t += float(rng.exponential(1.0 / top))
                    if t >= hours:
                        break
                    u, a, b = rng.random(3)
                    when = start + timedelta(hours=t)
                    row = self.rate(cor.id, season_of(when))
                    if row is None or u * top >= rates[season_of(when)]:
                        continue
                    lo, hi = row.closure_hours if kind == "closure" else row.slowdown_hours
                    length = lo + (hi - lo) * float(a)
                    begin = _whole_minute(when)
                    fields = {"corridor": cor.id, "start": begin, "end": _whole_minute(when + timedelta(hours=length))}
                    if kind == "slowdown":
                        f_lo, f_hi = row.speed_factor
                        fields["speed_factor"] = round(f_lo + (f_hi - f_lo) * float(b), 3)
                    draw += 1
                    out.append(Event(kind, f"weather_model (corridor {cor.id}, {kind} {draw})", fields,
                                     announced=begin - timedelta(hours=self.lead_hours), drawn=True))
        return tuple(out)

    def _per_hour(self, corridor: str, season: str, kind: str) -> float:
        row = self.rate(corridor, season)
        if row is None:
            return 0.0
        return (row.closures_per_day if kind == "closure" else row.slowdowns_per_day) / 24.0


@dataclass(frozen=True)
class EventFile:
    """A validated event file: its listed events and, optionally, a weather model."""

    events: tuple[Event, ...]
    weather_model: WeatherModel | None = None
    name: str = ""
    description: str = ""
    source: str | None = None

    def stream(self, problem: Problem, *, seed: int | None = None) -> tuple[Event, ...]:
        """Listed and drawn events, in the order the dispatcher learns of them (file order on ties)."""
        drawn = self.weather_model.draw(problem, seed=seed) if self.weather_model else ()
        events = list(self.events) + list(drawn)
        start = problem.horizon.start
        order = sorted(range(len(events)), key=lambda i: (_comparable(events[i].announced_at(start), start), i))
        if len(events) > MAX_EVENTS:
            raise InputError(self.source, Issue("weather_model", f"draws {len(events):,} events, more than the "
                                                f"limit of {MAX_EVENTS:,}; lower the rates"))
        return tuple(events[i] for i in order)


@dataclass(frozen=True)
class Outage:
    """``count`` locomotives standing unusable at ``hub`` from ``start`` to ``end`` (minutes since
    the horizon start; ``end`` None: for good)."""

    hub: str
    count: int
    start: int
    end: int | None
    path: str  # the event it came from


@dataclass(frozen=True)
class Disrupted:
    """A problem with events applied: the new problem, its document, the outages, the events."""

    problem: Problem
    document: dict[str, object]
    outages: tuple[Outage, ...] = ()
    events: tuple[Event, ...] = ()
    #: For each shipment id touched by an event, the paths of those events.
    touched: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- reading
def _read_row(raw: object, fields: Sequence[_Field], path: str, out: _Collector,
              skip: Sequence[str] = ()) -> dict[str, object] | None:
    """Type- and range-check one table against ``fields`` (as problem files are checked)."""
    if not isinstance(raw, Mapping):
        out.add(path, "expected a table (object)", type(raw).__name__)
        return None
    known = {f.name: f for f in fields}
    result: dict[str, object] = {}
    for key in raw:
        if key not in known and key not in skip:
            shown = key if isinstance(key, str) and not _text_problem(key, multiline=False) else repr(key)
            out.add(f"{path}.{shown[:80]}", f"unknown field; expected one of {', '.join([*known, *skip])}")
    for name, f in known.items():
        if name not in raw:
            if f.required:
                out.add(f"{path}.{name}", "missing required field")
            result[name] = None if f.required else f.default
            continue
        result[name] = _check_value(f, raw[name], f"{path}.{name}", out)
    return result


def parse_events(data: object, *, source: str | None = None) -> EventFile:
    """Validate a parsed event document; raises one InputError listing every issue."""
    out = _Collector()
    if not isinstance(data, Mapping) or not data:
        raise InputError(source, Issue("(file)", "empty event file; expected [[events]] and/or [weather_model]"))
    for key in data:
        if key not in ("stream", "events", "weather_model"):
            shown = key if isinstance(key, str) and not _text_problem(key, multiline=False) else repr(key)
            out.add(shown[:80], "unknown section; expected stream, events or weather_model")
    meta = _read_row(data.get("stream", {}), _STREAM, "stream", out) or {}
    raw_events = data.get("events", [])
    events: list[Event] = []
    if not isinstance(raw_events, list):
        out.add("events", "expected a list of tables ([[events]] in TOML)", type(raw_events).__name__)
        raw_events = []
    if len(raw_events) > MAX_EVENTS:
        out.add("events", f"at most {MAX_EVENTS:,} events", len(raw_events))
        raw_events = []
    for i, raw in enumerate(raw_events):
        path = f"events[{i}]"
        if not isinstance(raw, Mapping):
            out.add(path, "expected a table (object)", type(raw).__name__)
            continue
        kind = raw.get("kind")
        if kind not in KIND_FIELDS:
            out.add(f"{path}.kind", "missing required field" if kind is None else
                    f"expected one of {', '.join(EVENT_KINDS)}", kind)
            continue
        common = _read_row({k: v for k, v in raw.items() if k in ("kind", "announced", "description")},
                           _COMMON, path, out)
        before = len(out.issues)
        row = _read_row({k: v for k, v in raw.items() if k not in ("kind", "announced", "description")},
                        KIND_FIELDS[kind], path, out, skip=("kind", "announced", "description"))
        if row is None or common is None or len(out.issues) > before:
            continue
        for a, b in (("start", "end"),):
            if row.get(a) is not None and row.get(b) is not None:
                if (row[a].tzinfo is None) != (row[b].tzinfo is None):
                    out.add(f"{path}.{b}", "mixes a date-time with a UTC offset and one without", row[b].isoformat())
                elif row[b] <= row[a]:
                    out.add(f"{path}.{b}", f"must be after {a} ({row[a].isoformat()})", row[b].isoformat())
        events.append(Event(kind, path, row, common.get("announced"), common.get("description") or ""))
    model = None
    if "weather_model" in data:
        model = _parse_model(data["weather_model"], out)
    if not events and model is None and not out.issues:
        out.add("events", "no events and no weather_model: nothing would happen")
    if out.issues:
        raise InputError(source, out.issues)
    return EventFile(tuple(events), model, meta.get("name") or "", meta.get("description") or "", source)


def _parse_model(raw: object, out: _Collector) -> WeatherModel | None:
    if not isinstance(raw, Mapping):
        out.add("weather_model", "expected a table", type(raw).__name__)
        return None
    head = _read_row({k: v for k, v in raw.items() if k != "rates"}, _MODEL, "weather_model", out, skip=("rates",))
    rows_raw = raw.get("rates", [])
    if not isinstance(rows_raw, list) or not rows_raw:
        out.add("weather_model.rates", "expected a non-empty list of tables ([[weather_model.rates]])")
        return None
    rows: list[RateRow] = []
    for i, item in enumerate(rows_raw[:1000]):
        path = f"weather_model.rates[{i}]"
        r = _read_row(item, _RATE, path, out)
        if r is None or any(v is None for v in r.values()):
            continue
        bad = False
        for lo, hi in (("closure_hours_min", "closure_hours_max"), ("slowdown_hours_min", "slowdown_hours_max"),
                       ("speed_factor_min", "speed_factor_max")):
            if r[lo] > r[hi]:
                out.add(f"{path}.{hi}", f"must be >= {lo} ({r[lo]:g})", r[hi])
                bad = True
        if not bad:
            rows.append(RateRow(r["corridor"], r["season"], r["closures_per_day"],
                                (r["closure_hours_min"], r["closure_hours_max"]), r["slowdowns_per_day"],
                                (r["slowdown_hours_min"], r["slowdown_hours_max"]),
                                (r["speed_factor_min"], r["speed_factor_max"])))
    if len(rows_raw) > 1000:
        out.add("weather_model.rates", "at most 1,000 rows", len(rows_raw))
    if head is None or head.get("seed") is None:
        return None
    return WeatherModel(head["seed"], float(head["lead_hours"] or 0.0), tuple(rows))


def load_events(path: str | Path) -> EventFile:
    """Read and validate an event file (TOML or JSON, by extension)."""
    return parse_events(read_document(path), source=str(path))


def events_schema() -> dict[str, object]:
    """JSON Schema (draft 2020-12) of event files, from the same field tables."""
    from optimizer.freight.problem import problem_schema

    shipment_props = problem_schema()["properties"]["shipments"]["items"]["properties"]

    def props(fields) -> dict[str, object]:
        out = {}
        for f in fields:
            if f.type == "datetime":
                p: dict[str, object] = {"type": "string", "format": "date-time"}
            elif f.type in ("id", "text"):
                p = {"type": "string"}
            else:
                p = {"type": f.type}
            p["description"] = f.description
            for key, value in (("minimum", f.minimum), ("maximum", f.maximum), ("exclusiveMinimum", f.exclusive_minimum)):
                if value is not None:
                    p[key] = value
            if f.enum:
                p["enum"] = list(f.enum)
            out[f.name] = p
        return out

    variants = []
    for kind, fields in KIND_FIELDS.items():
        p = {**props(_COMMON), **(shipment_props if kind == "shipment" else props(fields))}
        p["kind"] = {"const": kind}
        variants.append({"type": "object", "additionalProperties": False, "properties": p,
                         "required": ["kind", *(f.name for f in fields if f.required)]})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "qfreight event file",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "stream": {"type": "object", "additionalProperties": False, "properties": props(_STREAM)},
            "events": {"type": "array", "maxItems": MAX_EVENTS, "items": {"oneOf": variants}},
            "weather_model": {"type": "object", "additionalProperties": False, "properties": {
                **props(_MODEL), "rates": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "properties": props(_RATE),
                    "required": ["corridor"]}}}, "required": ["seed", "rates"]},
        },
    }


# ---------------------------------------------------------------------------- applying
def season_of(when: datetime) -> str:
    """Meteorological season of a date (northern hemisphere)."""
    return _MONTH_SEASON[when.month]


def _whole_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def _comparable(when: datetime, start: datetime) -> float:
    """Minutes since ``start``, or +inf when the two cannot be compared (reported elsewhere)."""
    if (when.tzinfo is None) != (start.tzinfo is None):
        return math.inf
    return (when - start).total_seconds() / 60.0


def problem_document(problem: Problem) -> dict[str, object]:
    """The problem as a document that :func:`parse_problem` turns back into the same problem
    (times are whole minutes, so the round trip is exact)."""
    dt = problem.hours_to_datetime
    doc: dict[str, object] = {
        "problem": {"name": problem.name, "description": problem.description},
        "horizon": {"start": problem.horizon.start, "slot_minutes": problem.horizon.slot_minutes,
                    "slots": problem.horizon.slots},
        "hubs": [{"id": h.id, "name": h.name, "kind": h.kind, "lat": h.lat, "lon": h.lon,
                  "yard_capacity": h.yard_capacity, "handling_hours": h.handling_hours,
                  "locomotives": h.locomotives, "turnaround_hours": h.turnaround_hours} for h in problem.hubs],
        "corridors": [{"id": c.id, "from": c.origin, "to": c.destination, "km": c.km, "speed_kmh": c.speed_kmh,
                       "capacity": c.capacity, "traction": c.traction} for c in problem.corridors],
        "shipments": [],
        "berths": [{"id": b.id, "port": b.port, "cutoff": dt(b.cutoff)} for b in problem.berths],
        "weather": [],
        "costs": {name: getattr(problem.costs, name) for name in (f.name for f in _SECTIONS["costs"])},
    }
    for s in problem.shipments:
        row = {"id": s.id, "origin": s.origin, "destination": s.destination, "wagons": s.wagons, "tonnes": s.tonnes,
               "commodity": s.commodity, "priority": s.priority, "release": dt(s.release), "due": dt(s.due)}
        if s.berth is not None:
            row["berth"] = s.berth
        if s.value_cny is not None:
            row["value_cny"] = s.value_cny
        doc["shipments"].append(row)
    for w in problem.weather:
        row = {"corridor": w.corridor, "start": dt(w.start), "end": dt(w.end)}
        if w.closed:
            row["closed"] = True
        else:
            row["speed_factor"] = w.speed_factor
        if w.description:
            row["description"] = w.description
        doc["weather"].append(row)
    if problem.operations.crew_duty_hours is not None:
        doc["operations"] = {"crew_duty_hours": problem.operations.crew_duty_hours}
    return doc


def apply_events(problem: Problem, events: Sequence[Event], *, source: str | None = None) -> Disrupted:
    """The problem with ``events`` applied (validated as a problem file; issues name the event).

    ``source`` names the event file in errors and becomes the derived problem's source.
    """
    doc = problem_document(problem)
    shipments: list[dict] = doc["shipments"]  # type: ignore[assignment]
    weather: list[dict] = doc["weather"]  # type: ignore[assignment]
    berths: list[dict] = doc["berths"]  # type: ignore[assignment]
    by_id = {row["id"]: k for k, row in enumerate(shipments)}
    berth_at = {row["id"]: k for k, row in enumerate(berths)}
    hubs = {h.id for h in problem.hubs}
    start = problem.horizon.start
    issues: list[Issue] = []
    # Document paths the validator may name -> the event that put the value there.
    path_of: dict[str, tuple[str, str | None]] = {}
    touched: dict[str, list[str]] = {}
    outages: list[Outage] = []

    def minute(when: datetime, path: str, rounding: str) -> int | None:
        if (when.tzinfo is None) != (start.tzinfo is None):
            issues.append(Issue(path, "mixes a date-time with a UTC offset and one without (horizon.start "
                                      f"{'has' if start.tzinfo else 'has no'} offset)", when.isoformat()))
            return None
        return _minutes_since(start, when, rounding)

    for event in events:
        f = event.fields
        p = event.path
        if event.announced is not None:
            minute(event.announced, f"{p}.announced", "down")
        if event.kind in ("closure", "slowdown"):
            row = {"corridor": f["corridor"], "start": f["start"], "end": f["end"],
                   "description": event.description or f"{event.kind} ({p})"}
            if event.kind == "closure":
                row["closed"] = True
            else:
                row["speed_factor"] = f["speed_factor"]
            path_of[f"weather[{len(weather)}]"] = (p, None)
            weather.append(row)
        elif event.kind in ("release", "due"):
            k = by_id.get(f["shipment"])
            if k is None:
                issues.append(Issue(f"{p}.shipment", "unknown shipment id", f["shipment"]))
                continue
            field_name = event.kind
            if field_name == "release":
                old = shipments[k]["release"]
                if minute(f["release"], f"{p}.release", "up") is not None and \
                        _minutes_since(start, f["release"], "up") <= _minutes_since(start, old, "up"):
                    issues.append(Issue(f"{p}.release", f"a delayed release must be later than the current one "
                                                        f"({old.isoformat()})", f["release"].isoformat()))
                    continue
            elif minute(f["due"], f"{p}.due", "down") is None:
                continue
            shipments[k][field_name] = f[field_name]
            path_of[f"shipments[{k}]"] = (p, field_name)
            touched.setdefault(f["shipment"], []).append(p)
        elif event.kind == "cutoff":
            k = berth_at.get(f["berth"])
            if k is None:
                issues.append(Issue(f"{p}.berth", "unknown berth id", f["berth"]))
                continue
            if minute(f["cutoff"], f"{p}.cutoff", "down") is None:
                continue
            berths[k]["cutoff"] = f["cutoff"]
            path_of[f"berths[{k}]"] = (p, "cutoff")
        elif event.kind == "locomotive":
            if f["hub"] not in hubs:
                issues.append(Issue(f"{p}.hub", "unknown hub id", f["hub"]))
                continue
            begin = minute(f["start"], f"{p}.start", "down")
            end = None if f.get("end") is None else minute(f["end"], f"{p}.end", "up")
            if begin is None or (f.get("end") is not None and end is None):
                continue
            if abs(begin) > 2 * LIMITS["horizon_minutes"]:
                issues.append(Issue(f"{p}.start", "more than two years away from horizon.start", f["start"].isoformat()))
                continue
            outages.append(Outage(f["hub"], int(f["count"]), begin, end, p))
        else:  # a new shipment
            row = {k: v for k, v in f.items() if v is not None}
            if row["id"] in by_id:
                issues.append(Issue(f"{p}.id", "a shipment with this id already exists", row["id"]))
                continue
            path_of[f"shipments[{len(shipments)}]"] = (p, None)
            by_id[row["id"]] = len(shipments)
            touched.setdefault(row["id"], []).append(p)
            shipments.append(row)
    try:
        derived = parse_problem(doc, source=source)
    except InputError as exc:
        raise InputError(source, issues + [_blame(issue, path_of) for issue in exc.issues]) from None
    if issues:
        raise InputError(source, issues)
    return Disrupted(derived, doc, tuple(outages), tuple(events), {k: tuple(v) for k, v in touched.items()})


def _blame(issue: Issue, path_of: Mapping[str, tuple[str, str | None]]) -> Issue:
    """An issue of the rebuilt problem document, named after the event that caused it: a changed
    shipment's or berth's issue goes to the event's own field, a new row's to the same field."""
    head, _, rest = issue.field.partition(".")
    found = path_of.get(head)
    if found is None:
        return replace(issue, field=f"(problem) {issue.field}")
    event, own = found
    name = own or rest
    if head.startswith("weather[") and name == "closed":
        name = "speed_factor"
    message = issue.message if not own or own == rest else f"leaves the shipment's {rest} invalid: {issue.message}"
    return replace(issue, field=f"{event}.{name}" if name else event, message=message)
