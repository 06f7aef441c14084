"""Benchmark of the photonic (GBS) backend.

1. Sampling speed: seconds per sample vs modes for this backend's sampler (SF program built once,
   batches drawn from its state), thewalrus's graph samplers called directly, and Strawberry Fields'
   own ``apps.sample.sample`` (which builds and runs a program per call) -- same graph, same mean
   photon number, same run. Target: backend within 1.5x of thewalrus per sample.
2. Solution quality against the exact optimum, GBS vs the random-subset ablation (same samples
   budget, same post-processing): the railway rescheduling QUBOs in ../shared/data/railway_qubo
   (iitis/quantum-stochastic-optimization-railways, QUBOs/gates; Domino, Kundu, Salehi, Krawiec,
   Quantum Inf. Process. 21:337 (2022); published ground energies), random one-hot QUBOs (exact
   optimum by brute force), and any QUBO file given with ``--qubo``.

Peak memory (process max RSS) is recorded after each section.

    python benchmarks/photonic.py --quick
    python benchmarks/photonic.py --modes 8 16 24 32 --samples 40
    python benchmarks/photonic.py --qubo path/to/problem.qubo.txt      # any QUBO file
    python benchmarks/photonic.py --tiny                                # the tiny freight sample (hook)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backends import create_solver  # noqa: E402
from backends.exact import ExactSolver  # noqa: E402
from optimizer.qubo import Qubo  # noqa: E402
from tests.conftest import one_hot_qubo, random_qubo  # noqa: E402  (the same instances the tests use)

RAILWAY = REPO.parent / "shared" / "data" / "railway_qubo"
#: Hook for the lead: the tiny freight sample problem, once problems/tiny.toml and the encoder exist.
TINY_PROBLEM = REPO / "problems" / "tiny.toml"

log = logging.getLogger("benchmarks.photonic")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# --------------------------------------------------------------------------- inputs
def load_qubo_file(path: Path) -> tuple[Qubo, float | None]:
    """A ``.qubo.txt`` (``n m`` then ``i j w``, '#' comments) or ``.json`` (``n``, ``qubo`` triples,
    optional ``ground_energy``) file: E(x) = sum w_ij x_i x_j, minimise."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        i, j, w = zip(*data["qubo"])
        return Qubo.from_terms(int(data["n"]), rows=i, cols=j, weights=w), data.get("ground_energy")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    n = int(lines[0][0])
    i, j, w = zip(*((int(a), int(b), float(c)) for a, b, c in lines[1:]))
    ground = None
    sidecar = path.with_name(path.name.replace(".qubo.txt", ".json"))
    if sidecar.exists():
        ground = json.loads(sidecar.read_text()).get("ground_energy")
    return Qubo.from_terms(n, rows=i, cols=j, weights=w), ground


def tiny_qubo() -> Qubo:
    """The QUBO of problems/tiny.toml, encoded exactly as `qfreight solve` does."""
    from optimizer.solve.config import Config
    from optimizer.solve.pipeline import prepare
    from optimizer.freight.problem import load_problem

    return prepare(load_problem(TINY_PROBLEM), Config()).qubo


