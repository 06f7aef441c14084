"""``qfreight``: solve, validate, schema, backends, generate, export, compare, report.

Exit codes: 0 success; 1 a solver could not run (too large, missing package); 2 bad input
(problem, config or flags) with a message naming the file and field; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qfreight", description="Hybrid quantum-classical freight-rail scheduling")
    parser.add_argument("--version", action="version", version=f"qfreight {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve a problem file and print KPIs against the greedy dispatcher")
    _problem_arg(solve)
    solve.add_argument("--config", help="config file (TOML)")
    solve.add_argument("--backend", help="backend name (overrides [solver] backend)")
    solve.add_argument("--seed", type=int, help="random seed (overrides [solver] seed)")
    solve.add_argument("--time-limit", type=float, help="seconds (overrides [solver] time_limit)")
    solve.add_argument("--out", help="output folder (default results/<problem>-<backend>)")
    solve.add_argument("--quiet", action="store_true", help="print only the summary line")
    solve.add_argument("--format", help="QUBO file format when FILE is a bare QUBO (bqp, qubo, triples, dimod, lp); "
                                        "default: detected")

    export = sub.add_parser("export", help="write a problem's QUBO (or a QUBO file) in another format")
    export.add_argument("file", help="problem file or QUBO file (FILE#k picks an instance)")
    export.add_argument("--to", required=True, choices=["qubo", "bqp", "triples", "dimod", "lp", "mps"],
                        help="output format; lp/mps of a problem file write the constrained model")
    export.add_argument("-o", "--out", required=True, help="output file")
    export.add_argument("--config", help="config file ([model] options)")

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

    report = sub.add_parser("report", help="rebuild a comparison's reports from its results.json")
    report.add_argument("run_dir", help="the folder `qfreight compare` wrote")
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
    return Path(path.split("#")[0]).suffix.lower() in (".toml", ".json")


def _cmd_export(args) -> int:
    from optimizer.solve.config import load_config
    from optimizer.solve.pipeline import prepare
    from optimizer.freight.problem import load_problem
    from optimizer.qubo.formats import FORMATS, canonical_format, read_qubo, write_model, write_qubo

    if _is_problem_file(args.file):
        prepared = prepare(load_problem(args.file), load_config(args.config))
        if args.to in ("lp", "mps"):
            write_model(prepared.model, args.out, args.to)
            print(f"wrote the constrained model ({prepared.model.num_variables} variables, "
                  f"{prepared.model.num_rows} capacity rows, {len(prepared.model.groups)} one-hot rows) to {args.out}")
            return 0
        qubo = prepared.qubo
    else:
        qubo = read_qubo(args.file)
    fmt = canonical_format(args.to)
    if qubo.offset and not FORMATS[fmt].keeps_offset:
        print(f"note: the {fmt} format has no constant term; the offset {qubo.offset:g} is dropped", file=sys.stderr)
    write_qubo(qubo, args.out, fmt)
    print(f"wrote a QUBO of {qubo.num_variables} variables ({fmt}) to {args.out}")
    return 0


def _solve_qubo_file(args, config) -> int:
    """``qfreight solve`` on a bare QUBO file: energies only (no freight KPIs)."""
    from backends import create_solver
    from optimizer.solve.hybrid import solve_qubo
    from optimizer.qubo.formats import describe_result, read_qubo
    from optimizer.report.results import write_json_atomic

    qubo = read_qubo(args.file, format=args.format)
    backend = config.solver.backend
    solver = create_solver(backend, config.backend_options(backend), source=config.source)
    limit = getattr(solver, "max_variables", None)
    if limit is not None and qubo.num_variables > limit:
        print(f"QUBO of {qubo.num_variables} variables exceeds {backend}'s limit of {limit}: "
              f"solving by hybrid decomposition (warm start and refinement: simulated annealing)")
    result, _ = solve_qubo(qubo, solver, config, seed=config.solver.seed, time_limit=config.solver.time_limit)
    report = describe_result(qubo, result)
    name = report.get("name") or Path(args.file.split("#")[0]).stem
    out_dir = Path(args.out or Path("results") / f"{name}-{backend}")
    path = write_json_atomic(out_dir / "results.json", report)
    sense = report["sense_in_file"]
    native = report["objective_in_file"]
    extra = "" if native is None or sense == "min" else f" (objective {native:g} in the file's {sense} convention)"
    proven = " (proven optimal)" if result.info.get("optimal") else ""
    print(f"{name}: {result.solver} best energy {result.best_energy:.10g}{extra}{proven}; "
          f"{qubo.num_variables} variables")
    print(f"wrote {path}")
    return 130 if result.info.get("interrupted") else 0


def _cmd_solve(args) -> int:
    from optimizer.solve.config import load_config
    from optimizer.solve.pipeline import solve_problem
    from optimizer.freight.problem import load_problem
    from optimizer.report.tables import kpi_table
    from optimizer.report.results import write_json_atomic

    from backends import REGISTRY

    config = load_config(args.config).override(backend=args.backend, seed=args.seed, time_limit=args.time_limit)
    if args.backend is not None and args.backend not in REGISTRY:
        raise InputError("command line", Issue("--backend", f"unknown backend; known: {', '.join(REGISTRY)}",
                                               args.backend))
    if config.solver.time_limit <= 0:
        raise InputError("command line", Issue("--time-limit", "must be > 0 seconds", config.solver.time_limit))
    if not _is_problem_file(args.file):
        return _solve_qubo_file(args, config)
    problem = load_problem(args.file)
    if config.model.penalty is not None:
        print(f"note: [model] penalty = {config.model.penalty:g} replaces the penalty rule; the QUBO minimum may "
              "then be infeasible (every plan is still checked)", file=sys.stderr)
    started = time.perf_counter()

    from rich.console import Console

    console = Console(stderr=True, highlight=False)

    def progress(stage) -> None:
        if args.quiet or stage.stage not in ("round", "refine"):
            return
        if stage.stage == "refine" or stage.accepted or (stage.round or 0) % 10 == 0:
            label = "refine (CP-SAT)" if stage.stage == "refine" else f"round {stage.round}"
            console.print(f"  {label}: best {stage.objective:,.2f} CNY  [{time.perf_counter() - started:.1f} s]")

    outcome = solve_problem(problem, config, on_progress=progress)
    out_dir = Path(args.out or Path("results") / f"{problem.name}-{config.solver.backend}")
    result = outcome.to_json()
    result["wall_seconds"] = time.perf_counter() - started
    path = write_json_atomic(out_dir / "results.json", result)

    info = outcome.sampleset.info
    if outcome.sampleset.solver.startswith("hybrid["):
        print(f"QUBO of {outcome.prepared.qubo.num_variables} variables exceeds {config.solver.backend}'s limit of "
              f"{info.get('subproblem_limit')}: solved by hybrid decomposition ({info.get('rounds')} rounds, "
              f"{info.get('accepted_rounds')} accepted) with CP-SAT refinement "
              f"{'on' if config.refine.enabled else 'off'}.")
    status = "feasible" if outcome.feasible else "INFEASIBLE"
    proven = ""
    if outcome.bound is not None:
        gap = (outcome.objective - outcome.bound) / max(1.0, abs(outcome.objective))
        proven = " (proven optimal)" if outcome.optimal else f" (bound {outcome.bound:,.0f} CNY, gap {100 * gap:.2f}%)"
    greedy_obj = result["greedy_objective_cny"]
    summary = (f"{problem.name}: {config.solver.backend} plan {status}, cost {outcome.objective:,.0f} CNY{proven}; "
               f"greedy dispatcher {greedy_obj:,.0f} CNY; QUBO {outcome.prepared.qubo.num_variables} variables")
    print(summary)
    if not args.quiet:
        if outcome.feasible:
            print()
            print(kpi_table(outcome.kpis, outcome.greedy_kpis, plan_name=config.solver.backend))
            if outcome.objective > greedy_obj + 1e-6:
                print(f"\nThe greedy dispatcher's plan is cheaper than {config.solver.backend}'s on this run.")
        else:
            print("The best sample violates the problem's constraints; no KPIs are reported for it:")
            for v in outcome.violations[:20]:
                print(f"  - {v}")
            print()
            print(kpi_table(None, outcome.greedy_kpis, plan_name=config.solver.backend))
    print(f"\nwrote {path}")
    if info.get("interrupted"):
        print("interrupted: the best plan found so far was written", file=sys.stderr)
        return 130
    return 0


def _cmd_compare(args) -> int:
    from backends import REGISTRY, is_installed
    from optimizer.solve.compare import run_comparison
    from optimizer.solve.config import load_config
    from optimizer.report.stats import backend_stats
    from optimizer.report.tables import summary_lines

    config = load_config(args.config)
    if args.time_limit is not None and args.time_limit <= 0:
        raise InputError("command line", Issue("--time-limit", "must be > 0 seconds", args.time_limit))
    if args.seeds < 1:
        raise InputError("command line", Issue("--seeds", "need at least 1 seed", args.seeds))
    if args.backends is not None:
        backends = list(dict.fromkeys(b.strip() for b in args.backends.split(",") if b.strip()))
    else:
        backends = [b for b in REGISTRY if b != "exact" and is_installed(b)]
    seeds = list(range(config.solver.seed, config.solver.seed + args.seeds))
    if args.out:
        out_dir = Path(args.out)
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

    doc = run_comparison(args.files, config, backends=backends, seeds=seeds,
                         time_limit=args.time_limit or config.solver.time_limit, out_dir=out_dir,
                         command=["qfreight", "compare", *args.files, *(f"--{flag.replace('_', '-')}={value}" for flag, value
                                  in vars(args).items() if flag not in ("command", "files") and value is not None)],
                         on_row=progress)
    for line in summary_lines(doc, backend_stats(doc)):
        print(f"- {line}")
    print(f"wrote {out_dir}/: results.json, results.csv, report.md, report.html")
    if doc["status"] == "interrupted":
        print(f"interrupted: {len(doc['rows'])} of {doc['planned_runs']} runs finished and written", file=sys.stderr)
        return 130
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


COMMANDS = {
    "solve": _cmd_solve,
    "validate": _cmd_validate,
    "schema": _cmd_schema,
    "backends": _cmd_backends,
    "generate": _cmd_generate,
    "export": _cmd_export,
    "compare": _cmd_compare,
    "report": _cmd_report,
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
