"""QAOA speed: stock qiskit-optimization QAOA vs this backend's statevector engine, in one run.

For each random QUBO (n = 12, 16, 20 by default) and depth p (1, 3) it runs, with the same
optimiser (COBYLA), the same starting angles (the linear ramp) and the same evaluation budget:

  (a) qiskit-optimization's stock QAOA with qiskit's StatevectorSampler,
  (b) the stock QAOA with qiskit-aer's SamplerV2 on one thread,
  (c) this backend, ``engine = "statevector"`` (exact expectation, one thread),

and prints time per objective evaluation, total time, evaluations, best sampled energy, the
expectation of the final samples ("shots <E>") and the exact expectation at the final angles
("exact <E>", computed with this backend's engine for every method), with the ratios (a)/(c) and (b)/(c) of the time per evaluation. Slow peers at
large n get a smaller evaluation budget (``--peer-evals``): their per-evaluation time is still
measured, their totals and energies then come from fewer evaluations (marked ``*``).

Then the feasible-subspace engine on one-hot instances of 10..12 groups x 4 plans (4^10 .. 4^12
amplitudes): time per p = 1 evaluation on 1 and 2 threads (target: <= 1 s at 4^12 on 2 cores),
peak traced memory (tracemalloc) and process peak RSS.

Then the full-space engine's time per layer at n = 20, 22, 24 as a multiple of one copy of a
state of the same size (``np.copyto`` of 2^n complex128), both measured in the same run: the
layer time is the marginal cost (p = 3 minus p = 1, halved), so the initial state and the read-out
are not counted.

Then angle transfer on freight pieces: 10 shipments x 4 plans of ``problems/china-core.toml``
(the incumbent's plan and the 3 cheapest others per shipment, every other variable fixed at
the greedy plan; ``submodel`` + ``encode(inequality="unbalanced")``), solved one after another
by one solver with ``transfer = false`` and then ``true``: evaluations per piece, pieces per
second, the mean approximation ratio and how many pieces improved on the incumbent.

Timings are the minimum of several repeats (the box is shared; load average printed).
On a machine with a GPU array library (cupy / torch with CUDA): time per p = 3 evaluation at
n = 28 and 30.

Run (from the repository root):

  quick subset (n = 12, p = 1 and 3, subspace 4^10, layers n = 20, 4 pieces):
                                                        python -m benchmarks.qaoa_speed --quick
  only the engine rows of issue 13 (subspace 4^12, layers n = 20..24, transfer):
      python -m benchmarks.qaoa_speed --sizes --groups 12 --layers 20 22 24
  the full benchmark (all rows; ~25 min on a loaded 2-core box, most of it peer (a) at n = 20,
  ~40 s per evaluation):                                python -m benchmarks.qaoa_speed
  n = 20 without peer (a), full budget for peer (b):
      python -m benchmarks.qaoa_speed --sizes 20 --sv-sampler-max 16 --peer-evals 40
  chosen rows:                                          python -m benchmarks.qaoa_speed --sizes 16 20 --reps 3
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

from backends import create_solver
from backends.qaoa.solver import _ramp
from backends.qaoa.space import Space, cost_scale
from optimizer.qubo import Qubo


def random_qubo(n: int, seed: int) -> Qubo:
    """Dense Gaussian QUBO (about 84% of pairs coupled), as in the test suite."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    M[rng.random((n, n)) > 0.6] = 0.0
    return Qubo.from_dense(M)


def one_hot_qubo(groups: int, size: int, seed: int, penalty: float = 10.0) -> Qubo:
    """Random plan costs and couplings with one-hot penalties: ``groups`` shipments x ``size`` plans."""
    rng = np.random.default_rng(seed)
    n = groups * size
    M = np.triu(rng.normal(size=(n, n)), 1) * 0.5
    M[np.diag_indices(n)] = rng.normal(size=n)
    idx = [tuple(range(g * size, (g + 1) * size)) for g in range(groups)]
    for g in idx:
        for a, i in enumerate(g):
            M[i, i] -= penalty
            for j in g[a + 1:]:
                M[i, j] += 2 * penalty
    return Qubo.from_dense(M, offset=penalty * groups, groups=idx)


