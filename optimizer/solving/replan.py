"""Re-planning under disruption and rolling-horizon evaluation, on top of the pipeline.

``qfreight replan RESULTS --events EVENTS --at TIME``: the plan in ``RESULTS`` (a results.json
written by ``qfreight solve`` or by an earlier re-plan) is frozen at ``TIME``
(:mod:`optimizer.freight.replan`), the events are applied to its problem
(:mod:`optimizer.freight.events`), and everything still open is re-optimised with the chosen
backend and objective plus the stability term (``[replan] change_cost_cny`` per shipment whose
route or departure slot changes). The answer comes with three comparisons, all checked against
the disrupted problem by :func:`~optimizer.freight.evaluate.check_plan` (and the locomotive
outages): the new plan, the plan in force kept as it is ("keep"), and every baseline dispatcher
re-run from the same frozen state (the best of them named).

``qfreight simulate FILE --events STREAM``: plays the horizon; at each moment an event is
announced, each policy reacts from its current state and its plan runs until the next one.
Policies: ``static`` (the plan made at the start, never changed: trains wait out closures),
``replan`` (this module's re-plan, same backend) and ``baseline`` (the best dispatcher re-run from
the same state). A closure or slow-down announced while trains of a policy's plan are already
on the corridor takes effect, for that policy, once those trains have cleared it; other events
that contradict what already ran are dropped for that policy; both are listed in the output.

Time limits: ``[solver] time_limit`` bounds each re-plan whole (preparation included).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from optimizer.errors import ConfigError, InputError, Issue, SolverError
from optimizer.freight.baselines import BASELINES
from optimizer.freight.candidates import CandidateOptions, generate_candidates
from optimizer.freight.evaluate import Kpis, Plan, check_plan, decode, plan_table, simulate
from optimizer.freight.events import Disrupted, Event, EventFile, Outage, apply_events, load_events, problem_document
from optimizer.freight.model import add_guard, build_model
from optimizer.freight.network import Network, minutes
from optimizer.freight.problem import Problem, load_problem
from optimizer.freight.replan import (
    Frozen,
    conflicts,
    departed_rows,
    fixed_assignment,
    freeze,
    frozen_rows,
    frozen_violations,
    keep_plan,
    outage_rows,
    outage_violations,
    plan_changes,
    plan_diff,
    plan_from_table,
    restrictions,
    with_light_engines,
    with_stability,
)
from optimizer.solving.config import Config, load_config

__all__ = [
    "POLICIES",
    "Replan",
    "ReplanSettings",
    "add_replan_arguments",
    "add_simulate_arguments",
    "load_replan_config",
    "load_run",
    "replan",
    "run_replan",
    "run_simulate",
    "simulate_stream",
    "write_replan",
]

POLICIES = ("static", "replan", "baseline")
#: KPIs the rolling-horizon comparison reports, with whether higher is better.
SIM_KPIS = (("on_time_share", True), ("dwell_hours_transfer", False), ("diesel_litres", False),
            ("deferred_tonnes", False), ("priority_weighted_lateness_hours", False), ("cost_cny", False))


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ReplanSettings:
    """``[replan]`` in the config file."""

    change_cost_cny: float = 1000.0  # CNY per shipment whose route or departure slot changes


def parse_replan_section(raw: object, *, source: str | None = None) -> ReplanSettings:
    if not isinstance(raw, Mapping):
        raise ConfigError(source, Issue("replan", "expected a table", raw))
    issues = []
    values = {}
    for key, value in raw.items():
        if key != "change_cost_cny":
            issues.append(Issue(f"replan.{key}", "unknown key; known keys: change_cost_cny"))
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= 1e9:
            issues.append(Issue("replan.change_cost_cny", "expected a finite number in [0, 1e9] (CNY)", value))
        else:
            values[key] = float(value)
    if issues:
        raise ConfigError(source, issues)
    return ReplanSettings(**values)


def load_replan_config(path: str | Path | None) -> tuple[Config, ReplanSettings]:
    """The run config and its ``[replan]`` table (read like every config file)."""
    config = load_config(path)
    return config, ReplanSettings(change_cost_cny=config.replan.change_cost_cny)


# ---------------------------------------------------------------------------- runs on disk
@dataclass(frozen=True, eq=False)
class Run:
    """A results document with its problem and plan."""

    problem: Problem
    plan: Plan
    document: dict
    folder: Path
    outages: tuple[Outage, ...] = ()


def _results_path(path: str | Path) -> Path:
    p = Path(path)
    return p / "results.json" if p.is_dir() else p


def load_run(path: str | Path, *, problem_file: str | Path | None = None, check: bool = True) -> Run:
    """A results.json (or its folder): the problem it was made for and its plan, checked.

    The problem is ``problem_file`` when given, else the results' own ``problem_file`` (a
    re-plan's derived problem, beside it), else its ``source`` (as written, then relative to the
    results folder). With ``check`` a plan that fails the problem's check is refused."""
    results = _results_path(path)
    source = str(results)
    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(source, Issue("(file)", "no such file (expected a results.json or its folder)")) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(source, Issue("(file)", f"not a readable results.json: {exc}")) from None
    if not isinstance(doc, dict) or "plan" not in doc:
        raise InputError(source, Issue("plan", "missing: not a freight results.json (qfreight solve writes one)"))
    folder = results.parent
    if problem_file is None:
        if isinstance(doc.get("problem_file"), str):
            problem_file = folder / doc["problem_file"]
        elif isinstance(doc.get("source"), str):
            given = Path(doc["source"])
            problem_file = given if given.exists() or given.is_absolute() else folder / given
        else:
            raise InputError(source, Issue("source", "names no problem file; give it with --problem"))
    problem = load_problem(problem_file)
    if doc.get("problem") not in (None, problem.name):
        raise InputError(source, Issue("problem", f"these results are for another problem than {problem_file} "
                                       f"({problem.name!r})", doc.get("problem")))
    plan = plan_from_table(problem, doc.get("plan"), doc.get("light_engines"), source=source)
    outages = tuple(Outage(o["hub"], int(o["count"]), int(o["start"]), None if o.get("end") is None else int(o["end"]),
                           str(o.get("path", "outage"))) for o in doc.get("outages") or ())
    violations = check_plan(problem, plan) + outage_violations(problem, plan, outages) if check else []
    if violations:
        raise InputError(source, Issue("plan", "the plan in these results does not pass the problem's check: "
                                       + "; ".join(violations[:5])))
    return Run(problem, plan, doc, folder, outages)


