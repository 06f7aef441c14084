"""Tables: the fixed-width KPI table the CLI prints, and every table and summary sentence of a
comparison report (built once from the results document, rendered to Markdown and HTML).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optimizer.freight.evaluate import KPI_LABELS, Kpis
from optimizer.report.stats import (
    CLASSICAL_BACKENDS,
    PROFILE_TAUS,
    QUANTUM_BACKENDS,
    TARGET_TOLERANCE,
    _backend_order,
    _mean_std,
    _ok_rows,
    _rho,
    _target_hit,
    backend_stats,
    performance_profile,
)

__all__ = ["kpi_table", "Table", "summary_lines", "comparison_tables", "OPERATOR_KPIS"]


def _fmt(key: str, value: float) -> str:
    if key in ("on_time_share", "priority_weighted_on_time"):
        return f"{100 * value:.1f}"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e6:
        return f"{value:,.0f}"
    if abs(value) < 1:
        return f"{value:.4g}"
    return f"{value:,.1f}"


def kpi_table(plan: Kpis | None, baseline: Kpis, *, plan_name: str = "plan", baseline_name: str = "baseline") -> str:
    """Plan vs the (best) baseline dispatcher, one KPI a line, with the change in percent
    (lower-is-better KPIs improve when negative; on-time shares improve when positive)."""
    header = f"{'KPI':<28}{'unit':>6}{baseline_name:>16}{plan_name:>16}{'change':>10}"
    lines = [header, "-" * len(header)]
    for key, (label, unit) in KPI_LABELS.items():
        base = getattr(baseline, key)
        if plan is None:
            lines.append(f"{label:<28}{unit:>6}{_fmt(key, base):>16}{'-':>16}{'':>10}")
            continue
        value = getattr(plan, key)
        change = "" if base == 0 else f"{100 * (value - base) / abs(base):+.1f}%"
        lines.append(f"{label:<28}{unit:>6}{_fmt(key, base):>16}{_fmt(key, value):>16}{change:>10}")
    return "\n".join(lines)


#: The KPIs an operator reads first, in the KPI table and the KPI bars.
OPERATOR_KPIS = ("dwell_hours_transfer", "diesel_litres", "on_time_share")


# ---------------------------------------------------------------------------------- formatting
def _num(value, kind: str = "g") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    value = float(value)
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    if kind == "pct":
        return f"{100 * value:.3f}%"
    if kind == "s":
        return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"
    if kind == "signed_pct":
        return f"{value:+.1f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.6g}"


def _pm(mean, std, kind: str = "g") -> str:
    if mean is None:
        return "-"
    return _num(mean, kind) if not std else f"{_num(mean, kind)} ± {_num(std, kind)}"


@dataclass(frozen=True)
class Table:
    """A report table: rendered to Markdown and to HTML from the same cells."""

    key: str  # section id
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def _instance_label(doc: dict, name: str) -> str:
    unit = "QUBO energy" if doc["instances"][name].get("kind") == "qubo" else "CNY"
    ref = doc["instances"][name].get("reference") or {}
    if ref.get("kind"):
        return f"{name} ({ref['kind']} {_num(ref['value'])} {unit})"
    return f"{name} (no CP-SAT reference)"


def _winners(values: dict[str, float]) -> list[str]:
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        return []
    best = min(finite.values())
    return [k for k, v in finite.items() if _target_hit(v, best)]


def _family(backends: list[str], stats: dict[str, dict]) -> str:
    """"classical", "quantum" (a quantum-simulation backend on the whole problem), "hybrid"
    (one decomposed into device-sized pieces with classical warm start and refinement), or "tie"."""
    fams = {"hybrid" if stats[b]["hybrid"] else "classical" if b in CLASSICAL_BACKENDS
            else "quantum" if b in QUANTUM_BACKENDS else "other" for b in backends}
    return fams.pop() if len(fams) == 1 else "tie"


def summary_lines(doc: dict, stats: dict) -> list[str]:
    """Plain sentences: who won on objective and on time, per instance and overall."""
    lines: list[str] = []
    names = list(doc["instances"])
    obj_fam, time_fam = [], []
    obj_wins: dict[str, int] = {}
    time_wins: dict[str, int] = {}
    for name in names:
        mine = {b: s for (n, b), s in stats.items() if n == name}
        unit = "QUBO energy" if doc["instances"][name].get("kind") == "qubo" else "CNY"
        objective = {b: s["objective_mean"] for b, s in mine.items()}
        ow = _winners(objective)
        tw = _winners({b: s["tts99"] for b, s in mine.items()})
        parts = [f"{_instance_label(doc, name)}:"]
        if ow:
            tied = " (tied)" if len(ow) > 1 else ""
            parts.append(f"best mean objective: {', '.join(ow)}{tied}, {_num(objective[ow[0]])} {unit}.")
            obj_fam.append(_family(ow, mine))
            for b in ow:
                obj_wins[b] = obj_wins.get(b, 0) + 1
        else:
            parts.append("no backend found a feasible plan.")
        if tw:
            parts.append(f"Fastest to the best known objective (TTS99): {', '.join(tw)} "
                         f"({_num(mine[tw[0]]['tts99'], 's')}).")
            time_fam.append(_family(tw, mine))
            for b in tw:
                time_wins[b] = time_wins.get(b, 0) + 1
        else:
            parts.append("No backend reached the best known objective.")
        missed = [b for b, s in mine.items() if s["ok"] and s["hits"] == 0]
        if missed:
            parts.append(f"Never reached it: {', '.join(missed)}.")
        failed = [b for b, s in mine.items() if s["errors"]]
        if failed:
            parts.append(f"Could not run: {', '.join(failed)} (see the runs table).")
        hybrid = [b for b, s in mine.items() if s["hybrid"]]
        if hybrid:
            parts.append(f"{', '.join(hybrid)} ran as hybrid decomposition (classical warm start and "
                         f"CP-SAT refinement included).")
        lines.append(" ".join(parts))
    n = len(names)
    ran = _backend_order(doc)
    quantum_ran = [b for b in ran if b in QUANTUM_BACKENDS]
    if obj_wins:
        lines.append("Best mean objective, instances won (ties count for each): " +
                     ", ".join(f"{b} {k} of {n}" for b, k in obj_wins.items()) + ".")
    if time_wins:
        lines.append("Fastest to the best known objective (TTS99), instances won: " +
                     ", ".join(f"{b} {k} of {n}" for b, k in time_wins.items()) + ".")
    c_obj, c_time = obj_fam.count("classical"), time_fam.count("classical")
    q_obj, q_time = obj_fam.count("quantum"), time_fam.count("quantum")
    h_obj, h_time = obj_fam.count("hybrid"), time_fam.count("hybrid")
    t_obj = obj_fam.count("tie")
    classical_ran = [b for b in ran if b in CLASSICAL_BACKENDS]
    lines.append(f"Classical solvers ({', '.join(classical_ran)}) won outright on objective on "
                 f"{c_obj} of {n} instances and on time on {c_time} of {n}.")
    if quantum_ran:
        lines.append(f"Quantum-simulation backends ({', '.join(quantum_ran)}) on the whole problem won outright on "
                     f"objective on {q_obj} of {n} and on time on {q_time} of {n}; as hybrid decomposition (with "
                     f"classical warm start and CP-SAT refinement) on objective on {h_obj} and on time on {h_time}; "
                     f"objective ties between the families: {t_obj}.")
    else:
        lines.append("No quantum-simulation backend (qaoa, photonic) was in this comparison.")
    return lines


def comparison_tables(doc: dict) -> list[Table]:
    """Every table of the report, in order (the same cells for Markdown and HTML)."""
    stats = backend_stats(doc)
    names = list(doc["instances"])
    tables: list[Table] = []

    rows = []
    for (name, b), s in stats.items():
        feas = f"{s['feasible']}/{s['runs']}"
        rows.append((name, b, feas, _pm(s["objective_mean"], s["objective_std"]), _num(s["objective_best"]),
                     _pm(s["gap_mean"], s["gap_std"], "pct"), s["gap_reference"] or "-",
                     _pm(s["time_mean"], s["time_std"], "s"), f"{s['errors']}"))
    tables.append(Table("instances", "Per-instance results (mean ± standard deviation over seeds)",
                        ("instance", "backend", "feasible runs", "objective", "best objective", "gap",
                         "gap against", "solver time", "errors"), tuple(rows),
                        "Objective: plan cost in CNY (QUBO energy for bare QUBO files), feasible runs only. "
                        "Gap = (objective - reference) / |reference|, the reference being CP-SAT's proven "
                        "optimum or, when it proved none, its best bound. Solver time: the backend's wall "
                        "time, without the shared model building and the KPI simulation; every backend solved a "
                        "2-variable QUBO once per worker process before its first timed run (imports, JIT)."))

    rows = []
    for (name, b), s in stats.items():
        rows.append((name, b, "yes" if s["stochastic"] else "no", f"{s['hits']}/{s['ok']}",
                     _num(s["time_mean"], "s"), _num(s["time_to_target"], "s"), _num(s["tts99"], "s")))
    tables.append(Table("tts", "Time to target and time to solution (TTS99)",
                        ("instance", "backend", "stochastic", "runs at target", "mean time", "time to target",
                         "TTS99"), tuple(rows),
                        f"Target: the best known objective (CP-SAT's proven optimum, else the best feasible "
                        f"objective of any run), reached when within {TARGET_TOLERANCE:g} x max(1, |target|). "
                        "Time to target: median solver time of the runs that reached it. "
                        "TTS99 = t_mean x max(1, ln(0.01) / ln(1 - p)), p = share of seeds at target "
                        "(inf when p = 0, t_mean when p >= 0.99): the expected time to see the target with 99% "
                        "confidence by repeating independent runs."))

    profile = performance_profile(doc, stats)
    rows = tuple((b, *(f"{_rho(r, tau):.2f}" for tau in PROFILE_TAUS)) for b, r in profile.items())
    tables.append(Table("profile", "Performance profile (Dolan & More, 2002) on TTS99",
                        ("backend", *(f"rho(tau={tau:g})" for tau in PROFILE_TAUS)), rows,
                        "rho_s(tau) = share of instances on which backend s's TTS99 is within a factor tau of the "
                        "best backend's TTS99 on that instance (a backend that never reached the best known "
                        f"objective counts as failed). Instances: {len(names)}."))

    rows = []
    for name in names:
        base_row = next((r for r in doc["rows"] if r["instance"] == name and r.get("baseline_kpis")), None)
        if not base_row:
            continue
        greedy = base_row["baseline_kpis"]
        rows.append((name, f"best baseline: {base_row.get('baseline')} (before)", _num(greedy["dwell_hours_transfer"]),
                     "", _num(greedy["diesel_litres"]), "", f"{100 * greedy['on_time_share']:.1f}%", ""))
        for b in _backend_order(doc):
            best = _best_row(doc, name, b)
            if best is None:
                if (name, b) in stats:
                    rows.append((name, f"{b}: no feasible plan", "-", "", "-", "", "-", ""))
                continue
            k, d = best["kpis"], best.get("kpi_change_percent") or {}
            rows.append((name, f"{b} (seed {best['seed']})", _num(k["dwell_hours_transfer"]),
                         _num(d.get("dwell_hours_transfer"), "signed_pct"), _num(k["diesel_litres"]),
                         _num(d.get("diesel_litres"), "signed_pct"), f"{100 * k['on_time_share']:.1f}%",
                         _num(d.get("on_time_share"), "signed_pct")))
    if rows:
        tables.append(Table("kpis", "Operator KPIs: best baseline dispatcher (before) and each backend's plan (after)",
                            ("instance", "plan", "dwell at transfer yards (h)", "change", "diesel (L)", "change",
                             "on-time share", "change"), tuple(rows),
                            "Each backend's plan is its best run (lowest cost over seeds). Changes are percentage "
                            "changes against the best baseline dispatcher (lowest model objective of greedy, priority-edd and "
                            "regret; lower dwell and diesel are better; a higher on-time share is better); '-' where "
                            "the baseline value is 0. KPIs come from the "
                            "discrete-event simulation of the plan, not from the QUBO energy."))

    rows = []
    for (name, b), s in stats.items():
        runs = [r for r in _ok_rows(doc["rows"]) if r["instance"] == name and r["backend"] == b]
        if not runs:
            continue
        means = [_mean_std(r.get(k) for r in runs)[0] for k in
                 ("time_classical_s", "time_quantum_sim_s", "time_postprocess_s", "time_prepare_s",
                  "time_evaluate_s")]
        reads = _mean_std(r.get("reads") for r in runs)[0]
        rows.append((name, b, *(_num(m, "s") for m in means), _num(reads)))
    tables.append(Table("timing", "Time split (mean over seeds)",
                        ("instance", "backend", "classical", "quantum simulation", "post-processing",
                         "model building", "KPI simulation", "samples"), tuple(rows),
                        "Quantum simulation: the backend's simulate, sample and compile stages; post-processing: "
                        "postprocess and ablation; classical: the rest of the solver's time (CP-SAT, annealing, "
                        "QAOA parameter optimisation). Hybrid runs report only their total ('-')."))

    rows = []
    total = 0.0
    for (name, b), s in stats.items():
        runs = [r for r in _ok_rows(doc["rows"]) if r["instance"] == name and r["backend"] == b
                and r.get("device_pieces")]
        total += sum(float(r.get("device_contribution") or 0.0) for r in runs)
        if not runs:
            continue
        pieces = sum(int(r["device_pieces"]) for r in runs)
        beat = sum(int(r.get("device_pieces_beat_standins") or 0) for r in runs)
        gained = _mean_std(r.get("device_contribution") for r in runs)
        rows.append((name, b, f"{len(runs)}", f"{pieces}", f"{beat}", _pm(*gained),
                     f"{sum(int(r.get('credited_rounds') or 0) for r in runs)}",
                     _num(_mean_std(r.get("device_seconds") for r in runs)[0], "s"),
                     _num(_mean_std(r.get("standin_seconds") for r in runs)[0], "s")))
    verdict = ("No device-solved piece in this comparison." if not rows else
               "The quantum devices added nothing beyond the classical stand-ins: every gain of the hybrid runs is "
               "matched by the incumbent, local search, random samples or annealing at the same budget."
               if total == 0 else
               "A positive share is objective the device's answer reached and no stand-in did, summed over pieces.")
    tables.append(Table("quantum-share", "Quantum share of hybrid runs (device against trivial stand-ins)",
                        ("instance", "backend", "runs", "device pieces", "pieces the device beat every stand-in on",
                         "objective gained beyond stand-ins (mean ± sd)", "rounds credited to the device",
                         "device time (mean)", "stand-in time (mean)"), tuple(rows),
                        "Every device-solved piece is also solved, at the device's budget, by the incumbent alone, local "
                        "search (the backend's own post-processing) from the incumbent, uniformly random samples of the "
                        "device's count and sizes with the same post-processing, and simulated annealing. The device is "
                        "credited only with what it found beyond the best of them. " + verdict))

    metric_keys = ("evaluations", "shots", "qaoa_approximation_ratio", "qaoa_optimum_probability",
                   "photonic_mean_photons_per_sample", "photonic_gbs_best_energy", "photonic_random_best_energy")
    rows = []
    for (name, b), s in stats.items():
        runs = [r for r in _ok_rows(doc["rows"]) if r["instance"] == name and r["backend"] == b]
        means = [_mean_std(r.get(k) for r in runs)[0] for k in metric_keys]
        if any(m is not None for m in means):
            rows.append((name, b, *(_num(m) for m in means)))
    tables.append(Table("metrics", "Backend metrics (mean over seeds)",
                        ("instance", "backend", "evaluations", "shots", "QAOA approximation ratio",
                         "QAOA P(optimum)", "photons per sample", "GBS best energy", "random-subset best energy"),
                        tuple(rows),
                        "QAOA approximation ratio = (E_max - <E>) / (E_max - E_min) of the final state; P(optimum): "
                        "its probability of the ground state. Photonic ablation: the same post-processing on "
                        "uniform random subsets of the GBS samples' sizes ('-' unless ablation is on). "
                        + ("" if rows else "No backend in this comparison reports such metrics.")))

    rows = []
    for name in names:
        meta = doc["instances"][name]
        best = _best_row(doc, name)
        load = _corridor_load(best) if best else {}
        for hub in meta.get("hubs", []):
            rows.append((name, "hub", hub["id"], hub["name"], hub["kind"], ""))
        for c in meta.get("corridors", []):
            rows.append((name, "corridor", c["id"], f"{c['from']} - {c['to']}", c["traction"],
                         str(load.get(c["id"], 0))))
    if rows:
        tables.append(Table("network", "Network (as in the problem files)",
                            ("instance", "element", "id", "name", "kind", "shipments in the best plan"),
                            tuple(rows)))

    tables.extend(rolling_horizon_tables(doc))

    rows = []
    for r in doc["rows"]:
        rows.append((r["instance"], r["backend"] + (" (reference)" if r.get("reference_only") else ""),
                     str(r["seed"]), _num(r.get("feasible")) if not r.get("error") else "-",
                     _num(r.get("objective")), _num(r.get("qubo_energy")), _num(r.get("gap"), "pct"),
                     _num(r.get("time_solve_s"), "s"), "yes" if r.get("reached_best_known") else "no",
                     r.get("error") or ""))
    tables.append(Table("runs", "All runs", ("instance", "backend", "seed", "feasible", "objective", "QUBO energy",
                                              "gap", "solver time", "at target", "error"), tuple(rows)))
    return tables


def _best_row(doc: dict, name: str, backend: str | None = None) -> dict | None:
    """The lowest-objective feasible run (first in row order on ties) with a plan."""
    rows = [r for r in _ok_rows(doc["rows"]) if r["instance"] == name and r.get("feasible") and r.get("kpis")
            and (backend is None or r["backend"] == backend)]
    return min(rows, key=lambda r: r["objective"]) if rows else None


def _corridor_load(row: dict) -> dict[str, int]:
    load: dict[str, int] = {}
    for ship in row.get("plan") or []:
        for leg in ship.get("legs", []):
            load[leg["corridor"]] = load.get(leg["corridor"], 0) + 1
    return load


def rolling_horizon_tables(doc: dict) -> list[Table]:
    """The rolling-horizon comparison (``qfreight compare --events``): per problem, the operator's
    KPIs at the end of the horizon under the static plan, re-planning at each event and the best
    baseline dispatcher reacting to each event, with the differences whatever their sign."""
    from optimizer.freight.evaluate import KPI_LABELS

    sims = doc.get("rolling_horizon") or {}
    if not sims:
        return []
    rows = []
    verdicts = []
    for name, sim in sims.items():
        policies = list(sim["policies"])
        for row in sim["comparison"]:
            label, unit = KPI_LABELS.get(row["kpi"], (row["kpi"], ""))
            scale = 100.0 if unit == "%" else 1.0

            def cell(value, scale=scale):
                return "-" if value is None else f"{scale * value:,.1f}"

            rows.append((name, f"{label} ({unit})" if unit else label,
                         *(cell(row.get(p)) for p in ("static", "replan", "baseline")),
                         cell(row.get("replan_minus_static")), cell(row.get("replan_minus_baseline"))))
        infeasible = [p for p in policies if not sim["policies"][p]["feasible"]]
        rows.append((name, "violations", *(str(len(sim["policies"][p]["violations"])) if p in sim["policies"] else "-"
                                           for p in ("static", "replan", "baseline")), "", ""))
        cost = {p: sim["policies"][p]["kpis"].get("cost_cny") for p in policies}
        if "replan" in cost and "baseline" in cost and None not in (cost["replan"], cost["baseline"]):
            diff = cost["replan"] - cost["baseline"]
            if abs(diff) <= 0.005 + 1e-9 * abs(cost["baseline"]):
                verdict = f"{name}: re-planning and the baseline dispatcher end the horizon at the same cost"
            else:
                verdict = (f"{name}: {'re-planning' if diff < 0 else 'the baseline dispatcher'} ends the horizon "
                           f"at the lower cost (by {abs(diff):,.0f} CNY)")
            verdicts.append(verdict + (f"; infeasible at the end: {', '.join(infeasible)}" if infeasible else ""))
    return [Table("rolling", "Rolling horizon under disruption (static plan, re-planning, baseline dispatcher)",
                  ("instance", "KPI", "static", "re-plan", "baseline", "re-plan - static", "re-plan - baseline"),
                  tuple(rows),
                  f"{len(next(iter(sims.values()))['events'])} events; each policy is re-checked against the "
                  "disrupted network at the end. The baseline is the best dispatcher rule re-run at each event. "
                  + " ".join(f"{v}." for v in verdicts))]