def stock_qaoa(qubo: Qubo, *, reps: int, evals: int, sampler: str, shots: int, seed: int) -> dict:
    """qiskit-optimization's MinimumEigenOptimizer(QAOA) with COBYLA, timing each evaluation."""
    from qiskit.primitives import StatevectorSampler
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2 as AerSampler
    from qiskit_optimization import QuadraticProgram
    from qiskit_optimization.algorithms import MinimumEigenOptimizer
    from qiskit_optimization.minimum_eigensolvers import QAOA
    from scipy.optimize import OptimizeResult, minimize

    n = qubo.num_variables
    qp = QuadraticProgram()
    for i in range(n):
        qp.binary_var(f"x{i}")
    coo = qubo.Q.tocoo()
    qp.minimize(constant=qubo.offset, linear=np.asarray(qubo.h).tolist(),
                quadratic={(f"x{i}", f"x{j}"): float(w) for i, j, w in zip(coo.row, coo.col, coo.data)})
    if sampler == "statevector":
        prim, pm = StatevectorSampler(default_shots=shots, seed=seed), None
    else:
        sim = AerSimulator(max_parallel_threads=1, max_parallel_experiments=1, max_parallel_shots=1)
        prim = AerSampler(default_shots=shots, seed=seed, options={"backend_options": {
            "max_parallel_threads": 1, "max_parallel_experiments": 1, "max_parallel_shots": 1}})
        pm = generate_preset_pass_manager(optimization_level=1, backend=sim, seed_transpiler=0)
    eval_times: list[float] = []

    def minimizer(fun, x0, jac=None, bounds=None):
        def timed(x):
            t0 = time.perf_counter()
            value = fun(x)
            eval_times.append(time.perf_counter() - t0)
            return value

        res = minimize(timed, x0, method="COBYLA", options={"maxiter": evals, "rhobeg": 0.2})
        return OptimizeResult(x=res.x, fun=res.fun, nfev=res.nfev)

    x0 = _ramp(reps)
    scale = cost_scale(qubo)
    initial_point = np.concatenate([x0[reps:], x0[:reps] / scale])  # qiskit order: betas, gammas
    t0 = time.perf_counter()
    result = MinimumEigenOptimizer(QAOA(prim, minimizer, reps=reps, initial_point=initial_point,
                                        pass_manager=pm)).solve(qp)
    total = time.perf_counter() - t0
    fvals = np.array([s.fval for s in result.samples])
    probs = np.array([s.probability for s in result.samples])
    # Exact <E> at the stock run's final angles (same unitary as our engine: betas, gammas * s).
    raw = np.asarray(result.min_eigen_solver_result.optimal_point)
    return {"per_eval": float(np.mean(eval_times)), "total": total, "evals": len(eval_times),
            "best": float(fvals.min()), "expectation": float(probs @ fvals / probs.sum()),
            "exact": exact_expectation(qubo, raw[reps:] * scale, raw[:reps])}


def exact_expectation(qubo: Qubo, gammas, betas) -> float:
    from backends.qaoa.engine import StatevectorEngine

    engine = StatevectorEngine(Space.full(qubo), mixer="x", scale=cost_scale(qubo))
    return engine.expectation(gammas, betas)


def this_backend(qubo: Qubo, *, reps: int, evals: int, shots: int, seed: int, **options) -> dict:
    solver = create_solver("qaoa", {"reps": reps, "maxiter": evals, "shots": shots, "threads": 1,
                                    "max_variables": qubo.num_variables, **options})
    t0 = time.perf_counter()
    result = solver.solve(qubo, seed=seed, time_limit=3600)
    total = time.perf_counter() - t0
    info = result.info
    counts = result.counts
    sampled = float(counts @ result.energies / counts.sum())
    return {"per_eval": result.timing["simulate"] / info["evaluations"], "total": total,
            "evals": info["evaluations"], "best": result.best_energy, "expectation": sampled,
            "exact": info["expectation"]}


