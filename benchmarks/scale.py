"""National scale (issue 12): preparation, the best dispatcher and the solvers on 1k-10k shipments.

Instances are ``qfreight generate --hubs H --shipments N --seed S`` (40 hubs by default). Every
measurement runs in a fresh child process, so peak memory (the child's own peak resident set,
and that of its finished children, e.g. Dask workers) belongs to that measurement alone and sizes
do not pollute each other. Per size it prints:

- preparation (candidates + model + every baseline + the best baseline; no QUBO): seconds per
  stage, peak RSS, candidate plans and model size; then the growth exponents of time and memory
  (least-squares slope of log value against log shipments) and each size's ratio to the
  smallest;
- the best baseline's objective and KPIs (on-time share, deferred shipments, transfer-yard
  dwell, trains, cost);
- the pipeline with ``[solver] backend = "cpsat"`` (LNS on large models, as the pipeline decides)
  and CP-SAT alone (``[solver] lns = "off"``), each with ``time_limit`` = 60 s (and 600 s with
  ``--long``), preparation included: objective, ratio to the best baseline, KPIs, wall time,
  peak RSS;
- with ``--workers 1,2``: the pipeline with ``[executor] kind = "dask"`` and k workers on fixed
  work (``[solver] budget = "work"``, a fixed number of LNS rounds of ``max(k)`` neighbourhoods
  each), so that the wall-time ratio is the speed-up and the objectives should agree.

    python benchmarks/scale.py --quick                       # 1k and 2k, prepare + 20 s solves
    python benchmarks/scale.py                               # 1k, 2k, 5k, 10k; 60 s solves
    python benchmarks/scale.py --long                        # also 600 s solves
    python benchmarks/scale.py --sizes 10000 --hubs 60 --no-solve
    python benchmarks/scale.py --sizes 1000 --workers 1,2

Targets (2 cores, issue 12): 10,000 shipments prepared in <= 60 s and <= 4 GB; growth
exponents <= 1.2; a plan >= 5 % better than the best baseline at 1,000 shipments in 60 s and
>= 3 % better at 10,000 in 600 s.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import resource
import sys
import time
import traceback

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


# ---------------------------------------------------------------------------- child side
def _rss_gib() -> tuple[float, float]:
    """(this process's peak RSS, its waited-for children's largest peak), GiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return own, kids


def _instance(spec: dict):
    from optimizer.freight.generate import generate_document
    from optimizer.freight.problem import parse_problem

    t = time.perf_counter()
    doc = generate_document(hubs=spec["hubs"], shipments=spec["shipments"], seed=spec["seed"], slots=spec["slots"])
    problem = parse_problem(doc, source=f"generated h{spec['hubs']} s{spec['shipments']}")
    return problem, time.perf_counter() - t


def _config(spec: dict, **sections):
    from optimizer.solving.config import parse_config

    data = {"model": {"max_departure_slots": spec["max_departure_slots"]}, "solver": {"seed": spec["seed"]}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, source="benchmarks/scale.py")


def _kpis(k) -> dict:
    return None if k is None else {
        "on_time": k.on_time_share, "deferred": k.deferred, "dwell_transfer_h": k.dwell_hours_transfer,
        "trains": k.trains, "cost": k.cost_cny}


def _prepare_task(spec: dict) -> dict:
    from optimizer.freight.evaluate import decode, simulate
    from optimizer.solving.pipeline import prepare

    problem, gen_s = _instance(spec)
    t = time.perf_counter()
    prep = prepare(problem, _config(spec))
    prepare_s = time.perf_counter() - t
    own, _ = _rss_gib()
    model = prep.model
    objectives = {name: float(model.objective(x)[0]) for name, x in prep.baselines.items()}
    return {
        "generate_s": gen_s, "prepare_s": prepare_s, "timing": dict(prep.timing), "rss_gib": own,
        "plans": len(prep.candidates.candidates), "batches": len(prep.candidates.batches),
        "variables": model.num_variables, "rows": model.num_rows, "nonzeros": int(model.A.nnz),
        "baselines": objectives, "best": prep.best_baseline,
        "best_kpis": _kpis(simulate(problem, decode(prep.candidates, prep.reference))),
    }


