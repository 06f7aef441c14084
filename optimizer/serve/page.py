"""The dashboard's one page: HTML with its inline style and script (allowed by hash in the CSP).

The script builds every element with ``createElement`` / ``createElementNS`` and sets names from
files only through ``textContent`` and ``setAttribute`` of fixed, non-event attributes, so a
hub called ``<img onerror=...>`` is shown as those characters and never parsed as markup.
"""

from __future__ import annotations

__all__ = ["PAGE"]

_STYLE = """
:root { --ink: #1d2433; --muted: #5b6578; --line: #d5dae3; --bg: #f6f7f9; --ok: #1b7f3b; --bad: #b3261e;
        --warn: #b86e00; --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: baseline; padding: 10px 16px;
         background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
#subtitle { color: var(--muted); }
#status { margin-left: auto; color: var(--muted); }
main { padding: 12px 16px; }
.row { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 12px; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
.panel h2 { font-size: 15px; margin: 0 0 8px; }
#tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin-bottom: 12px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.tile .label { color: var(--muted); font-size: 12px; }
.tile .value { font-size: 20px; font-weight: 600; }
.tile .vs { font-size: 12px; color: var(--muted); }
.better { color: var(--ok); } .worse { color: var(--bad); }
svg { width: 100%; height: auto; display: block; }
#map .corridor { stroke-linecap: round; }
#map .load-low { stroke: #7fb38f; } #map .load-mid { stroke: #e0a030; } #map .load-high { stroke: #c2412d; }
#map .closed { stroke: var(--bad); stroke-dasharray: 6 4; stroke-width: 3; fill: none; }
#map .slow { stroke: var(--warn); stroke-dasharray: 2 4; stroke-width: 3; fill: none; }
#map .hub { fill: #fff; stroke: var(--ink); stroke-width: 1.5; }
#map .hub.transfer { fill: #dfe8f7; } #map .hub.port { fill: #d8efe0; }
#map text, #gantt text { font-size: 11px; fill: var(--ink); }
#gantt .leg { fill: var(--accent); } #gantt .leg.late { fill: var(--bad); }
#gantt .leg.frozen { fill: #7d8798; }
#gantt .stop { fill: #c8d3e6; } #gantt .wait { fill: #eef1f6; }
#gantt .batch { fill: #9db4d9; } #gantt .batch.light { fill: #e3c48a; }
#gantt .due { stroke: var(--ink); stroke-width: 1.5; } #gantt .cutoff { stroke: var(--warn); stroke-width: 1.5; }
#gantt .at-line { stroke: var(--bad); stroke-dasharray: 4 3; }
#gantt .grid { stroke: #eceff4; } #gantt .late-label { fill: var(--bad); font-weight: 600; }
#gantt .section { font-weight: 600; fill: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
label { display: block; margin: 4px 0; }
label > select, label > input { margin-left: 6px; }
button { font: inherit; padding: 4px 10px; border: 1px solid var(--accent); background: var(--accent); color: #fff;
         border-radius: 4px; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button:disabled { opacity: .5; cursor: default; }
#pending li { margin: 2px 0; }
#progress { color: var(--muted); min-height: 1.4em; white-space: pre-wrap; }
.error { color: var(--bad); }
footer { padding: 8px 16px 16px; color: var(--muted); }
@media (max-width: 900px) { .row { grid-template-columns: 1fr; } }
"""

