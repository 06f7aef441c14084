"""Every backend on instances with published optima: reached vs published value, time, memory.

Sets (files in ../shared/data, sources in its README.md):
- Beasley's OR-Library bqp50 (J.E. Beasley, J. Oper. Res. Soc. 41 (1990)): ten maximisation
  instances, n = 50, proven optima in bqp50_optima.json. Values are shown as in the file
  (maximised; higher is better).
- Railway rescheduling QUBOs of iitis/quantum-stochastic-optimization-railways (Domino et al.,
  Quantum Inf. Process. 21:337 (2022)): n = 6 .. 24, published ground energies (minimised).

Usage::

    python benchmarks/published.py --quick            # bqp50.1-3 and railway n <= 10, small budgets
    python benchmarks/published.py                    # everything
    python benchmarks/published.py --backends anneal,cpsat --json results.json

Columns: ``reached`` is the best value found, in the file's convention; ``gap`` is
|reached - published| / |published|; ``P(opt)`` is the share of reads at the published optimum;
``proven`` is CP-SAT's optimality proof; ``t/anneal`` divides the time by the anneal backend's time on
the same instance in this run; ``+MiB`` is how far the process's peak resident memory rose above its size at the
start of that solve (the peak is reset before each solve through /proc/self/clear_refs; ``-`` where
Linux does not allow it); the last line gives the whole run's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from backends import REGISTRY, create_solver  # noqa: E402
from optimizer.errors import QfreightError  # noqa: E402
from optimizer.qubo import Qubo  # noqa: E402
from optimizer.qubo.formats import native_objective, read_qubo, read_qubos# noqa: E402

DATA = REPO.parent / "shared" / "data"

#: Backend options and time limits (seconds) per run; --quick uses the second table.
BUDGETS: dict[str, tuple[dict[str, object], float]] = {
    "exact": ({"max_variables": 24}, 60.0),
    "anneal": ({"num_reads": 64, "num_sweeps": 1000}, 30.0),
    "cpsat": ({"workers": 2}, 10.0),
    "qaoa": ({"reps": 2, "maxiter": 100, "shots": 1024}, 60.0),
    "photonic": ({"samples": 200}, 60.0),
}
QUICK_BUDGETS: dict[str, tuple[dict[str, object], float]] = {
    "exact": ({"max_variables": 24}, 30.0),
    "anneal": ({"num_reads": 32, "num_sweeps": 1000}, 10.0),
    "cpsat": ({"workers": 2}, 5.0),
    "qaoa": ({"reps": 2, "maxiter": 60, "shots": 512}, 30.0),
    "photonic": ({"samples": 100}, 30.0),
}


#: Backends that return chosen states, not reads: no probability of the optimum for them.
DETERMINISTIC = frozenset({"exact", "cpsat"})


@dataclass(frozen=True)
class Instance:
    name: str
    qubo: Qubo
    published: float  # in the file's own convention
    sense: str  # "max" (bqp) or "min"
    fmt: str

    @property
    def published_energy(self) -> float:
        """The published value as an energy of our minimisation QUBO."""
        return native_objective(self.fmt, self.published)


@dataclass
class Row:
    instance: str
    n: int
    published: float
    backend: str
    reached: float | None
    gap: float | None
    p_opt: float | None
    proven: bool | None
    seconds: float | None
    ratio_to_anneal: float | None
    peak_mib: float | None
    note: str = ""


def instances(quick: bool) -> list[Instance]:
    out = []
    optima = json.loads((DATA / "bqp" / "bqp50_optima.json").read_text())
    for qubo in read_qubos(DATA / "bqp" / "bqp50.txt"):
        name = qubo.metadata["name"]
        if quick and qubo.metadata["instance"] > 3:
            continue
        out.append(Instance(name, qubo, float(optima[name]["value"]), "max", "bqp"))
    for path in sorted((DATA / "railway_qubo").glob("*.qubo.txt")):
        published = json.loads(path.with_name(path.name.replace(".qubo.txt", ".json")).read_text())
        if quick and published["n"] > 10:
            continue
        name = path.name.removesuffix(".qubo.txt").removeprefix("qubo_")
        out.append(Instance(name, read_qubo(path), float(published["ground_energy"]), "min", "triples"))
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) of this process
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float | None:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_one(backend: str, inst: Instance, budgets, seed: int, max_n: int | None) -> Row:
    options, time_limit = budgets[backend]
    row = Row(inst.name, inst.qubo.num_variables, inst.published, backend, None, None, None, None, None,
              None, None)
    if max_n is not None and backend in ("qaoa", "photonic") and inst.qubo.num_variables > max_n:
        row.note = f"skipped: n > --max-n {max_n}"
        return row
    try:
        solver = create_solver(backend, options)
    except Exception as exc:  # an unavailable backend is a row in the table, not a crash
        row.note = f"unavailable: {type(exc).__name__}: {exc}"[:120]
        return row
    limit = getattr(solver, "max_variables", None)
    if limit is not None and inst.qubo.num_variables > limit:
        row.note = f"too large (limit {limit})"
        return row
    rss_before = _status_mib("VmRSS")
    reset = _reset_peak() and rss_before is not None
    t0 = time.perf_counter()
    try:
        result = solver.solve(inst.qubo, seed=seed, time_limit=time_limit)
    except QfreightError as exc:
        row.note = f"failed: {exc}"[:120]
        return row
    row.seconds = time.perf_counter() - t0
    peak = _status_mib("VmHWM") if reset else None
    row.peak_mib = None if peak is None else max(0.0, peak - rss_before)
    row.reached = native_objective(inst.fmt, result.best_energy)
    row.gap = abs(row.reached - inst.published) / max(abs(inst.published), 1e-12)
    if backend not in DETERMINISTIC:  # a share of reads means something only for samplers
        row.p_opt = result.probability_of(inst.published_energy)
    if "optimal" in result.info and backend == "cpsat":
        row.proven = bool(result.info["optimal"])
        if not row.proven and result.info.get("status") == "OPTIMAL":
            # CP-SAT solved the rounded integer model to optimality; the bound on the true
            # objective is loosened by the rounding of fractional weights.
            row.note = f"optimal for the rounded model (bound off by {result.info.get('rounding_error', 0):.1g})"
    better = row.reached > inst.published if inst.sense == "max" else row.reached < inst.published
    if better and row.gap > 1e-9:
        row.note = "BEATS THE PUBLISHED OPTIMUM: check the conversion"
    return row


def _fmt(value, spec: str, empty: str = "-") -> str:
    return empty if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    header = (f"{'instance':<30} {'n':>3} {'published':>10} {'backend':<9} {'reached':>10} {'gap':>8} "
              f"{'P(opt)':>7} {'proven':>6} {'time s':>8} {'t/anneal':>8} {'+MiB':>6}  note")
    print(header)
    print("-" * len(header))
    for r in rows:
        proven = "-" if r.proven is None else ("yes" if r.proven else "no")
        print(f"{r.instance:<30} {r.n:>3} {r.published:>10g} {r.backend:<9} {_fmt(r.reached, '10g'):>10} "
              f"{_fmt(r.gap, '8.2%'):>8} {_fmt(r.p_opt, '7.3f'):>7} {proven:>6} {_fmt(r.seconds, '8.3f'):>8} "
              f"{_fmt(r.ratio_to_anneal, '8.2f'):>8} {_fmt(r.peak_mib, '6.0f'):>6}  {r.note}")


def summarise(rows: list[Row]) -> None:
    print()
    print(f"{'backend':<9} {'runs':>4} {'at optimum':>10} {'proven':>6} {'total s':>8}")
    for backend in dict.fromkeys(r.backend for r in rows):
        mine = [r for r in rows if r.backend == backend and r.reached is not None]
        hit = sum(1 for r in mine if r.gap is not None and r.gap <= 1e-9)
        proven = sum(1 for r in mine if r.proven)
        total = sum(r.seconds or 0.0 for r in mine)
        print(f"{backend:<9} {len(mine):>4} {hit:>10} {proven:>6} {total:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bqp50.1-3 and railway n <= 10, small budgets")
    parser.add_argument("--backends", default=",".join(REGISTRY),
                        help=f"comma-separated subset of {', '.join(REGISTRY)} (anneal always runs, as the "
                             "time reference)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-n", type=int, default=None,
                        help="skip qaoa/photonic on instances with more variables than this")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    chosen = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(REGISTRY))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    if "anneal" not in chosen:
        chosen.insert(0, "anneal")
    chosen.sort(key=lambda b: b != "anneal")  # anneal first: it is the time reference
    budgets = QUICK_BUDGETS if args.quick else BUDGETS

    start = time.perf_counter()
    rows: list[Row] = []
    for inst in instances(args.quick):
        anneal_seconds = None
        for backend in chosen:
            row = run_one(backend, inst, budgets, args.seed, args.max_n)
            if backend == "anneal":
                anneal_seconds = row.seconds
            if row.seconds is not None and anneal_seconds:
                row.ratio_to_anneal = row.seconds / anneal_seconds
            rows.append(row)
            print(f"  {inst.name} {backend}: {row.note or f'{row.reached:g} in {row.seconds:.2f} s'}",
                  file=sys.stderr, flush=True)
    print_table(rows)
    summarise(rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwall {time.perf_counter() - start:.1f} s; process peak RSS {peak:.0f} MiB; "
          f"budgets: {json.dumps({b: budgets[b][0] | {'time_limit': budgets[b][1]} for b in chosen})}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
