"""Freight problem files (TOML or JSON, one schema) and the validated domain model.

Units: times are datetimes in files and hours since the horizon start inside qfreight;
distances km, speeds km/h, masses tonnes, fuel litres, electricity kWh, money CNY, CO2 kg.

Times are kept to the whole minute: a release is rounded up to the next minute, a due time
and a vessel cut-off down, a weather event's start down and its end up (every rounding makes
the plan a little more conservative). Run, handling and turnaround times are rounded up to
the minute by :mod:`optimizer.freight.network`. Durations are therefore exact multiples of a
minute, which lets dwell and lateness enter integer constraint rows exactly.

Train formation (wagonload): a shipment's wagons may be split across trains on any leg, and
trains are re-formed at every yard. The trains entering a corridor in one direction in one
slot are ``ceil(wagons entering / wagons_per_train)``; corridor ``capacity`` limits them (train
paths per slot per direction) and a hub's ``yard_capacity`` limits the trains it handles per
slot (every train arriving, at an intermediate hub or at the destination, occupies the yard in
every slot its handling time overlaps).

Validation collects every issue it finds (with the field path, e.g. ``shipments[3].due``)
before raising one :class:`InputError`, so ``qfreight validate`` can list them all. Every
numeric field has a stated, physically plausible range, and the sizes whose product drives
the model's size are bounded (:data:`LIMITS`), so anything that validates can be prepared.
"""

from __future__ import annotations

import json
import math
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from optimizer.errors import InputError, Issue

__all__ = [
    "HUB_KINDS",
    "LIMITS",
    "TRAIN_FORMATION_RULE",
    "Berth",
    "Corridor",
    "Operations",
    "Costs",
    "Horizon",
    "Hub",
    "Problem",
    "Shipment",
    "WeatherEvent",
    "load_problem",
    "parse_problem",
    "problem_schema",
]

HUB_KINDS = ("inland", "transfer", "port")
TRACTIONS = ("diesel", "electric")

#: The one train-formation rule, as the schema and the README state it.
TRAIN_FORMATION_RULE = (
    "Wagonload: a shipment's wagons may be split across trains on any leg and trains are re-formed at every "
    "yard, so the trains entering a corridor in one direction in one slot are ceil(wagons entering / "
    "wagons_per_train); every train, loaded or running light, uses one train path and, where it arrives, "
    "one yard place in each slot its handling time overlaps."
)

#: Size limits (inclusive). The products bound the number of candidate plans, train batches and
#: yard/fleet rows, so that whatever validates can be prepared in bounded time and memory.
LIMITS: Mapping[str, int] = {
    "hubs": 5_000,
    "corridors": 20_000,
    "shipments": 100_000,
    "berths": 5_000,
    "weather": 10_000,
    "horizon_minutes": 366 * 24 * 60,  # slots x slot_minutes: at most a year
    "shipments_x_slots": 2_000_000,
    "corridors_x_slots": 1_000_000,
    "hubs_x_slots": 200_000,
    "hubs_x_slots_squared": 20_000_000,  # locomotive balance rows: one per hub and slot, over all earlier slots
    "id_length": 64,
    "name_length": 120,
    "text_length": 2_000,
}
_YEARS = (1970, 2200)


# ---------------------------------------------------------------------------- domain types
@dataclass(frozen=True)
class Horizon:
    start: datetime
    slot_minutes: int
    slots: int

    @property
    def slot_hours(self) -> float:
        return self.slot_minutes / 60.0

    @property
    def hours(self) -> float:
        return self.slots * self.slot_hours

    def slot_of(self, hour: float) -> int:
        """Index of the slot containing ``hour`` (hours since start); may exceed ``slots``."""
        return int(math.floor(hour / self.slot_hours + 1e-9))

    def next_boundary(self, hour: float) -> float:
        """The first slot boundary at or after ``hour``."""
        return math.ceil(hour / self.slot_hours - 1e-9) * self.slot_hours


@dataclass(frozen=True)
class Hub:
    id: str
    name: str
    kind: str  # inland | transfer | port
    lat: float
    lon: float
    yard_capacity: int  # trains handled per slot
    handling_hours: float
    locomotives: int  # initial fleet based here at the horizon start
    turnaround_hours: float = 2.0  # a locomotive arriving here can leave again this much later


@dataclass(frozen=True)
class Corridor:
    id: str
    origin: str
    destination: str
    km: float
    speed_kmh: float
    capacity: int  # train paths per slot per direction
    traction: str  # diesel | electric


