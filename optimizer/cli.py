"""``qfreight``: solve, validate, schema, backends, generate, export, compare, report, data.

Exit codes: 0 success; 1 a solver could not run (too large, missing package); 2 bad input
(problem, config or flags) with a message naming the file and field; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from optimizer.errors import InputError, Issue, QfreightError

__all__ = ["main"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qfreight")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"


def _problem_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="problem file (.toml or .json)")


def _qubo_args(parser: argparse.ArgumentParser, *, target: bool) -> None:
    """``--format``, ``--sense`` (and ``--target``) for bare QUBO and model files."""
    from optimizer.qubo.formats import format_choices

    parser.add_argument("--format", choices=format_choices(readable=True), metavar="FORMAT",
                        help="format of a bare QUBO/model input file (default: detected from the content; one of "
                             f"{', '.join(format_choices(readable=True))})")
    parser.add_argument("--sense", choices=["min", "max"], help="objective sense of a bare QUBO file whose format does "
                        "not state one (overrides [qubo] sense; default: the format's, min for .qubo as qbsolv)")
    if target:
        parser.add_argument("--target", type=float, help="stop once a sample reaches this objective, in the file's "
                            "convention (e.g. a published maximum); backends with a target option only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qfreight", description="Hybrid quantum-classical freight-rail scheduling")
    parser.add_argument("--version", action="version", version=f"qfreight {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve a problem file and print KPIs against the best baseline dispatcher")
    _problem_arg(solve)
    solve.add_argument("--config", help="config file (TOML)")
    solve.add_argument("--backend", help="backend name (overrides [solver] backend)")
    solve.add_argument("--seed", type=int, help="random seed (overrides [solver] seed)")
    solve.add_argument("--time-limit", type=float, help="seconds (overrides [solver] time_limit)")
    solve.add_argument("--out", help="output folder (default results/<problem>-<backend>)")
    solve.add_argument("--quiet", action="store_true", help="print only the summary line")
    _qubo_args(solve, target=True)

    export = sub.add_parser("export", help="write a problem's QUBO (or a QUBO file) in another format")
    export.add_argument("file", help="problem file or QUBO file (FILE#k picks an instance)")
    from optimizer.qubo.formats import format_choices

    export.add_argument("--to", required=True, choices=format_choices(readable=False),
                        help="output format; lp/mps/qplib of a problem file write the constrained model")
    export.add_argument("-o", "--out", required=True, help="output file")
    export.add_argument("--config", help="config file ([model] options)")
    _qubo_args(export, target=False)

    validate = sub.add_parser("validate", help="check a problem file and list every issue found")
    _problem_arg(validate)

    sub.add_parser("schema", help="print the JSON Schema of problem files")
    sub.add_parser("backends", help="list backends, their limits and whether they are installed")

    gen = sub.add_parser("generate", help="write a synthetic problem instance")
    gen.add_argument("--hubs", type=int, required=True)
    gen.add_argument("--shipments", type=int, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--slots", type=int, default=18)
    gen.add_argument("--out", help="output file (.toml or .json); default: print TOML")

    compare = sub.add_parser("compare", help="run every instance x backend x seed and write a comparison report")
    compare.add_argument("files", nargs="+", help="problem files or QUBO files (FILE#k picks an instance)")
    compare.add_argument("--config", help="config file (TOML)")
    compare.add_argument("--backends", help="comma-separated backends (default: every installed one but exact); "
                                            "CP-SAT always runs as the reference")
    compare.add_argument("--seeds", type=int, default=3, help="seeds per backend, counting from [solver] seed "
                                                              "(default 3)")
    compare.add_argument("--time-limit", type=float, help="seconds per run (overrides [solver] time_limit)")
    compare.add_argument("--out", help="output folder (default results/<run-id>)")
    compare.add_argument("--events", help="event stream (.toml or .json): add the rolling-horizon comparison of "
                                          "every problem (static plan, re-planning, baseline dispatcher)")
    _qubo_args(compare, target=True)

    pareto = sub.add_parser("pareto", help="sweep the [objective] weights and write the trade-off front (cost vs "
                                           "on-time share vs transfer-yard dwell) with the baselines")
    _problem_arg(pareto)
    pareto.add_argument("--config", help="config file (TOML)")
    pareto.add_argument("--backend", help="backend name (overrides [solver] backend)")
    pareto.add_argument("--seed", type=int, help="random seed (overrides [solver] seed)")
    pareto.add_argument("--time-limit", type=float, help="seconds per weight setting (overrides [solver] time_limit)")
    pareto.add_argument("--points", type=int, default=7, help="weight settings to solve (default 7)")
    pareto.add_argument("--out", help="output folder (default results/<problem>-pareto)")

    report = sub.add_parser("report", help="rebuild a comparison's reports from its results.json")
    report.add_argument("run_dir", help="the folder `qfreight compare` wrote")

    from optimizer.serve import add_arguments as add_serve_arguments
    from optimizer.solving.replan import add_replan_arguments, add_simulate_arguments

    add_replan_arguments(sub.add_parser("replan", help="re-plan a solved run after disruptions: frozen trains, a "
                                        "stability term, the keep-the-old-plan alternative and the best baseline"))
    add_simulate_arguments(sub.add_parser("simulate", help="play a horizon with a stream of disruptions: static plan "
                                          "vs re-planning vs the best baseline reacting to each event"))
    add_serve_arguments(sub.add_parser("serve", help="the dispatcher dashboard (local web app) of a run folder"))

    data = sub.add_parser("data", help="the public benchmark data folder: list, locate and fetch its files")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download public benchmark files from their publishers, checking "
                                "the SHA-256 sums recorded in qfreight")
    fetch.add_argument("names", nargs="*", help="data sets (see `qfreight data list`) or file names such as G14; "
                       "default: every set")
    fetch.add_argument("--dest", help="destination folder (default: QFREIGHT_DATA if set, else the user cache)")
    fetch.add_argument("--mirror", help="base URL holding the same layout, used instead of the publishers' URLs")
    fetch.add_argument("--accept-unverified", action="store_true",
                       help="install files for which no SHA-256 is recorded (their computed sum is printed)")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds per connection attempt (default 30)")
    data_sub.add_parser("list", help="the data sets qfreight can fetch, and whether their sums are recorded")
    data_sub.add_parser("where", help="the data folder tests and benchmarks use, and where it was looked for")
    return parser


def _cmd_validate(args) -> int:
    from optimizer.freight.problem import load_problem

    problem = load_problem(args.file)
    print(f"{args.file}: valid ({len(problem.hubs)} hubs, {len(problem.corridors)} corridors, "
          f"{len(problem.shipments)} shipments, {problem.horizon.slots} slots of {problem.horizon.slot_minutes} min)")
    return 0


def _cmd_schema(args) -> int:
    from optimizer.freight.problem import problem_schema

    print(json.dumps(problem_schema(), indent=2))
    return 0


def _cmd_backends(args) -> int:
    from backends import REGISTRY, is_installed, solver_class

    print(f"{'backend':<10}{'installed':>10}{'max variables':>15}  summary")
    for name, spec in REGISTRY.items():
        installed = is_installed(name)
        limit = "-"
        if installed:
            try:
                cls = solver_class(name)
                limit = str(cls().max_variables or "unlimited")
            except Exception as exc:  # a broken optional install must not hide the other rows
                limit = f"error: {type(exc).__name__}"
        print(f"{name:<10}{'yes' if installed else 'no':>10}{limit:>15}  {spec.summary}")
    return 0


def _cmd_generate(args) -> int:
    from optimizer.freight.generate import generate_document
    from optimizer.freight.problem import parse_problem
    from optimizer.report.results import write_atomic

    if args.hubs < 2 or args.shipments < 1 or args.slots < 1:
        raise InputError("command line", Issue("--hubs/--shipments/--slots",
                                               "need at least 2 hubs, 1 shipment and 1 slot"))
    doc = generate_document(hubs=args.hubs, shipments=args.shipments, seed=args.seed, slots=args.slots)
    parse_problem(doc, source="generated")  # a generator bug must not write an invalid file
    if args.out and args.out.endswith(".json"):
        text = json.dumps(doc, indent=1, default=lambda v: v.isoformat())
    else:
        import tomli_w

        text = tomli_w.dumps(doc)
    if args.out:
        write_atomic(args.out, text)
        print(f"wrote {args.out} ({args.hubs} hubs, {args.shipments} shipments, seed {args.seed})")
    else:
        sys.stdout.write(text)
    return 0


def _is_problem_file(path: str) -> bool:
    """The one rule solve, export, compare and the API share (:func:`optimizer.qubo.formats.is_qubo_file`)."""
    from optimizer.qubo.formats import is_qubo_file

    return not is_qubo_file(path)


def _with_qubo_flags(config, args):
    """The config with ``--sense``, ``--format`` and ``--target`` applied to its [qubo] section."""
    import dataclasses

    given = {key: getattr(args, key, None) for key in ("sense", "format", "target")}
    given = {key: value for key, value in given.items() if value is not None}
    if "target" in given and not math.isfinite(given["target"]):
        raise InputError("command line", Issue("--target", "must be a finite number", given["target"]))
    return dataclasses.replace(config, qubo=dataclasses.replace(config.qubo, **given)) if given else config


def _cmd_export(args) -> int:
    from optimizer.solving.config import load_config
    from optimizer.solving.pipeline import prepare
    from optimizer.freight.problem import load_problem
    from optimizer.qubo.formats import FORMATS, canonical_format, read_qubo, write_model, write_qubo

    config = _with_qubo_flags(load_config(args.config), args)
    if _is_problem_file(args.file):
        prepared = prepare(load_problem(args.file), config)
        if FORMATS[canonical_format(args.to)].constrained:
            write_model(prepared.model, args.out, args.to)
            print(f"wrote the constrained model ({prepared.model.num_variables} variables, "
                  f"{prepared.model.num_rows} capacity rows, {len(prepared.model.groups)} one-hot rows) to {args.out}")
            return 0
        qubo = prepared.qubo
    else:
        qubo = read_qubo(args.file, format=config.qubo.requested_format, sense=config.qubo.requested_sense)
    fmt = canonical_format(args.to)
    if qubo.offset and not FORMATS[fmt].keeps_offset:
        print(f"note: the {fmt} format has no constant term; the offset {qubo.offset:g} is dropped", file=sys.stderr)
    # The output keeps the input's sense where the format can say so (qbsolv: as `qbsolv -m` expects).
    sense_out = None if FORMATS[fmt].states_sense or fmt in ("bqp", "rudy") else qubo.metadata.get("sense")
    write_qubo(qubo, args.out, fmt, sense=sense_out)
    sense_read = qubo.metadata.get("sense", "min")
    written = "min" if FORMATS[fmt].states_sense else (sense_out or FORMATS[fmt].sense)
    print(f"wrote a QUBO of {qubo.num_variables} variables ({fmt}, sense {written}; read with sense {sense_read}) "
          f"to {args.out}")
    return 0


def _target_option(backend: str, qubo, config, options: dict) -> dict:
    """``options`` with the ``--target`` objective as the backend's ``target`` energy."""
    from backends import REGISTRY, backend_options
    from optimizer.qubo.formats import target_energy

    if config.qubo.target is None:
        return options
    if "target" not in backend_options(backend):
        able = []
        for name in REGISTRY:
            try:
                if "target" in backend_options(name):
                    able.append(name)
            except Exception:  # noqa: BLE001 - a broken optional backend cannot take a target either
                continue
        raise InputError("command line", Issue("--target", f"backend {backend!r} cannot stop at a target; "
                                               f"backends that can: {', '.join(able)}", config.qubo.target))
    return {**options, "target": target_energy(qubo, config.qubo.target)}