# ---------------------------------------------------------------------------- one re-plan
@dataclass(frozen=True, eq=False)
class Checked:
    """A plan for the disrupted problem, checked and measured."""

    name: str
    plan: Plan
    violations: tuple[str, ...]
    kpis: Kpis
    objective: float | None = None  # operator objective (model, no stability term); None: not in the model
    changes: int = 0

    @property
    def feasible(self) -> bool:
        return not self.violations

    def to_json(self, problem: Problem) -> dict[str, object]:
        return {"name": self.name, "feasible": self.feasible, "violations": list(self.violations),
                "objective_cny": self.objective, "changes": self.changes, "kpis": self.kpis.as_dict(),
                "plan": plan_table(problem, self.plan),
                "light_engines": [dataclasses.asdict(le) for le in self.plan.light_engines]}


@dataclass(frozen=True, eq=False)
class Replan:
    at: int  # minute since the horizon start
    before: Problem
    disrupted: Disrupted
    frozen: Frozen
    outages: tuple[Outage, ...]  # every outage in force (earlier ones included)
    new: Checked
    keep: Checked
    baselines: Mapping[str, Checked]
    best_baseline: str
    diff: list[dict[str, object]]
    outcome: object  # optimizer.solving.pipeline.Outcome of the derived model
    settings: ReplanSettings
    timing: Mapping[str, float] = field(default_factory=dict)

    @property
    def problem(self) -> Problem:
        return self.disrupted.problem

    def summary(self) -> str:
        k, b, keep = self.new.kpis, self.baselines[self.best_baseline].kpis, self.keep.kpis
        at = self.before.hours_to_datetime(self.at / 60).isoformat()
        state = "feasible" if self.new.feasible else "INFEASIBLE"
        return (f"{self.problem.name} re-planned at {at}: {state}, {self.new.changes} shipment(s) changed, "
                f"on time {100 * k.on_time_share:.1f}% (keep {100 * keep.on_time_share:.1f}%"
                f"{'' if self.keep.feasible else ' INFEASIBLE'}, {self.best_baseline} {100 * b.on_time_share:.1f}%), "
                f"cost {k.cost_cny:,.0f} CNY (keep {keep.cost_cny:,.0f}, {self.best_baseline} {b.cost_cny:,.0f})")

    def to_json(self) -> dict[str, object]:
        problem = self.problem
        doc = dict(self.outcome.to_json())
        frozen = self.frozen
        doc.update({
            "kind": "replan",
            "problem_file": "problem.json",
            "at": problem.hours_to_datetime(self.at / 60).isoformat(),
            "at_minute": self.at,
            "events": [e.to_document() | {"path": e.path, "summary": e.describe()} for e in self.disrupted.events],
            "outages": [dataclasses.asdict(o) for o in self.outages],
            "change_cost_cny": self.settings.change_cost_cny,
            "frozen": {
                "pinned": sorted(s for s in frozen.frozen_legs if frozen.pinned(s)),
                "in_transit": sorted(s for s in frozen.frozen_legs if not frozen.pinned(s)),
                "legs": {sid: [{"corridor": leg.corridor, "enter": problem.hours_to_datetime(leg.enter).isoformat(),
                                "exit": problem.hours_to_datetime(leg.exit).isoformat()} for leg in legs]
                         for sid, legs in sorted(frozen.frozen_legs.items())},
                "light_engines": [dataclasses.asdict(le) for le in frozen.light_engines],
            },
            "feasible": self.new.feasible,
            "violations": list(self.new.violations),
            "kpis": self.new.kpis.as_dict() if self.new.feasible else None,
            "new_plan_kpis": self.new.kpis.as_dict(),
            "operator_objective_cny": self.new.objective,
            "changes": self.new.changes,
            "diff": self.diff,
            "keep": self.keep.to_json(problem),
            "replan_baselines": {name: c.to_json(problem) for name, c in self.baselines.items()},
            "replan_best_baseline": self.best_baseline,
            "replan_timing": dict(self.timing),
        })
        return doc