def row(label: str, r: dict, short: bool) -> str:
    mark = "*" if short else " "
    return (f"  {label:<34} {r['per_eval'] * 1e3:>12.2f} {r['total']:>10.2f}{mark} {r['evals']:>6d} "
            f"{r['best']:>12.4f} {r['expectation']:>12.4f} {r['exact']:>12.4f}")


def speed_rows(sizes, reps_list, evals: int, peer_evals: int, shots: int, skip_statevector_sampler_above: int):
    print("QAOA time per evaluation: (a) stock QAOA + StatevectorSampler, (b) stock QAOA + Aer SamplerV2 "
          "(1 thread), (c) qfreight statevector engine (1 thread)")
    header = (f"  {'method':<34} {'ms/eval':>12} {'total s':>11} {'evals':>6} {'best E':>12} "
              f"{'shots <E>':>12} {'exact <E>':>12}")
    for n in sizes:
        qubo = random_qubo(n, seed=100 + n)
        for p in reps_list:
            print(f"\nn = {n}, p = {p}, shots = {shots}, COBYLA, same ramp start")
            print(header)
            c = this_backend(qubo, reps=p, evals=evals, shots=shots, seed=0)
            peer = evals if n <= 16 else peer_evals
            results = {}
            if n <= skip_statevector_sampler_above:
                results["a"] = stock_qaoa(qubo, reps=p, evals=peer, sampler="statevector", shots=shots, seed=0)
                print(row("(a) stock + StatevectorSampler", results["a"], peer < evals))
            else:
                print("  (a) stock + StatevectorSampler      not run at this n (--sv-sampler-max)")
            results["b"] = stock_qaoa(qubo, reps=p, evals=peer, sampler="aer", shots=shots, seed=0)
            print(row("(b) stock + Aer sampler, 1 thread", results["b"], peer < evals))
            print(row("(c) qfreight statevector engine", c, False))
            for key, r in results.items():
                print(f"  ratio ({key})/(c) per evaluation: {r['per_eval'] / c['per_eval']:8.1f}x   "
                      f"total: {r['total'] / c['total']:8.1f}x{'  (* fewer evaluations)' if peer < evals else ''}")
            sys.stdout.flush()