_SCRIPT = r"""
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const state = { versions: [], view: null, pending: [] };

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function sv(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function titled(node, text) { node.appendChild(sv("title", {}, text)); return node; }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
function ms(iso) { return new Date(iso).getTime(); }
function fmt(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  return Number(x).toLocaleString("en-GB", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
function short(iso) { return iso ? iso.replace("T", " ").slice(5, 16) : "-"; }
async function getJSON(url) {
  const r = await fetch(url, { headers: { "Accept": "application/json" } });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

const TILES = [
  ["on_time_share", "On-time share", "%", 1, true],
  ["dwell_hours_transfer", "Dwell at transfer yards", "h", 1, false],
  ["diesel_litres", "Diesel", "L", 0, false],
  ["deferred_tonnes", "Deferred freight", "t", 0, false],
  ["priority_weighted_lateness_hours", "Priority-weighted lateness", "h", 1, false],
  ["cost_cny", "Cost", "CNY", 0, false],
];

function renderTiles(view) {
  const box = document.getElementById("tiles");
  clear(box);
  for (const [key, label, unit, digits, higher] of TILES) {
    const k = view.kpis ? view.kpis[key] : null;
    const b = view.baseline_kpis ? view.baseline_kpis[key] : null;
    const scale = unit === "%" ? 100 : 1;
    const tile = el("div", { "class": "tile", "data-kpi": key });
    tile.appendChild(el("div", { "class": "label" }, label + (unit ? " (" + unit + ")" : "")));
    tile.appendChild(el("div", { "class": "value" }, k === null ? "-" : fmt(k * scale, digits)));
    if (b !== null && b !== undefined && k !== null) {
      const diff = (k - b) * scale;
      const good = higher ? diff > 1e-9 : diff < -1e-9;
      const bad = higher ? diff < -1e-9 : diff > 1e-9;
      const vs = el("div", { "class": "vs" });
      vs.appendChild(document.createTextNode("vs " + (view.baseline || "baseline") + " " + fmt(b * scale, digits) + ": "));
      vs.appendChild(el("span", { "class": good ? "better" : bad ? "worse" : "" }, (diff > 0 ? "+" : "") + fmt(diff, digits)));
      tile.appendChild(vs);
    }
    box.appendChild(tile);
  }
}

function renderMap(view) {
  const svg = document.getElementById("map");
  clear(svg);
  const W = 640, H = 420, pad = 40;
  const lats = view.hubs.map(h => h.lat), lons = view.hubs.map(h => h.lon);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  const kx = Math.cos(midLat * Math.PI / 180);
  const xs = lons.map(l => l * kx), spanX = Math.max(...xs) - Math.min(...xs) || 1;
  const spanY = Math.max(...lats) - Math.min(...lats) || 1;
  const s = Math.min((W - 2 * pad) / spanX, (H - 2 * pad) / spanY);
  const x0 = Math.min(...xs), y1 = Math.max(...lats);
  const pos = {};
  view.hubs.forEach((h, i) => {
    pos[h.id] = [pad + (xs[i] - x0) * s + (W - 2 * pad - spanX * s) / 2, pad + (y1 - h.lat) * s + (H - 2 * pad - spanY * s) / 2];
  });
  const gc = sv("g", { "class": "corridors" });
  for (const c of view.corridors) {
    const [a, b] = [pos[c.from], pos[c.to]];
    const cls = c.load < 0.34 ? "load-low" : c.load < 0.67 ? "load-mid" : "load-high";
    const line = sv("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], "class": "corridor " + cls,
                              "stroke-width": 2 + 10 * Math.min(1, c.load), "data-corridor": c.id });
    titled(line, c.id + ": " + c.trains + " trains, busiest direction " + fmt(100 * c.load, 0) + "% of its paths");
    gc.appendChild(line);
  }
  svg.appendChild(gc);
  const gd = sv("g", { "class": "disruptions" });
  const legend = document.getElementById("map-legend");
  clear(legend);
  for (const d of view.disruptions) {
    const c = view.corridors.find(x => x.id === d.corridor);
    if (!c) continue;
    const [a, b] = [pos[c.from], pos[c.to]];
    const line = sv("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], "class": d.closed ? "closed" : "slow",
                              "data-disruption": d.corridor });
    const what = d.corridor + (d.closed ? " closed " : " slowed to " + d.speed_factor + " ") + short(d.start) + " to " + short(d.end);
    titled(line, what);
    gd.appendChild(line);
    legend.appendChild(el("div", { "class": d.closed ? "error" : "" }, (d.from_event ? "event: " : "weather: ") + what));
  }
  svg.appendChild(gd);
  const gh = sv("g", { "class": "hubs" });
  for (const h of view.hubs) {
    const [x, y] = pos[h.id];
    const circle = sv("circle", { cx: x, cy: y, r: 7, "class": "hub " + h.kind, "data-hub": h.id });
    titled(circle, h.name + " (" + h.id + ", " + h.kind + ", " + h.locomotives + " locomotives)");
    gh.appendChild(circle);
    gh.appendChild(sv("text", { x: x + 9, y: y - 8, "class": "hub-label" }, h.name));
  }
  svg.appendChild(gh);
  for (const o of view.outages || []) legend.appendChild(el("div", { "class": "error" }, "outage: " + o.count + " locomotive(s) at " + o.hub));
}

function renderGantt(view) {
  const svg = document.getElementById("gantt");
  clear(svg);
  const left = 170, right = 20, W = 1000, row = 18;
  const t0 = ms(view.problem.start), t1 = Math.max(ms(view.problem.end), t0 + 3600e3);
  const x = t => left + (W - left - right) * (ms(t) - t0) / (t1 - t0);
  const lanes = [...new Set(view.trains.map(b => b.from + ">" + b.to))].sort();
  const H = 40 + row * (lanes.length + view.shipments.length + 3);
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  const hours = (t1 - t0) / 3600e3, step = hours > 96 ? 24 : hours > 36 ? 12 : 6;
  for (let h = 0; h <= hours; h += step) {
    const t = new Date(t0 + h * 3600e3);
    const xx = left + (W - left - right) * h / hours;
    svg.appendChild(sv("line", { x1: xx, y1: 14, x2: xx, y2: H, "class": "grid" }));
    svg.appendChild(sv("text", { x: xx + 2, y: 11 }, short(isoLocal(t))));
  }
  let y = 30;
  svg.appendChild(sv("text", { x: 4, y: y, "class": "section" }, "Trains (corridor, direction)"));
  y += 6;
  lanes.forEach((lane, i) => {
    const yy = y + i * row;
    svg.appendChild(sv("text", { x: 4, y: yy + 12 }, lane));
    for (const b of view.trains.filter(b => b.from + ">" + b.to === lane)) {
      const r = sv("rect", { x: x(b.enter), y: yy + 3, width: Math.max(2, x(b.exit) - x(b.enter)), height: row - 6,
                             "class": "batch" + (b.wagons === 0 ? " light" : ""), "data-batch": lane });
      titled(r, lane + ": " + b.trains + " train(s), " + b.wagons + " wagons" + (b.light ? ", " + b.light + " light" : "") + ", " + short(b.enter) + " to " + short(b.exit));
      svg.appendChild(r);
    }
  });
  y += lanes.length * row + 16;
  svg.appendChild(sv("text", { x: 4, y: y, "class": "section" }, "Shipments (red: late)"));
  y += 6;
  view.shipments.forEach((s, i) => {
    const yy = y + i * row;
    const g = sv("g", { "class": "shipment", "data-shipment": s.id });
    g.appendChild(sv("text", { x: 4, y: yy + 12, "class": s.late_hours > 0 ? "late-label" : "" }, s.id + " " + s.commodity));
    if (s.status === "deferred") {
      g.appendChild(sv("text", { x: left + 4, y: yy + 12, "class": "late-label" }, "deferred"));
    } else {
      g.appendChild(sv("rect", { x: x(s.origin_wait_from), y: yy + 6, width: Math.max(0, x(s.depart) - x(s.origin_wait_from)), height: row - 12, "class": "wait" }));
      for (const st of s.stops) {
        g.appendChild(titled(sv("rect", { x: x(st.arrive), y: yy + 5, width: Math.max(1, x(st.depart) - x(st.arrive)), height: row - 10, "class": "stop" }), "at " + st.hub + " " + short(st.arrive) + " to " + short(st.depart)));
      }
      s.legs.forEach((leg, j) => {
        const cls = "leg" + (j < s.frozen_legs ? " frozen" : s.late_hours > 0 ? " late" : "");
        g.appendChild(titled(sv("rect", { x: x(leg.enter), y: yy + 3, width: Math.max(2, x(leg.exit) - x(leg.enter)), height: row - 6, "class": cls }),
          s.id + " " + leg.from + ">" + leg.to + " " + short(leg.enter) + " to " + short(leg.exit) + (j < s.frozen_legs ? " (frozen)" : "")));
      });
    }
    g.appendChild(titled(sv("line", { x1: x(s.due), y1: yy + 1, x2: x(s.due), y2: yy + row - 1, "class": "due" }), "due " + short(s.due)));
    if (s.cutoff) g.appendChild(titled(sv("line", { x1: x(s.cutoff), y1: yy + 1, x2: x(s.cutoff), y2: yy + row - 1, "class": "cutoff" }), "vessel cut-off " + short(s.cutoff)));
    svg.appendChild(g);
  });
  if (view.at) svg.appendChild(titled(sv("line", { x1: x(view.at), y1: 14, x2: x(view.at), y2: H, "class": "at-line" }), "re-planned at " + short(view.at)));
}

function isoLocal(d) {
  const p = n => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
}

function renderRisk(view) {
  const body = document.querySelector("#risk tbody");
  clear(body);
  for (const r of view.at_risk) {
    const tr = el("tr", { "data-shipment": r.id });
    tr.appendChild(el("td", {}, r.id));
    tr.appendChild(el("td", {}, r.priority));
    tr.appendChild(el("td", {}, r.risk.join("; ")));
    body.appendChild(tr);
  }
  if (!view.at_risk.length) body.appendChild(el("tr", {})).appendChild(el("td", { colspan: 3 }, "none"));
}

function describePlan(p) {
  if (!p) return "-";
  if (p.status === "deferred") return "deferred";
  return p.route.join("-") + ", " + short(p.depart) + " to " + short(p.arrive) + (p.late_hours > 0 ? " (late " + fmt(p.late_hours, 1) + " h)" : "");
}

function renderDiff(view) {
  const body = document.querySelector("#diff tbody");
  clear(body);
  const keep = document.getElementById("keep");
  clear(keep);
  const panel = document.getElementById("diff-panel");
  panel.hidden = view.kind !== "replan";
  if (view.kind !== "replan") return;
  for (const d of view.diff) {
    const tr = el("tr", { "data-shipment": d.shipment });
    tr.appendChild(el("td", {}, d.shipment));
    tr.appendChild(el("td", {}, d.changed.join(", ")));
    tr.appendChild(el("td", {}, describePlan(d.old)));
    tr.appendChild(el("td", {}, describePlan(d.new)));
    body.appendChild(tr);
  }
  if (!view.diff.length) body.appendChild(el("tr", {})).appendChild(el("td", { colspan: 4 }, "no shipment changed"));
  const k = view.keep;
  keep.appendChild(document.createTextNode("Keeping the old plan: " + (k.feasible ? "feasible" : "violates " + k.violations.length + " rule(s)") +
    ", on time " + fmt(100 * k.kpis.on_time_share, 1) + "%, cost " + fmt(k.kpis.cost_cny, 0) + " CNY. "));
  for (const v of k.violations.slice(0, 5)) keep.appendChild(el("div", { "class": "error" }, v));
  const ev = document.getElementById("events-applied");
  clear(ev);
  for (const e of view.events) ev.appendChild(el("li", {}, e.summary));
}

function renderStages(view) {
  const body = document.querySelector("#stages tbody");
  clear(body);
  const stages = view.stages || [];
  for (const s of stages) {
    const tr = el("tr", {});
    const pieces = s.pieces || [];
    const contribution = pieces.reduce((a, p) => a + (p.contribution || 0), 0);
    for (const cell of [s.stage + (s.round !== null && s.round !== undefined ? " " + s.round : ""), s.solver || "-",
                        fmt(s.objective, 2), fmt(s.seconds, 2), s.accepted ? "yes" : "no", pieces.length, fmt(contribution, 2)])
      tr.appendChild(el("td", {}, cell));
    body.appendChild(tr);
  }
  const q = document.getElementById("quantum");
  const total = stages.length ? (stages[0].objective || 0) - (stages[stages.length - 1].objective || 0) : 0;
  const dev = view.device_contribution || 0;
  const anyPieces = stages.some(s => (s.pieces || []).length);
  q.textContent = anyPieces
    ? "Device contribution: " + fmt(dev, 2) + " CNY beyond the stand-ins" + (total > 0 ? " (" + fmt(100 * dev / total, 1) + "% of the improvement over the warm start)" : "")
    : "No device pieces in this solve (" + (view.backend || "classical") + "): the quantum share is 0.";
}

function fillForm(view) {
  const cs = document.getElementById("ev-corridor"), ss = document.getElementById("ev-shipment");
  const keepC = cs.value, keepS = ss.value;
  clear(cs); clear(ss);
  for (const c of view.corridors) cs.appendChild(el("option", { value: c.id }, c.id));
  for (const s of view.shipments) ss.appendChild(el("option", { value: s.id }, s.id + " (" + s.origin + " to " + s.destination + ")"));
  if ([...cs.options].some(o => o.value === keepC)) cs.value = keepC;
  if ([...ss.options].some(o => o.value === keepS)) ss.value = keepS;
  const at = document.getElementById("replan-at");
  if (!at.value) at.value = (view.at || view.problem.start).slice(0, 16);
  for (const id of ["ev-start", "ev-end", "ev-release"]) {
    const inp = document.getElementById(id);
    if (!inp.value) inp.value = view.problem.start.slice(0, 16);
  }
  showKind();
}

function showKind() {
  const kind = document.getElementById("ev-kind").value;
  document.getElementById("row-corridor").hidden = kind === "release";
  document.getElementById("row-start").hidden = kind === "release";
  document.getElementById("row-end").hidden = kind === "release";
  document.getElementById("row-factor").hidden = kind !== "slowdown";
  document.getElementById("row-shipment").hidden = kind !== "release";
  document.getElementById("row-release").hidden = kind !== "release";
}

function withTz(local) { return local + (local.length === 16 ? ":00" : "") + (state.view.problem.tz || ""); }

function addEvent() {
  const kind = document.getElementById("ev-kind").value;
  const v = id => document.getElementById(id).value;
  let e;
  if (kind === "release") e = { kind: "release", shipment: v("ev-shipment"), release: withTz(v("ev-release")) };
  else {
    e = { kind: kind, corridor: v("ev-corridor"), start: withTz(v("ev-start")), end: withTz(v("ev-end")) };
    if (kind === "slowdown") e.speed_factor = Number(v("ev-factor"));
  }
  state.pending.push(e);
  renderPending();
}

function renderPending() {
  const ul = document.getElementById("pending");
  clear(ul);
  state.pending.forEach((e, i) => {
    const text = e.kind === "release" ? e.shipment + " released only at " + short(e.release)
      : e.corridor + (e.kind === "closure" ? " closed " : " slowed to " + e.speed_factor + " ") + short(e.start) + " to " + short(e.end);
    const li = el("li", {}, text + " ");
    const rm = el("button", { type: "button", "class": "secondary" }, "remove");
    rm.addEventListener("click", () => { state.pending.splice(i, 1); renderPending(); });
    li.appendChild(rm);
    ul.appendChild(li);
  });
  document.getElementById("replan").disabled = !state.pending.length;
}

async function replan() {
  const progress = document.getElementById("progress"), issues = document.getElementById("job-issues");
  clear(issues);
  const button = document.getElementById("replan");
  button.disabled = true;
  progress.textContent = "starting the re-plan";
  const body = { version: state.view.id, at: withTz(document.getElementById("replan-at").value), events: state.pending };
  const r = await fetch("/api/replan", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await r.json();
  if (r.status !== 202) {
    progress.textContent = answer.error || ("HTTP " + r.status);
    for (const i of answer.issues || []) issues.appendChild(el("li", { "class": "error" }, i.field + ": " + i.message + (i.value ? " (" + i.value + ")" : "")));
    button.disabled = false;
    return;
  }
  for (;;) {
    await new Promise(res => setTimeout(res, 400));
    const job = await getJSON("/api/jobs/" + encodeURIComponent(answer.job));
    progress.textContent = "re-plan " + job.state + " (" + job.seconds + " s): " + (job.messages[job.messages.length - 1] || "");
    if (job.state === "done") {
      state.pending = [];
      renderPending();
      await loadVersions(job.result_version);
      progress.textContent = "re-plan done: version " + job.result_version + " (the previous plans stay listed)";
      return;
    }
    if (job.state === "error") {
      progress.textContent = job.error;
      for (const i of job.issues) issues.appendChild(el("li", { "class": "error" }, i.field + ": " + i.message + (i.value ? " (" + i.value + ")" : "")));
      button.disabled = false;
      return;
    }
  }
}

async function show(id) {
  const view = await getJSON("/api/versions/" + id);
  state.view = view;
  document.getElementById("title").textContent = view.problem.name;
  document.getElementById("subtitle").textContent = view.problem.description;
  document.getElementById("status").textContent = (view.kind === "replan" ? "re-planned at " + short(view.at) + ", " + view.changes + " shipment(s) changed; " : "")
    + (view.feasible ? "feasible" : "INFEASIBLE") + (view.status ? " (" + view.status + ")" : "");
  renderTiles(view); renderMap(view); renderGantt(view); renderRisk(view); renderDiff(view); renderStages(view); fillForm(view);
  document.body.setAttribute("data-version", String(id));
}

async function loadVersions(select) {
  const data = await getJSON("/api/versions");
  state.versions = data.versions;
  const sel = document.getElementById("version");
  clear(sel);
  for (const v of data.versions) sel.appendChild(el("option", { value: v.id }, v.id + ": " + v.label));
  const id = select !== undefined ? select : data.versions[data.versions.length - 1].id;
  sel.value = String(id);
  await show(id);
}

document.getElementById("version").addEventListener("change", e => show(Number(e.target.value)));
document.getElementById("ev-kind").addEventListener("change", showKind);
document.getElementById("add-event").addEventListener("click", addEvent);
document.getElementById("replan").addEventListener("click", () => replan().catch(err => { document.getElementById("progress").textContent = String(err); }));
loadVersions().then(() => document.body.setAttribute("data-ready", "1")).catch(err => {
  document.getElementById("status").textContent = String(err);
});
"""

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qfreight dispatcher</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
  <h1 id="title">qfreight</h1><span id="subtitle"></span>
  <label>Plan version <select id="version"></select></label>
  <span id="status">loading</span>
