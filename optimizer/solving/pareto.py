"""Trade-off fronts: solve one problem under a sweep of ``[objective]`` weights and keep the
plans no other plan beats on cost, on-time share and transfer-yard dwell together.

Weights are normalised by the best baseline of the cost-only model so that every criterion
counts on the same scale: point k of N (k = 0 is cost alone) has ``a = k / (N - 1)`` and
``b = frac(k * 0.618...)`` (a low-discrepancy sequence), and weights

    cost = 1 - a,   lateness = a (1 - b) * C / L,   dwell = a b * C / D

with C, L, D the baseline's cost (CNY), priority-weighted lateness (h) and transfer-yard dwell
(h); a criterion the baseline does not incur uses scale 1. KPIs come from the replay, never
from the objective.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from optimizer.freight.objective import Objective
from optimizer.freight.problem import Problem
from optimizer.solving.config import Config

__all__ = ["FRONT_KPIS", "nondominated", "pareto_csv", "pareto_sweep", "sweep_weights"]

#: (KPI, sense): the three criteria of the front.
FRONT_KPIS = (("cost_cny", "min"), ("on_time_share", "max"), ("dwell_hours_transfer", "min"))
_GOLDEN = (math.sqrt(5) - 1) / 2


def sweep_weights(points: int, *, cost: float, lateness: float, dwell: float) -> list[dict[str, float]]:
    """``points`` weight settings (cost, lateness, dwell); the first is cost alone."""
    if points < 1:
        raise ValueError("points must be at least 1")
    scale_l = cost / lateness if lateness > 0 else 1.0
    scale_d = cost / dwell if dwell > 0 else 1.0
    out = []
    for k in range(points):
        a = 0.0 if points == 1 else k / (points - 1)
        b = (k * _GOLDEN) % 1.0
        out.append({"cost": round(1.0 - a, 6), "lateness": round(a * (1.0 - b) * scale_l, 6),
                    "dwell": round(a * b * scale_d, 6)})
    return out


def nondominated(rows: list[dict]) -> list[bool]:
    """For each row (with a ``kpis`` dict, or None), whether no other row is at least as good on
    every front KPI and better on one."""
    def better_or_equal(a, b) -> bool:
        return all((a[k] <= b[k] + 1e-9) if sense == "min" else (a[k] >= b[k] - 1e-9) for k, sense in FRONT_KPIS)

    def strictly(a, b) -> bool:
        return any((a[k] < b[k] - 1e-9) if sense == "min" else (a[k] > b[k] + 1e-9) for k, sense in FRONT_KPIS)

    out = []
    for i, r in enumerate(rows):
        if r.get("kpis") is None:
            out.append(False)
            continue
        # Dominated by another row, or a repeat of an earlier row's KPIs (kept once on the front).
        out.append(not any(j != i and o.get("kpis") is not None and better_or_equal(o["kpis"], r["kpis"])
                           and (strictly(o["kpis"], r["kpis"]) or j < i) for j, o in enumerate(rows)))
    return out


def pareto_sweep(problem: Problem, config: Config, *, points: int,
                 on_point: Callable[[dict], None] | None = None) -> dict[str, object]:
    """Solve ``problem`` once per weight setting with the configured backend (each within
    ``[solver] time_limit``); returns the JSON-ready front document."""
    from optimizer.solving.pipeline import prepare, solve_problem

    base_config = dataclasses.replace(config, objective=Objective())
    base = prepare(problem, base_config)
    from optimizer.freight.evaluate import decode, simulate

    baselines = {name: simulate(problem, decode(base.candidates, x)).as_dict() for name, x in base.baselines.items()}
    best = baselines[base.best_baseline]
    weights = sweep_weights(points, cost=best["cost_cny"], lateness=best["priority_weighted_lateness_hours"],
                            dwell=best["dwell_hours_transfer"])
    rows = []
    for k, w in enumerate(weights):
        objective = dataclasses.replace(config.objective, mode="weighted", guard_baseline=False, cost=w["cost"],
                                        lateness=w["lateness"], dwell=w["dwell"])
        if not any(getattr(objective, c) for c in ("cost", "lateness", "dwell", "diesel", "co2")):
            objective = dataclasses.replace(objective, cost=1.0)
        cfg = dataclasses.replace(config, objective=objective)
        outcome = solve_problem(problem, cfg, prepared=prepare(problem, cfg))
        row = {"point": k, "weights": w, "feasible": outcome.feasible, "optimal": outcome.optimal,
               "objective": outcome.objective, "kpis": None if outcome.kpis is None else outcome.kpis.as_dict()}
        rows.append(row)
        if on_point is not None:
            on_point(row)
    front = nondominated(rows)
    for row, on_front in zip(rows, front):
        row["on_front"] = on_front
    return {"problem": problem.name, "source": problem.source, "backend": config.solver.backend,
            "seed": config.solver.seed, "time_limit_per_point_s": config.solver.time_limit, "points": rows,
            "baselines": baselines, "best_baseline": base.best_baseline,
            "front_kpis": [k for k, _ in FRONT_KPIS], "weights_rule": __doc__.split("\n\n")[1].strip()}


def pareto_csv(doc: dict) -> str:
    import csv
    import io

    buf = io.StringIO()
    kpis = ["cost_cny", "on_time_share", "dwell_hours_transfer", "priority_weighted_lateness_hours", "diesel_litres",
            "co2_kg", "deferred"]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["plan", "weight_cost", "weight_lateness", "weight_dwell", "feasible", "on_front", *kpis])
    for row in doc["points"]:
        k = row["kpis"] or {}
        w = row["weights"]
        writer.writerow([f"point {row['point']}", w["cost"], w["lateness"], w["dwell"], row["feasible"],
                         row["on_front"], *(k.get(key, "") for key in kpis)])
    for name, k in doc["baselines"].items():
        writer.writerow([f"baseline {name}", "", "", "", True, "", *(k.get(key, "") for key in kpis)])
    return buf.getvalue()
