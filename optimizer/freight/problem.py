"""Freight problem files (TOML or JSON, one schema) and the validated domain model.

Units: times are datetimes in files and hours since the horizon start inside qfreight;
distances km, speeds km/h, masses tonnes, fuel litres, electricity kWh, money CNY.

Validation collects every issue it finds (with the field path, e.g. ``shipments[3].due``)
before raising one :class:`InputError`, so ``qfreight validate`` can list them all.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Any

from optimizer.errors import InputError, Issue

__all__ = [
    "Horizon", "Hub", "Corridor", "Shipment", "Berth", "WeatherEvent", "Costs", "Problem",
    "load_problem", "parse_problem", "problem_schema", "HUB_KINDS",
]

HUB_KINDS = ("inland", "transfer", "port")
TRACTIONS = ("diesel", "electric")


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
    locomotives: int


@dataclass(frozen=True)
class Corridor:
    id: str
    origin: str
    destination: str
    km: float
    speed_kmh: float
    capacity: int  # trains per slot per direction
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
    """Cost parameters. Money in CNY. Fuel defaults are US Class I railway figures (AAR / STB)."""

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
    defer_cost_per_priority: float = 200000.0


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

    def hours_to_datetime(self, hours: float) -> datetime:
        from datetime import timedelta

        return self.horizon.start + timedelta(hours=hours)


# ---------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class _Field:
    name: str
    type: str  # string | integer | number | datetime | boolean
    description: str
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    enum: tuple[str, ...] | None = None
    default: Any = None


def _F(name, type_, description, **kw) -> _Field:
    return _Field(name, type_, description, **kw)


_SECTIONS: dict[str, tuple[_Field, ...]] = {
    "problem": (
        _F("name", "string", "Instance name"),
        _F("description", "string", "Free text", required=False, default=""),
    ),
    "horizon": (
        _F("start", "datetime", "Start of slot 0 (ISO 8601)"),
        _F("slot_minutes", "integer", "Length of a departure slot, minutes", exclusive_minimum=0),
        _F("slots", "integer", "Number of departure slots", exclusive_minimum=0, maximum=10000),
    ),
    "hubs": (
        _F("id", "string", "Unique hub id"),
        _F("name", "string", "Display name"),
        _F("kind", "string", "Hub kind", enum=HUB_KINDS),
        _F("lat", "number", "Latitude, degrees", minimum=-90, maximum=90),
        _F("lon", "number", "Longitude, degrees", minimum=-180, maximum=180),
        _F("yard_capacity", "integer", "Trains the yard handles per slot", minimum=0),
        _F("handling_hours", "number", "Handling time of a train at this hub, hours", minimum=0),
        _F("locomotives", "integer", "Locomotives based here", minimum=0),
    ),
    "corridors": (
        _F("id", "string", "Corridor id (default FROM-TO)", required=False),
        _F("from", "string", "Hub id at one end"),
        _F("to", "string", "Hub id at the other end"),
        _F("km", "number", "Line length, km", exclusive_minimum=0),
        _F("speed_kmh", "number", "Scheduled freight speed, km/h", exclusive_minimum=0),
        _F("capacity", "integer", "Train paths per slot per direction", minimum=0),
        _F("traction", "string", "Traction", enum=TRACTIONS),
    ),
    "shipments": (
        _F("id", "string", "Unique shipment id"),
        _F("origin", "string", "Origin hub id"),
        _F("destination", "string", "Destination hub id"),
        _F("wagons", "integer", "Wagons", exclusive_minimum=0),
        _F("tonnes", "number", "Net cargo, tonnes", exclusive_minimum=0),
        _F("commodity", "string", "Commodity"),
        _F("priority", "integer", "Priority 1 (low) to 5 (high)", minimum=1, maximum=5),
        _F("release", "datetime", "Earliest departure (ISO 8601)"),
        _F("due", "datetime", "Due at destination (ISO 8601)"),
        _F("berth", "string", "Berth id whose vessel cut-off applies", required=False),
    ),
    "berths": (
        _F("id", "string", "Unique berth id"),
        _F("port", "string", "Port hub id"),
        _F("cutoff", "datetime", "Vessel cut-off: cargo handled at the port by then (ISO 8601)"),
    ),
    "weather": (
        _F("corridor", "string", "Corridor id"),
        _F("start", "datetime", "Start of the event (ISO 8601)"),
        _F("end", "datetime", "End of the event (ISO 8601)"),
        _F("speed_factor", "number", "Speed multiplier in (0, 1]; omit when closed", required=False,
           exclusive_minimum=0, maximum=1),
        _F("closed", "boolean", "Corridor closed during the event", required=False, default=False),
        _F("description", "string", "Free text", required=False, default=""),
    ),
    "costs": tuple(
        _F(name, "integer" if name == "wagons_per_train" else "number", doc, required=False,
           exclusive_minimum=0 if name == "wagons_per_train" else None,
           minimum=None if name == "wagons_per_train" else 0, default=getattr(Costs(), name))
        for name, doc in (
            ("wagons_per_train", "Wagons per train (consolidation limit)"),
            ("tare_tonnes_per_wagon", "Empty wagon mass, tonnes"),
            ("locomotive_tonnes", "Locomotive mass, tonnes"),
            ("diesel_litres_per_gross_tonne_km", "Diesel use, litres per gross tonne-km"),
            ("diesel_litres_per_idle_locomotive_hour", "Diesel use of an idling locomotive, litres/hour"),
            ("electric_kwh_per_gross_tonne_km", "Electric traction use, kWh per gross tonne-km"),
            ("diesel_price_per_litre", "CNY per litre of diesel"),
            ("electricity_price_per_kwh", "CNY per kWh"),
            ("train_cost_per_km", "Crew and path cost per train-km, CNY"),
            ("dwell_cost_per_wagon_hour", "Cost of a wagon waiting at a yard, CNY per wagon-hour"),
            ("lateness_cost_per_priority_hour", "Lateness cost, CNY per hour per priority unit"),
            ("berth_miss_cost", "Extra cost of missing a vessel cut-off, CNY"),
            ("defer_cost_per_priority", "Cost of not moving a shipment in the horizon, CNY per priority unit"),
        )
    ),
}
_LISTS = ("hubs", "corridors", "shipments", "berths", "weather")
_REQUIRED_TOP = ("problem", "horizon", "hubs", "corridors", "shipments")


def problem_schema() -> dict[str, object]:
    """JSON Schema (draft 2020-12) of a problem file, generated from the same field table."""

    def field_schema(f: _Field) -> dict[str, object]:
        if f.type == "datetime":
            out: dict[str, object] = {"type": "string", "format": "date-time"}
        else:
            out = {"type": f.type}
        out["description"] = f.description
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
        props[section] = {"type": "array", "items": table(fields)} if section in _LISTS else table(fields)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "qfreight problem file",
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
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _check_value(f: _Field, value: object, path: str, out: _Collector) -> object:
    """Type- and range-check one value; returns the converted value or None after an issue."""
    if f.type == "string":
        if not isinstance(value, str) or (f.required and not value.strip()):
            out.add(path, "expected a non-empty string", value)
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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            out.add(path, "expected a finite number", value)
            return None
        value = float(value)
    elif f.type == "datetime":
        converted = _to_datetime(value)
        if converted is None:
            out.add(path, "expected a date-time such as 2026-03-02T06:00", value)
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
        out.add(path, "expected a table (object)", raw)
        return None
    fields = {f.name: f for f in _SECTIONS[section]}
    # A row with a bad field is still returned (bad fields as None) so that cross-checks can
    # report its other problems too; nothing is built from it because an issue was recorded.
    result: dict[str, object] = {}
    for key in raw:
        if key not in fields:
            out.add(f"{path}.{key}", f"unknown field; expected one of {', '.join(fields)}")
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


def _check_ids(rows, key: str, section: str, out: _Collector) -> None:
    """Ids appear inside resource keys and variable labels ("corridor A>B @3", "S01/A-B/t03")."""
    for i, row in rows:
        value = row.get(key)
        if isinstance(value, str) and _ID_FORBIDDEN.intersection(value):
            out.add(f"{section}[{i}].{key}", "ids may not contain spaces or the characters > / @ #", value)
            row[key] = None


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


def parse_problem(data: object, *, source: str | None = None) -> Problem:
    """Validate a parsed document (dict) and build a :class:`Problem`; raises InputError with all issues."""
    out = _Collector()
    if not isinstance(data, Mapping) or not data:
        raise InputError(source, Issue("(file)", "empty problem file; expected the tables "
                                       + ", ".join(_REQUIRED_TOP)))
    for key in data:
        if key not in _SECTIONS:
            out.add(key, f"unknown section; expected one of {', '.join(_SECTIONS)}")
    for key in _REQUIRED_TOP:
        if key not in data:
            out.add(key, "missing required section")

    meta = _read_table(data.get("problem", {}), "problem", "problem", out) if "problem" in data else None
    horizon_raw = _read_table(data["horizon"], "horizon", "horizon", out) if "horizon" in data else None
    costs_raw = _read_table(data.get("costs", {}), "costs", "costs", out)
    hubs = _read_list(data, "hubs", out)
    corridors = _read_list(data, "corridors", out)
    shipments = _read_list(data, "shipments", out)
    berths = _read_list(data, "berths", out)
    weather = _read_list(data, "weather", out)

    if "hubs" in data and not hubs and isinstance(data.get("hubs"), list) and not data["hubs"]:
        out.add("hubs", "at least one hub is required")
    if "shipments" in data and isinstance(data.get("shipments"), list) and not data["shipments"]:
        out.add("shipments", "at least one shipment is required")

    for rows_, section_ in ((hubs, "hubs"), (shipments, "shipments"), (berths, "berths"), (corridors, "corridors")):
        _check_ids(rows_, "id", section_, out)
    _duplicates(hubs, "id", "hubs", out)
    _duplicates(shipments, "id", "shipments", out)
    _duplicates(berths, "id", "berths", out)
    hub_ids = {row["id"] for _, row in hubs if row.get("id") is not None}
    hub_kind = {row["id"]: row.get("kind") for _, row in hubs if row.get("id") is not None}

    start = horizon_raw["start"] if horizon_raw else None

    def hours(dt: datetime) -> float:
        return (dt - start).total_seconds() / 3600.0

    # Corridors: ends must exist; ids unique (an undirected pair once).
    corridor_ids: dict[str, int] = {}
    pairs: dict[frozenset, int] = {}
    built_corridors: list[Corridor] = []
    for i, row in corridors:
        if not _known(row, "from", "to", "km", "speed_kmh", "capacity", "traction"):
            continue
        cid = row["id"] or f"{row['from']}-{row['to']}"
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
    for i, row in berths:
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

    def reachable(a: str) -> set[str]:
        seen, stack = {a}, [a]
        while stack:
            for nb in adjacency[stack.pop()]:
                if nb not in seen:
                    seen.add(nb)
                    stack.append(nb)
        return seen

    reach_cache: dict[str, set[str]] = {}
    for i, row in shipments:
        for end in ("origin", "destination"):
            if _known(row, end) and row[end] not in hub_ids:
                out.add(f"shipments[{i}].{end}", "unknown hub id", row[end])
        if not _known(row, "origin", "destination"):
            pass
        elif row["origin"] == row["destination"]:
            out.add(f"shipments[{i}].destination", "must differ from origin", row["destination"])
        elif row["origin"] in hub_ids and row["destination"] in hub_ids:
            if row["origin"] not in reach_cache:
                reach_cache[row["origin"]] = reachable(row["origin"])
            if row["destination"] not in reach_cache[row["origin"]]:
                out.add(f"shipments[{i}].destination",
                        f"unreachable from {row['origin']} over corridors with capacity > 0", row["destination"])
        if _known(row, "due", "release") and row["due"] <= row["release"]:
            out.add(f"shipments[{i}].due", f"must be after release ({row['release'].isoformat()})",
                    row["due"].isoformat())
        if row.get("berth") is not None and _known(row, "destination"):
            if row["berth"] not in berth_rows:
                out.add(f"shipments[{i}].berth", "unknown berth id", row["berth"])
            elif berth_rows[row["berth"]][1]["port"] not in (None, row["destination"]):
                out.add(f"shipments[{i}].berth",
                        f"berth is at {berth_rows[row['berth']][1]['port']}, but the shipment goes to "
                        f"{row['destination']}", row["berth"])
        if _known(row, "wagons") and costs_raw.get("wagons_per_train") and \
                row["wagons"] > costs_raw["wagons_per_train"]:
            out.add(f"shipments[{i}].wagons",
                    f"exceeds costs.wagons_per_train ({costs_raw['wagons_per_train']}); split the shipment",
                    row["wagons"])

    for i, row in weather:
        if _known(row, "corridor") and row["corridor"] not in corridor_ids:
            out.add(f"weather[{i}].corridor", "unknown corridor id", row["corridor"])
        if _known(row, "start", "end") and row["end"] <= row["start"]:
            out.add(f"weather[{i}].end", f"must be after start ({row['start'].isoformat()})", row["end"].isoformat())
        if row.get("closed") and row["speed_factor"] is not None:
            out.add(f"weather[{i}].speed_factor", "give either closed = true or a speed_factor, not both",
                    row["speed_factor"])
        if row.get("closed") is False and row["speed_factor"] is None and "speed_factor" not in \
                {issue.field.rsplit(".", 1)[-1] for issue in out.issues if issue.field.startswith(f"weather[{i}]")}:
            out.add(f"weather[{i}]", "needs a speed_factor in (0, 1] or closed = true")

    if out.issues:
        raise InputError(source, out.issues)

    assert meta is not None and horizon_raw is not None and costs_raw is not None
    horizon = Horizon(horizon_raw["start"], horizon_raw["slot_minutes"], horizon_raw["slots"])
    return Problem(
        name=meta["name"],
        description=meta["description"] or "",
        horizon=horizon,
        hubs=tuple(Hub(r["id"], r["name"], r["kind"], r["lat"], r["lon"], r["yard_capacity"],
                       r["handling_hours"], r["locomotives"]) for _, r in hubs),
        corridors=tuple(built_corridors),
        shipments=tuple(Shipment(r["id"], r["origin"], r["destination"], r["wagons"], r["tonnes"],
                                 r["commodity"], r["priority"], hours(r["release"]), hours(r["due"]),
                                 r["berth"]) for _, r in shipments),
        berths=tuple(Berth(r["id"], r["port"], hours(r["cutoff"])) for _, r in berths),
        weather=tuple(WeatherEvent(r["corridor"], hours(r["start"]), hours(r["end"]),
                                   0.0 if r["closed"] else r["speed_factor"], r["description"] or "")
                      for _, r in weather),
        costs=Costs(**costs_raw),
        source=source,
    )


def read_document(path: str | Path) -> dict[str, object]:
    """Parse a TOML or JSON file (by extension) into a dict; syntax errors name the line."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(source, Issue("(file)", "no such file")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(source, Issue("(file)", f"cannot read: {exc}")) from None
    if not text.strip():
        raise InputError(source, Issue("(file)", "the file is empty"))
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(source, Issue(f"line {exc.lineno}, column {exc.colno}",
                                           f"malformed JSON: {exc.msg}")) from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(source, Issue("(syntax)", f"malformed TOML: {exc}")) from None
    raise InputError(source, Issue("(file)", f"unknown extension {suffix!r}; expected .toml or .json"))


def load_problem(path: str | Path) -> Problem:
    """Read and validate a problem file (TOML or JSON)."""
    return parse_problem(read_document(path), source=str(path))