@dataclass(frozen=True)
class Shipment:
    id: str
    origin: str
    destination: str
    wagons: int
    tonnes: float  # net cargo tonnes
    commodity: str
    priority: int  # 1 (low) .. 5 (high)
    release: float  # hours since horizon start
    due: float  # hours since horizon start
    berth: str | None = None
    value_cny: float | None = None  # what not moving it in this horizon costs, per priority unit


@dataclass(frozen=True)
class Berth:
    id: str
    port: str
    cutoff: float  # hours since horizon start: cargo must be at the port (handled) by then


@dataclass(frozen=True)
class WeatherEvent:
    corridor: str
    start: float
    end: float
    speed_factor: float  # 0 < f <= 1; 0 means closed
    description: str = ""

    @property
    def closed(self) -> bool:
        return self.speed_factor == 0.0


@dataclass(frozen=True)
class Costs:
    """Cost, fuel and emission parameters. Money in CNY.

    Fuel defaults are US Class I railway figures (AAR / STB; ``../shared/data/china_network/
    operating_parameters.csv``), labelled as such: stand-ins, not Chinese data. Emission factors:
    diesel 2.68 kg CO2 per litre (US EIA, Voluntary Reporting of Greenhouse Gases Program, fuel
    emission coefficients: 10.15 kg CO2 per US gallon of distillate fuel / diesel, i.e.
    10.15 / 3.785 = 2.68 kg per litre); electricity 0.5366 kg CO2 per kWh (China Ministry of
    Ecology and Environment, national average grid emission factor for 2022, published
    26 December 2024). Revenue: 0.1551 CNY per tonne-km, the national railway freight benchmark
    rate set by the NDRC from 1 February 2015 (Xinhua, 30 January 2015).
    """

    wagons_per_train: int = 50
    tare_tonnes_per_wagon: float = 23.0
    locomotive_tonnes: float = 150.0
    diesel_litres_per_gross_tonne_km: float = 0.0054
    diesel_litres_per_idle_locomotive_hour: float = 15.0
    electric_kwh_per_gross_tonne_km: float = 0.02
    diesel_price_per_litre: float = 7.8
    electricity_price_per_kwh: float = 0.7
    train_cost_per_km: float = 30.0
    dwell_cost_per_wagon_hour: float = 5.0
    lateness_cost_per_priority_hour: float = 2000.0
    berth_miss_cost: float = 50000.0
    revenue_per_tonne_km: float = 0.1551
    co2_kg_per_diesel_litre: float = 2.68
    co2_kg_per_kwh: float = 0.5366


@dataclass(frozen=True)
class Operations:
    """Operating rules that restrict which plans exist (hours).

    ``crew_duty_hours``: the longest a crew may work a train before it is relieved. Crews are
    relieved at transfer yards (hubs of kind ``transfer``) and at the train's origin and
    destination; a crew's duty runs from the train entering the first corridor after a relief
    point to its arrival at the next one, stops at other hubs (handling, waiting for a slot)
    included. A plan with a longer stretch does not exist (the model never offers it, the plan
    check refuses it). ``None``: no limit.
    """

    crew_duty_hours: float | None = None


@dataclass(frozen=True)
class Problem:
    name: str
    horizon: Horizon
    hubs: tuple[Hub, ...]
    corridors: tuple[Corridor, ...]
    shipments: tuple[Shipment, ...]
    berths: tuple[Berth, ...] = ()
    weather: tuple[WeatherEvent, ...] = ()
    costs: Costs = field(default_factory=Costs)
    description: str = ""
    source: str | None = None
    operations: Operations = field(default_factory=Operations)

    def hub(self, hub_id: str) -> Hub:
        return self._hubs[hub_id]

    def berth(self, berth_id: str) -> Berth:
        return self._berths[berth_id]

    @cached_property
    def _hubs(self) -> dict[str, Hub]:
        return {h.id: h for h in self.hubs}

    @cached_property
    def _berths(self) -> dict[str, Berth]:
        return {b.id: b for b in self.berths}

    @cached_property
    def hub_index(self) -> dict[str, int]:
        return {h.id: i for i, h in enumerate(self.hubs)}

    @cached_property
    def corridor_index(self) -> dict[str, int]:
        return {c.id: i for i, c in enumerate(self.corridors)}

    def hours_to_datetime(self, hours: float) -> datetime:
        return self.horizon.start + timedelta(minutes=round(hours * 60.0))


