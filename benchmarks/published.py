"""The annealing backend against dwave-samplers called directly, on every published set in the data folder.

For each instance with a published value (its optimum or best known), each solver runs once per
seed with the same wall-clock budget and the published value as its target:

- ``anneal``: qfreight's backend (``AnnealSolver(target=...)``, budget mode: tabu and SA restarts);
- ``sa``: ``dwave.samplers.SimulatedAnnealingSampler`` with its defaults, one read per call, called
  again with the next seed until a read reaches the target or the budget is spent;
- ``tabu``: ``dwave.samplers.TabuSampler`` likewise, with ``energy_threshold`` = the target.

Peers get the BQM ready-made (their native input); qfreight's time includes its own conversion.
Columns: ``hits`` = runs that reached the published value within the budget; ``mean``/``median``
= time to target over the runs that hit; ``TTS99`` = mean run time x ln(0.01)/ln(1 - hit share)
(``optimizer.report.stats.tts99``); ``x best peer`` = anneal's mean time to target / the better
of sa's and tabu's on the same instance (target: <= 1.5). A run above the published value of a
maximisation (or below a minimisation) is flagged: the value or the conversion is wrong.

Sets (found through ``optimizer.data``: QFREIGHT_DATA, ../shared/data, the user cache; fetch more
with ``qfreight data fetch``): OR-Library bqp (Beasley 1990), Gset (rudy graphs), the iitis railway
QUBOs (Domino et al. 2022), QPLIB binary unconstrained instances. Published values come from the
``*_optima.json`` / ``*.json`` files beside the instances where present, else from
``optimizer/data_sources.toml``.

Usage::

    python benchmarks/published.py --quick                 # bqp50 #1-3, 3 seeds, 2 s budget
    python benchmarks/published.py                         # every set present, 5 seeds, 10 s budget
    python benchmarks/published.py --sets bqp50 --seeds 10 --budget 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from backends.anneal import AnnealSolver, to_bqm  # noqa: E402
from optimizer.data import data_sets, find_data_folder  # noqa: E402
from optimizer.errors import QfreightError  # noqa: E402
from optimizer.qubo import Qubo  # noqa: E402
from optimizer.qubo.formats import native_objective, read_qubo, read_qubos, target_energy  # noqa: E402
from optimizer.report.stats import tts99  # noqa: E402

SOLVERS = ("anneal", "sa", "tabu")
PEERS = ("sa", "tabu")


@dataclass(frozen=True)
class Instance:
    set: str
    name: str
    qubo: Qubo
    published: float  # in the file's own convention

    @property
    def target(self) -> float:
        return target_energy(self.qubo, self.published)


@dataclass
class Runs:
    instance: str
    set: str
    n: int
    solver: str
    published: float
    times: list[float] = field(default_factory=list)  # wall seconds of each run
    hit: list[bool] = field(default_factory=list)
    best: list[float] = field(default_factory=list)  # best objective, file convention
    note: str = ""

    @property
    def hits(self) -> int:
        return sum(self.hit)

    def ttt(self) -> list[float]:
        return [t for t, h in zip(self.times, self.hit) if h]

    @property
    def mean_ttt(self) -> float | None:
        return statistics.fmean(self.ttt()) if self.ttt() else None

    @property
    def median_ttt(self) -> float | None:
        return statistics.median(self.ttt()) if self.ttt() else None

    @property
    def tts99(self) -> float:
        return tts99(self.hits / len(self.times), statistics.fmean(self.times)) if self.times else float("inf")


# ------------------------------------------------------------------ instances
def _values(folder: Path, set_name: str) -> dict[str, float]:
    sets = data_sets()
    return {k: float(v) for k, v in dict(sets[set_name].published.get("values", {})).items()} if set_name in sets \
        else {}


def instances(folder: Path, chosen: set[str] | None, quick: bool) -> list[Instance]:
    out: list[Instance] = []
    for path in sorted((folder / "bqp").glob("bqp*.txt")):
        name = path.stem
        if chosen and name not in chosen:
            continue
        optima_file = path.with_name(f"{name}_optima.json")
        values = ({k: float(v["value"]) for k, v in json.loads(optima_file.read_text()).items()}
                  if optima_file.is_file() else _values(folder, name))
        for qubo in read_qubos(path):
            if quick and qubo.metadata["instance"] > 3:
                continue
            if qubo.metadata["name"] in values:
                out.append(Instance(name, qubo.metadata["name"], qubo, values[qubo.metadata["name"]]))
    if not chosen or "gset" in chosen:
        values = _values(folder, "gset")
        for path in sorted((folder / "gset").glob("G*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else 0):
            if path.name in values and not quick:
                out.append(Instance("gset", path.name, read_qubo(path, format="rudy"), values[path.name]))
    if not chosen or "railway" in chosen:
        values = _values(folder, "railway")
        for path in sorted((folder / "railway_qubo").glob("*.qubo.txt")):
            stem = path.name.removesuffix(".qubo.txt")
            companion = path.with_name(f"{stem}.json")
            value = json.loads(companion.read_text())["ground_energy"] if companion.is_file() \
                else values.get(stem.removeprefix("qubo_"))
            if value is not None and not quick:
                out.append(Instance("railway", stem.removeprefix("qubo_"), read_qubo(path), float(value)))
    if not chosen or "qplib" in chosen:
        values = _values(folder, "qplib")
        for path in sorted((folder / "qplib").glob("*.qplib")):
            if path.stem in values and not quick:
                try:
                    out.append(Instance("qplib", path.stem, read_qubo(path), values[path.stem]))
                except QfreightError as exc:  # a constrained instance is not a QUBO: not in this benchmark
                    print(f"  skipped {path.name}: {exc}", file=sys.stderr)
    return out


# ------------------------------------------------------------------ runs
def _peer(sampler, bqm, target: float, budget: float, seed: int, *, tabu: bool) -> tuple[float, float]:
    """Call the sampler with one read per call until the target or the budget: (seconds, best energy)."""
    start = time.perf_counter()
    best = float("inf")
    k = 0
    while True:
        kwargs = {"num_reads": 1, "seed": (seed * 100_003 + k) % 2**31}
        if tabu:
            kwargs.update(energy_threshold=target, timeout=int(max(1, min(20, 1000 * budget))))
        best = min(best, float(sampler.sample(bqm, **kwargs).first.energy))
        k += 1
        elapsed = time.perf_counter() - start
        if best <= target + 1e-9 * max(1.0, abs(target)) or elapsed >= budget:
            return elapsed, best


def run_instance(inst: Instance, seeds: int, budget: float) -> list[Runs]:
    from dwave.samplers import SimulatedAnnealingSampler, TabuSampler

    target = inst.target
    fmt = str(inst.qubo.metadata.get("format"))
    sense = str(inst.qubo.metadata.get("sense"))
    rows = {s: Runs(inst.name, inst.set, inst.qubo.num_variables, s, inst.published) for s in SOLVERS}
    bqm = to_bqm(inst.qubo)
    tabu_ok = inst.qubo.num_variables <= 2500  # TabuSampler builds a dense n x n matrix
    if not tabu_ok:
        rows["tabu"].note = "skipped: n > 2500 (dense matrix)"
    sa, tabu = SimulatedAnnealingSampler(), TabuSampler()
    tol = 1e-9 * max(1.0, abs(target))
    for seed in range(seeds):
        start = time.perf_counter()
        result = AnnealSolver(target=target).solve(inst.qubo, seed=seed, time_limit=budget)
        elapsed = time.perf_counter() - start
        rows["anneal"].times.append(elapsed)
        rows["anneal"].hit.append(result.best_energy <= target + tol)
        rows["anneal"].best.append(native_objective(fmt, result.best_energy, sense))
        for name, sampler, ok in (("sa", sa, True), ("tabu", tabu, tabu_ok)):
            if not ok:
                continue
            t, energy = _peer(sampler, bqm, target, budget, seed, tabu=name == "tabu")
            rows[name].times.append(t)
            rows[name].hit.append(energy <= target + tol)
            rows[name].best.append(native_objective(fmt, energy, sense))
    for r in rows.values():
        beats = [b for b in r.best if (b > inst.published if sense == "max" else b < inst.published)
                 and abs(b - inst.published) > 1e-9 * max(1.0, abs(inst.published))]
        if beats:
            r.note = (r.note + "; " if r.note else "") + f"BEATS THE PUBLISHED VALUE ({beats[0]:g}): check it"
    return list(rows.values())


# ------------------------------------------------------------------ tables
def _f(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio_to_peer(rows: list[Runs], instance: str) -> float | None:
    mine = next(r for r in rows if r.instance == instance and r.solver == "anneal").mean_ttt
    peers = [r.mean_ttt for r in rows if r.instance == instance and r.solver in PEERS and r.mean_ttt is not None]
    return None if mine is None or not peers else mine / min(peers)


def print_table(rows: list[Runs]) -> None:
    header = (f"{'set':<8} {'instance':<26} {'n':>5} {'published':>10} {'solver':<7} {'hits':>6} {'mean s':>9} "
              f"{'median s':>9} {'TTS99 s':>9} {'x best peer':>11}  note")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = ratio_to_peer(rows, r.instance) if r.solver == "anneal" else None
        print(f"{r.set:<8} {r.instance:<26} {r.n:>5} {r.published:>10g} {r.solver:<7} "
              f"{f'{r.hits}/{len(r.times)}':>6} {_f(r.mean_ttt, '9.4f'):>9} {_f(r.median_ttt, '9.4f'):>9} "
              f"{_f(r.tts99, '9.4f'):>9} {_f(ratio, '11.2f'):>11}  {r.note}")


def summary(rows: list[Runs]) -> dict[str, dict[str, object]]:
    """Per set: hits, mean/median time to target over all hits, and anneal / best peer."""
    out: dict[str, dict[str, object]] = {}
    for set_name in dict.fromkeys(r.set for r in rows):
        mine = [r for r in rows if r.set == set_name]
        entry: dict[str, object] = {}
        for solver in SOLVERS:
            runs = [r for r in mine if r.solver == solver and r.times]
            ttt = [t for r in runs for t in r.ttt()]
            entry[solver] = {"hits": sum(r.hits for r in runs), "runs": sum(len(r.times) for r in runs),
                             "mean_ttt_s": statistics.fmean(ttt) if ttt else None,
                             "median_ttt_s": statistics.median(ttt) if ttt else None}
        peers = [entry[p]["mean_ttt_s"] for p in PEERS if entry[p]["mean_ttt_s"] is not None]
        ours = entry["anneal"]["mean_ttt_s"]
        entry["ratio_to_best_peer"] = None if ours is None or not peers else ours / min(peers)
        out[set_name] = entry
    return out


def print_summary(totals: dict[str, dict[str, object]]) -> None:
    print()
    print(f"{'set':<8} {'solver':<7} {'hits':>9} {'mean s':>9} {'median s':>9}   anneal / best peer (mean)")
    for set_name, entry in totals.items():
        for solver in SOLVERS:
            s = entry[solver]
            tail = f"   {_f(entry['ratio_to_best_peer'], '.2f')}" if solver == "anneal" else ""
            print(f"{set_name:<8} {solver:<7} {str(s['hits']) + '/' + str(s['runs']):>9} "
                  f"{_f(s['mean_ttt_s'], '9.4f'):>9} {_f(s['median_ttt_s'], '9.4f'):>9}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bqp sets' first 3 instances only, 3 seeds, 2 s")
    parser.add_argument("--sets", help="comma-separated sets (bqp50, bqp100, ..., gset, railway, qplib); default: all")
    parser.add_argument("--seeds", type=int, default=None, help="runs per solver and instance (default 5; quick 3)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per run (default 10; quick 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and the summary as JSON")
    args = parser.parse_args(argv)
    seeds = args.seeds or (3 if args.quick else 5)
    budget = args.budget or (2.0 if args.quick else 10.0)
    lookup = find_data_folder()
    if lookup.path is None:
        print(f"no data folder: {lookup.reason}", file=sys.stderr)
        return 2
    chosen = {s.strip() for s in args.sets.split(",")} if args.sets else None
    found = instances(lookup.path, chosen, args.quick)
    if not found:
        print(f"no instance with a published value in {lookup.path}", file=sys.stderr)
        return 2
    AnnealSolver().solve(found[0].qubo, seed=0, time_limit=0.05)  # imports and first-call set-up, untimed
    start = time.perf_counter()
    rows: list[Runs] = []
    for inst in found:
        rows += run_instance(inst, seeds, budget)
        mine = rows[-3]
        print(f"  {inst.set} {inst.name}: anneal {mine.hits}/{seeds} hits, mean {_f(mine.mean_ttt, '.4f')} s; "
              f"x best peer {_f(ratio_to_peer(rows, inst.name), '.2f')}", file=sys.stderr, flush=True)
    print(f"data folder {lookup.path}; {seeds} seeds; budget {budget:g} s per run; "
          f"command: python benchmarks/published.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print_table(rows)
    totals = summary(rows)
    print_summary(totals)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwall {time.perf_counter() - start:.1f} s; process peak RSS {peak:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "summary": totals}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