def _solve_model_file(args, config, found) -> int:
    """``qfreight solve`` on a constrained model file (LP, MPS, QPLIB with rows): CP-SAT on the model."""
    import numpy as np

    from backends import create_solver
    from optimizer.report.results import default_output_dir, prepare_output_dir, write_json_atomic

    model, backend = found.model, config.solver.backend
    if backend != "cpsat":
        raise InputError(args.file, Issue("backend", f"is a constrained model ({model.num_rows} rows, "
                                          f"{len(model.groups)} one-hot groups): solve it with --backend cpsat "
                                          "(CP-SAT on the model itself); QUBO backends need a penalty encoding, "
                                          "which qfreight builds for freight problems only", backend))
    if config.qubo.target is not None:
        raise InputError("command line", Issue("--target", "applies to QUBO files, not to constrained models"))
    solver = create_solver("cpsat", config.backend_options("cpsat"), source=config.source)
    solution = solver.solve_model(model, seed=config.solver.seed, time_limit=config.solver.time_limit)
    feasible = bool(model.is_feasible(solution.x)[0])
    sense = found.sense
    name = str(found.metadata.get("name") or Path(args.file).stem)
    native = found.objective_in_file(solution.objective)
    # A lower bound of the minimisation is an upper bound of a maximised objective.
    bound = found.objective_in_file(solution.bound) if np.isfinite(solution.bound) else None
    report = {
        "source": found.metadata.get("source"), "format": found.metadata.get("format"), "name": name,
        "sense": sense, "num_variables": model.num_variables, "rows": model.num_rows,
        "one_hot_groups": len(model.groups), "solver": "cpsat", "status": solution.status,
        "optimal": bool(solution.optimal and feasible), "feasible": feasible, "objective": solution.objective,
        "objective_in_file": native, "bound_in_file": bound, "violations": model.violated_rows(solution.x)[:20],
        "best_sample": [int(v) for v in solution.x], "ones": [model.labels[i] for i in np.flatnonzero(solution.x)],
        "fractional_rows": list(found.metadata.get("fractional_rows", [])),
        "timing": {"total": float(solution.seconds)}, "info": dict(solution.info),
    }
    out_dir = prepare_output_dir(args.out or default_output_dir(name, "cpsat"))
    path = write_json_atomic(out_dir / "results.json", report)
    state = ("proven optimal" if report["optimal"] else "feasible") if feasible else "INFEASIBLE"
    shown_bound = "" if bound is None or report["optimal"] else f", bound {bound:.10g}"
    print(f"{name}: cpsat {state}, objective {native:.10g} in the file's {sense} convention{shown_bound}; "
          f"{model.num_variables} variables, {model.num_rows} rows, {len(model.groups)} one-hot groups, sense {sense}")
    print(f"wrote {path}")
    return 130 if solution.interrupted else 0