# ---------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class _Field:
    name: str
    type: str  # string | id | text | integer | number | datetime | boolean
    description: str
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    enum: tuple[str, ...] | None = None
    default: Any = None


def _F(name, type_, description, **kw) -> _Field:
    return _Field(name, type_, description, **kw)


_COSTS: tuple[tuple[str, str, float, float], ...] = (
    # name, description, minimum, maximum (a plausible range for each, so sums fit 64-bit integers in fen)
    ("wagons_per_train", "Wagons per train (the longest test train in China had 324 cars, "
                         "operating_parameters.csv)", 1, 400),
    ("tare_tonnes_per_wagon", "Empty wagon mass, tonnes", 0, 100),
    ("locomotive_tonnes", "Locomotive mass, tonnes", 0, 1000),
    ("diesel_litres_per_gross_tonne_km", "Diesel use, litres per gross tonne-km (US figure)", 0, 0.1),
    ("diesel_litres_per_idle_locomotive_hour", "Diesel use of an idling locomotive, litres/hour (US figure)", 0, 500),
    ("electric_kwh_per_gross_tonne_km", "Electric traction use, kWh per gross tonne-km", 0, 1),
    ("diesel_price_per_litre", "CNY per litre of diesel", 0, 100),
    ("electricity_price_per_kwh", "CNY per kWh", 0, 100),
    ("train_cost_per_km", "Crew and path cost per train-km, CNY (also for a locomotive running light)", 0, 10_000),
    ("dwell_cost_per_wagon_hour", "Cost of a wagon waiting at a yard, CNY per wagon-hour", 0, 10_000),
    ("lateness_cost_per_priority_hour", "Lateness cost, CNY per hour per priority unit", 0, 1_000_000),
    ("berth_miss_cost", "Extra cost of missing a vessel cut-off, CNY", 0, 1e9),
    ("revenue_per_tonne_km", "Freight revenue, CNY per net tonne-km: a deferred shipment without value_cny "
                             "costs tonnes x this x its shortest route's km x priority", 0, 100),
    ("co2_kg_per_diesel_litre", "CO2 emitted per litre of diesel, kg", 0, 10),
    ("co2_kg_per_kwh", "CO2 emitted per kWh of grid electricity, kg", 0, 10),
)