</header>
<main>
  <section id="tiles" aria-label="KPIs against the best baseline"></section>
  <div class="row">
    <section class="panel"><h2>Network: corridor load and disruptions</h2>
      <svg id="map" viewBox="0 0 640 420" role="img" aria-label="network map"></svg>
      <div id="map-legend"></div>
    </section>
    <section class="panel"><h2>Add a disruption and re-plan</h2>
      <label>Disruption <select id="ev-kind">
        <option value="closure">Close a corridor</option>
        <option value="slowdown">Slow a corridor down</option>
        <option value="release">Delay a release</option>
      </select></label>
      <label id="row-corridor">Corridor <select id="ev-corridor"></select></label>
      <label id="row-shipment">Shipment <select id="ev-shipment"></select></label>
      <label id="row-start">From <input type="datetime-local" id="ev-start"></label>
      <label id="row-end">Until <input type="datetime-local" id="ev-end"></label>
      <label id="row-factor">Speed factor <input type="number" id="ev-factor" min="0.05" max="1" step="0.05" value="0.5"></label>
      <label id="row-release">New release <input type="datetime-local" id="ev-release"></label>
      <button type="button" id="add-event" class="secondary">Add disruption</button>
      <ul id="pending"></ul>
      <label>Re-plan at <input type="datetime-local" id="replan-at"></label>
      <button type="button" id="replan" disabled>Re-plan</button>
      <div id="progress" role="status"></div>
      <ul id="job-issues"></ul>
    </section>
  </div>
  <section class="panel"><h2>Trains and shipments</h2><svg id="gantt" role="img" aria-label="Gantt chart"></svg></section>
  <div class="row">
    <section class="panel"><h2>Shipments at risk (late, missing a cut-off, deferred)</h2>
      <table id="risk"><thead><tr><th>Shipment</th><th>Priority</th><th>Risk</th></tr></thead><tbody></tbody></table>
    </section>
    <section class="panel" id="diff-panel" hidden><h2>What this re-plan changed</h2>
      <ul id="events-applied"></ul>
      <table id="diff"><thead><tr><th>Shipment</th><th>Changed</th><th>Before</th><th>After</th></tr></thead><tbody></tbody></table>
      <p id="keep"></p>
    </section>
  </div>
  <section class="panel"><h2>Stages of the last solve</h2><p id="quantum"></p>
    <table id="stages"><thead><tr><th>Stage</th><th>Solver</th><th>Objective (CNY)</th><th>Seconds</th><th>Accepted</th><th>Device pieces</th><th>Device contribution</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<footer><a href="/api">JSON endpoints</a> &middot; <a href="/api/files">files of this run</a></footer>
<script>{_SCRIPT}</script>
</body>
</html>
"""