def _solve_qubo_file(args, config) -> int:
    """``qfreight solve`` on a bare QUBO file: energies only (no freight KPIs).

    The line printed and results.json both state the sense the file was read with and the best
    objective in the file's own convention."""
    from backends import create_solver
    from optimizer.solving.hybrid import solve_qubo
    from optimizer.qubo.formats import ModelFile, describe_result, read_any
    from optimizer.report.results import default_output_dir, prepare_output_dir, write_json_atomic

    config = _with_qubo_flags(config, args)
    found = read_any(args.file, format=config.qubo.requested_format, sense=config.qubo.requested_sense)
    if isinstance(found, ModelFile):
        return _solve_model_file(args, config, found)
    qubo = found
    backend = config.solver.backend
    options = _target_option(backend, qubo, config, config.backend_options(backend))
    solver = create_solver(backend, options, source=config.source)
    limit = getattr(solver, "max_variables", None)
    if limit is not None and qubo.num_variables > limit:
        print(f"QUBO of {qubo.num_variables} variables exceeds {backend}'s limit of {limit}: "
              f"solving by hybrid decomposition (warm start and refinement: simulated annealing)")
    result, _ = solve_qubo(qubo, solver, config, seed=config.solver.seed, time_limit=config.solver.time_limit)
    report = describe_result(qubo, result)
    report["target"] = config.qubo.target
    report["time_to_target_s"] = result.info.get("time_to_target_s")
    name = report.get("name") or Path(args.file.split("#")[0]).stem
    out_dir = prepare_output_dir(args.out or default_output_dir(name, backend))
    path = write_json_atomic(out_dir / "results.json", report)
    sense = report["sense"]
    native = report["objective_in_file"]
    extra = "" if native is None else f" (objective {native:.10g} in the file's {sense} convention)"
    proven = " (proven optimal)" if result.info.get("optimal") else ""
    reached = ""
    if config.qubo.target is not None:
        ttt = result.info.get("time_to_target_s")
        reached = (f"; target {config.qubo.target:g} reached after {ttt:.4g} s" if ttt is not None
                   else f"; target {config.qubo.target:g} not reached")
    print(f"{name}: {result.solver} best energy {result.best_energy:.10g}{extra}{proven}; "
          f"{qubo.num_variables} variables, sense {sense}{reached}")
    print(f"wrote {path}")
    return 130 if result.info.get("interrupted") else 0


