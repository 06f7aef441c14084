"""The dashboard's run folder: plan versions on disk, their view models, and re-plan jobs.

A run folder holds the ``results.json`` of a solve (version 0) and one numbered folder per
re-plan (``replan-01``, ``replan-02``, ...; version k), each with its own ``results.json``,
``problem.json`` and ``events.json`` (:func:`optimizer.solving.replan.write_replan`). Nothing is
ever overwritten: a re-plan always writes a new folder, so every earlier plan stays available.

Only files inside the run folder are served, and only regular files with a known extension
(:meth:`RunStore.file`); a path that resolves outside the folder is refused.
"""

from __future__ import annotations

import json
import math
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from optimizer.errors import InputError, Issue, QfreightError
from optimizer.freight.evaluate import train_batches
from optimizer.freight.network import Network
from optimizer.solving.replan import Run, load_run

__all__ = ["FILE_TYPES", "Job", "RunStore"]

#: Extensions served from the run folder, with their media types (never HTML: a results folder
#: may hold a report whose scripts must not run under the dashboard's origin).
FILE_TYPES: Mapping[str, str] = {
    ".json": "application/json", ".csv": "text/csv; charset=utf-8", ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8", ".toml": "text/plain; charset=utf-8", ".png": "image/png",
}
_PREFIX = "replan-"


@dataclass
class Job:
    """A re-plan running in the worker thread; ``state``: queued | running | done | error."""

    id: str
    version: int  # the version it re-plans
    state: str = "queued"
    messages: list[str] = field(default_factory=list)
    result_version: int | None = None
    error: str | None = None
    issues: list[dict[str, object]] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "version": self.version, "state": self.state, "messages": list(self.messages),
                "result_version": self.result_version, "error": self.error, "issues": list(self.issues),
                "seconds": round(time.time() - self.started, 1)}