_SECTIONS: dict[str, tuple[_Field, ...]] = {
    "problem": (
        _F("name", "string", "Instance name"),
        _F("description", "text", "Free text", required=False, default=""),
    ),
    "horizon": (
        _F("start", "datetime", "Start of slot 0 (ISO 8601)"),
        _F("slot_minutes", "integer", "Length of a departure slot, minutes", minimum=1, maximum=7 * 24 * 60),
        _F("slots", "integer", "Number of departure slots", minimum=1, maximum=10_000),
    ),
    "hubs": (
        _F("id", "id", "Unique hub id"),
        _F("name", "string", "Display name"),
        _F("kind", "string", "Hub kind", enum=HUB_KINDS),
        _F("lat", "number", "Latitude, degrees", minimum=-90, maximum=90),
        _F("lon", "number", "Longitude, degrees", minimum=-180, maximum=180),
        _F("yard_capacity", "integer", "Trains the yard handles per slot: every train arriving here occupies a "
                                       "place in each slot its handling time overlaps", minimum=0, maximum=1000),
        _F("handling_hours", "number", "Handling time of a train at this hub, hours", minimum=0, maximum=168),
        _F("locomotives", "integer", "Locomotives based here at the horizon start", minimum=0, maximum=100_000),
        _F("turnaround_hours", "number", "Time before a locomotive that arrived here can leave again, hours",
           required=False, minimum=0, maximum=168, default=2.0),
    ),
    "corridors": (
        _F("id", "id", "Corridor id (default FROM-TO)", required=False),
        _F("from", "id", "Hub id at one end"),
        _F("to", "id", "Hub id at the other end"),
        _F("km", "number", "Line length, km", exclusive_minimum=0, maximum=10_000),
        _F("speed_kmh", "number", "Scheduled freight speed, km/h", minimum=5, maximum=400),
        _F("capacity", "integer", "Train paths per slot per direction (trains, loaded or light)", minimum=0,
           maximum=500),
        _F("traction", "string", "Traction", enum=TRACTIONS),
    ),
    "shipments": (
        _F("id", "id", "Unique shipment id"),
        _F("origin", "id", "Origin hub id"),
        _F("destination", "id", "Destination hub id"),
        _F("wagons", "integer", "Wagons (wagonload: they may be split across trains)", minimum=1, maximum=400),
        _F("tonnes", "number", "Net cargo, tonnes (at most 120 per wagon)", exclusive_minimum=0, maximum=48_000),
        _F("commodity", "string", "Commodity"),
        _F("priority", "integer", "Priority 1 (low) to 5 (high)", minimum=1, maximum=5),
        _F("release", "datetime", "Earliest departure (ISO 8601)"),
        _F("due", "datetime", "Due at destination (ISO 8601)"),
        _F("berth", "id", "Berth id whose vessel cut-off applies", required=False),
        _F("value_cny", "number", "Cost of not moving it in this horizon, CNY per priority unit (default: "
                                  "tonnes x costs.revenue_per_tonne_km x shortest route km)", required=False,
           minimum=0, maximum=1e10),
    ),
    "berths": (
        _F("id", "id", "Unique berth id"),
        _F("port", "id", "Port hub id"),
        _F("cutoff", "datetime", "Vessel cut-off: cargo handled at the port by then (ISO 8601)"),
    ),
    "weather": (
        _F("corridor", "id", "Corridor id"),
        _F("start", "datetime", "Start of the event (ISO 8601)"),
        _F("end", "datetime", "End of the event (ISO 8601)"),
        _F("speed_factor", "number", "Speed multiplier in [0.05, 1]; omit when closed", required=False,
           minimum=0.05, maximum=1),
        _F("closed", "boolean", "Corridor closed during the event", required=False, default=False),
        _F("description", "text", "Free text", required=False, default=""),
    ),
    "costs": tuple(
        _F(name, "integer" if name == "wagons_per_train" else "number", doc, required=False, minimum=lo,
           maximum=hi, default=getattr(Costs(), name))
        for name, doc, lo, hi in _COSTS
    ),
    "operations": (
        _F("crew_duty_hours", "number", "Longest crew duty on a train before relief at a transfer yard, the origin "
           "or the destination, hours (running and stops at other hubs); plans with a longer stretch do not "
           "exist. Omit for no limit", required=False, minimum=1, maximum=48),
    ),
}
_LISTS = ("hubs", "corridors", "shipments", "berths", "weather")
_REQUIRED_TOP = ("problem", "horizon", "hubs", "corridors", "shipments")
_MAX_TONNES_PER_WAGON = 120.0


def problem_schema() -> dict[str, object]:
    """JSON Schema (draft 2020-12) of a problem file, generated from the same field table."""

    def field_schema(f: _Field) -> dict[str, object]:
        if f.type == "datetime":
            out: dict[str, object] = {"type": "string", "format": "date-time"}
        elif f.type in ("id", "text"):
            out = {"type": "string"}
        else:
            out = {"type": f.type}
        out["description"] = f.description
        if f.type == "id":
            out["maxLength"] = LIMITS["id_length"]
            out["pattern"] = r"^[^\s>/@#\x00-\x1f\x7f]+$"
        elif f.type == "string":
            out["maxLength"] = LIMITS["name_length"]
        elif f.type == "text":
            out["maxLength"] = LIMITS["text_length"]
        for key, value in (("minimum", f.minimum), ("maximum", f.maximum),
                           ("exclusiveMinimum", f.exclusive_minimum)):
            if value is not None:
                out[key] = value
        if f.enum:
            out["enum"] = list(f.enum)
        if f.default not in (None, ""):
            out["default"] = f.default
        return out

    def table(fields: tuple[_Field, ...]) -> dict[str, object]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {f.name: field_schema(f) for f in fields},
            "required": [f.name for f in fields if f.required],
        }

    props: dict[str, object] = {}
    for section, fields in _SECTIONS.items():
        if section in _LISTS:
            props[section] = {"type": "array", "items": table(fields), "maxItems": LIMITS[section]}
        else:
            props[section] = table(fields)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "qfreight problem file",
        "description": TRAIN_FORMATION_RULE + " Times are kept to the whole minute. Size limits beyond maxItems: "
                       + ", ".join(f"{k} <= {v:,}" for k, v in LIMITS.items() if "_x_" in k or k == "horizon_minutes")
                       + " (horizon_minutes = slots x slot_minutes).",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "required": list(_REQUIRED_TOP),
    }


# ---------------------------------------------------------------------------- parsing
class _Collector:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, path: str, message: str, value: object = None) -> None:
        self.issues.append(Issue(path, message, value))