def _parse_at(problem: Problem, text: str, *, field: str = "--at") -> int:
    """Minutes since the horizon start of an ISO date-time (rounded down to the minute)."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError("command line", Issue(field, "expected an ISO date-time such as 2026-08-10T12:00", text)) from None
    start = problem.horizon.start
    if (when.tzinfo is None) != (start.tzinfo is None):
        raise InputError("command line", Issue(field, "mixes a date-time with a UTC offset and one without "
                                               f"(horizon.start {start.isoformat()})", text))
    at = math.floor((when - start).total_seconds() / 60.0 + 1e-9)
    if not 0 <= at <= problem.horizon.slots * problem.horizon.slot_minutes:
        raise InputError("command line", Issue(field, f"must be within the horizon ({start.isoformat()} to "
                                               f"{problem.hours_to_datetime(problem.horizon.hours).isoformat()})",
                                               text))
    return at


def replan(problem: Problem, plan: Plan, events: Sequence[Event], *, at: int, config: Config,
           settings: ReplanSettings = ReplanSettings(), outages: Sequence[Outage] = (), source: str | None = None,
           deadline=None, progress: Callable[[str], None] | None = None) -> Replan:
    """Re-plan ``plan`` (for ``problem``) at minute ``at`` under ``events``.

    ``outages`` are locomotive outages already in force (from earlier re-plans). Raises
    :class:`InputError` (naming the event and field) when the events contradict the frozen part.
    """
    from optimizer.solving.pipeline import Prepared, solve_problem
    from optimizer.solving.stop import Deadline

    deadline = deadline or Deadline(config.solver.time_limit)
    say = progress or (lambda message: None)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    say("freezing the plan in force")
    frozen = freeze(problem, plan, at)
    issues = conflicts(frozen, events)
    if issues:
        raise InputError(source, issues)
    disrupted = apply_events(problem, events, source=source)
    derived = disrupted.problem
    all_outages = tuple(outages) + disrupted.outages
    timing["freeze"] = time.perf_counter() - t0

    say("candidates for what is still open")
    t = time.perf_counter()
    m = config.model
    rules = restrictions(frozen, derived)
    cset = generate_candidates(derived, CandidateOptions(m.k_routes, m.max_departure_slots, m.light_engines),
                               restrictions=rules)
    engines: dict[tuple[int, int, int], int] = {}
    for le in plan.light_engines:
        c = derived.corridor_index[le.corridor]
        key = (c, 0 if derived.corridors[c].origin == le.origin else 1, le.slot)
        engines[key] = engines.get(key, 0) + le.count
    cset = with_light_engines(cset, engines)
    _check_frozen_candidates(cset, frozen, source)
    timing["candidates"] = time.perf_counter() - t

    say("model and baselines from the same state")
    t = time.perf_counter()

    def rows(model, cs):
        return outage_rows(departed_rows(frozen_rows(model, cs, frozen), cs, rules), cs, all_outages)

    plain = rows(build_model(cset, config.objective), cset)
    fixed = fixed_assignment(cset, frozen)
    assignments: dict[str, np.ndarray] = {}
    checked: dict[str, Checked] = {}
    for name, dispatch in BASELINES.items():
        x = dispatch(cset, plain, fixed=fixed, locomotives_out=all_outages)
        assignments[name] = x
        checked[name] = _check(name, derived, decode(cset, x), all_outages, frozen,
                               objective=float(plain.objective(x)[0]), model_ok=bool(plain.is_feasible(x)[0]),
                               changes=int(plan_changes(cset, plan) @ x[: len(cset.candidates)]))
    ok = [n for n in checked if checked[n].feasible] or list(checked)
    best = min(ok, key=lambda n: (checked[n].objective, list(checked).index(n)))
    stable_cset = with_stability(cset, plan, settings.change_cost_cny)
    model = rows(build_model(stable_cset, config.objective), stable_cset)
    if config.objective.guarded:
        model = add_guard(model, stable_cset, assignments[best])
    timing["model_baselines"] = time.perf_counter() - t

    say(f"solving with {config.solver.backend}")
    t = time.perf_counter()
    prepared = Prepared(derived, stable_cset, model, assignments, best, dict(timing), m.inequality, m.penalty)

    def on_stage(stage) -> None:
        if getattr(stage, "objective", None) is not None:
            say(f"{stage.stage}{'' if stage.round is None else ' ' + str(stage.round)}: objective "
                f"{stage.objective:,.2f}")

    try:
        outcome = solve_problem(derived, config, prepared=prepared, deadline=deadline, on_progress=on_stage)
    except ValueError as exc:  # a QUBO backend whose penalty rule needs a feasible reference
        raise SolverError(f"re-plan could not be encoded for {config.solver.backend}: {exc}") from None
    timing["solve"] = time.perf_counter() - t

    say("checking the new plan, the plan in force and the baselines")
    t = time.perf_counter()
    x = np.asarray(outcome.x)
    changes = int(plan_changes(cset, plan) @ x[: len(cset.candidates)])
    new = _check("new", derived, outcome.plan, all_outages, frozen, objective=float(plain.objective(x)[0]),
                 model_ok=bool(model.is_feasible(x)[0]), changes=changes, extra=tuple(outcome.violations))
    kept = keep_plan(frozen, derived)
    keep = _check("keep", derived, kept, all_outages, frozen, objective=None, model_ok=True, changes=0)
    diff = plan_diff(problem, plan, derived, outcome.plan)
    timing["check"] = time.perf_counter() - t
    timing["total"] = time.perf_counter() - t0
    return Replan(at, problem, disrupted, frozen, all_outages, new, keep, checked, best, diff, outcome, settings,
                  timing)


def _check(name: str, problem: Problem, plan: Plan, outages, frozen: Frozen, *, objective, model_ok: bool,
           changes: int, extra: tuple[str, ...] = ()) -> Checked:
    violations = list(dict.fromkeys([*extra, *check_plan(problem, plan), *outage_violations(problem, plan, outages),
                                     *frozen_violations(frozen, problem, plan)]))
    if not model_ok and not violations:
        violations.append("violates the re-plan model's rows")
    return Checked(name, plan, tuple(violations), simulate(problem, plan), objective, changes)


def _check_frozen_candidates(cset, frozen: Frozen, source) -> None:
    """Every candidate of a departed shipment keeps its frozen legs (the events were checked
    against them; this guards the candidate generator)."""
    for members in cset.groups:
        sid = cset.candidates[members[0]].shipment
        legs = frozen.frozen_legs.get(sid)
        if legs is None:
            continue
        want = [(leg.corridor, leg.enter, leg.exit) for leg in legs]
        for i in members:
            move = cset.candidates[i].movement
            if move is not None and [(leg.corridor, leg.enter, leg.exit) for leg in move.legs[: len(legs)]] != want:
                raise InputError(source, Issue("events", f"they change the timing of shipment {sid}'s frozen legs"))


# ---------------------------------------------------------------------------- writing
def next_folder(parent: Path, prefix: str = "replan-") -> Path:
    """A new numbered folder ``prefix01``, ``prefix02``, ... under ``parent`` (created; never reused)."""
    parent.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[len(prefix):]) for p in parent.iterdir()
             if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()]
    k = max(taken, default=0) + 1
    while True:
        folder = parent / f"{prefix}{k:02d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            k += 1


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def write_replan(result: Replan, folder: Path, *, parent: str | None = None) -> Path:
    """Write ``results.json`` (the new plan, loadable by a later re-plan), ``problem.json`` (the
    disrupted problem) and ``events.json`` into ``folder``; returns the results path."""
    from optimizer.report.results import write_atomic, write_json_atomic

    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "problem.json", json.dumps(result.disrupted.document, indent=1, default=_json_default) + "\n")
    write_atomic(folder / "events.json", json.dumps({"events": [e.to_document() for e in result.disrupted.events]},
                                                   indent=1) + "\n")
    doc = result.to_json()
    doc["parent"] = parent
    return write_json_atomic(folder / "results.json", doc)


# ---------------------------------------------------------------------------- CLI: replan
def add_replan_arguments(parser) -> None:
    parser.add_argument("results", help="results.json of the plan in force (or its folder): qfreight solve or an "
                                        "earlier re-plan wrote it")
    parser.add_argument("--events", required=True, help="event file (.toml or .json; see optimizer.freight.events)")
    parser.add_argument("--at", required=True, help="re-plan time (ISO 8601): legs entered before it are frozen")
    parser.add_argument("--config", help="config file (TOML; [replan] change_cost_cny and the usual tables)")
    parser.add_argument("--backend", help="backend name (overrides [solver] backend)")
    parser.add_argument("--seed", type=int, help="random seed (overrides [solver] seed)")
    parser.add_argument("--time-limit", type=float, help="seconds for the whole re-plan (overrides [solver] time_limit)")
    parser.add_argument("--change-cost", type=float, help="CNY per changed shipment plan (overrides [replan] "
                                                          "change_cost_cny)")
    parser.add_argument("--problem", help="the problem file, when the results do not name a readable one")
    parser.add_argument("--out", help="output folder (default: RESULTS' folder/replan-NN, a new number each time)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")


def _config_from_args(args) -> tuple[Config, ReplanSettings]:
    from backends import REGISTRY

    config, settings = load_replan_config(args.config)
    if args.backend is not None and args.backend not in REGISTRY:
        raise InputError("command line", Issue("--backend", f"unknown backend; known: {', '.join(REGISTRY)}",
                                               args.backend))
    config = config.override(backend=args.backend, seed=args.seed, time_limit=getattr(args, "time_limit", None))
    change = getattr(args, "change_cost", None)
    if change is not None:
        settings = parse_replan_section({"change_cost_cny": change}, source="command line (--change-cost)")
    return config, settings


def run_replan(args) -> int:
    """``qfreight replan``: exit 0 with a plan written; InputError (exit 2) on bad input or events
    that contradict the frozen part."""
    config, settings = _config_from_args(args)
    run = load_run(args.results, problem_file=args.problem)
    at = _parse_at(run.problem, args.at)
    events = load_events(args.events)
    stream = events.stream(run.problem)
    result = replan(run.problem, run.plan, stream, at=at, config=config, settings=settings, outages=run.outages,
                    source=events.source)
    folder = Path(args.out) if args.out else next_folder(run.folder)
    path = write_replan(result, folder, parent=str(_results_path(args.results)))
    print(result.summary())
    if not args.quiet:
        print(_replan_table(result))
        if result.diff:
            print("\nchanged shipments:")
            for row in result.diff[:50]:
                print(f"  {row['shipment']}: {', '.join(row['changed'])}")
        if not result.new.feasible:
            print("\nthe new plan violates:")
            for v in result.new.violations[:20]:
                print(f"  - {v}")
        if not result.keep.feasible:
            print(f"\nkeeping the old plan would violate ({len(result.keep.violations)}):")
            for v in result.keep.violations[:10]:
                print(f"  - {v}")
    print(f"\nwrote {path}")
    return 0


def _replan_table(result: Replan) -> str:
    from optimizer.freight.evaluate import KPI_LABELS

    cols = [("new plan", result.new), ("keep old", result.keep), (result.best_baseline, result.baselines[result.best_baseline])]
    lines = [f"{'KPI':<28}{'unit':>6}" + "".join(f"{name:>16}" for name, _ in cols)]
    lines.append("-" * len(lines[0]))
    for key in ("on_time_share", "dwell_hours_transfer", "diesel_litres", "deferred_tonnes",
                "priority_weighted_lateness_hours", "cost_cny"):
        label, unit = KPI_LABELS[key]
        cells = []
        for _, c in cols:
            v = getattr(c.kpis, key)
            cells.append(f"{100 * v:>16.1f}" if unit == "%" else f"{v:>16,.1f}")
        lines.append(f"{label:<28}{unit:>6}" + "".join(cells))
    lines.append(f"{'Violations':<28}{'':>6}" + "".join(f"{len(c.violations):>16}" for _, c in cols))
    lines.append(f"{'Changed shipments':<28}{'':>6}" + "".join(f"{c.changes:>16}" for _, c in cols))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- rolling horizon
def _clip(frozen: Frozen, event: Event, start_min: int) -> tuple[Event | None, str | None]:
    """The event as it can take effect given what already runs (see the module docstring)."""
    problem = frozen.problem
    if not conflicts(frozen, [event]):
        return event, None
    if event.kind in ("closure", "slowdown"):
        corridor = event.fields["corridor"]
        clear = max([minutes(leg.exit) for legs in frozen.frozen_legs.values() for leg in legs
                     if leg.corridor == corridor] + [start_min])
        network = Network(problem)
        c = problem.corridors[problem.corridor_index[corridor]]
        for le in frozen.light_engines:
            if le.corridor == corridor:
                exit_, _ = network.run(c, le.slot * problem.horizon.slot_minutes)
                clear = max(clear, exit_ or 0)
        new_start = problem.hours_to_datetime(clear / 60.0)
        if new_start >= event.fields["end"]:
            return None, f"{event.path}: dropped, the trains on {corridor} clear it only after the event ends"
        clipped = dataclasses.replace(event, fields={**event.fields, "start": max(new_start, event.fields["start"])})
        if conflicts(frozen, [clipped]):
            return None, f"{event.path}: dropped, trains keep running on {corridor} through it"
        return clipped, (f"{event.path}: takes effect at {clipped.fields['start'].isoformat()}, once the trains on "
                         f"{corridor} have cleared it")
    return None, f"{event.path}: dropped, it contradicts what already ran ({conflicts(frozen, [event])[0].message})"


def simulate_stream(problem: Problem, events: Sequence[Event], *, config: Config,
                    settings: ReplanSettings = ReplanSettings(), policies: Sequence[str] = POLICIES,
                    source: str | None = None, progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Play the horizon under ``events`` (sorted by announcement) for each policy; JSON-ready."""
    from optimizer.solving.pipeline import solve_problem

    say = progress or (lambda message: None)
    start = problem.horizon.start
    horizon_min = problem.horizon.slots * problem.horizon.slot_minutes
    groups: dict[int, list[Event]] = {}
    upfront: list[Event] = []
    for e in events:
        when = e.announced_at(start)
        minute = math.floor((when - start).total_seconds() / 60.0 + 1e-9) if \
            (when.tzinfo is None) == (start.tzinfo is None) else 0
        if minute <= 0 and e.kind != "locomotive":
            upfront.append(e)  # known when the first plan is made
        elif minute <= 0:
            groups.setdefault(0, []).append(e)  # outages are rows of a re-plan, not of the first plan
        elif minute < horizon_min:
            groups.setdefault(minute, []).append(e)
    base = apply_events(problem, upfront, source=source) if upfront else Disrupted(problem, problem_document(problem))
    say(f"initial plan ({config.solver.backend})")
    t = time.perf_counter()
    outcome = solve_problem(base.problem, config)
    initial_seconds = time.perf_counter() - t
    if not outcome.feasible:
        raise SolverError(f"the initial plan of {problem.name} is infeasible; cannot simulate from it")
    prepared = outcome.prepared
    best_name = prepared.best_baseline
    starts = {"static": outcome.plan, "replan": outcome.plan,
              "baseline": decode(prepared.candidates, prepared.baselines[best_name])}
    out_policies: dict[str, object] = {}
    for policy in policies:
        say(f"policy {policy}")
        current, plan, outages = base.problem, starts[policy], list(base.outages)
        steps, notes = [], []
        for minute in sorted(groups):
            frozen = freeze(current, plan, minute)
            applied = []
            for e in groups[minute]:
                clipped, note = _clip(frozen, e, minute)
                if note:
                    notes.append(note)
                if clipped is not None:
                    applied.append(clipped)
            if not applied:
                continue
            t = time.perf_counter()
            if policy == "static":
                dis = apply_events(current, applied, source=source)
                new_problem, new_plan, changes = dis.problem, keep_plan(frozen, dis.problem), 0
                outages += dis.outages
            else:
                result = replan(current, plan, applied, at=minute, config=config, settings=settings, outages=outages,
                                source=source)
                pick = result.new if policy == "replan" else result.baselines[result.best_baseline]
                if not pick.feasible:
                    notes.append(f"at {current.hours_to_datetime(minute / 60).isoformat()}: the {policy} answer was "
                                 f"infeasible ({pick.violations[0]}); the plan in force was kept")
                    pick = result.keep
                new_problem, new_plan, changes = result.problem, pick.plan, pick.changes
                outages = list(result.outages)
            steps.append({"at": current.hours_to_datetime(minute / 60).isoformat(),
                          "events": [e.describe() for e in applied], "changes": changes,
                          "seconds": round(time.perf_counter() - t, 3)})
            current, plan = new_problem, new_plan
        violations = check_plan(current, plan) + outage_violations(current, plan, outages)
        kpis = simulate(current, plan)
        out_policies[policy] = {"kpis": kpis.as_dict(), "violations": violations, "feasible": not violations,
                                "steps": steps, "notes": notes, "changes": sum(s["changes"] for s in steps)}
    return {"problem": problem.name, "source": problem.source, "backend": config.solver.backend,
            "seed": config.solver.seed, "initial_plan_seconds": round(initial_seconds, 3),
            "initial_baseline": best_name,
            "events": [e.to_document() | {"path": e.path, "summary": e.describe()} for e in events],
            "announced_upfront": len(upfront), "replan_times": len(groups),
            "policies": out_policies, "comparison": _comparison(out_policies)}


