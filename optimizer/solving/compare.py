"""``qfreight compare``: every instance x backend x seed, one row per run, written as it finishes.

Runs go through the configured executor (``[executor]``; local by default). After every
finished run the whole ``results.json`` (and ``results.csv``) is rewritten atomically, so an
interrupted comparison leaves every finished row readable. A backend that cannot run an
instance (a missing package, any :class:`QfreightError`) gets a row with ``"error"`` instead of
stopping the comparison.

CP-SAT on the constrained model is the reference of every instance: it always runs (seed =
the first seed) even when ``cpsat`` is not among the requested backends, and it is a row like
any other. Gaps, best-known objectives and time-to-solution are derived from the rows by
:func:`optimizer.report.annotate` (so ``qfreight report`` recomputes them identically).
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from optimizer.solving.config import Config
from optimizer.errors import InputError, Issue, QfreightError

__all__ = ["RunSpec", "Instance", "load_instances", "plan_runs", "run_one", "run_comparison", "BACKEND_PACKAGES"]

#: The libraries whose versions a row records, per backend (qfreight and numpy always).
BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {
    "exact": (),
    "anneal": ("dwave-samplers", "dimod"),
    "cpsat": ("ortools",),
    "qaoa": ("qiskit", "qiskit-aer"),
    "photonic": ("strawberryfields", "thewalrus"),
}

REFERENCE_BACKEND = "cpsat"


@dataclass(frozen=True)
class Instance:
    """One input of the comparison: a freight problem file or a bare QUBO file (``FILE#k``)."""

    name: str  # unique within the comparison (the problem's name, "#2" appended on a clash)
    path: str
    kind: str  # "problem" | "qubo"
    meta: dict  # what the report needs without the file: hubs, corridors, horizon, sizes


@dataclass(frozen=True)
class RunSpec:
    """One run; picklable, so that it can go to a process pool or a Dask worker."""

    instance: Instance
    backend: str
    seed: int
    time_limit: float
    config: Config
    reference_only: bool = False  # the CP-SAT reference run added when cpsat was not requested


def _versions(backend: str, hybrid: bool) -> dict[str, str | None]:
    packages = ["qfreight", "numpy", *BACKEND_PACKAGES.get(backend, ())]
    if hybrid and "ortools" not in packages:
        packages.append("ortools")  # the hybrid pipeline refines with CP-SAT
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _problem_meta(problem) -> dict:
    return {
        "kind": "problem",
        "description": problem.description,
        "horizon": {"start": problem.horizon.start.isoformat(), "slot_minutes": problem.horizon.slot_minutes,
                    "slots": problem.horizon.slots},
        "hubs": [{"id": h.id, "name": h.name, "kind": h.kind, "lat": h.lat, "lon": h.lon} for h in problem.hubs],
        "corridors": [{"id": c.id, "from": c.origin, "to": c.destination, "km": c.km, "capacity": c.capacity,
                       "traction": c.traction} for c in problem.corridors],
        "shipments": [s.id for s in problem.shipments],
    }


def load_instances(files: Sequence[str], qubo_options=None) -> list[Instance]:
    """Read and validate every input before any run starts (a bad file is an InputError, exit 2).

    ``qubo_options`` (``config.qubo``) gives the sense and format bare QUBO files are read with."""
    from optimizer.freight.problem import load_problem
    from optimizer.qubo.formats import is_qubo_file, read_qubo
    from optimizer.solving.config import QuboSection

    qubo_options = qubo_options or QuboSection()

    instances: list[Instance] = []
    seen: dict[str, int] = {}
    for path in files:
        if not is_qubo_file(path):
            problem = load_problem(path)
            name, meta = problem.name, _problem_meta(problem)
        else:
            qubo = read_qubo(path, format=qubo_options.requested_format, sense=qubo_options.requested_sense)
            name = str(qubo.metadata.get("name") or Path(path.split("#")[0]).stem)
            if qubo.metadata.get("instance") is not None:
                name = f"{name}#{qubo.metadata['instance']}"
            meta = {"kind": "qubo", "format": qubo.metadata.get("format"), "sense": qubo.metadata.get("sense"),
                    "num_variables": qubo.num_variables}
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        instances.append(Instance(name=name, path=str(path), kind=meta["kind"], meta=meta))
    return instances


def plan_runs(instances: Sequence[Instance], backends: Sequence[str], seeds: Sequence[int], time_limit: float,
              config: Config) -> list[RunSpec]:
    """Per instance: the CP-SAT reference first (all seeds if requested, else one run), then the rest."""
    specs: list[RunSpec] = []
    for inst in instances:
        if REFERENCE_BACKEND in backends:
            specs += [RunSpec(inst, REFERENCE_BACKEND, s, time_limit, config) for s in seeds]
        else:
            specs.append(RunSpec(inst, REFERENCE_BACKEND, seeds[0], time_limit, config, reference_only=True))
        for backend in backends:
            if backend != REFERENCE_BACKEND:
                specs += [RunSpec(inst, backend, s, time_limit, config) for s in seeds]
    return specs


# Prepared problems, per process (a comparison runs many backends and seeds on one model);
# the lock because a Dask LocalCluster runs tasks in threads of this process.
_PREPARED: dict[tuple, object] = {}
_PREPARED_LOCK = threading.Lock()


def _prepared(path: str, config: Config):
    from optimizer.solving.pipeline import prepare
    from optimizer.freight.problem import load_problem

    key = (path, config.model)
    with _PREPARED_LOCK:
        prepared = _PREPARED.get(key)
        if prepared is None:
            prepared = prepare(load_problem(path), config)
            _PREPARED.clear()  # one problem at a time is enough: runs are ordered by instance
            _PREPARED[key] = prepared
    return prepared


def time_split(timing: dict, *, hybrid: bool) -> dict[str, float | None]:
    """Solver wall time split into classical / quantum simulation / post-processing seconds.

    Quantum simulation: the backend's ``simulate``, ``sample`` and ``compile`` stages;
    post-processing: ``postprocess`` and ``ablation``; classical: the backend's ``classical``
    stage when it reports one, else the rest of ``total`` (QAOA's parameter optimisation,
    GBS training bookkeeping). The hybrid loop reports only its total.
    """
    total = timing.get("total")
    if hybrid or total is None:
        return {"time_classical_s": None, "time_quantum_sim_s": None, "time_postprocess_s": None}
    quantum = sum(float(timing.get(k, 0.0)) for k in ("simulate", "sample", "compile"))
    post = sum(float(timing.get(k, 0.0)) for k in ("postprocess", "ablation"))
    classical = float(timing["classical"]) if "classical" in timing else max(0.0, float(total) - quantum - post)
    return {"time_classical_s": classical, "time_quantum_sim_s": quantum, "time_postprocess_s": post}


def backend_metrics(info: dict) -> dict[str, object]:
    """The backends' own figures of merit, flattened (None where a backend has none)."""
    ablation = info.get("ablation") if isinstance(info.get("ablation"), dict) else None
    return {
        "evaluations": info.get("evaluations"),
        "shots": info.get("shots"),
        "qaoa_approximation_ratio": info.get("approximation_ratio"),
        "qaoa_optimum_probability": info.get("optimum_probability"),
        "qaoa_best_probability": info.get("best_probability"),
        "photonic_mean_photons_per_sample": info.get("mean_photons_per_sample"),
        "photonic_mean_clicks_per_sample": info.get("mean_clicks_per_sample"),
        "photonic_gbs_best_energy": info.get("best_energy_postprocessed") if ablation else None,
        "photonic_random_best_energy": ablation.get("best_energy_postprocessed") if ablation else None,
    }


def _trace(info: dict) -> list[list[float]] | None:
    """(seconds since start, best QUBO energy) after each hybrid stage."""
    stages = info.get("stages")
    if not stages:
        return None
    t, out = 0.0, []
    for stage in stages:
        t += float(stage.get("seconds", 0.0))
        energy = stage.get("objective", stage.get("energy"))
        if energy is not None:
            out.append([t, float(energy)])
    best, trace = float("inf"), []
    for t, e in out:  # the incumbent's energy never rises
        best = min(best, e)
        trace.append([t, best])
    return trace


def _run_problem(spec: RunSpec) -> dict[str, object]:
    from optimizer.solving.pipeline import solve_problem

    prepared = _prepared(spec.instance.path, spec.config)
    config = spec.config.override(backend=spec.backend, seed=spec.seed, time_limit=spec.time_limit)
    # The model is prepared once per instance and shared by its runs (its time is reported
    # separately): each run's limit covers its own solve.
    outcome = solve_problem(prepared.problem, config, prepared=prepared)
    res = outcome.to_json()
    solver = res["solver"]
    info = dict(solver["info"])
    hybrid = bool(res["hybrid"])
    sizes = res["sizes"]
    return {
        "qubo_variables": sizes["qubo_variables"],
        "model_variables": sizes["model_variables"],
        "shipments": sizes["shipments"],
        "objective": res["objective_cny"],
        "objective_unit": "CNY",
        "qubo_energy": res["qubo_energy"],
        "feasible": res["feasible"],
        "optimal": res["optimal"],
        "bound": res["bound_cny"],
        "hybrid": hybrid,
        "time_solve_s": res["timing"]["solve"],
        "time_prepare_s": sum(prepared.timing.values()),
        "time_evaluate_s": res["timing"]["evaluate"],
        **time_split(solver["timing"], hybrid=hybrid),
        "reads": solver["reads"],
        **backend_metrics(info),
        "greedy_objective": res["greedy_objective_cny"],
        "baseline": res["baseline"],
        "baseline_objective": res["baseline_objective_cny"],
        "kpis": res["kpis"],
        "baseline_kpis": res["baseline_kpis"],
        "kpi_change_percent": res["kpi_change_percent"],
        "violations": list(res["violations"])[:20],
        "plan": res["plan"],
        "trace": _trace(info),
        "interrupted": res["status"] == "interrupted",
        "status": res["status"],
        **quantum_share(info, solver),
        "_versions_hybrid": hybrid,
    }


def quantum_share(info: dict, solver: dict) -> dict[str, object]:
    """The attribution of a decomposition run (None where there was no device-solved piece)."""
    pieces = [p for s in info.get("stages", ()) for p in s.get("pieces", ()) if p.get("standins")]
    return {
        "best_origin": solver.get("best_origin"),
        "device_contribution": info.get("device_contribution") if pieces else None,
        "device_pieces": len(pieces) if pieces else None,
        "device_pieces_beat_standins": info.get("pieces_device_beat_standins") if pieces else None,
        "credited_rounds": info.get("credited_rounds") if pieces else None,
        "device_seconds": info.get("device_seconds") if pieces else None,
        "standin_seconds": info.get("standin_seconds") if pieces else None,
    }


def _run_qubo(spec: RunSpec) -> dict[str, object]:
    """A bare QUBO file: energies only (no model, no KPIs); as ``qfreight solve`` does it."""
    from backends import backend_options, create_solver
    from optimizer.solving.hybrid import solve_qubo
    from optimizer.qubo.formats import native_objective, read_qubo, target_energy

    config = spec.config
    qubo = read_qubo(spec.instance.path, format=config.qubo.requested_format, sense=config.qubo.requested_sense)
    options = config.backend_options(spec.backend)
    if config.qubo.target is not None and "target" in backend_options(spec.backend):
        # Backends that can stop at a target get it (as an energy); the others run their budget.
        options["target"] = target_energy(qubo, config.qubo.target)
    solver = create_solver(spec.backend, options, source=config.source)
    t = time.perf_counter()
    result, hybrid = solve_qubo(qubo, solver, config, seed=spec.seed, time_limit=spec.time_limit)
    solve_s = time.perf_counter() - t
    info = dict(result.info)
    is_reference = spec.backend == REFERENCE_BACKEND
    return {
        "qubo_variables": qubo.num_variables,
        "model_variables": None,
        "shipments": None,
        "objective": result.best_energy,
        "objective_unit": "QUBO energy",
        "qubo_energy": result.best_energy,
        "sense": qubo.metadata.get("sense"),
        "objective_in_file": native_objective(str(qubo.metadata.get("format")), result.best_energy,
                                              str(qubo.metadata.get("sense") or "min")),
        "target": config.qubo.target,
        "time_to_target_s": info.get("time_to_target_s"),
        "feasible": True,  # an unconstrained QUBO: every assignment is a solution
        "optimal": bool(info.get("optimal")) if is_reference else None,
        "bound": info.get("bound") if is_reference else None,
        "hybrid": hybrid,
        "time_solve_s": solve_s,
        "time_prepare_s": 0.0,
        "time_evaluate_s": 0.0,
        **time_split(dict(result.timing), hybrid=hybrid),
        "reads": result.num_reads,
        **backend_metrics(info),
        "probability_of_best": result.probability_of(result.best_energy),
        "greedy_objective": None,
        "baseline": None,
        "baseline_objective": None,
        "kpis": None,
        "baseline_kpis": None,
        "kpi_change_percent": None,
        "violations": [],
        "plan": None,
        "trace": _trace(info),
        "interrupted": bool(info.get("interrupted", False)),
        "status": "interrupted" if info.get("interrupted") else ("optimal" if info.get("optimal") and is_reference
                                                                  else "feasible"),
        **quantum_share(info, {"best_origin": result.best_origin}),
        "_versions_hybrid": hybrid,
    }


# Backends warmed up in this process: (name, options) -> True.
_WARM: set[tuple[str, str]] = set()


def _warm_up(backend: str, config: Config) -> None:
    """Import the backend and solve a 2-variable QUBO once per process, so that the first timed
    run of a backend does not pay for imports and first-call compilation. Failures are left to the
    real run to report."""
    import numpy as np

    from backends import create_solver
    from optimizer.qubo import Qubo

    options = config.backend_options(backend)
    key = (backend, repr(sorted(options.items())))
    with _PREPARED_LOCK:
        if key in _WARM:
            return
        _WARM.add(key)
    try:
        solver = create_solver(backend, options)
        solver.solve(Qubo.from_dense(np.array([[1.0, -2.0], [0.0, 1.0]])), seed=0, time_limit=0.5)
    except Exception:  # noqa: BLE001 - the timed run reports it
        pass


def run_one(spec: RunSpec) -> dict[str, object]:
    """One run's row. Errors a user can act on (and bugs) become ``"error"``; Ctrl-C propagates."""
    row: dict[str, object] = {
        "instance": spec.instance.name,
        "instance_kind": spec.instance.kind,
        "source": spec.instance.path,
        "backend": spec.backend,
        "seed": spec.seed,
        "time_limit_s": spec.time_limit,
        "reference_only": spec.reference_only,
        "error": None,
    }
    _warm_up(spec.backend, spec.config)
    started = time.perf_counter()
    hybrid = False
    try:
        body = _run_problem(spec) if spec.instance.kind == "problem" else _run_qubo(spec)
        hybrid = bool(body.pop("_versions_hybrid"))
        row.update(body)
    except QfreightError as exc:
        row["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - one backend failing on one instance must not abort the others
        # The row keeps the cause; it says "internal error" because this is a bug to report.
        row["error"] = f"internal error: {type(exc).__name__}: {exc}"
    row["versions"] = _versions(spec.backend, hybrid)
    row["wall_s"] = time.perf_counter() - started
    return row


def run_comparison(
    files: Sequence[str],
    config: Config,
    *,
    backends: Sequence[str],
    seeds: Sequence[int],
    time_limit: float,
    out_dir: Path,
    command: Sequence[str] = (),
    on_row: Callable[[dict, int, int], None] | None = None,
    events: str | None = None,
    on_message: Callable[[str], None] | None = None,
) -> dict:
    """Run everything, writing results after each run and the reports at the end.

    ``events`` (an event-stream file, as ``qfreight simulate --events`` reads) adds the
    rolling-horizon comparison of every problem instance after the solver runs: the static plan,
    re-planning with ``[solver] backend`` and the best baseline dispatcher reacting to each event
    (:func:`optimizer.solving.replan.simulate_stream`); the stream is checked against every problem
    before any run starts.

    Returns the results document; ``document["status"]`` is ``"complete"`` or ``"interrupted"``.
    """
    from backends import REGISTRY
    from optimizer.solving.executor import create_executor
    from optimizer.report.stats import annotate
    from optimizer.report.render import write_comparison_reports
    from optimizer.report.results import write_results

    unknown = [b for b in backends if b not in REGISTRY]
    if unknown:
        raise InputError("command line", Issue("--backends", f"unknown backend; known: {', '.join(REGISTRY)}",
                                               ",".join(unknown)))
    if not backends or not seeds:
        raise InputError("command line", Issue("--backends/--seeds", "need at least one backend and one seed"))
    instances = load_instances(files, config.qubo)
    streams = _event_streams(instances, events) if events else {}
    specs = plan_runs(instances, backends, seeds, time_limit, config)
    doc: dict[str, object] = {
        "format": "qfreight-comparison/1",
        "run_id": out_dir.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": list(command),
        "config": config.source,
        "backends": list(backends),
        "seeds": list(seeds),
        "time_limit_s": time_limit,
        "executor": {"kind": config.executor.kind, "workers": config.executor.workers},
        "status": "running",
        "planned_runs": len(specs),
        "instances": {inst.name: {"path": inst.path, **inst.meta} for inst in instances},
        "rows": [],
    }
    write_results(doc, out_dir)
    rows: list[dict] = doc["rows"]  # type: ignore[assignment]
    ex = config.executor
    try:
        with create_executor(ex.kind, workers=ex.workers, address=ex.address or None, processes=ex.processes) as executor:
            batch = max(1, ex.workers)
            for start in range(0, len(specs), batch):
                for row in executor.map(run_one, specs[start:start + batch]):
                    rows.append(row)
                    annotate(doc)
                    write_results(doc, out_dir)
                    if on_row is not None:
                        on_row(row, len(rows), len(specs))
                    if row.get("interrupted"):
                        raise KeyboardInterrupt
        if streams:
            doc["rolling_horizon"] = {}
            for name, (problem, stream, source) in streams.items():
                doc["rolling_horizon"][name] = rolling_horizon(problem, stream, config, time_limit=time_limit,
                                                               source=source, progress=on_message)
                write_results(doc, out_dir)
        doc["status"] = "complete"
    except KeyboardInterrupt:
        doc["status"] = "interrupted"
    annotate(doc)
    write_results(doc, out_dir)
    write_comparison_reports(doc, out_dir)
    return doc


def _event_streams(instances: Sequence[Instance], path: str) -> dict[str, tuple]:
    """The event stream of ``path`` for every problem instance, each validated against its problem
    (an event naming a corridor or shipment a problem lacks is an InputError before any run)."""
    from optimizer.freight.events import apply_events, load_events
    from optimizer.freight.problem import load_problem

    stream_file = load_events(path)
    streams = {}
    for inst in instances:
        if inst.kind != "problem":
            continue
        problem = load_problem(inst.path)
        events = stream_file.stream(problem)
        apply_events(problem, events, source=f"{stream_file.source} (applied to {inst.path})")
        streams[inst.name] = (problem, events, stream_file.source)
    if not streams:
        raise InputError("command line", Issue("--events", "needs at least one problem file among the inputs "
                                                           "(bare QUBO files have no events)", path))
    return streams


def rolling_horizon(problem, events, config: Config, *, time_limit: float, source: str | None = None,
                    progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """The rolling-horizon comparison of one problem (JSON-ready; see ``qfreight simulate``)."""
    from optimizer.solving.replan import ReplanSettings, simulate_stream

    run_config = config.override(time_limit=time_limit)
    return simulate_stream(problem, events, config=run_config,
                           settings=ReplanSettings(change_cost_cny=config.replan.change_cost_cny),
                           source=source, progress=progress)
