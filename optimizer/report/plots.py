"""The comparison report's plots (matplotlib, no pyplot state): objective vs time, performance
profile, KPI bars, a Gantt chart of the best plan and a network map of loaded corridors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optimizer.freight.evaluate import KPI_LABELS
from optimizer.report.stats import _backend_order, _ok_rows, _rho, performance_profile
from optimizer.report.tables import OPERATOR_KPIS, _best_row, _corridor_load

__all__ = ["Figure", "comparison_figures", "pareto_figure"]


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
    ax.set_ylabel("change vs best baseline (%)")
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


def pareto_figure(doc: dict) -> Figure:
    """The trade-off front of ``qfreight pareto``: cost against on-time share and against
    transfer-yard dwell, one point per weight setting (front points filled), baselines as
    crosses."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "qfreight"}):
        fig = _new_figure(10, 4.2)
        axes = fig.subplots(1, 2)
        points = [p for p in doc["points"] if p.get("kpis")]
        for ax, key, label in ((axes[0], "on_time_share", "on-time share (%)"),
                               (axes[1], "dwell_hours_transfer", "dwell at transfer yards (h)")):
            scale = 100.0 if key == "on_time_share" else 1.0
            for on_front, style in ((True, dict(color="tab:blue", label="front")),
                                    (False, dict(facecolors="none", edgecolors="tab:blue", label="dominated"))):
                sel = [p for p in points if bool(p.get("on_front")) == on_front]
                if sel:
                    ax.scatter([p["kpis"]["cost_cny"] for p in sel], [scale * p["kpis"][key] for p in sel],
                               zorder=3, **style)
            palette = ["tab:red", "tab:orange", "tab:green", "tab:purple"]
            for i, (name, k) in enumerate(doc["baselines"].items()):
                ax.scatter([k["cost_cny"]], [scale * k[key]], marker="X", s=70, color=palette[i % len(palette)],
                           label=f"baseline {_t(name)}", zorder=4)
            ax.set_xlabel("cost (CNY)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{_t(doc['problem'])}: trade-off front ({doc['backend']}, {len(doc['points'])} weight settings)")
        png, w, h = _png(fig)
    return Figure("pareto", "Trade-off front", png, w, h)