def _comparison(policies: Mapping[str, Mapping]) -> list[dict[str, object]]:
    rows = []
    for key, higher in SIM_KPIS:
        row: dict[str, object] = {"kpi": key, "higher_is_better": higher}
        for name, p in policies.items():
            row[name] = p["kpis"][key]
        if "replan" in policies:
            for other in ("static", "baseline"):
                if other in policies:
                    row[f"replan_minus_{other}"] = policies["replan"]["kpis"][key] - policies[other]["kpis"][key]
        rows.append(row)
    return rows


def comparison_markdown(doc: Mapping[str, object]) -> str:
    from optimizer.freight.evaluate import KPI_LABELS

    names = list(doc["policies"])
    lines = [f"# Rolling-horizon comparison: {doc['problem']} ({doc['backend']}, seed {doc['seed']})", "",
             f"{len(doc['events'])} events, {doc['replan_times']} re-plan times.", "",
             "| KPI | unit | " + " | ".join(names) + " | re-plan - static | re-plan - baseline |",
             "|---|---|" + "---:|" * (len(names) + 2)]
    for row in doc["comparison"]:
        label, unit = KPI_LABELS.get(row["kpi"], (row["kpi"], ""))
        scale = 100.0 if unit == "%" else 1.0

        def cell(v, scale=scale):
            return "-" if v is None else f"{scale * v:,.1f}"

        lines.append(f"| {label} | {unit} | " + " | ".join(cell(row[n]) for n in names) + " | "
                     + cell(row.get("replan_minus_static")) + " | " + cell(row.get("replan_minus_baseline")) + " |")
    lines.append("| Violations | | " + " | ".join(str(len(doc["policies"][n]["violations"])) for n in names)
                 + " | | |")
    lines.append("| Changed shipment plans | | " + " | ".join(str(doc["policies"][n]["changes"]) for n in names)
                 + " | | |")
    for n in names:
        for note in doc["policies"][n]["notes"]:
            lines.append(f"\n- {n}: {note}")
    return "\n".join(lines) + "\n"