def _to_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str) and len(value) <= 64:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _text_problem(value: str, *, multiline: bool) -> str | None:
    """Why a string cannot be used in ids, labels, file names and solver models (None: fine)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    allowed = "\n\t" if multiline else ""
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in allowed for ch in value):
        return "contains a control or unassigned character"
    return None


def _check_value(f: _Field, value: object, path: str, out: _Collector) -> object:
    """Type- and range-check one value; returns the converted value or None after an issue."""
    if f.type in ("string", "id", "text"):
        if not isinstance(value, str) or (f.required and not value.strip()):
            out.add(path, "expected a non-empty string", value if not isinstance(value, str) else None)
            return None
        limit_name = {"id": "id_length", "text": "text_length"}.get(f.type, "name_length")
        if len(value) > LIMITS[limit_name]:
            out.add(path, f"longer than {LIMITS[limit_name]} characters (limit {limit_name})",
                    f"{len(value)} characters")
            return None
        why = _text_problem(value, multiline=f.type == "text")
        if why:
            out.add(path, why, value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"))
            return None
        if f.type == "id" and _ID_FORBIDDEN.intersection(value):
            out.add(path, "ids may not contain spaces or the characters > / @ #", value)
            return None
    elif f.type == "boolean":
        if not isinstance(value, bool):
            out.add(path, "expected true or false", value)
            return None
    elif f.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            out.add(path, "expected an integer", value)
            return None
    elif f.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.add(path, "expected a finite number", value)
            return None
        try:
            value = float(value)
        except OverflowError:
            out.add(path, "expected a finite number", "an integer too large for a float")
            return None
        if not math.isfinite(value):
            out.add(path, "expected a finite number", value)
            return None
    elif f.type == "datetime":
        converted = _to_datetime(value)
        if converted is None:
            out.add(path, "expected a date-time such as 2026-03-02T06:00", value)
            return None
        if not _YEARS[0] <= converted.year <= _YEARS[1]:
            out.add(path, f"year must be between {_YEARS[0]} and {_YEARS[1]}", converted.isoformat())
            return None
        value = converted
    if f.enum and value not in f.enum:
        out.add(path, f"expected one of {', '.join(f.enum)}", value)
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if f.minimum is not None and value < f.minimum:
            out.add(path, f"must be >= {f.minimum:g}", value)
            return None
        if f.maximum is not None and value > f.maximum:
            out.add(path, f"must be <= {f.maximum:g}", value)
            return None
        if f.exclusive_minimum is not None and value <= f.exclusive_minimum:
            out.add(path, f"must be > {f.exclusive_minimum:g}", value)
            return None
    return value


def _read_table(raw: object, section: str, path: str, out: _Collector) -> dict[str, object] | None:
    if not isinstance(raw, Mapping):
        out.add(path, "expected a table (object)", type(raw).__name__)
        return None
    fields = {f.name: f for f in _SECTIONS[section]}
    # A row with a bad field is still returned (bad fields as None) so that cross-checks can
    # report its other problems too; nothing is built from it because an issue was recorded.
    result: dict[str, object] = {}
    for key in raw:
        if key not in fields:
            shown = key if isinstance(key, str) and not _text_problem(key, multiline=False) else repr(key)
            out.add(f"{path}.{shown[:80]}", f"unknown field; expected one of {', '.join(fields)}")
    for name, f in fields.items():
        if name not in raw:
            if f.required:
                out.add(f"{path}.{name}", "missing required field")
            result[name] = None if f.required else f.default
            continue
        result[name] = _check_value(f, raw[name], f"{path}.{name}", out)
    return result


def _read_list(data: Mapping, section: str, out: _Collector) -> list[tuple[int, dict[str, object]]]:
    raw = data.get(section, [])
    if not isinstance(raw, list):
        out.add(section, "expected a list of tables ([[%s]] in TOML)" % section, type(raw).__name__)
        return []
    if len(raw) > LIMITS[section]:
        out.add(section, f"at most {LIMITS[section]:,} entries (limit {section})", len(raw))
        return []
    rows = []
    for i, item in enumerate(raw):
        table = _read_table(item, section, f"{section}[{i}]", out)
        if table is not None:
            rows.append((i, table))
    return rows


def _known(row: Mapping, *keys: str) -> bool:
    """True when every named field of a (possibly partial) row passed its own check."""
    return all(row.get(k) is not None for k in keys)


_ID_FORBIDDEN = set(" \t\n>/@#")


def _duplicates(rows, key: str, section: str, out: _Collector) -> None:
    seen: dict[object, int] = {}
    for i, row in rows:
        value = row.get(key)
        if value is None:
            continue
        if value in seen:
            out.add(f"{section}[{i}].{key}", f"duplicate id (first used at {section}[{seen[value]}])", value)
        else:
            seen[value] = i


def _minutes_since(start: datetime, dt: datetime, rounding: str) -> int:
    """Whole minutes from ``start`` to ``dt``, rounded "up" or "down"."""
    seconds = (dt - start).total_seconds()
    return math.ceil(seconds / 60.0 - 1e-9) if rounding == "up" else math.floor(seconds / 60.0 + 1e-9)


def parse_problem(data: object, *, source: str | None = None) -> Problem:
    """Validate a parsed document (dict) and build a :class:`Problem`; raises InputError with all issues."""
    out = _Collector()
    if not isinstance(data, Mapping) or not data:
        raise InputError(source, Issue("(file)", "empty problem file; expected the tables "
                                       + ", ".join(_REQUIRED_TOP)))
    for key in data:
        if key not in _SECTIONS:
            shown = key if isinstance(key, str) and not _text_problem(key, multiline=False) else repr(key)
            out.add(shown[:80], f"unknown section; expected one of {', '.join(_SECTIONS)}")
    for key in _REQUIRED_TOP:
        if key not in data:
            out.add(key, "missing required section")

    meta = _read_table(data["problem"], "problem", "problem", out) if "problem" in data else None
    horizon_raw = _read_table(data["horizon"], "horizon", "horizon", out) if "horizon" in data else None
    costs_raw = _read_table(data.get("costs", {}), "costs", "costs", out)
    operations_raw = _read_table(data.get("operations", {}), "operations", "operations", out) or {}
    if costs_raw is None:
        costs_raw = {f.name: None for f in _SECTIONS["costs"]}
    hubs = _read_list(data, "hubs", out)
    corridors = _read_list(data, "corridors", out)
    shipments = _read_list(data, "shipments", out)
    berths = _read_list(data, "berths", out)
    weather = _read_list(data, "weather", out)

    if "hubs" in data and isinstance(data.get("hubs"), list) and not data["hubs"]:
        out.add("hubs", "at least one hub is required")
    if "shipments" in data and isinstance(data.get("shipments"), list) and not data["shipments"]:
        out.add("shipments", "at least one shipment is required")

    # Sizes whose products set the model's size.
    if horizon_raw and _known(horizon_raw, "slots", "slot_minutes"):
        slots, minutes = horizon_raw["slots"], horizon_raw["slot_minutes"]
        if slots * minutes > LIMITS["horizon_minutes"]:
            out.add("horizon", f"slots x slot_minutes = {slots * minutes:,} minutes is longer than a year "
                               f"(limit horizon_minutes = {LIMITS['horizon_minutes']:,})")
        for count, size, limit in ((len(shipments), slots, "shipments_x_slots"),
                                   (len(corridors), slots, "corridors_x_slots"), (len(hubs), slots, "hubs_x_slots"),
                                   (len(hubs), slots * slots, "hubs_x_slots_squared")):
            if count * size > LIMITS[limit]:
                what = limit.split("_x_")[0] + " x " + limit.split("_x_")[1].replace("_", " ")
                out.add("horizon.slots", f"{what} = {count * size:,} exceeds the limit {limit} = {LIMITS[limit]:,}",
                        slots)

    _duplicates(hubs, "id", "hubs", out)
    _duplicates(shipments, "id", "shipments", out)
    _duplicates(berths, "id", "berths", out)
    hub_ids = {row["id"] for _, row in hubs if row.get("id") is not None}
    hub_kind = {row["id"]: row.get("kind") for _, row in hubs if row.get("id") is not None}
    if hubs and all(_known(row, "locomotives") for _, row in hubs) and \
            sum(row["locomotives"] for _, row in hubs) == 0:
        out.add("hubs.locomotives", "the fleet is empty: no hub has a locomotive, so no train can run")

    start = horizon_raw["start"] if horizon_raw else None
    aware = None if start is None else start.tzinfo is not None

    def minutes(dt: datetime | None, path: str, rounding: str) -> int | None:
        """Minutes since the horizon start; None (with an issue) when it cannot be compared."""
        if dt is None or start is None:
            return None
        if (dt.tzinfo is not None) != aware:
            out.add(path, "mixes a date-time with a UTC offset and one without (horizon.start "
                          f"{'has' if aware else 'has no'} offset); give both with or without one", dt.isoformat())
            return None
        m = _minutes_since(start, dt, rounding)
        if abs(m) > 2 * LIMITS["horizon_minutes"]:
            out.add(path, "more than two years away from horizon.start", dt.isoformat())
            return None
        return m

    # Corridors: ends must exist; ids unique (an undirected pair once).
    corridor_ids: dict[str, int] = {}
    pairs: dict[frozenset, int] = {}
    built_corridors: list[Corridor] = []
    for i, row in corridors:
        if not _known(row, "from", "to", "km", "speed_kmh", "capacity", "traction"):
            continue
        cid = row["id"] or f"{row['from']}-{row['to']}"
        if len(cid) > LIMITS["id_length"]:
            out.add(f"corridors[{i}].id", f"the default id FROM-TO is longer than {LIMITS['id_length']} characters; "
                                          "give a shorter id", cid)
            continue
        bad = False
        for end in ("from", "to"):
            if row[end] not in hub_ids:
                out.add(f"corridors[{i}].{end}", "unknown hub id", row[end])
                bad = True
        if row["from"] == row["to"]:
            out.add(f"corridors[{i}].to", "a corridor must join two different hubs", row["to"])
            bad = True
        if cid in corridor_ids:
            out.add(f"corridors[{i}].id", f"duplicate corridor id (first at corridors[{corridor_ids[cid]}])", cid)
            bad = True
        pair = frozenset((row["from"], row["to"]))
        if pair in pairs and not bad:
            out.add(f"corridors[{i}]", f"hubs already joined by corridors[{pairs[pair]}]",
                    f"{row['from']}-{row['to']}")
            bad = True
        corridor_ids[cid] = i
        pairs[pair] = i
        if not bad:
            built_corridors.append(Corridor(cid, row["from"], row["to"], row["km"], row["speed_kmh"],
                                            row["capacity"], row["traction"]))

    berth_rows = {row["id"]: (i, row) for i, row in berths if row.get("id") is not None}
    berth_cutoff: dict[str, int | None] = {}
    for i, row in berths:
        berth_cutoff[row.get("id")] = minutes(row.get("cutoff"), f"berths[{i}].cutoff", "down")
        if not _known(row, "port"):
            continue
        if row["port"] not in hub_ids:
            out.add(f"berths[{i}].port", "unknown hub id", row["port"])
        elif hub_kind[row["port"]] not in (None, "port"):
            out.add(f"berths[{i}].port", f"hub is of kind {hub_kind[row['port']]!r}, expected 'port'", row["port"])

    # Reachability on the corridor graph (closures are temporary, so they do not count here).
    adjacency: dict[str, set[str]] = {h: set() for h in hub_ids}
    for c in built_corridors:
        if c.capacity > 0:
            adjacency[c.origin].add(c.destination)
            adjacency[c.destination].add(c.origin)
    component: dict[str, int] = {}
    for h in sorted(hub_ids):
        if h in component:
            continue
        component[h] = len(component)
        stack = [h]
        while stack:
            for nb in adjacency[stack.pop()]:
                if nb not in component:
                    component[nb] = component[h]
                    stack.append(nb)

    W = costs_raw.get("wagons_per_train")
    shipment_times: dict[int, tuple[int | None, int | None]] = {}
    for i, row in shipments:
        release = minutes(row.get("release"), f"shipments[{i}].release", "up")
        due = minutes(row.get("due"), f"shipments[{i}].due", "down")
        shipment_times[i] = (release, due)
        for end in ("origin", "destination"):
            if _known(row, end) and row[end] not in hub_ids:
                out.add(f"shipments[{i}].{end}", "unknown hub id", row[end])
        if not _known(row, "origin", "destination"):
            pass
        elif row["origin"] == row["destination"]:
            out.add(f"shipments[{i}].destination", "must differ from origin", row["destination"])
        elif row["origin"] in hub_ids and row["destination"] in hub_ids:
            if component[row["origin"]] != component[row["destination"]]:
                out.add(f"shipments[{i}].destination",
                        f"unreachable from {row['origin']} over corridors with capacity > 0", row["destination"])
        if release is not None and due is not None and due <= release:
            out.add(f"shipments[{i}].due", f"must be after release ({row['release'].isoformat()})",
                    row["due"].isoformat())
        if row.get("berth") is not None and _known(row, "destination"):
            if row["berth"] not in berth_rows:
                out.add(f"shipments[{i}].berth", "unknown berth id", row["berth"])
            elif berth_rows[row["berth"]][1]["port"] not in (None, row["destination"]):
                out.add(f"shipments[{i}].berth",
                        f"berth is at {berth_rows[row['berth']][1]['port']}, but the shipment goes to "
                        f"{row['destination']}", row["berth"])
        if _known(row, "wagons") and W and row["wagons"] > W:
            out.add(f"shipments[{i}].wagons",
                    f"exceeds costs.wagons_per_train ({W}); split the shipment", row["wagons"])
        if _known(row, "wagons", "tonnes") and row["tonnes"] > _MAX_TONNES_PER_WAGON * row["wagons"]:
            out.add(f"shipments[{i}].tonnes", f"more than {_MAX_TONNES_PER_WAGON:g} net tonnes per wagon "
                                              f"({row['wagons']} wagons)", row["tonnes"])

    weather_times: dict[int, tuple[int | None, int | None]] = {}
    for i, row in weather:
        begin = minutes(row.get("start"), f"weather[{i}].start", "down")
        finish = minutes(row.get("end"), f"weather[{i}].end", "up")
        weather_times[i] = (begin, finish)
        if _known(row, "corridor") and row["corridor"] not in corridor_ids:
            out.add(f"weather[{i}].corridor", "unknown corridor id", row["corridor"])
        if begin is not None and finish is not None and finish <= begin:
            out.add(f"weather[{i}].end", f"must be after start ({row['start'].isoformat()})", row["end"].isoformat())
        if row.get("closed") and row["speed_factor"] is not None:
            out.add(f"weather[{i}].speed_factor", "give either closed = true or a speed_factor, not both",
                    row["speed_factor"])
        if row.get("closed") is False and row["speed_factor"] is None and "speed_factor" not in \
                {issue.field.rsplit(".", 1)[-1] for issue in out.issues if issue.field.startswith(f"weather[{i}]")}:
            out.add(f"weather[{i}]", "needs a speed_factor in [0.05, 1] or closed = true")

    if out.issues:
        raise InputError(source, out.issues)

    assert meta is not None and horizon_raw is not None
    horizon = Horizon(horizon_raw["start"], horizon_raw["slot_minutes"], horizon_raw["slots"])

    def h(m: int) -> float:
        return m / 60.0

    return Problem(
        name=meta["name"],
        description=meta["description"] or "",
        horizon=horizon,
        hubs=tuple(Hub(r["id"], r["name"], r["kind"], r["lat"], r["lon"], r["yard_capacity"],
                       r["handling_hours"], r["locomotives"], r["turnaround_hours"]) for _, r in hubs),
        corridors=tuple(built_corridors),
        shipments=tuple(Shipment(r["id"], r["origin"], r["destination"], r["wagons"], r["tonnes"],
                                 r["commodity"], r["priority"], h(shipment_times[i][0]), h(shipment_times[i][1]),
                                 r["berth"], r["value_cny"]) for i, r in shipments),
        berths=tuple(Berth(r["id"], r["port"], h(berth_cutoff[r["id"]])) for _, r in berths),
        weather=tuple(WeatherEvent(r["corridor"], h(weather_times[i][0]), h(weather_times[i][1]),
                                   0.0 if r["closed"] else r["speed_factor"], r["description"] or "")
                      for i, r in weather),
        costs=Costs(**costs_raw),
        operations=Operations(**operations_raw),
        source=source,
    )


def read_document(path: str | Path) -> dict[str, object]:
    """Parse a TOML or JSON file (by extension) into a dict; syntax errors name the line."""
    from optimizer.inputs import read_text

    path = Path(path)
    source = str(path)
    # Regular files only, size-capped: a FIFO or /dev/zero named .toml must not hang the reader.
    text = read_text(path, what="problem file (TOML or JSON)")
    if not text.strip():
        raise InputError(source, Issue("(file)", "the file is empty"))
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            where = f"line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "(file)"
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise InputError(source, Issue(where, f"malformed JSON: {msg}")) from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            raise InputError(source, Issue("(syntax)", f"malformed TOML: {exc}")) from None
    raise InputError(source, Issue("(file)", f"unknown extension {suffix!r}; expected .toml or .json"))


def load_problem(path: str | Path) -> Problem:
    """Read and validate a problem file (TOML or JSON)."""
    return parse_problem(read_document(path), source=str(path))