def _best_time(fn, repeats: int, min_seconds: float = 0.0) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` calls (and at least ``min_seconds`` in all)."""
    best, spent, k = np.inf, 0.0, 0
    while k < repeats or spent < min_seconds:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, k = min(best, dt), spent + dt, k + 1
    return best


def subspace_rows(groups_list, reps: int = 1, threads_list=(1, 2)):
    from backends.qaoa import kernels
    from backends.qaoa.engine import StatevectorEngine

    print("\nFeasible-subspace engine (XY ring mixers, W-state start), one-hot instances, groups x 4 plans, "
          f"p = {reps}")
    print(f"  {'instance':<26} {'amplitudes':>12} {'setup s':>9} "
          + " ".join(f"{f's/eval {t} thr':>13}" for t in threads_list)
          + f" {'traced peak MiB':>16} {'RSS peak MiB':>13}")
    for groups in groups_list:
        qubo = one_hot_qubo(groups, 4, seed=groups)
        tracemalloc.start()
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        space = Space.one_hot(qubo)
        engine = StatevectorEngine(space, mixer="xy-ring", scale=space.move_scale())
        setup = time.perf_counter() - t0
        per_eval = []
        for threads in threads_list:
            with kernels.threads(threads):
                engine.expectation([0.3] * reps, [-0.3] * reps)  # warm the kernels
                per_eval.append(_best_time(lambda e=engine: e.expectation([0.31] * reps, [-0.3] * reps), 3, 2.0))
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {groups:>2} x 4 ({4 * groups:>2} qubits)         {space.dimension:>12d} {setup:>9.2f} "
              + " ".join(f"{t:>13.3f}" for t in per_eval) + f" {peak:>16.0f} {rss:>13.0f}")
        del engine
        sys.stdout.flush()


def layer_rows(sizes, threads_list=(1, 2)):
    """Full-space engine: marginal time per layer as a multiple of one state copy of the same size."""
    from backends.qaoa import kernels
    from backends.qaoa.engine import StatevectorEngine

    print("\nFull-space engine (X mixer): time per layer vs one copy of a 2^n complex128 state, same run")
    print(f"  {'n':>3} {'copy ms':>9} " + " ".join(f"{f'layer ms {t} thr':>15} {'copies':>7}" for t in threads_list))
    for n in sizes:
        qubo = random_qubo(n, seed=100 + n)
        engine = StatevectorEngine(Space.full(qubo), mixer="x", scale=cost_scale(qubo))
        a = np.ones(2**n, dtype=np.complex128)
        b = np.empty_like(a)
        np.copyto(b, a)
        copy = _best_time(lambda a=a, b=b: np.copyto(b, a), 7)
        cells = []
        for threads in threads_list:
            with kernels.threads(threads):
                engine.expectation([0.1], [0.2])
                one = _best_time(lambda e=engine: e.expectation([0.1], [0.2]), 5)
                three = _best_time(lambda e=engine: e.expectation([0.1, 0.2, 0.3], [0.2, 0.3, 0.1]), 5)
            layer = max((three - one) / 2, 0.0)
            cells.append(f"{layer * 1e3:>15.1f} {layer / copy:>7.1f}")
        print(f"  {n:>3} {copy * 1e3:>9.2f} " + " ".join(cells))
        del engine, a, b
        sys.stdout.flush()


def freight_pieces(count: int, *, shipments: int = 10, plans: int = 4, seed: int = 0):
    """``count`` subspace pieces of china-core: ``shipments`` random shipments, each with the
    incumbent's (greedy) plan and its ``plans - 1`` cheapest others; returns (sub-model, encoding,
    incumbent restricted) triples. Every other variable stays at the greedy plan."""
    from pathlib import Path

    from optimizer.freight.problem import load_problem
    from optimizer.qubo.encoding import encode
    from optimizer.qubo.restrict import submodel
    from optimizer.solving.config import Config
    from optimizer.solving.pipeline import prepare

    root = Path(__file__).resolve().parents[1]
    prepared = prepare(load_problem(root / "problems" / "china-core.toml"), Config())
    model = prepared.model
    x = np.asarray(prepared.greedy, dtype=np.float64)
    field = model.c + ((model.P + model.P.T) @ x if model.P.nnz else 0.0)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        chosen = rng.choice(len(model.groups), size=min(shipments, len(model.groups)), replace=False)
        variables = []
        for g in chosen:
            members = np.asarray(model.groups[g])
            current, others = members[x[members] == 1], members[x[members] == 0]
            others = others[np.argsort(field[others], kind="stable")][: plans - current.size]
            variables.append(np.sort(np.concatenate([current, others])))
        variables = np.concatenate(variables)
        sub = submodel(model, x, variables)
        out.append((sub, encode(sub, reference=x[variables], inequality="unbalanced"), x[variables]))
    return out


def transfer_rows(count: int, reps: int = 2, maxiter: int = 100, transfer_maxiter: int = 20):
    print(f"\nAngle transfer on china-core pieces (10 shipments x 4 plans, unbalanced capacity penalties), "
          f"p = {reps}, COBYLA maxiter {maxiter}, transferred starts {transfer_maxiter}, 1 thread")
    pieces = freight_pieces(count)
    q = pieces[0][1].qubo
    print(f"  {count} pieces of {q.num_variables} variables in {len(q.groups)} groups "
          f"({int(np.prod([len(g) for g in q.groups]))} amplitudes)")
    print(f"  {'transfer':<9} {'evals/piece':>12} {'pieces/s':>9} {'mean approx. ratio':>19} {'improved':>9} "
          f"{'mean P(best)':>13}")
    rates = {}
    for transfer in (False, True):
        solver = create_solver("qaoa", {"reps": reps, "maxiter": maxiter, "transfer": transfer,
                                        "transfer_maxiter": transfer_maxiter, "threads": 1})
        evaluations, ratios, improved, best_p = [], [], 0, []
        t0 = time.perf_counter()
        for sub, enc, start in pieces:
            result = solver.solve(enc.qubo, seed=1, time_limit=600, initial=enc.lift(start)[0])
            evaluations.append(result.info["evaluations"])
            ratios.append(result.info["approximation_ratio"])
            best_p.append(result.info["best_probability"])
            Y = enc.project(result.samples)
            ok = sub.is_feasible(Y)
            current = float(sub.objective(start)[0])
            improved += bool(ok.any() and sub.objective(Y[ok]).min() < current - 1e-9 * max(1.0, abs(current)))
        rate = len(pieces) / (time.perf_counter() - t0)
        rates[transfer] = rate
        print(f"  {transfer!s:<9} {np.mean(evaluations):>12.1f} {rate:>9.2f} {np.mean(ratios):>19.4f} "
              f"{improved:>5d}/{len(pieces):<3d} {np.mean(best_p):>13.4f}")
    print(f"  pieces per second, transfer on / off: {rates[True] / rates[False]:.1f}x")


def gpu_rows(sizes):
    from backends.qaoa.engine import StatevectorEngine, array_module
    from optimizer.errors import MissingDependency

    print("\nGPU statevector engine, p = 3")
    try:
        array_module("GPU")
    except MissingDependency as exc:
        print(f"  not run: {exc}")
        return
    for n in sizes:
        qubo = random_qubo(n, seed=100 + n)
        engine = StatevectorEngine(Space.full(qubo), mixer="x", scale=cost_scale(qubo), device="GPU")
        engine.expectation([0.1] * 3, [-0.1] * 3)
        t0 = time.perf_counter()
        for k in range(3):
            engine.expectation([0.1 + 0.01 * k] * 3, [-0.1] * 3)
        engine.arrays.synchronize()
        print(f"  n = {n}: {(time.perf_counter() - t0) / 3:.3f} s per evaluation ({engine.arrays.name})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n = 12 only, subspace 4^10, layers n = 20, 4 pieces")
    parser.add_argument("--sizes", type=int, nargs="*", default=[12, 16, 20])
    parser.add_argument("--reps", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--evals", type=int, default=40, help="COBYLA evaluation budget")
    parser.add_argument("--peer-evals", type=int, default=6, help="budget of the stock peers at n > 16")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--sv-sampler-max", type=int, default=20,
                        help="largest n for the (slow) StatevectorSampler peer")
    parser.add_argument("--groups", type=int, nargs="*", default=[10, 11, 12])
    parser.add_argument("--layers", type=int, nargs="*", default=[20, 22, 24],
                        help="n of the full-space per-layer vs state-copy rows")
    parser.add_argument("--pieces", type=int, default=12, help="china-core pieces of the transfer rows (0: skip)")
    parser.add_argument("--gpu-sizes", type=int, nargs="*", default=[28, 30])
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.groups, args.layers, args.pieces = [12], [10], [20], 4
    import qiskit
    import qiskit_aer
    import qiskit_optimization

    print(f"qiskit {qiskit.__version__}, qiskit-aer {qiskit_aer.__version__}, qiskit-optimization "
          f"{qiskit_optimization.__version__}, numpy {np.__version__}; cpus: {os.cpu_count()}, "
          f"load average: {os.getloadavg()[0]:.2f}")
    # Warm up: load the numba kernels from cache and import qiskit before anything is timed.
    this_backend(random_qubo(6, seed=0), reps=1, evals=2, shots=16, seed=0)
    if args.sizes:
        speed_rows(args.sizes, args.reps, args.evals, args.peer_evals, args.shots, args.sv_sampler_max)
    if args.groups:
        subspace_rows(args.groups)
    if args.layers:
        layer_rows(args.layers)
    if args.pieces:
        transfer_rows(args.pieces)
    gpu_rows(args.gpu_sizes)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
