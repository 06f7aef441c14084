"""Scale benchmark for the hybrid pipeline (not a test; run it by hand).

For generated instances of 100, 1,000 and 5,000 shipments it prints: encode time, number of
model and QUBO variables, peak memory (the process's peak resident set after encoding, and at
the end of the instance, which includes CP-SAT), the hybrid pipeline's time to its first feasible plan (the
greedy warm start is feasible by construction, so this is the warm start time) and its
objective after the time budget, beside CP-SAT's best objective and bound in the same budget.
Ratios are hybrid / CP-SAT measured in the same run. Then, on china-core, the hybrid pipeline
with the chosen device backend against CP-SAT's result with a long limit.

    python benchmarks/scale.py --quick                 # 100 and 1,000 shipments, 20 s budgets
    python benchmarks/scale.py                         # 100, 1,000, 5,000 shipments, 60 s budgets
    python benchmarks/scale.py --device qaoa --china   # also china-core with QAOA subproblems

Targets (2 cores): 1,000 shipments encoded in under 10 s and under 2 GB; a feasible plan in 60 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from backends.cpsat import CpSatSolver  # noqa: E402
from optimizer.solve.config import Config, RefineSection# noqa: E402
from optimizer.freight.generate import generate_document# noqa: E402
from optimizer.solve.pipeline import prepare, solve_problem# noqa: E402
from optimizer.freight.problem import load_problem, parse_problem# noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_instance(problem, *, budget: float, device: str, seed: int) -> dict[str, object]:
    config = Config()
    t = time.perf_counter()
    prep = prepare(problem, config)
    encode_s = time.perf_counter() - t
    # Process peak so far (an upper bound on the encode's own: sizes run smallest first).
    # tracemalloc is not used: it slows allocation-heavy Python code two- to threefold.
    rss_after_encode = rss_mib()

    hybrid_cfg = dataclasses.replace(
        config.override(backend=device, seed=seed, time_limit=budget * 0.8),
        refine=RefineSection(enabled=True, time_limit=budget * 0.2, workers=1))
    t = time.perf_counter()
    outcome = solve_problem(problem, hybrid_cfg, prepared=prep)
    hybrid_s = time.perf_counter() - t
    stages = outcome.sampleset.info.get("stages", [])
    warm = next((s for s in stages if s.get("stage") == "warm_start"), {})

    t = time.perf_counter()
    cp = CpSatSolver(workers=2).solve_model(prep.model, seed=seed, time_limit=budget, initial=prep.greedy)
    cp_s = time.perf_counter() - t
    return {
        "shipments": len(problem.shipments), "model_vars": prep.model.num_variables,
        "qubo_vars": prep.qubo.num_variables, "encode_s": encode_s,
        "rss_encode_mib": rss_after_encode, "rss_peak_mib": rss_mib(), "first_feasible_s": warm.get("seconds", 0.0) + encode_s,
        "hybrid_obj": outcome.objective, "hybrid_feasible": outcome.feasible, "hybrid_s": hybrid_s,
        "cpsat_obj": cp.objective, "cpsat_bound": cp.bound, "cpsat_optimal": cp.optimal, "cpsat_s": cp_s,
        "greedy_obj": float(prep.model.objective(prep.greedy)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="exact", help="backend for subproblems (exact, qaoa, photonic)")
    parser.add_argument("--china", action="store_true", help="also run china-core against a long CP-SAT run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="*", help="shipment counts (default 100 1000 5000)")
    args = parser.parse_args()
    sizes = tuple(args.sizes) if args.sizes else ((100, 1000) if args.quick else (100, 1000, 5000))
    budget = 20.0 if args.quick else 60.0
    header = (f"{'shipments':>9} {'model':>7} {'qubo':>7} {'encode s':>9} {'RSS enc':>8} {'RSS end':>8} "
              f"{'1st feas s':>10} {'greedy':>12} {'hybrid':>12} {'CP-SAT':>12} {'bound':>12} {'hyb/CP':>7}")
    print(f"device backend for subproblems: {args.device}; budget {budget:g} s per solver")
    print(header)
    for n in sizes:
        problem = parse_problem(generate_document(hubs=max(10, n // 25), shipments=n, seed=args.seed), source="gen")
        r = run_instance(problem, budget=budget, device=args.device, seed=args.seed)
        print(f"{r['shipments']:>9} {r['model_vars']:>7} {r['qubo_vars']:>7} {r['encode_s']:>9.2f} "
              f"{r['rss_encode_mib']:>8.0f} {r['rss_peak_mib']:>8.0f} "
              f"{r['first_feasible_s']:>10.2f} "
              f"{r['greedy_obj']:>12,.0f} {r['hybrid_obj']:>12,.0f} {r['cpsat_obj']:>12,.0f} "
              f"{r['cpsat_bound']:>12,.0f} {r['hybrid_obj'] / r['cpsat_obj']:>7.3f}", flush=True)
    if args.china:
        problem = load_problem(os.path.join(os.path.dirname(__file__), "..", "problems", "china-core.toml"))
        r = run_instance(problem, budget=budget, device=args.device, seed=args.seed)
        long = CpSatSolver(workers=2).solve_model(prepare(problem, Config()).model, seed=args.seed, time_limit=600)
        print(f"\nchina-core: hybrid[{args.device}] {r['hybrid_obj']:,.2f} CNY; CP-SAT (same budget) "
              f"{r['cpsat_obj']:,.2f}; CP-SAT 600 s {long.objective:,.2f} "
              f"({'proven optimal' if long.optimal else f'bound {long.bound:,.2f}'}); "
              f"hybrid / long CP-SAT = {r['hybrid_obj'] / long.objective:.4f}")


if __name__ == "__main__":
    main()
