"""Statistics of a comparison: the CP-SAT reference and gaps, per-backend aggregates over seeds,
TTS99 and the Dolan-More performance profile.

The results document (results.json) of ``qfreight compare``::

    {"format", "run_id", "created", "command", "config", "backends", "seeds", "time_limit_s",
     "executor", "status", "planned_runs", "instances": {name: {...}}, "rows": [row, ...]}

Each row is one run (see :func:`optimizer.solving.compare.run_one`); :func:`annotate` adds the
derived fields.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["annotate", "backend_stats", "tts99", "performance_profile", "TARGET_TOLERANCE",
           "CLASSICAL_BACKENDS", "QUANTUM_BACKENDS", "STOCHASTIC_BACKENDS", "PROFILE_TAUS"]


#: Relative tolerance for "reached the best known objective": |obj - best| <= TOL * max(1, |best|).
TARGET_TOLERANCE = 1e-6


CLASSICAL_BACKENDS = ("cpsat", "anneal", "exact")


QUANTUM_BACKENDS = ("qaoa", "photonic")


STOCHASTIC_BACKENDS = ("anneal", "qaoa", "photonic")


PROFILE_TAUS = (1.0, 2.0, 4.0, 10.0, 100.0)


def _target_hit(value: float | None, best: float | None) -> bool:
    """Whether ``value`` reaches the target ``best`` (minimisation), within the tolerance."""
    if value is None or best is None:
        return False
    return value <= best + TARGET_TOLERANCE * max(1.0, abs(best))


def _ok_rows(rows):
    return [r for r in rows if not r.get("error")]


def annotate(doc: dict) -> dict:
    """Derive, per instance, the CP-SAT reference and the best known objective; per row, the gap.

    Reference: CP-SAT's proven optimum when one of its runs proved optimality, else its best
    (highest) bound. gap = (objective - reference) / |reference| (None when the reference is 0
    and the objective differs, or when there is no reference). Best known objective: the proven
    optimum, else the lowest feasible objective over all runs. Idempotent and deterministic.
    """
    rows = doc["rows"]
    for name, inst in doc["instances"].items():
        mine = [r for r in rows if r["instance"] == name]
        ok = _ok_rows(mine)
        cp = [r for r in ok if r["backend"] == "cpsat"]
        proven = [r["objective"] for r in cp if r.get("optimal") and r.get("feasible")]
        bounds = [r["bound"] for r in cp if r.get("bound") is not None]
        if proven:
            ref, kind = min(proven), "proven optimum"
        elif bounds:
            ref, kind = max(bounds), "best bound"
        else:
            ref, kind = None, None
        feasible = [r["objective"] for r in ok if r.get("feasible") and r.get("objective") is not None]
        if kind == "proven optimum":
            best, source = ref, "CP-SAT proven optimum"
        elif feasible:
            best, source = min(feasible), "best feasible objective over all runs"
        else:
            best, source = None, None
        inst["reference"] = {"kind": kind, "value": ref, "best_known": best, "best_known_source": source}
        for r in mine:
            obj = None if r.get("error") else r.get("objective")
            gap = None
            if ref is not None and obj is not None:
                gap = (obj - ref) / abs(ref) if ref != 0 else (0.0 if obj == ref else None)
            r["gap"] = gap
            r["gap_reference"] = kind
            r["reference_objective"] = ref
            r["best_known"] = best
            r["reached_best_known"] = bool(r.get("feasible")) and _target_hit(obj, best)
    return doc


# ---------------------------------------------------------------------------------- statistics
def tts99(p: float, t_mean: float) -> float:
    """Time to solution at 99% confidence: t_mean * max(1, ln(0.01) / ln(1 - p)); inf when p = 0."""
    if p <= 0:
        return math.inf
    if p >= 0.99:
        return t_mean
    return t_mean * max(1.0, math.log(0.01) / math.log(1.0 - p))


def _mean_std(values):
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _backend_order(doc: dict) -> list[str]:
    """Backends that have rows: CP-SAT (the reference) first, then as requested."""
    present = {r["backend"] for r in doc["rows"]}
    order = dict.fromkeys(["cpsat", *doc.get("backends", []), *(r["backend"] for r in doc["rows"])])
    return [b for b in order if b in present]


def backend_stats(doc: dict) -> dict[tuple[str, str], dict]:
    """Per (instance, backend): runs, feasibility, objective/gap/time mean and spread over seeds,
    success share, time-to-target and TTS99. Time is the solver's wall time (``time_solve_s``:
    without the shared model building and the KPI simulation)."""
    out: dict[tuple[str, str], dict] = {}
    for name, inst in doc["instances"].items():
        best = (inst.get("reference") or {}).get("best_known")
        for backend in _backend_order(doc):
            rows = [r for r in doc["rows"] if r["instance"] == name and r["backend"] == backend]
            if not rows:
                continue
            ok = _ok_rows(rows)
            feas = [r for r in ok if r.get("feasible")]
            obj_mean, obj_std = _mean_std(r["objective"] for r in feas)
            gap_mean, gap_std = _mean_std(r.get("gap") for r in feas)
            t_mean, t_std = _mean_std(r.get("time_solve_s") for r in ok)
            hits = [r for r in ok if r.get("reached_best_known")]
            p = len(hits) / len(ok) if ok else 0.0
            out[(name, backend)] = {
                "runs": len(rows), "errors": len(rows) - len(ok), "ok": len(ok), "feasible": len(feas),
                "error": next((r["error"] for r in rows if r.get("error")), None),
                "objective_mean": obj_mean, "objective_std": obj_std,
                "objective_best": min((r["objective"] for r in feas), default=None),
                "gap_mean": gap_mean, "gap_std": gap_std, "gap_reference": rows[0].get("gap_reference"),
                "time_mean": t_mean, "time_std": t_std,
                "success": p, "hits": len(hits),
                "time_to_target": float(np.median([r["time_solve_s"] for r in hits])) if hits else None,
                "tts99": tts99(p, t_mean) if ok and t_mean is not None else math.inf,
                "stochastic": backend in STOCHASTIC_BACKENDS or any(r.get("hybrid") for r in ok),
                "hybrid": any(r.get("hybrid") for r in ok),
                "best_known": best,
            }
    return out


def performance_profile(doc: dict, stats: dict | None = None) -> dict[str, list[tuple[float, float]]]:
    """Dolan & More (2002) on TTS99: per backend, the sorted ratios r_ps = m_ps / min_s m_ps over
    instances (inf where the backend never reached the best known objective);
    rho_s(tau) = share of instances with r_ps <= tau."""
    stats = stats or backend_stats(doc)
    backends = _backend_order(doc)
    names = list(doc["instances"])
    ratios: dict[str, list[float]] = {b: [] for b in backends}
    for name in names:
        measures = {b: stats[(name, b)]["tts99"] for b in backends if (name, b) in stats}
        finite = [m for m in measures.values() if math.isfinite(m)]
        best = min(finite) if finite else None
        for b in backends:
            m = measures.get(b, math.inf)
            if best is None or not math.isfinite(m):
                ratios[b].append(math.inf)
            else:
                ratios[b].append(m / best if best > 0 else (1.0 if m == best else math.inf))
    return {b: sorted(r) for b, r in ratios.items()}


def _rho(ratios: list[float], tau: float) -> float:
    return sum(1 for r in ratios if r <= tau * (1 + 1e-12)) / len(ratios) if ratios else 0.0
