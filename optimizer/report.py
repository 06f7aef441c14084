"""Writing results: atomic files, the fixed-width KPI table the CLI prints, and the comparison
reports of ``qfreight compare`` / ``qfreight report`` (results.json, results.csv, report.md,
report.html with its plots).

Every table of report.md and report.html is built once (:func:`comparison_tables`) from the
results document alone, so ``qfreight report RUN_DIR`` rebuilds them identically. Every name
that comes from an input file is escaped: HTML-escaped in report.html (which also forbids
scripts by its Content-Security-Policy), Markdown- and HTML-escaped in report.md.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimizer.evaluate import KPI_LABELS, Kpis

__all__ = ["write_atomic", "write_bytes_atomic", "write_json_atomic", "kpi_table", "to_jsonable", "annotate",
           "write_results", "write_comparison_reports", "load_results", "csv_columns", "csv_cells",
           "comparison_tables", "backend_stats", "tts99", "performance_profile"]


def to_jsonable(value):
    """numpy scalars/arrays and tuples to plain JSON types; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half of one."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """:func:`write_atomic` for bytes (PNG files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: object) -> Path:
    return write_atomic(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def _fmt(key: str, value: float) -> str:
    if key in ("on_time_share", "priority_weighted_on_time"):
        return f"{100 * value:.1f}"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e6:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def kpi_table(plan: Kpis | None, baseline: Kpis, *, plan_name: str = "plan") -> str:
    """Plan vs greedy dispatcher, one KPI a line, with the change in percent (lower-is-better
    KPIs improve when negative; on-time shares improve when positive)."""
    header = f"{'KPI':<28}{'unit':>6}{'greedy':>16}{plan_name:>16}{'change':>10}"
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


# ============================================================================ comparison reports
#
# The results document (results.json) of ``qfreight compare``:
#   {"format", "run_id", "created", "command", "config", "backends", "seeds", "time_limit_s",
#    "executor", "status", "planned_runs", "instances": {name: {...}}, "rows": [row, ...]}
# Each row is one run (see optimizer.compare.run_one); :func:`annotate` adds the derived fields.

#: Relative tolerance for "reached the best known objective": |obj - best| <= TOL * max(1, |best|).
TARGET_TOLERANCE = 1e-6
CLASSICAL_BACKENDS = ("cpsat", "anneal", "exact")
QUANTUM_BACKENDS = ("qaoa", "photonic")
STOCHASTIC_BACKENDS = ("anneal", "qaoa", "photonic")
#: The KPIs an operator reads first, in the KPI table and the KPI bars.
OPERATOR_KPIS = ("dwell_hours_transfer", "diesel_litres", "on_time_share")
PROFILE_TAUS = (1.0, 2.0, 4.0, 10.0, 100.0)

_SCALAR_COLUMNS = (
    "instance", "instance_kind", "source", "backend", "seed", "reference_only", "error", "versions",
    "qubo_variables", "model_variables", "shipments",
    "objective", "objective_unit", "qubo_energy", "feasible", "optimal", "bound",
    "gap", "gap_reference", "reference_objective", "best_known", "reached_best_known",
    "hybrid", "time_limit_s", "time_solve_s", "time_classical_s", "time_quantum_sim_s", "time_postprocess_s",
    "time_prepare_s", "time_evaluate_s", "wall_s",
    "reads", "evaluations", "shots",
    "qaoa_approximation_ratio", "qaoa_optimum_probability", "qaoa_best_probability",
    "photonic_mean_photons_per_sample", "photonic_mean_clicks_per_sample",
    "photonic_gbs_best_energy", "photonic_random_best_energy", "probability_of_best",
    "greedy_objective", "interrupted",
)


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


# ------------------------------------------------------------------------------ results files
def csv_columns(doc: dict) -> list[str]:
    kpi_keys = list(KPI_LABELS)
    return [*_SCALAR_COLUMNS, *(f"kpi.{k}" for k in kpi_keys), *(f"greedy.{k}" for k in kpi_keys),
            *(f"change_percent.{k}" for k in kpi_keys)]


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if np.isfinite(value) else ""
    if isinstance(value, dict):
        return ";".join(f"{k}={'' if v is None else v}" for k, v in value.items())
    return str(value)


def csv_cells(row: dict) -> dict[str, str]:
    """One results.csv row: the row's scalars, versions as ``pkg=ver;...``, KPIs flattened."""
    out = {key: _csv_value(row.get(key)) for key in _SCALAR_COLUMNS}
    for prefix, field in (("kpi", "kpis"), ("greedy", "greedy_kpis"), ("change_percent", "kpi_change_percent")):
        values = row.get(field) or {}
        for key in KPI_LABELS:
            out[f"{prefix}.{key}"] = _csv_value(values.get(key))
    return out


def _csv_text(doc: dict) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=csv_columns(doc), lineterminator="\n")
    writer.writeheader()
    for row in doc["rows"]:
        writer.writerow(csv_cells(row))
    return buf.getvalue()


