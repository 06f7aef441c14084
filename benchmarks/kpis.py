"""Operator KPIs: every baseline against the optimiser, in weighted and service-first modes (not a
test; run it by hand, under ``nice`` on a shared machine).

Instances: every sample in ``problems/`` and 20 generated ones (``qfreight generate``, 8 to 14
hubs, 30 to 60 shipments, seeds 100..119). For each instance it prints each baseline's KPIs
(cost, on-time share, transfer-yard dwell, deferred shipments, diesel per moved tonne-km), the
optimiser's KPIs (CP-SAT on the constrained model, same time limit in both modes), their ratios
to the best baseline (the peer measured in the same run), and at the end the share of instances
where the optimiser dominates the best baseline on cost, on-time share and dwell together (no
worse on all three, better on at least one), per mode, and the process's peak memory.

    nice -n 10 python benchmarks/kpis.py --quick            # samples + 5 generated, 10 s per solve
    nice -n 10 python benchmarks/kpis.py                    # samples + 20 generated, 30 s per solve
    nice -n 10 python benchmarks/kpis.py --json out.json    # also write every number
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from optimizer.freight.evaluate import decode, simulate
from optimizer.freight.generate import generate_document
from optimizer.freight.problem import load_problem, parse_problem
from optimizer.solving.config import parse_config
from optimizer.solving.pipeline import prepare, solve_problem

MODES = ("weighted", "service-first")
COLUMNS = (("cost_cny", "cost CNY", "{:>13,.0f}"), ("on_time_share", "on time", "{:>8.1%}"),
           ("dwell_hours_transfer", "T-dwell h", "{:>10,.1f}"), ("deferred", "defer", "{:>6d}"),
           ("diesel_litres_per_tonne_km", "L/1000tkm", "{:>10.3f}"))


def instances(count: int):
    for path in sorted((REPO / "problems").glob("*.toml")):
        yield path.stem, load_problem(path)
    for k in range(count):
        hubs, shipments = 8 + (k * 3) % 7, 30 + (k * 7) % 31
        doc = generate_document(hubs=hubs, shipments=shipments, seed=100 + k)
        yield f"gen-h{hubs}-s{shipments}-seed{100 + k}", parse_problem(doc, source=f"generated seed {100 + k}")


def dominates(k: dict, b: dict) -> bool:
    no_worse = (k["cost_cny"] <= b["cost_cny"] + 1e-6 and k["on_time_share"] >= b["on_time_share"] - 1e-12
                and k["dwell_hours_transfer"] <= b["dwell_hours_transfer"] + 1e-9)
    better = (k["cost_cny"] < b["cost_cny"] - 1e-6 or k["on_time_share"] > b["on_time_share"] + 1e-12
              or k["dwell_hours_transfer"] < b["dwell_hours_transfer"] - 1e-9)
    return no_worse and better


def _row(label: str, k: dict, base: dict | None = None) -> str:
    cells = []
    for key, _, fmt in COLUMNS:
        value = k[key] * (1000 if key == "diesel_litres_per_tonne_km" else 1)
        cells.append(fmt.format(int(value) if key == "deferred" else value))
    ratio = "" if base is None else f"  cost x{k['cost_cny'] / base['cost_cny']:.3f}"
    return f"  {label:<26}" + "".join(cells) + ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 generated instances, 10 s per solve")
    parser.add_argument("--generated", type=int, help="number of generated instances (default 20, quick 5)")
    parser.add_argument("--time-limit", type=float, help="CP-SAT seconds per solve (default 30, quick 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()
    count = args.generated if args.generated is not None else (5 if args.quick else 20)
    limit = args.time_limit or (10.0 if args.quick else 30.0)

    header = f"  {'plan':<26}" + "".join(f"{title:>{len(fmt.format(0) if 'd' in fmt else fmt.format(0.0))}}"
                                          for _, title, fmt in COLUMNS)
    results, wins = [], {m: 0 for m in MODES}
    started = time.perf_counter()
    for name, problem in instances(count):
        entry = {"instance": name, "shipments": len(problem.shipments), "modes": {}}
        print(f"\n{name} ({len(problem.shipments)} shipments)")
        print(header)
        for mode in MODES:
            config = parse_config({"objective": {"mode": mode}, "solver": {"backend": "cpsat", "seed": args.seed,
                                                                           "time_limit": limit}})
            t = time.perf_counter()
            prep = prepare(problem, config)
            outcome = solve_problem(problem, config, prepared=prep)
            seconds = time.perf_counter() - t
            baselines = {b: simulate(problem, decode(prep.candidates, x)).as_dict() for b, x in prep.baselines.items()}
            best = baselines[prep.best_baseline]
            if mode == MODES[0]:
                for b, k in baselines.items():
                    print(_row(f"baseline {b}", k))
                entry["baselines"] = baselines
            k = outcome.kpis.as_dict() if outcome.kpis is not None else None
            win = k is not None and dominates(k, best)
            wins[mode] += win
            proven = "proven" if outcome.optimal else "time limit"
            print(_row(f"cpsat {mode}", k, best) + f"  vs {prep.best_baseline}  {seconds:.1f} s ({proven})"
                  + ("  DOMINATES" if win else "") if k else f"  cpsat {mode}: no feasible plan")
            entry["modes"][mode] = {"kpis": k, "best_baseline": prep.best_baseline, "best_baseline_kpis": best,
                                    "dominates": win, "optimal": outcome.optimal, "seconds": seconds}
        results.append(entry)
    n = len(results)
    print(f"\n{n} instances, {limit:g} s per CP-SAT solve, {time.perf_counter() - started:.0f} s in all; "
          f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    for mode in MODES:
        print(f"  {mode:<14} dominates the best baseline (cost, on-time, dwell together) on {wins[mode]}/{n} "
              f"= {wins[mode] / n:.0%} of instances")
    if args.json:
        Path(args.json).write_text(json.dumps({"time_limit_s": limit, "instances": results,
                                               "dominance_share": {m: wins[m] / n for m in MODES}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