# --------------------------------------------------------------------------- 1. speed
def speed(modes: list[int], samples: int, mean_photons: float, detectors: str, sf_apps_samples: int) -> list[dict]:
    from backends.photonic.compat import import_strawberryfields
    from backends.photonic.device import DeviceSpec, GBSSampler, encode, isolated_global_rng

    import_strawberryfields()
    from strawberryfields.apps import sample as sf_sample
    from thewalrus.samples import hafnian_sample_graph, torontonian_sample_graph

    threshold = detectors == "threshold"
    log.info("warming numba kernels (compiled on first use, then cached on disk)")
    dev = DeviceSpec(modes=4, mean_photons=1.0, detectors=detectors)
    GBSSampler(encode(np.ones((4, 4)) - np.eye(4), dev), dev).sample(2, seed=0)
    rows = []
    for m in modes:
        rng = np.random.default_rng(m)
        A = np.triu((rng.random((m, m)) < 0.5).astype(float), 1)
        A = A + A.T
        dev = DeviceSpec(modes=m, mean_photons=mean_photons, detectors=detectors, samples=samples)
        # This backend (encode + build/run the SF program once, then batches from its state) and
        # thewalrus's graph sampler called directly, batch by batch with the same seeds, so both
        # draw the same patterns and the ratio measures overhead, not luck in the click counts.
        t0 = time.perf_counter()
        gbs = GBSSampler(encode(A, dev), dev)
        backend_s = time.perf_counter() - t0
        walrus_s, drawn, same, X, ratios = 0.0, 0, True, [], []

        def direct(size: int, seed: int) -> np.ndarray:
            with isolated_global_rng(seed):
                if threshold:
                    return np.asarray(torontonian_sample_graph(A, mean_photons, size))
                return np.asarray(hafnian_sample_graph(A, mean_photons, size, cutoff=dev.cutoff))

        gbs.sample(2, seed=1)  # untimed warm-up of both paths at this size
        direct(2, 1)
        while drawn < samples:
            size, seed = min(25, samples - drawn), 1000 + drawn
            # Alternate which runs first, so neither always pays for cold caches (shared CPUs are noisy).
            first_backend = (drawn // 25) % 2 == 0
            timed = {}
            for who in (("backend", "thewalrus") if first_backend else ("thewalrus", "backend")):
                t0 = time.perf_counter()
                out_ = gbs.sample(size, seed=seed) if who == "backend" else direct(size, seed)
                timed[who] = (time.perf_counter() - t0, out_)
            backend_s += timed["backend"][0]
            walrus_s += timed["thewalrus"][0]
            ratios.append(timed["backend"][0] / timed["thewalrus"][0])
            same = same and np.array_equal(timed["backend"][1], timed["thewalrus"][1])
            X.append(timed["backend"][1])
            drawn += size
        backend_s /= samples
        walrus_s /= samples
        clicks = float((np.concatenate(X) > 0).sum(axis=1).mean())
        # Strawberry Fields' apps.sample: one call (program built and run) per sample.
        t0 = time.perf_counter()
        with isolated_global_rng(2):
            for _ in range(sf_apps_samples):
                sf_sample.sample(A, mean_photons, 1, threshold=threshold)
        sf_per_call_s = (time.perf_counter() - t0) / sf_apps_samples
        row = {"modes": m, "detectors": detectors, "samples": samples, "mean_clicks": round(clicks, 2), "same_samples": same,
               "backend_s_per_sample": backend_s, "thewalrus_s_per_sample": walrus_s,
               "sf_apps_per_call_s_per_sample": sf_per_call_s,
               "backend_over_thewalrus": backend_s / walrus_s,
               "median_batch_ratio": float(np.median(ratios)), "program_build_s": gbs.build_seconds, "sf_apps_over_thewalrus": sf_per_call_s / walrus_s,
               "peak_rss_mib": round(peak_rss_mib(), 1)}
        rows.append(row)
        log.info("modes %d done", m)
    return rows


# --------------------------------------------------------------------------- 2. quality
def quality(instances: list[tuple[str, Qubo, float | None]], options: dict, time_limit: float, seeds: list[int]) -> list[dict]:
    rows = []
    for name, qubo, ground in instances:
        if ground is None:
            ground = ExactSolver(max_variables=26).solve(qubo, seed=0, time_limit=60).best_energy
        solver = create_solver("photonic", {**options, "modes": max(qubo.num_variables, 8), "ablation": True})
        for seed in seeds:
            result = solver.solve(qubo, seed=seed, time_limit=time_limit)
            info, ab = result.info, result.info["ablation"]
            rows.append({
                "instance": name, "n": qubo.num_variables, "seed": seed, "mode": info["mode"], "optimum": ground,
                "samples": info["samples_drawn"], "clicks": round(info["mean_clicks_per_sample"], 2),
                "gbs_raw": info["best_energy_raw"], "gbs_pp": info["best_energy_postprocessed"],
                "gbs_pp_mean": info["mean_energy_postprocessed"],
                "rand_raw": ab["best_energy_raw"], "rand_pp": ab["best_energy_postprocessed"],
                "rand_pp_mean": ab["mean_energy_postprocessed"],
                "t_sim": result.timing.get("simulate", 0.0), "t_train": result.timing.get("train", 0.0),
                "t_pp": result.timing.get("postprocess", 0.0), "t_total": result.timing["total"],
                "peak_rss_mib": round(peak_rss_mib(), 1),
            })
            log.info("%s seed %d: gbs %s / random %s / optimum %s", name, seed,
                     rows[-1]["gbs_pp"], rows[-1]["rand_pp"], ground)
    return rows


def print_speed(rows: list[dict]) -> None:
    print(f"\n{'modes':>5} {'det':>9} {'clicks':>6} {'backend s/smp':>13} {'thewalrus':>10} {'ratio':>6} {'median':>6} "
          f"{'SF apps/call':>12} {'ratio':>6} {'RSS MiB':>8} {'same':>5}")
    for r in rows:
        print(f"{r['modes']:>5} {r['detectors']:>9} {r['mean_clicks']:>6} {r['backend_s_per_sample']:>13.4f} "
              f"{r['thewalrus_s_per_sample']:>10.4f} {r['backend_over_thewalrus']:>6.2f} {r['median_batch_ratio']:>6.2f} "
              f"{r['sf_apps_per_call_s_per_sample']:>12.4f} {r['sf_apps_over_thewalrus']:>6.2f} {r['peak_rss_mib']:>8} {str(r['same_samples']):>5}")


def print_quality(rows: list[dict]) -> None:
    print(f"\n{'instance':<36} {'n':>3} {'mode':>6} {'optimum':>9} {'GBS raw':>9} {'GBS pp':>9} {'pp mean':>9} "
          f"{'rand raw':>9} {'rand pp':>9} {'pp mean':>9} {'smp':>4} {'t_sim':>6} {'t_pp':>6}")
    for r in rows:
        print(f"{r['instance'][:36]:<36} {r['n']:>3} {r['mode']:>6} {r['optimum']:>9.2f} {r['gbs_raw']:>9.2f} "
              f"{r['gbs_pp']:>9.2f} {r['gbs_pp_mean']:>9.2f} {r['rand_raw']:>9.2f} {r['rand_pp']:>9.2f} "
              f"{r['rand_pp_mean']:>9.2f} {r['samples']:>4} {r['t_sim']:>6.2f} {r['t_pp']:>6.2f}")
    hit = lambda key: sum(abs(r[key] - r["optimum"]) < 1e-6 for r in rows)  # noqa: E731
    print(f"\noptimum reached: GBS raw {hit('gbs_raw')}/{len(rows)}, GBS+pp {hit('gbs_pp')}/{len(rows)}; "
          f"random raw {hit('rand_raw')}/{len(rows)}, random+pp {hit('rand_pp')}/{len(rows)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and budgets (about a minute)")
    parser.add_argument("--modes", type=int, nargs="+", default=[8, 16, 24, 32])
    parser.add_argument("--samples", type=int, default=40, help="samples per size in the speed section")
    parser.add_argument("--mean-photons", type=float, default=4.0)
    parser.add_argument("--detectors", choices=("threshold", "pnr"), default="threshold")
    parser.add_argument("--qubo", type=Path, action="append", default=[], help="extra QUBO file(s) to solve")
    parser.add_argument("--tiny", action="store_true", help=f"also solve the tiny freight sample ({TINY_PROBLEM.name})")
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--json", type=Path, help="write all rows to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.quick:
        args.modes, args.samples, args.seeds, args.time_limit = [8, 16, 24], 20, 1, 10.0
    out: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if not args.skip_speed:
        rows = speed(args.modes, args.samples, args.mean_photons, args.detectors,
                     sf_apps_samples=max(3, args.samples // 4))
        print_speed(rows)
        out["speed"] = rows
    if not args.skip_quality:
        instances: list[tuple[str, Qubo, float | None]] = []
        files = sorted(RAILWAY.glob("*.qubo.txt"))
        if args.quick:
            files = files[::4]
        for path in files:
            qubo, ground = load_qubo_file(path)
            instances.append((path.name.removesuffix(".qubo.txt"), qubo, ground))
        for groups, size in ([(4, 4)] if args.quick else [(4, 4), (4, 5), (5, 4), (4, 6)]):
            instances.append((f"onehot_{groups}x{size}", one_hot_qubo(groups, size, seed=groups * 10 + size), None))
        for n in ([12] if args.quick else [12, 16, 20]):
            # General QUBOs (no conflict structure): "auto" runs variational GBS on these.
            instances.append((f"random_{n}", random_qubo(n, seed=100 + n), None))
        for path in args.qubo:
            qubo, ground = load_qubo_file(path)
            instances.append((path.name, qubo, ground))
        if args.tiny:
            instances.append(("tiny", tiny_qubo(), None))
        options = {"samples": 60 if args.quick else 150, "train_steps": 20, "train_samples": 60}
        rows = quality(instances, options, args.time_limit, list(range(args.seeds)))
        print_quality(rows)
        out["quality"] = rows
    print(f"\npeak RSS: {peak_rss_mib():.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