def write_results(doc: dict, out_dir: str | Path) -> None:
    """results.json then results.csv, each atomically (a reader never sees half a file)."""
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / "results.json", doc)
    write_atomic(out_dir / "results.csv", _csv_text(doc))


def load_results(run_dir: str | Path) -> dict:
    """The results document of a comparison folder (or a results.json path)."""
    import json

    from optimizer.errors import InputError, Issue

    path = Path(run_dir)
    if path.is_dir():
        path = path / "results.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(str(path), Issue("(file)", f"cannot read: {exc.strerror or exc}")) from None
    except ValueError as exc:
        raise InputError(str(path), Issue("(syntax)", f"malformed JSON: {exc}")) from None
    if not isinstance(doc, dict) or doc.get("format") != "qfreight-comparison/1" \
            or not isinstance(doc.get("rows"), list) or not isinstance(doc.get("instances"), dict):
        raise InputError(str(path), Issue("format", "not the results.json of `qfreight compare`",
                                          doc.get("format") if isinstance(doc, dict) else None))
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
        greedy = next((r.get("greedy_kpis") for r in doc["rows"]
                       if r["instance"] == name and r.get("greedy_kpis")), None)
        if not greedy:
            continue
        rows.append((name, "greedy dispatcher (before)", _num(greedy["dwell_hours_transfer"]), "",
                     _num(greedy["diesel_litres"]), "", f"{100 * greedy['on_time_share']:.1f}%", ""))
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
        tables.append(Table("kpis", "Operator KPIs: greedy dispatcher (before) and each backend's plan (after)",
                            ("instance", "plan", "dwell at transfer yards (h)", "change", "diesel (L)", "change",
                             "on-time share", "change"), tuple(rows),
                            "Each backend's plan is its best run (lowest cost over seeds). Changes are percentage "
                            "changes against the greedy dispatcher (lower dwell and diesel are better; a higher "
                            "on-time share is better); '-' where the greedy value is 0. KPIs come from the "
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


# --------------------------------------------------------------------------------------- plots
@dataclass(frozen=True)
class Figure:
    key: str  # file stem, e.g. "fig-1-gantt" (no input names in file names)
    title: str
    png: bytes
    width: int
    height: int


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> tuple[bytes, int, int]:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    w, h = fig.canvas.get_width_height()
    return buf.getvalue(), int(w), int(h)


def _t(text: object) -> str:
    """Input-derived text for a plot: a '$' must not start mathtext (escaped, shown literally)."""
    return str(text).replace("$", r"\$")


def _colours(backends: list[str]) -> dict[str, str]:
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"]
    return {b: palette[i % len(palette)] for i, b in enumerate(backends)}


def _hours(iso: str, start) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(iso) - start).total_seconds() / 3600.0


def _plot_objective_time(doc: dict, name: str, colours: dict) -> object:
    fig = _new_figure(8, 4.2)
    ax = fig.add_subplot()
    unit = "QUBO energy" if doc["instances"][name].get("kind") == "qubo" else "objective (CNY)"
    for b in _backend_order(doc):
        runs = [r for r in _ok_rows(doc["rows"]) if r["instance"] == name and r["backend"] == b]
        if not runs:
            continue
        feas = [r for r in runs if r.get("feasible")]
        infeas = [r for r in runs if not r.get("feasible")]
        ax.scatter([max(r["time_solve_s"], 1e-4) for r in feas], [r["objective"] for r in feas],
                   color=colours[b], label=b, zorder=3)
        if infeas:
            ax.scatter([max(r["time_solve_s"], 1e-4) for r in infeas], [r["objective"] for r in infeas],
                       color=colours[b], marker="x", label=f"{b} (infeasible)", zorder=3)
        for r in runs:
            if r.get("trace"):
                t, e = zip(*r["trace"])
                ax.step([max(v, 1e-4) for v in t], e, where="post", color=colours[b], alpha=0.5, lw=1)
    ref = doc["instances"][name].get("reference") or {}
    if ref.get("best_known") is not None:
        ax.axhline(ref["best_known"], color="0.4", ls="--", lw=1, label="best known")
    ax.set_xscale("log")
    ax.set_xlabel("solver time (s, log scale)")
    ax.set_ylabel(unit)
    ax.set_title(f"{_t(name)}: objective vs time (lines: hybrid rounds, QUBO energy)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def _plot_kpi_bars(doc: dict, name: str, colours: dict):
    best = {b: _best_row(doc, name, b) for b in _backend_order(doc)}
    best = {b: r for b, r in best.items() if r is not None}
    if not best:
        return None
    fig = _new_figure(8, 3.8)
    ax = fig.add_subplot()
    width = 0.8 / len(best)
    for i, (b, r) in enumerate(best.items()):
        d = r.get("kpi_change_percent") or {}
        values = [d.get(k) or 0.0 for k in OPERATOR_KPIS]
        bars = ax.bar([j + i * width for j in range(len(OPERATOR_KPIS))], values, width=width, color=colours[b],
                      label=b)
        ax.bar_label(bars, labels=[f"{v:+.1f}%" for v in values], fontsize=7, padding=2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks([j + width * (len(best) - 1) / 2 for j in range(len(OPERATOR_KPIS))],
                  [KPI_LABELS[k][0] for k in OPERATOR_KPIS])
    ax.set_ylabel("change vs greedy dispatcher (%)")
    ax.set_title(f"{_t(name)}: KPI change of each backend's best plan")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def _plot_gantt(doc: dict, name: str):
    from datetime import datetime

    best = _best_row(doc, name)
    meta = doc["instances"][name]
    if best is None or not meta.get("horizon"):
        return None
    start = datetime.fromisoformat(meta["horizon"]["start"])
    plan = best["plan"]
    corridors = sorted({leg["corridor"] for s in plan for leg in s.get("legs", [])})
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan"]
    colour = {c: palette[i % len(palette)] for i, c in enumerate(corridors)}
    fig = _new_figure(9, max(2.5, 0.45 * len(plan) + 1.6))
    ax = fig.add_subplot()
    horizon_end = meta["horizon"]["slots"] * meta["horizon"]["slot_minutes"] / 60.0
    end = horizon_end
    for y, s in enumerate(plan):
        if s.get("status") != "moved":
            ax.text(0, y, "deferred", va="center", fontsize=8, color="0.3")
            continue
        for leg in s["legs"]:
            a, b = _hours(leg["enter"], start), _hours(leg["exit"], start)
            ax.barh(y, b - a, left=a, height=0.6, color=colour[leg["corridor"]])
            end = max(end, b)
        for stop in s.get("stops", []):
            a, b = _hours(stop["arrive"], start), _hours(stop["depart"], start)
            ax.barh(y, b - a, left=a, height=0.6, color="0.85", hatch="//", edgecolor="0.5")
            ax.text((a + b) / 2, y, _t(stop["hub"]), ha="center", va="center", fontsize=7)
        due = _hours(s["due"], start)
        ax.plot([due], [y], marker="v", color="black", ms=6)
        end = max(end, due)
    from matplotlib.patches import Patch

    handles = [Patch(color=colour[c], label=_t(c)) for c in corridors]
    handles.append(Patch(facecolor="0.85", hatch="//", edgecolor="0.5", label="in yard"))
    ax.axvline(horizon_end, color="0.4", ls="--", lw=1)
    ax.set_yticks(range(len(plan)), [_t(s["shipment"]) for s in plan])
    ax.invert_yaxis()
    ax.set_xlim(0, end * 1.05)
    ax.set_xlabel(f"hours since {_t(meta['horizon']['start'])} (dashed: end of departure horizon; v: due)")
    ax.set_title(f"{_t(name)}: best plan ({best['backend']}, seed {best['seed']})")
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    return fig


def _plot_map(doc: dict, name: str):
    meta = doc["instances"][name]
    hubs = {h["id"]: h for h in meta.get("hubs", [])}
    if not hubs:
        return None
    best = _best_row(doc, name)
    load = _corridor_load(best) if best else {}
    fig = _new_figure(7, 5)
    ax = fig.add_subplot()
    top = max(load.values(), default=1)
    for c in meta.get("corridors", []):
        a, b = hubs[c["from"]], hubs[c["to"]]
        n = load.get(c["id"], 0)
        ax.plot([a["lon"], b["lon"]], [a["lat"], b["lat"]], color="tab:red" if n else "0.75",
                lw=1 + 5 * n / top if n else 1, zorder=1, solid_capstyle="round")
    markers = {"inland": "o", "transfer": "s", "port": "^"}
    for kind, marker in markers.items():
        pts = [h for h in hubs.values() if h["kind"] == kind]
        if pts:
            ax.scatter([h["lon"] for h in pts], [h["lat"] for h in pts], marker=marker, s=50, color="tab:blue",
                       zorder=2, label=kind)
    for h in hubs.values():
        ax.annotate(_t(h["id"]), (h["lon"], h["lat"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    mean_lat = float(np.mean([h["lat"] for h in hubs.values()]))
    ax.set_aspect(1 / max(0.2, math.cos(math.radians(mean_lat))))
    ax.margins(0.15)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    who = f"{best['backend']}, seed {best['seed']}" if best else "no feasible plan"
    ax.set_title(f"{_t(name)}: corridors loaded by the best plan\n({who}; line width ~ shipments)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def _plot_profile(doc: dict, profile: dict, colours: dict):
    fig = _new_figure(7, 3.8)
    ax = fig.add_subplot()
    finite = [r for rs in profile.values() for r in rs if math.isfinite(r)]
    tau_max = max(2.0, 2 * max(finite, default=1.0))
    for b, ratios in profile.items():
        taus = [1.0] + [r for r in ratios if math.isfinite(r)] + [tau_max]
        ax.step(taus, [_rho(ratios, t) for t in taus], where="post", color=colours[b], label=b)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("tau (TTS99 ratio to the best backend)")
    ax.set_ylabel("share of instances")
    ax.set_title("Performance profile (Dolan & More) on TTS99")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def comparison_figures(doc: dict) -> list[Figure]:
    import matplotlib

    backends = _backend_order(doc)
    colours = _colours(backends)
    out: list[Figure] = []
    with matplotlib.rc_context({"svg.hashsalt": "qfreight"}):
        def add(key, title, fig):
            if fig is not None:
                png, w, h = _png(fig)
                out.append(Figure(key, title, png, w, h))

        for k, name in enumerate(doc["instances"], start=1):
            add(f"fig-{k}-objective-time", f"{name}: objective vs time", _plot_objective_time(doc, name, colours))
        add("fig-profile", "Performance profile", _plot_profile(doc, performance_profile(doc), colours))
        for k, name in enumerate(doc["instances"], start=1):
            add(f"fig-{k}-kpis", f"{name}: KPI changes", _plot_kpi_bars(doc, name, colours))
            add(f"fig-{k}-gantt", f"{name}: Gantt chart of the best plan", _plot_gantt(doc, name))
            add(f"fig-{k}-map", f"{name}: network and loaded corridors", _plot_map(doc, name))
    return out


# ----------------------------------------------------------------------------------- rendering
def _md(text: str) -> str:
    """Markdown cell text: HTML-escaped (Markdown renders raw HTML) and Markdown specials escaped."""
    import html

    text = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _header_facts(doc: dict) -> list[tuple[str, str]]:
    rows = doc["rows"]
    versions: dict[str, str] = {}
    for r in rows:
        for k, v in (r.get("versions") or {}).items():
            if v is not None:
                versions.setdefault(k, v)
    return [
        ("run", doc.get("run_id", "")),
        ("created", doc.get("created", "")),
        ("status", f"{doc.get('status')} ({len(rows)} of {doc.get('planned_runs', len(rows))} runs finished)"),
        ("command", " ".join(doc.get("command") or [])),
        ("config", doc.get("config") or "(defaults)"),
        ("instances", ", ".join(doc["instances"])),
        ("backends", ", ".join(doc.get("backends", []))),
        ("seeds", ", ".join(str(s) for s in doc.get("seeds", []))),
        ("time limit per run", f"{doc.get('time_limit_s')} s"),
        ("executor", f"{(doc.get('executor') or {}).get('kind')} ({(doc.get('executor') or {}).get('workers')} "
                     f"workers)"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]


_SECTION_FIGURES = {  # which figures follow which table
    "instances": ("objective-time",),
    "profile": ("profile",),
    "kpis": ("kpis", "gantt"),
    "network": ("map",),
}


def _figures_for(section: str, figures: list[Figure]) -> list[Figure]:
    kinds = _SECTION_FIGURES.get(section, ())
    return [f for f in figures if any(f.key.endswith("-" + kind) or f.key == f"fig-{kind}" for kind in kinds)]


def render_markdown(doc: dict, tables: list[Table], summary: list[str], figures: list[Figure]) -> str:
    out = ["# qfreight solver comparison", ""]
    out += [f"- **{_md(k)}**: {_md(v)}" for k, v in _header_facts(doc)]
    out += ["", "## Summary", ""] + [f"- {_md(line)}" for line in summary] + [""]
    placed: set[str] = set()
    for t in tables:
        out += [f"## {_md(t.title)}", ""]
        out.append("| " + " | ".join(_md(c) for c in t.columns) + " |")
        out.append("|" + "|".join("---" for _ in t.columns) + "|")
        out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in t.rows]
        if t.note:
            out += ["", _md(t.note)]
        out.append("")
        for f in _figures_for(t.key, figures):
            out += [f"![{_md(f.title)}]({f.key}.png)", ""]
            placed.add(f.key)
    rest = [f for f in figures if f.key not in placed]
    if rest:
        out += ["## Plots", ""] + [f"![{_md(f.title)}]({f.key}.png)\n" for f in rest]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111;background:#fff;max-width:1150px}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eee}td{font-variant-numeric:tabular-nums}
.note{color:#444;font-size:13px;max-width:1000px}
figure{margin:12px 0}figcaption{font-size:13px;color:#444}
img{max-width:100%;height:auto;border:1px solid #ddd}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}dt{font-weight:600}dd{margin:0}
""".strip()


def render_html(doc: dict, tables: list[Table], summary: list[str], figures: list[Figure]) -> str:
    """A self-contained page: plots embedded as base64 PNG, no script, no network."""
    import base64
    import html

    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>qfreight solver comparison {e(doc.get('run_id', ''))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>qfreight solver comparison</h1>",
        '<section id="run"><dl>',
        *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _header_facts(doc)),
        "</dl></section>",
        '<section id="summary"><h2>Summary</h2><ul>',
        *(f"<li>{e(line)}</li>" for line in summary),
        "</ul></section>",
    ]

    def figure(f: Figure) -> str:
        data = base64.b64encode(f.png).decode("ascii")
        return (f'<figure id="{e(f.key)}"><img src="data:image/png;base64,{data}" width="{f.width}" '
                f'height="{f.height}" alt="{e(f.title)}"><figcaption>{e(f.title)}</figcaption></figure>')

    placed: set[str] = set()
    for t in tables:
        parts.append(f'<section id="{e(t.key)}"><h2>{e(t.title)}</h2>')
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in t.columns) + "</tr></thead>")
        parts.append("<tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows]
        parts.append("</tbody></table>")
        if t.note:
            parts.append(f'<p class="note">{e(t.note)}</p>')
        for f in _figures_for(t.key, figures):
            parts.append(figure(f))
            placed.add(f.key)
        parts.append("</section>")
    rest = [f for f in figures if f.key not in placed]
    if rest:
        parts += ['<section id="plots"><h2>Plots</h2>', *(figure(f) for f in rest), "</section>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_comparison_reports(doc: dict, out_dir: str | Path) -> list[Path]:
    """report.md (with the PNGs beside it), report.html (PNGs embedded) and results.csv.

    Built from the JSON form of ``doc`` so that a rebuild from results.json gives the same tables.
    """
    import json

    out_dir = Path(out_dir)
    doc = annotate(json.loads(json.dumps(to_jsonable(doc), allow_nan=False)))
    tables = comparison_tables(doc)
    summary = summary_lines(doc, backend_stats(doc))
    figures = comparison_figures(doc)
    written = [write_atomic(out_dir / "results.csv", _csv_text(doc))]
    for f in figures:
        written.append(write_bytes_atomic(out_dir / f"{f.key}.png", f.png))
    written.append(write_atomic(out_dir / "report.md", render_markdown(doc, tables, summary, figures)))
    written.append(write_atomic(out_dir / "report.html", render_html(doc, tables, summary, figures)))
    return written