def _summary_line(result, config) -> str:
    """One line: the status (optimal / feasible only when the plan check agreed), cost, bound or
    gap, the best baseline, and the quantum share of a decomposition."""
    from optimizer.freight.evaluate import Kpis  # noqa: F401 - documents what kpis holds

    doc = result.details
    backend = config.solver.backend
    status = {"optimal": "proven optimal (plan checked)", "feasible": "feasible (plan checked)"}.get(
        result.status.value, result.status.value.upper())
    parts = [f"{result.problem}: {backend} {status}"]
    lexicographic = doc.get("objective", {}).get("mode") == "service-first"
    if result.kpis is not None:
        if lexicographic:
            parts.append(f"priority-weighted lateness {result.kpis.priority_weighted_lateness_hours:,.1f} h, "
                         f"cost {result.kpis.cost_cny:,.0f} CNY (service-first)")
        else:
            parts.append(f"cost {result.kpis.cost_cny:,.0f} CNY")
        if result.bound is not None and math.isfinite(result.bound) and not result.optimal and not lexicographic:
            gap = (result.objective - result.bound) / max(1.0, abs(result.objective))
            parts.append(f"bound {result.bound:,.0f}, gap {100 * gap:.2f}%")
    if result.baseline_kpis is not None:
        greedy = (doc.get("baselines", {}).get("greedy") or {}).get("kpis") or {}
        parts.append(f"best baseline {result.baseline} {result.baseline_kpis.cost_cny:,.0f} CNY"
                     + (f" (naive greedy {greedy['cost_cny']:,.0f} CNY)" if "cost_cny" in greedy else ""))
    sizes = doc.get("sizes") or {}
    if sizes.get("qubo_variables"):
        parts.append(f"QUBO {sizes['qubo_variables']} variables")
    else:
        parts.append(f"model {sizes.get('model_variables', '?')} variables (no QUBO built)")
    return "; ".join(parts)