def add_simulate_arguments(parser) -> None:
    parser.add_argument("file", help="problem file (.toml or .json)")
    parser.add_argument("--events", required=True, help="event stream (.toml or .json): listed events and/or a "
                                                        "[weather_model] with seeded rates")
    parser.add_argument("--config", help="config file (TOML; [replan] and the usual tables)")
    parser.add_argument("--backend", help="backend name (overrides [solver] backend)")
    parser.add_argument("--seed", type=int, help="solver seed (overrides [solver] seed)")
    parser.add_argument("--weather-seed", type=int, help="seed of the weather model's draws (overrides the file's)")
    parser.add_argument("--time-limit", type=float, help="seconds per plan and re-plan (overrides [solver] time_limit)")
    parser.add_argument("--change-cost", type=float, help="CNY per changed shipment plan")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, from {', '.join(POLICIES)}")
    parser.add_argument("--out", help="output folder (default results/<problem>-simulate)")


def run_simulate(args) -> int:
    from optimizer.report.results import write_atomic, write_json_atomic

    config, settings = _config_from_args(args)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    bad = [p for p in policies if p not in POLICIES]
    if bad or not policies:
        raise InputError("command line", Issue("--policies", f"expected some of {', '.join(POLICIES)}", args.policies))
    if args.weather_seed is not None and not 0 <= args.weather_seed < 2**32:
        raise InputError("command line", Issue("--weather-seed", "must be in 0 .. 2^32 - 1", args.weather_seed))
    problem = load_problem(args.file)
    stream_file: EventFile = load_events(args.events)
    events = stream_file.stream(problem, seed=args.weather_seed)
    checked = apply_events(problem, events, source=stream_file.source)  # every event valid against the problem
    del checked

    def say(message: str) -> None:
        print(f"  {message}", flush=True)

    doc = simulate_stream(problem, events, config=config, settings=settings, policies=policies,
                          source=stream_file.source, progress=say)
    doc["stream_file"] = stream_file.source
    doc["weather_seed"] = args.weather_seed if args.weather_seed is not None else \
        (stream_file.weather_model.seed if stream_file.weather_model else None)
    out = Path(args.out or Path("results") / f"{problem.name}-simulate")
    write_json_atomic(out / "simulate.json", doc)
    text = comparison_markdown(doc)
    write_atomic(out / "simulate.md", text)
    print(text)
    print(f"wrote {out}/: simulate.json, simulate.md")
    return 0
