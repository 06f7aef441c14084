"""``qfreight``: solve, validate, schema, backends, generate.

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


def _problem_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="problem file (.toml or .json)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qfreight", description="Hybrid quantum-classical freight-rail scheduling")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve a problem file and print KPIs against the greedy dispatcher")
    _problem_arg(solve)
    solve.add_argument("--config", help="config file (TOML)")
    solve.add_argument("--backend", help="backend name (overrides [solver] backend)")
    solve.add_argument("--seed", type=int, help="random seed (overrides [solver] seed)")
    solve.add_argument("--time-limit", type=float, help="seconds (overrides [solver] time_limit)")
    solve.add_argument("--out", help="output folder (default results/<problem>-<backend>)")
    solve.add_argument("--quiet", action="store_true", help="print only the summary line")

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
    return parser


def _cmd_validate(args) -> int:
    from optimizer.problem import load_problem

    problem = load_problem(args.file)
    print(f"{args.file}: valid ({len(problem.hubs)} hubs, {len(problem.corridors)} corridors, "
          f"{len(problem.shipments)} shipments, {problem.horizon.slots} slots of {problem.horizon.slot_minutes} min)")
    return 0


def _cmd_schema(args) -> int:
    from optimizer.problem import problem_schema

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
    from optimizer.generate import generate_document
    from optimizer.problem import parse_problem
    from optimizer.report import write_atomic

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


def _cmd_solve(args) -> int:
    from optimizer.config import load_config
    from optimizer.pipeline import solve_problem
    from optimizer.problem import load_problem
    from optimizer.report import kpi_table, write_json_atomic

    from backends import REGISTRY

    config = load_config(args.config).override(backend=args.backend, seed=args.seed, time_limit=args.time_limit)
    if args.backend is not None and args.backend not in REGISTRY:
        raise InputError("command line", Issue("--backend", f"unknown backend; known: {', '.join(REGISTRY)}",
                                               args.backend))
    if config.solver.time_limit <= 0:
        raise InputError("command line", Issue("--time-limit", "must be > 0 seconds", config.solver.time_limit))
    problem = load_problem(args.file)
    started = time.perf_counter()
    outcome = solve_problem(problem, config)
    out_dir = Path(args.out or Path("results") / f"{problem.name}-{config.solver.backend}")
    result = outcome.to_json()
    result["wall_seconds"] = time.perf_counter() - started
    path = write_json_atomic(out_dir / "results.json", result)

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
    return 0


COMMANDS = {
    "solve": _cmd_solve,
    "validate": _cmd_validate,
    "schema": _cmd_schema,
    "backends": _cmd_backends,
    "generate": _cmd_generate,
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