def _quantum_share_line(result) -> str | None:
    pieces = [p for s in result.stages for p in s.pieces if p.standins]
    if not pieces:
        return None
    beat = sum(p.device_beat_standins for p in pieces)
    credited = sum(s.credited for s in result.stages)
    device_s = sum(p.device_seconds for p in pieces)
    stand_s = sum(p.standin_seconds for p in pieces)
    line = (f"quantum share: the device beat every stand-in (incumbent, local search, random samples, annealing) on "
            f"{beat} of {len(pieces)} pieces, gaining {result.device_contribution:,.2f} beyond them; "
            f"{credited} rounds credited to it; device {device_s:.1f} s, stand-ins {stand_s:.1f} s.")
    if result.device_contribution == 0:
        line += " The device added nothing the classical stand-ins did not also find."
    return line


def _cmd_solve(args) -> int:
    from backends import REGISTRY
    from optimizer.api import solve
    from optimizer.freight.problem import load_problem
    from optimizer.report.results import OutputLock, default_output_dir, prepare_output_dir, write_json_atomic
    from optimizer.report.tables import kpi_table
    from optimizer.solving.config import load_config

    config = load_config(args.config).override(backend=args.backend, seed=args.seed, time_limit=args.time_limit)
    if args.backend is not None and args.backend not in REGISTRY:
        raise InputError("command line", Issue("--backend", f"unknown backend; known: {', '.join(REGISTRY)}",
                                               args.backend))
    if not _is_problem_file(args.file):
        return _solve_qubo_file(args, config)
    for flag in ("format", "sense", "target"):
        if getattr(args, flag, None) is not None:
            raise InputError("command line", Issue(f"--{flag}", "applies to bare QUBO and model files; a freight "
                                                   "problem always minimises its cost", getattr(args, flag)))
    started = time.perf_counter()
    from optimizer.solving.stop import Deadline

    # The time limit counts from here: reading the problem file is part of the run.
    deadline = Deadline(config.solver.time_limit)
    problem = load_problem(args.file)
    out_dir = prepare_output_dir(args.out or default_output_dir(problem.name, config.solver.backend))
    if config.model.penalty is not None:
        print(f"note: [model] penalty = {config.model.penalty:g} replaces the penalty rule; the QUBO minimum may "
              "then be infeasible (every plan is still checked)", file=sys.stderr)

    from rich.console import Console

    console = Console(stderr=True, highlight=False)

    def progress(stage) -> None:
        if args.quiet or stage.stage not in ("round", "refine"):
            return
        if stage.stage == "refine" or stage.accepted or (stage.round or 0) % 10 == 0:
            label = "refine (CP-SAT)" if stage.stage == "refine" else f"round {stage.round}"
            console.print(f"  {label}: best {stage.objective:,.2f}  [{time.perf_counter() - started:.1f} s]")

    with OutputLock(out_dir):
        result = solve(problem, backend=None, config=config, on_progress=progress, deadline=deadline)
        doc = result.to_json()
        doc["wall_seconds"] = time.perf_counter() - started
        path = write_json_atomic(out_dir / "results.json", doc)

    info = (doc.get("solver") or {}).get("info") or {}
    solver_name = (doc.get("solver") or {}).get("solver", "")
    if solver_name.startswith("hybrid["):
        print(f"The model is larger than {config.solver.backend} takes whole: solved by hybrid decomposition "
              f"({info.get('rounds')} rounds, {info.get('accepted_rounds')} accepted) with CP-SAT refinement "
              f"{'on' if config.refine.enabled else 'off'}.")
    elif solver_name.startswith("lns["):
        print(f"The model has {doc['sizes']['model_variables']:,} variables: solved by large-neighbourhood search "
              f"({info.get('rounds')} rounds of CP-SAT on sub-models, {info.get('accepted_rounds')} improved).")
    print(_summary_line(result, config))
    share = _quantum_share_line(result)
    if share:
        print(share)
    if result.message:
        print(result.message)
    if not args.quiet and result.baseline_kpis is not None:
        if result.feasible:
            print()
            print(kpi_table(result.kpis, result.baseline_kpis, plan_name=config.solver.backend,
                            baseline_name=result.baseline))
            if result.objective > result.baseline_objective + 1e-6 * max(1.0, abs(result.baseline_objective)):
                print(f"\nThe {result.baseline} baseline's plan is better than {config.solver.backend}'s on this run.")
        else:
            print("The plan violates the problem's constraints; no KPIs are reported for it:")
            for v in result.violations[:20]:
                print(f"  - {v}")
            print()
            print(kpi_table(None, result.baseline_kpis, plan_name=config.solver.backend,
                            baseline_name=result.baseline))
    print(f"\nwrote {path}")
    if result.status.value == "interrupted":
        print("interrupted: the best plan found so far was written", file=sys.stderr)
        return 130
    if result.status.value == "time_limit" and not result.feasible:
        return 1
    return 0