class RunStore:
    """Versions of one run folder, with a cache of loaded runs and one re-plan at a time."""

    def __init__(self, root: str | Path, *, problem_file: str | Path | None = None):
        self.root = Path(root).resolve()
        if not (self.root / "results.json").is_file():
            raise InputError(str(root), Issue("(folder)", "no results.json here: give a run folder, a results.json "
                                                          "or a problem file"))
        self.problem_file = problem_file
        self._cache: dict[int, Run] = {}
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self._busy = threading.Lock()

    # ------------------------------------------------------------------ versions
    def folders(self) -> dict[int, Path]:
        out = {0: self.root}
        for p in self.root.iterdir():
            if p.is_dir() and not p.is_symlink() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX):].isdigit() \
                    and (p / "results.json").is_file():
                out[int(p.name[len(_PREFIX):])] = p
        return dict(sorted(out.items()))

    def run(self, version: int) -> Run:
        with self._lock:
            if version not in self._cache:
                folders = self.folders()
                if version not in folders:
                    raise KeyError(version)
                problem_file = self.problem_file if version == 0 else None
                self._cache[version] = load_run(folders[version], problem_file=problem_file, check=False)
            return self._cache[version]

    def versions(self) -> list[dict[str, object]]:
        out = []
        for k, folder in self.folders().items():
            doc = self.run(k).document
            parent = doc.get("parent_version")
            label = f"solve ({doc.get('backend', '?')})" if k == 0 else \
                f"re-plan {k} at {doc.get('at', '?')} (from version {parent if parent is not None else '?'})"
            out.append({"id": k, "label": label, "folder": "." if k == 0 else folder.name,
                        "kind": doc.get("kind", "solve"), "at": doc.get("at"), "parent": parent,
                        "feasible": doc.get("feasible"), "changes": doc.get("changes")})
        return out

    # ------------------------------------------------------------------ view model
    def view(self, version: int) -> dict[str, object]:
        """Everything the page shows for one version (JSON-ready; names are data, never markup)."""
        run = self.run(version)
        problem, plan, doc = run.problem, run.plan, run.document
        network = Network(problem)
        dt = problem.hours_to_datetime
        start = problem.horizon.start
        tz = start.strftime("%z")
        tz = f"{tz[:3]}:{tz[3:]}" if tz else ""
        batches = train_batches(problem, plan, network=network)
        slots = problem.horizon.slots
        trains_per: dict[tuple[str, str], int] = {}
        for b in batches:
            trains_per[(b.corridor, b.origin)] = trains_per.get((b.corridor, b.origin), 0) + b.trains
        corridors = []
        for c in problem.corridors:
            busiest = max(trains_per.get((c.id, c.origin), 0), trains_per.get((c.id, c.destination), 0))
            corridors.append({"id": c.id, "from": c.origin, "to": c.destination, "km": c.km, "capacity": c.capacity,
                              "traction": c.traction,
                              "trains": trains_per.get((c.id, c.origin), 0) + trains_per.get((c.id, c.destination), 0),
                              "load": 0.0 if c.capacity == 0 else busiest / (c.capacity * slots)})
        def iso(text):
            try:
                return datetime.fromisoformat(text).replace(second=0, microsecond=0).isoformat()
            except (TypeError, ValueError):
                return None

        event_weather = {(e.get("corridor"), iso(e.get("start")), iso(e.get("end"))) for e in doc.get("events", [])
                         if isinstance(e, dict) and e.get("kind") in ("closure", "slowdown")}
        disruptions = []
        for w in problem.weather:
            s, e = dt(w.start).isoformat(), dt(w.end).isoformat()
            disruptions.append({"corridor": w.corridor, "start": s, "end": e, "closed": w.closed,
                                "speed_factor": w.speed_factor, "description": w.description,
                                "from_event": (w.corridor, s, e) in event_weather})
        shipments = []
        moves = {a.shipment: network.traverse(a.route, a.slot * problem.horizon.slot_hours)
                 for a in plan.assignments if a.route is not None}
        frozen = doc.get("frozen", {}).get("legs", {}) if isinstance(doc.get("frozen"), dict) else {}
        for s in problem.shipments:
            row: dict[str, object] = {"id": s.id, "origin": s.origin, "destination": s.destination, "wagons": s.wagons,
                                      "tonnes": s.tonnes, "commodity": s.commodity, "priority": s.priority,
                                      "release": dt(s.release).isoformat(), "due": dt(s.due).isoformat(),
                                      "berth": s.berth, "frozen_legs": len(frozen.get(s.id, []))}
            risk = []
            move = moves.get(s.id)
            if move is None:
                row.update({"status": "deferred", "legs": [], "stops": [], "late_hours": 0.0})
                risk.append("deferred")
            else:
                late = max(0.0, move.arrive - s.due)
                row.update({"status": "moved", "route": list(move.route), "depart": dt(move.legs[0].enter).isoformat(),
                            "arrive": dt(move.arrive).isoformat(), "late_hours": round(late, 3),
                            "legs": [{"corridor": leg.corridor, "from": leg.origin, "to": leg.destination,
                                      "enter": dt(leg.enter).isoformat(), "exit": dt(leg.exit).isoformat()}
                                     for leg in move.legs],
                            "stops": [{"hub": st.hub, "arrive": dt(st.arrive).isoformat(),
                                       "depart": dt(st.depart).isoformat()} for st in move.stops],
                            "origin_wait_from": dt(max(s.release, 0.0)).isoformat()})
                if late > 0:
                    risk.append(f"late {late:.1f} h")
                if s.berth is not None:
                    handling = math.ceil(problem.hub(s.destination).handling_hours * 60.0 - 1e-9) / 60.0
                    cutoff = problem.berth(s.berth).cutoff
                    row["cutoff"] = dt(cutoff).isoformat()
                    if move.arrive + handling > cutoff + 1e-9:
                        risk.append(f"misses the {s.berth} cut-off by {move.arrive + handling - cutoff:.1f} h")
            row["risk"] = risk
            shipments.append(row)
        trains = [{"corridor": b.corridor, "from": b.origin, "to": b.destination, "enter": dt(b.enter / 60).isoformat(),
                   "exit": dt(max(b.exit, b.enter) / 60).isoformat(), "trains": b.trains, "wagons": b.wagons,
                   "light": b.light} for b in batches]
        end_hours = max([problem.horizon.hours] + [m.arrive for m in moves.values()])
        view = {
            "id": version,
            "problem": {"name": problem.name, "description": problem.description, "start": start.isoformat(),
                        "end": dt(end_hours).isoformat(), "horizon_end": dt(problem.horizon.hours).isoformat(),
                        "slot_minutes": problem.horizon.slot_minutes, "slots": slots, "tz": tz},
            "hubs": [{"id": h.id, "name": h.name, "kind": h.kind, "lat": h.lat, "lon": h.lon,
                      "locomotives": h.locomotives} for h in problem.hubs],
            "corridors": corridors,
            "disruptions": disruptions,
            "outages": [dict(o) for o in doc.get("outages") or []],
            "shipments": shipments,
            "trains": trains,
            "at_risk": [{"id": r["id"], "risk": r["risk"], "priority": r["priority"]} for r in shipments if r["risk"]],
            "status": doc.get("status"), "feasible": doc.get("feasible"), "violations": doc.get("violations", []),
            "backend": doc.get("backend"),
            "kpis": doc.get("kpis") or doc.get("new_plan_kpis"),
            "baseline": doc.get("replan_best_baseline") or doc.get("baseline"),
            "baseline_kpis": (doc.get("replan_baselines", {}).get(doc.get("replan_best_baseline"), {}) or {}).get("kpis")
            if doc.get("kind") == "replan" else doc.get("baseline_kpis"),
            "stages": doc.get("stages", []),
            "device_contribution": doc.get("device_contribution"),
            "solver": doc.get("solver"),
            "kind": doc.get("kind", "solve"),
            "at": doc.get("at"),
            "events": doc.get("events", []),
            "diff": doc.get("diff", []),
            "keep": None if doc.get("kind") != "replan" else {
                "feasible": doc["keep"]["feasible"], "violations": doc["keep"]["violations"],
                "kpis": doc["keep"]["kpis"]},
            "changes": doc.get("changes"),
            "parent": doc.get("parent_version"),
        }
        return view

    # ------------------------------------------------------------------ files
    def files(self) -> list[str]:
        """Relative paths of the files the dashboard serves (regular files, known extensions)."""
        out = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if any(part.startswith(".") for part in rel.parts) or path.is_symlink() or not path.is_file():
                continue
            if path.suffix.lower() in FILE_TYPES and self._inside(path):
                out.append(rel.as_posix())
        return out

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve(strict=True).is_relative_to(self.root)
        except (OSError, RuntimeError):
            return False

    def file(self, relative: str) -> Path | None:
        """The run's own file at ``relative``, or None (outside the folder, hidden, a link, unknown type)."""
        if not relative or "\x00" in relative or "\\" in relative:
            return None
        parts = relative.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        path = self.root.joinpath(*parts)
        if path.suffix.lower() not in FILE_TYPES or not self._inside(path):
            return None
        probe = self.root
        for p in parts:
            probe = probe / p
            if probe.is_symlink():
                return None
        return path if path.is_file() else None

    # ------------------------------------------------------------------ re-plans
    def start_replan(self, version: int, events, *, at: int, config, settings) -> Job:
        """Start a re-plan of ``version`` in a worker thread; raises RuntimeError when one runs."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a re-plan is already running")
        job = Job(uuid.uuid4().hex[:12], version)
        self.jobs[job.id] = job
        thread = threading.Thread(target=self._work, args=(job, events, at, config, settings), daemon=True,
                                  name=f"replan-{job.id}")
        thread.start()
        return job

    def _work(self, job: Job, events, at: int, config, settings) -> None:
        from optimizer.solving.replan import next_folder, replan, write_replan

        try:
            job.state = "running"
            run = self.run(job.version)
            result = replan(run.problem, run.plan, events, at=at, config=config, settings=settings,
                            outages=run.outages, source="dashboard request", progress=job.messages.append)
            job.messages.append("writing a new plan version")
            folder = next_folder(self.root, _PREFIX)
            write_replan(result, folder, parent=str(self.folders()[job.version] / "results.json"))
            doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
            doc["parent_version"] = job.version
            from optimizer.report.results import write_json_atomic

            write_json_atomic(folder / "results.json", doc)
            job.result_version = int(folder.name[len(_PREFIX):])
            job.messages.append(f"done: version {job.result_version}")
            job.state = "done"
        except InputError as exc:
            job.error = "the re-plan was refused"
            job.issues = [{"field": i.field, "message": i.message, "value": None if i.value is None else str(i.value)}
                          for i in exc.issues]
            job.state = "error"
        except QfreightError as exc:
            job.error = str(exc)
            job.state = "error"
        except Exception as exc:  # noqa: BLE001 - a bug must reach the page, not kill the worker silently
            job.error = f"internal error: {type(exc).__name__}: {exc}"
            job.messages.append(traceback.format_exc(limit=3))
            job.state = "error"
        finally:
            self._busy.release()