def _solve_task(spec: dict) -> dict:
    from optimizer.solving.pipeline import solve_problem

    problem, _ = _instance(spec)
    config = _config(spec, **spec["sections"])
    t = time.perf_counter()
    out = solve_problem(problem, config)
    wall = time.perf_counter() - t
    own, kids = _rss_gib()
    base = float(out.prepared.model.objective(out.prepared.reference)[0])
    stages = out.stages
    return {
        "wall_s": wall, "rss_gib": own, "children_rss_gib": kids, "objective": float(out.objective),
        "baseline_objective": base, "feasible": bool(out.feasible), "status": str(out.status),
        "solver": out.answer.solver, "kpis": _kpis(out.kpis), "prepare_s": sum(out.prepared.timing.values()),
        "rounds": len(stages), "accepted": sum(1 for s in stages if getattr(s, "accepted", False)),
    }


def _child(task: str, spec: dict, queue) -> None:
    try:
        queue.put({"ok": True, **(_prepare_task(spec) if task == "prepare" else _solve_task(spec))})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which carries on
        queue.put({"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=4)})


def run_isolated(task: str, spec: dict, *, timeout: float) -> dict:
    """Run one measurement in a fresh (spawned) process and return what it reports."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(task, spec, queue))
    proc.start()
    try:
        result = queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty: the child overran
        proc.kill()
        result = {"ok": False, "error": f"no result within {timeout:.0f} s"}
    proc.join(timeout=30)
    return result


# ---------------------------------------------------------------------------- parent side
def growth(sizes, values) -> float:
    """Slope of log(value) against log(size): the exponent p of value ~ size^p."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(values, float))
    return float(np.polyfit(x, y, 1)[0]) if len(sizes) > 1 else math.nan


def _fmt_kpis(k) -> str:
    if not k:
        return "KPIs n/a (no feasible plan)"
    return (f"on-time {100 * k['on_time']:5.1f} %, deferred {k['deferred']:5d}, transfer dwell "
            f"{k['dwell_transfer_h']:9,.0f} h, trains {k['trains']:6d}, cost {k['cost']:,.0f} CNY")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated shipment counts (default 1000,2000,5000,10000)")
    parser.add_argument("--hubs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slots", type=int, default=18)
    parser.add_argument("--max-departure-slots", type=int, default=0, help="[model] max_departure_slots (0: all)")
    parser.add_argument("--quick", action="store_true", help="1k and 2k shipments, 20 s solves")
    parser.add_argument("--long", action="store_true", help="also solve with a 600 s limit")
    parser.add_argument("--no-solve", action="store_true", help="preparation only")
    parser.add_argument("--workers", help="e.g. 1,2: LNS through a Dask LocalCluster with k workers (fixed work)")
    parser.add_argument("--work-rounds", type=int, default=20, help="LNS rounds in the --workers comparison")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([1000, 2000] if args.quick else
                                                                       [1000, 2000, 5000, 10000])
    limits = [20.0] if args.quick else ([60.0, 600.0] if args.long else [60.0])
    base = {"hubs": args.hubs, "seed": args.seed, "slots": args.slots, "max_departure_slots": args.max_departure_slots}
    print(f"qfreight generate --hubs {args.hubs} --seed {args.seed} --slots {args.slots}; "
          f"[model] max_departure_slots = {args.max_departure_slots}; {os.cpu_count()} CPUs; "
          "each row measured in its own process\n")

    print("preparation (candidates + model + every baseline + best baseline; no QUBO)")
    print(f"{'shipments':>9} {'plans':>8} {'vars':>8} {'rows':>7} {'gen s':>6} {'cand s':>7} {'model s':>7} "
          f"{'base s':>7} {'total s':>7} {'RSS GiB':>7} {'t/t0':>6} {'m/m0':>6} {'best':>12}")
    prepared = {}
    for n in sizes:
        r = run_isolated("prepare", {**base, "shipments": n}, timeout=1800)
        if not r["ok"]:
            print(f"{n:>9} failed: {r['error']}")
            continue
        prepared[n] = r
        first = prepared[next(iter(prepared))]
        t0, m0 = first["prepare_s"], first["rss_gib"]
        tm = r["timing"]
        print(f"{n:>9} {r['plans']:>8,} {r['variables']:>8,} {r['rows']:>7,} {r['generate_s']:>6.2f} "
              f"{tm.get('candidates', 0):>7.2f} {tm.get('model', 0):>7.2f} {tm.get('baselines', 0):>7.2f} "
              f"{r['prepare_s']:>7.2f} {r['rss_gib']:>7.2f} {r['prepare_s'] / t0:>6.2f} {r['rss_gib'] / m0:>6.2f} "
              f"{r['best']:>12}", flush=True)
    done = [n for n in sizes if n in prepared]
    if len(done) > 1:
        t_exp = growth(done, [prepared[n]["prepare_s"] for n in done])
        m_exp = growth(done, [prepared[n]["rss_gib"] for n in done])
        print(f"growth exponents {done[0]:,} -> {done[-1]:,}: time {t_exp:.2f}, peak RSS {m_exp:.2f} "
              f"(target <= 1.2; shipments grew {done[-1] / done[0]:.1f}x, time {prepared[done[-1]]['prepare_s'] / prepared[done[0]]['prepare_s']:.1f}x, "
              f"memory {prepared[done[-1]]['rss_gib'] / prepared[done[0]]['rss_gib']:.1f}x)")
    print("\nbaselines (model objective, CNY; the best is the reference of every ratio below)")
    for n in done:
        r = prepared[n]
        values = "  ".join(f"{k} {v:,.0f}" for k, v in r["baselines"].items())
        print(f"{n:>9}  {values}\n{'':>9}  best {r['best']}: {_fmt_kpis(r['best_kpis'])}")

    if args.no_solve:
        return
    print("\nsolvers (time limit covers preparation; ratio = objective / best baseline's, < 1 is better)")
    print(f"{'shipments':>9} {'run':>22} {'limit':>6} {'wall s':>7} {'RSS GiB':>7} {'objective':>16} {'ratio':>7} "
          f"{'status':>10}  KPIs")
    for n in done:
        for limit in limits:
            for label, solver in (("pipeline (LNS auto)", {"backend": "cpsat", "time_limit": limit}),
                                  ("CP-SAT alone", {"backend": "cpsat", "time_limit": limit, "lns": "off"})):
                r = run_isolated("solve", {**base, "shipments": n, "sections": {"solver": solver}},
                                 timeout=limit * 3 + 600)
                if not r["ok"]:
                    print(f"{n:>9} {label:>22} {limit:>6.0f} failed: {r['error']}", flush=True)
                    continue
                print(f"{n:>9} {label:>22} {limit:>6.0f} {r['wall_s']:>7.1f} {r['rss_gib']:>7.2f} "
                      f"{r['objective']:>16,.0f} {r['objective'] / r['baseline_objective']:>7.4f} {r['status']:>10}  "
                      f"{_fmt_kpis(r['kpis'])} [{r['solver']}, {r['accepted']}/{r['rounds']} stages accepted]",
                      flush=True)

    if args.workers:
        ks = [int(k) for k in args.workers.split(",")]
        print(f"\nDask executor, fixed work ({args.work_rounds} LNS rounds of {max(ks)} neighbourhoods; "
              "speed-up = wall(first k) / wall(k))")
        for n in done:
            walls = {}
            for k in ks:
                sections = {"solver": {"backend": "cpsat", "lns": "on", "budget": "work", "time_limit": 3600},
                            "lns": {"rounds": args.work_rounds, "pieces_per_round": max(ks)},
                            "executor": {"kind": "dask", "workers": k}}
                r = run_isolated("solve", {**base, "shipments": n, "sections": sections}, timeout=7200)
                if not r["ok"]:
                    print(f"{n:>9} workers {k}: failed: {r['error']}", flush=True)
                    continue
                walls[k] = r["wall_s"] - r["prepare_s"]
                print(f"{n:>9} workers {k}: LNS wall {walls[k]:7.1f} s (after {r['prepare_s']:.1f} s preparation), "
                      f"objective {r['objective']:,.0f} (ratio {r['objective'] / r['baseline_objective']:.4f}), "
                      f"speed-up {walls[ks[0]] / walls[k] if ks[0] in walls else math.nan:.2f}, "
                      f"RSS {r['rss_gib']:.2f} GiB (workers {r['children_rss_gib']:.2f})", flush=True)


if __name__ == "__main__":
    main()