def _cmd_compare(args) -> int:
    from backends import REGISTRY, is_installed
    from optimizer.solving.compare import run_comparison
    from optimizer.solving.config import load_config
    from optimizer.report.stats import backend_stats
    from optimizer.report.tables import summary_lines

    config = _with_qubo_flags(load_config(args.config), args)
    if args.time_limit is not None and args.time_limit <= 0:
        raise InputError("command line", Issue("--time-limit", "must be > 0 seconds", args.time_limit))
    if args.seeds < 1:
        raise InputError("command line", Issue("--seeds", "need at least 1 seed", args.seeds))
    if args.backends is not None:
        backends = list(dict.fromkeys(b.strip() for b in args.backends.split(",") if b.strip()))
    else:
        backends = [b for b in REGISTRY if b != "exact" and is_installed(b)]
    seeds = list(range(config.solver.seed, config.solver.seed + args.seeds))
    from optimizer.report.results import prepare_output_dir

    if args.out:
        out_dir = prepare_output_dir(args.out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out_dir = Path("results") / stamp
        k = 1
        while out_dir.exists():
            k += 1
            out_dir = Path("results") / f"{stamp}-{k}"

    def progress(row: dict, done: int, total: int) -> None:
        if row.get("error"):
            what = f"error: {row['error'].splitlines()[0]}"
        else:
            what = (f"{'feasible' if row['feasible'] else 'INFEASIBLE'}, objective {row['objective']:,.2f}, "
                    f"{row['time_solve_s']:.2f} s")
        print(f"[{done}/{total}] {row['instance']} {row['backend']} seed {row['seed']}: {what}", file=sys.stderr)

    from optimizer.report.results import OutputLock

    out_dir.mkdir(parents=True, exist_ok=True)
    with OutputLock(out_dir):
        doc = run_comparison(args.files, config, backends=backends, seeds=seeds,
                             time_limit=args.time_limit or config.solver.time_limit, out_dir=out_dir,
                             command=["qfreight", "compare", *args.files,
                                      *(f"--{flag.replace('_', '-')}={value}" for flag, value in vars(args).items()
                                        if flag not in ("command", "files") and value is not None)],
                             on_row=progress, events=args.events,
                             on_message=lambda message: print(f"  {message}", file=sys.stderr))
    for line in summary_lines(doc, backend_stats(doc)):
        print(f"- {line}")
    print(f"wrote {out_dir}/: results.json, results.csv, report.md, report.html")
    if doc["status"] == "interrupted":
        print(f"interrupted: {len(doc['rows'])} of {doc['planned_runs']} runs finished and written", file=sys.stderr)
        return 130
    return 0


def _cmd_pareto(args) -> int:
    from backends import REGISTRY
    from optimizer.freight.problem import load_problem
    from optimizer.report.plots import pareto_figure
    from optimizer.report.results import (default_output_dir, prepare_output_dir, write_atomic, write_bytes_atomic,
                                          write_json_atomic)
    from optimizer.solving.config import load_config
    from optimizer.solving.pareto import pareto_csv, pareto_sweep

    config = load_config(args.config).override(backend=args.backend, seed=args.seed, time_limit=args.time_limit)
    if args.backend is not None and args.backend not in REGISTRY:
        raise InputError("command line", Issue("--backend", f"unknown backend; known: {', '.join(REGISTRY)}",
                                               args.backend))
    if config.solver.time_limit <= 0:
        raise InputError("command line", Issue("--time-limit", "must be > 0 seconds", config.solver.time_limit))
    if not 1 <= args.points <= 200:
        raise InputError("command line", Issue("--points", "must be between 1 and 200", args.points))
    problem = load_problem(args.file)
    out_dir = prepare_output_dir(args.out or default_output_dir(problem.name, "pareto"))

    def progress(row: dict) -> None:
        k = row["kpis"]
        what = "INFEASIBLE" if k is None else (f"cost {k['cost_cny']:,.0f} CNY, on time {100 * k['on_time_share']:.1f}%, "
                                               f"transfer dwell {k['dwell_hours_transfer']:,.1f} h")
        print(f"[{row['point'] + 1}/{args.points}] weights {row['weights']}: {what}", file=sys.stderr)

    doc = pareto_sweep(problem, config, points=args.points, on_point=progress)
    write_json_atomic(out_dir / "pareto.json", doc)
    write_atomic(out_dir / "pareto.csv", pareto_csv(doc))
    write_bytes_atomic(out_dir / "pareto.png", pareto_figure(doc).png)
    front = [p for p in doc["points"] if p["on_front"]]
    best = doc["baselines"][doc["best_baseline"]]
    print(f"{problem.name}: {len(front)} of {len(doc['points'])} plans on the front (cost, on-time share, "
          f"transfer-yard dwell); best baseline {doc['best_baseline']}: cost {best['cost_cny']:,.0f} CNY, "
          f"on time {100 * best['on_time_share']:.1f}%, transfer dwell {best['dwell_hours_transfer']:,.1f} h")
    print(f"wrote {out_dir}/: pareto.json, pareto.csv, pareto.png")
    return 0


def _cmd_report(args) -> int:
    from optimizer.report.stats import annotate
    from optimizer.report.results import load_results
    from optimizer.report.render import write_comparison_reports

    doc = annotate(load_results(args.run_dir))
    run_dir = Path(args.run_dir)
    out_dir = run_dir if run_dir.is_dir() else run_dir.parent
    write_comparison_reports(doc, out_dir)
    print(f"rebuilt {out_dir}/: results.csv, report.md, report.html from results.json ({len(doc['rows'])} runs)")
    return 0


def _cmd_data(args) -> int:
    from optimizer import data

    if args.data_command == "where":
        lookup = data.find_data_folder()
        print(lookup.path if lookup.path is not None else "no data folder")
        for step in lookup.tried:
            print(f"  {step}")
        return 0 if lookup.path is not None else 1
    if args.data_command == "list":
        for name, dataset in data.data_sets().items():
            recorded = sum(1 for f in dataset.files if f.sha256)
            values = len(dict(dataset.published.get("values", {})))
            print(f"{name:<9} {len(dataset.files):>3} files ({recorded} with a recorded SHA-256), {values:>3} published "
                  f"values; {dataset.format}, {dataset.sense}; {dataset.title}")
        return 0
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise InputError("command line", Issue("--timeout", "must be a positive number of seconds", args.timeout))
    dest = Path(args.dest) if args.dest else data.default_destination()
    results = data.fetch(args.names, dest=dest, mirror=args.mirror, accept_unverified=args.accept_unverified,
                         timeout=args.timeout)
    unverified = sum(1 for r in results if not r.verified)
    print(f"{len(results)} files in {dest} ({len(results) - unverified} verified against recorded SHA-256 sums, "
          f"{unverified} unverified)")
    return 0


def _cmd_replan(args) -> int:
    from optimizer.solving.replan import run_replan

    return run_replan(args)


def _cmd_simulate(args) -> int:
    from optimizer.solving.replan import run_simulate

    return run_simulate(args)


def _cmd_serve(args) -> int:
    from optimizer.serve import run

    return run(args)


COMMANDS = {
    "solve": _cmd_solve,
    "replan": _cmd_replan,
    "simulate": _cmd_simulate,
    "serve": _cmd_serve,
    "validate": _cmd_validate,
    "schema": _cmd_schema,
    "backends": _cmd_backends,
    "generate": _cmd_generate,
    "export": _cmd_export,
    "compare": _cmd_compare,
    "pareto": _cmd_pareto,
    "report": _cmd_report,
    "data": _cmd_data,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except QfreightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
