"""Benchmark of the photonic (GBS) backend: both devices, speed, state building, and what the raw
samples are worth on freight pieces and published railway QUBOs.

Sections (``--sections``; default: spatial-speed borealis-speed state pieces):

* ``spatial-speed`` -- seconds per sample vs modes of the spatial device (SF program built once,
  batches from its state), thewalrus's graph samplers called directly, and SF's own
  ``apps.sample.sample`` -- same graph, photons and seeds. Target: backend within 1.5x of thewalrus.
* ``borealis-speed`` -- seconds per sample of the Borealis device (exact joint state, thewalrus
  sampling, dark counts, decoding) against thewalrus's sampler called directly on the *same*
  covariance with the same seeds; program-building time. Target: within 1.5x.
* ``state`` -- time to build the unrolled state for 16, 24, 32 bins: this backend's transfer-matrix
  construction (one program, and the batch of knob+1 programs a gradient needs) against SF's
  ``TDMProgram`` space-unrolled and run on its gaussian backend; the largest covariance difference;
  and how much of the GBS-matrix space the loops reach (reachable pairs, local dimension).
* ``pieces`` -- conflict-structured pieces of the sample problems (``prepare`` + ``restrict.submodel``
  + ``encode``; whole shipments, shortlisted plans, every other variable held at the warm start)
  and the published railway QUBOs (``../shared/data/railway_qubo``; skipped when absent). For
  the spatial device and the Borealis device untrained and trained: raw samples (no
  post-processing) against uniformly random subsets of the same sizes -- mean energy, probability
  of a low-energy sample, the Mann-Whitney U p-value (one-sided: device energies lower); and the
  best energy raw vs after the shared post-processing (from device samples; from the warm start alone).
* ``quality`` -- the older end-to-end table (railway, random one-hot and general QUBOs against the
  exact optimum, GBS vs the random-subset ablation, post-processing included).
* ``startup`` -- the one-time start-up a cold machine pays (numba compiling thewalrus's kernels),
  measured in a subprocess with an empty ``NUMBA_CACHE_DIR``: the time-limit contract's allowance.

"Low-energy": E <= E* + 0.1 (mean E of the random subsets - E*), one threshold per instance (the
random subsets of all devices pooled), E* the piece's exact optimum (brute force) or the published
ground energy. Peak memory (max RSS) is printed per section.

    python benchmarks/photonic.py --quick
    nice -n 10 python benchmarks/photonic.py
    python benchmarks/photonic.py --sections startup
    python benchmarks/photonic.py --sections quality --qubo path/to/problem.qubo.txt
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
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
PROBLEMS = REPO / "problems"
SECTIONS = ("spatial-speed", "borealis-speed", "state", "pieces", "quality", "startup")

log = logging.getLogger("benchmarks.photonic")

LOOPS_CAN_AND_CANNOT = """\
What the loop structure can and cannot express (n bins, loops of delay d_l):
  * Bins i and j interfere only if |i - j| is a sum of loop delays the light can take; with delays
    1, 6, 36 every pair can be reached through repeated round trips of the delay-1 loop, but each
    round trip costs that loop's loss and every coupling goes through a chain of beamsplitters.
  * The knobs are n squeezings + per acting loop n phases and n - d angles: about 5n real numbers
    against the n (n + 1) real dimensions of a complex symmetric GBS matrix, so for n >= 5 the
    realisable matrices are a thin subset (the state section measures its local dimension).
  * A loop with delay >= n couples nothing (it is bypassed); 36 needs more than 36 bins.
  * The first d bins that reach a loop must fill it (cross), so they are never mixed with
    earlier light at that loop; the output order is fixed (variable i = i-th detected bin).
  * Loss is part of every coupling: a bin that circulates k times in a loop keeps eta^k of its light.
  * It cannot embed an arbitrary graph (no Takagi decomposition to program), so a QUBO is
    programmed by training the knobs on the expected energy, not by encoding its matrix."""


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


def freight_pieces(name: str, *, limit: int, count: int, plans: int, seed: int) -> list[tuple[str, Qubo, float | None]]:
    """Conflict-structured pieces of a sample problem: a seed shipment and the shipments that share
    capacity rows with it (shortlist: the warm start's plan and the cheapest others), every other
    variable held at the warm start; the piece's own QUBO (own penalty rule) up to ``limit`` variables."""
    from optimizer.freight.problem import load_problem
    from optimizer.qubo.encoding import encode
    from optimizer.qubo.restrict import submodel
    from optimizer.solving.config import Config
    from optimizer.solving.pipeline import prepare

    prepared = prepare(load_problem(PROBLEMS / f"{name}.toml"), Config())
    model, x = prepared.model, np.asarray(prepared.greedy, dtype=np.uint8)
    groups = [np.asarray(g) for g in model.groups]
    usage = np.stack([np.asarray((abs(model.A)[:, g]).sum(axis=1)).ravel() > 0 for g in groups])   # (G, rows)
    links = usage.astype(float) @ usage.T.astype(float)
    np.fill_diagonal(links, 0)
    field_ = model.c + ((model.P + model.P.T) @ x.astype(float) if model.P.nnz else 0.0)

    def shortlist(g: int) -> np.ndarray:
        m = groups[g]
        current, others = m[x[m] == 1], m[x[m] == 0]
        return np.sort(np.concatenate([current, others[np.argsort(field_[others], kind="stable")][: plans - current.size]]))

    rng = np.random.default_rng(seed)
    order = rng.permutation(np.flatnonzero(links.sum(axis=1) > 0)) if links.any() else rng.permutation(len(groups))
    out = []
    for g0 in order:
        units = [int(g0)]
        piece = None
        for g in [int(g0)] + [int(k) for k in np.argsort(-links[g0]) if links[g0, k] > 0]:
            trial = units if g == g0 else units + [g]
            variables = np.concatenate([shortlist(u) for u in trial])
            enc = encode(submodel(model, x, variables), reference=x[variables])
            if enc.qubo.num_variables > limit:
                break
            units, piece = trial, enc.qubo
        if piece is not None and len(units) >= 2:
            out.append((f"{name}[{'+'.join(str(u) for u in units)}]", piece, None))
        if len(out) >= count:
            break
    return out


def railway_instances(files_step: int = 1) -> list[tuple[str, Qubo, float | None]]:
    if not RAILWAY.is_dir():
        print(f"\n(railway QUBOs skipped: {RAILWAY} not found)")
        return []
    out = []
    for path in sorted(RAILWAY.glob("*.qubo.txt"))[::files_step]:
        qubo, ground = load_qubo_file(path)
        out.append((path.name.removesuffix(".qubo.txt"), qubo, ground))
    return out


# --------------------------------------------------------------------------- spatial speed
def spatial_speed(modes: list[int], samples: int, mean_photons: float, detectors: str, sf_apps_samples: int) -> list[dict]:
    from backends.photonic.compat import import_strawberryfields
    from backends.photonic.device import DeviceSpec, GBSSampler, encode, isolated_global_rng

    import_strawberryfields()
    from strawberryfields.apps import sample as sf_sample
    from thewalrus.samples import hafnian_sample_graph, torontonian_sample_graph

    threshold = detectors == "threshold"
    dev = DeviceSpec(modes=4, mean_photons=1.0, detectors=detectors)
    GBSSampler(encode(np.ones((4, 4)) - np.eye(4), dev), dev).sample(2, seed=0)
    rows = []
    for m in modes:
        rng = np.random.default_rng(m)
        A = np.triu((rng.random((m, m)) < 0.5).astype(float), 1)
        A = A + A.T
        dev = DeviceSpec(modes=m, mean_photons=mean_photons, detectors=detectors, samples=samples)
        t0 = time.perf_counter()
        gbs = GBSSampler(encode(A, dev), dev)
        build_s = time.perf_counter() - t0
        backend_s, walrus_s, drawn, same, X, ratios = 0.0, 0.0, 0, True, [], []

        def direct(size: int, seed: int) -> np.ndarray:
            with isolated_global_rng(seed):
                if threshold:
                    return np.asarray(torontonian_sample_graph(A, mean_photons, size))
                return np.asarray(hafnian_sample_graph(A, mean_photons, size, cutoff=dev.cutoff))

        gbs.sample(2, seed=1)
        direct(2, 1)
        while drawn < samples:
            size, seed = min(25, samples - drawn), 1000 + drawn
            timed = {}
            for who in (("backend", "thewalrus") if (drawn // 25) % 2 == 0 else ("thewalrus", "backend")):
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
        t0 = time.perf_counter()
        with isolated_global_rng(2):
            for _ in range(sf_apps_samples):
                sf_sample.sample(A, mean_photons, 1, threshold=threshold)
        sf_s = (time.perf_counter() - t0) / sf_apps_samples
        rows.append({"modes": m, "detectors": detectors, "mean_clicks": round(float((np.concatenate(X) > 0).sum(axis=1).mean()), 2),
                     "backend_s_per_sample": backend_s, "thewalrus_s_per_sample": walrus_s, "ratio": backend_s / walrus_s,
                     "median_batch_ratio": float(np.median(ratios)), "build_s": build_s, "sf_apps_s_per_sample": sf_s,
                     "sf_apps_ratio": sf_s / walrus_s, "same_samples": same, "peak_rss_mib": round(peak_rss_mib(), 1)})
        log.info("spatial speed: %d modes done", m)
    print(f"\nspatial device: seconds per sample\n{'modes':>5} {'det':>9} {'clicks':>6} {'backend':>9} {'thewalrus':>9} "
          f"{'ratio':>6} {'median':>6} {'build s':>8} {'SF apps':>9} {'ratio':>7} {'same':>5} {'RSS MiB':>8}")
    for r in rows:
        print(f"{r['modes']:>5} {r['detectors']:>9} {r['mean_clicks']:>6} {r['backend_s_per_sample']:>9.4f} "
              f"{r['thewalrus_s_per_sample']:>9.4f} {r['ratio']:>6.2f} {r['median_batch_ratio']:>6.2f} {r['build_s']:>8.3f} "
              f"{r['sf_apps_s_per_sample']:>9.4f} {r['sf_apps_ratio']:>7.1f} {str(r['same_samples']):>5} {r['peak_rss_mib']:>8}")
    return rows


# --------------------------------------------------------------------------- Borealis speed
def borealis_speed(bins: list[int], samples: int, detection: str) -> list[dict]:
    from backends.photonic import borealis as bo
    from backends.photonic.device import ensure_ready, isolated_global_rng
    from thewalrus.samples import hafnian_sample_state, torontonian_sample_state

    spec = bo.load_spec(overrides={"detection": detection, "bins": max(bins)})
    ensure_ready(spec.threshold)
    rows = []
    for n in bins:
        lay = bo.layout(spec, n)
        km = bo.KnobMap(spec, lay)
        theta = np.random.default_rng(n).uniform(km.lower, km.upper)
        theta[: n if not spec.uniform_squeezing else 1] = 0.7
        program = km.program(theta)
        t0 = time.perf_counter()
        device = bo.BorealisSampler(spec, program)
        build_s = time.perf_counter() - t0

        def direct(size: int, seed: int) -> np.ndarray:
            with isolated_global_rng(seed):
                if spec.threshold:
                    return np.asarray(torontonian_sample_state(device.cov, size, hbar=2, max_photons=30))
                return np.asarray(hafnian_sample_state(device.cov, size, hbar=2, cutoff=6, max_photons=30))

        # Warm-up: thewalrus's numba kernels compile lazily, a code path at a time (a sample with
        # more photons reaches deeper paths); a short warm-up left one side paying for it inside
        # the timed loop (427x at 8 bins on a fresh machine). Both draw the same warm-up samples.
        for k in range(max(2, samples // 2) // 5 + 1):
            device.sample(5, seed=k)
            direct(5, k)
        dev_s = walrus_s = 0.0
        drawn, same, X = 0, True, []
        while drawn < samples:
            size, seed = min(5, samples - drawn), 500 + drawn
            timed = {}
            # Small batches in alternating order, so that neither side is always first after the other.
            for who in (("device", "thewalrus") if (drawn // 5) % 2 == 0 else ("thewalrus", "device")):
                t0 = time.perf_counter()
                out_ = device.sample(size, seed=seed) if who == "device" else direct(size, seed)
                timed[who] = (time.perf_counter() - t0, out_)
            dev_s += timed["device"][0]
            walrus_s += timed["thewalrus"][0]
            same = same and np.array_equal(timed["device"][1], np.asarray(timed["thewalrus"][1]).reshape(size, n))
            X.append(timed["device"][1])
            drawn += size
        X = np.concatenate(X)
        rows.append({"bins": n, "detection": detection, "mean_photons": round(float(X.sum(axis=1).mean()), 2),
                     "expected_photons": round(device.expected_photons(), 2), "build_s": build_s,
                     "device_s_per_sample": dev_s / samples, "thewalrus_s_per_sample": walrus_s / samples,
                     "ratio": dev_s / walrus_s, "same_samples": same, "peak_rss_mib": round(peak_rss_mib(), 1)})
        log.info("borealis speed: %d bins done", n)
    print(f"\nBorealis device ({detection}): seconds per sample, same covariance and seeds as thewalrus\n"
          f"{'bins':>5} {'photons':>8} {'expected':>8} {'build s':>9} {'device':>9} {'thewalrus':>9} {'ratio':>6} {'same':>5} {'RSS MiB':>8}")
    for r in rows:
        print(f"{r['bins']:>5} {r['mean_photons']:>8} {r['expected_photons']:>8} {r['build_s']:>9.5f} "
              f"{r['device_s_per_sample']:>9.4f} {r['thewalrus_s_per_sample']:>9.4f} {r['ratio']:>6.2f} "
              f"{str(r['same_samples']):>5} {r['peak_rss_mib']:>8}")
    return rows


# --------------------------------------------------------------------------- unrolled state
def state_build(bins: list[int], repeats: int) -> list[dict]:
    from backends.photonic import borealis as bo

    spec = bo.load_spec(overrides={"bins": max(bins)})
    rows = []
    for n in bins:
        lay = bo.layout(spec, n)
        km = bo.KnobMap(spec, lay)
        theta = np.random.default_rng(n).uniform(km.lower, km.upper)
        program = km.program(theta)
        t0 = time.perf_counter()
        for _ in range(repeats):
            T = bo.transfer_matrices(spec, lay, program.phases[None], program.angles[None])
            V = bo.covariances(T, program.squeezing[None])[0]
        ours = (time.perf_counter() - t0) / repeats
        batch = np.vstack([theta[None], theta[None] + 1e-6 * np.eye(km.size)])
        t0 = time.perf_counter()
        sq, ph, an = km.arrays(batch)
        bo.covariances(bo.transfer_matrices(spec, lay, ph, an), sq)
        batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        V_sf, _ = bo.sf_state(spec, lay, program)
        sf_s = time.perf_counter() - t0
        space = bo.matrix_space(spec, lay, program)
        rows.append({"bins": n, "acting_loops": [d for d, a in zip(spec.delays, lay.active) if a], "ours_s": ours,
                     "gradient_batch_s": batched, "knobs": km.size, "sf_s": sf_s, "sf_over_ours": sf_s / ours,
                     "max_abs_diff": float(np.abs(V - V_sf).max()), **{k: space[k] for k in (
                         "reachable_pairs", "all_pairs", "local_dimension", "matrix_dimension")},
                     "peak_rss_mib": round(peak_rss_mib(), 1)})
        log.info("state: %d bins done", n)
    print(f"\nUnrolled state (delays {list(spec.delays)}): build time, ours vs SF's space-unrolled TDMProgram on its gaussian backend\n"
          f"{'bins':>5} {'loops':>8} {'ours s':>9} {'grad batch s':>12} {'knobs':>5} {'SF s':>8} {'SF/ours':>8} {'max |dV|':>9} "
          f"{'pairs reach/all':>15} {'dim local/all':>13} {'RSS MiB':>8}")
    for r in rows:
        print(f"{r['bins']:>5} {str(r['acting_loops']):>8} {r['ours_s']:>9.5f} {r['gradient_batch_s']:>12.4f} {r['knobs']:>5} "
              f"{r['sf_s']:>8.3f} {r['sf_over_ours']:>8.0f} {r['max_abs_diff']:>9.1e} "
              f"{str(r['reachable_pairs']) + '/' + str(r['all_pairs']):>15} "
              f"{str(r['local_dimension']) + '/' + str(r['matrix_dimension']):>13} {r['peak_rss_mib']:>8}")
    print("\n" + LOOPS_CAN_AND_CANNOT)
    return rows


# --------------------------------------------------------------------------- raw samples on pieces
DEVICES = {
    "spatial": {"mode": "clique"},
    "borealis-untrained": {"device": "borealis", "train_steps": 0},
    "borealis-trained": {"device": "borealis", "train_steps": 40},
}


def pieces(instances: list[tuple[str, Qubo, float | None]], samples: int, time_limit: float, seed: int) -> list[dict]:
    from scipy.stats import mannwhitneyu

    from backends.photonic.postprocess import random_subsets

    rows = []
    for name, qubo, ground in instances:
        n = qubo.num_variables
        exact = ExactSolver(max_variables=26).solve(qubo, seed=0, time_limit=120) if ground is None else None
        e_star = exact.best_energy if exact is not None else float(ground)
        start = np.zeros(n, np.uint8)
        runs = {}
        for device, opts in DEVICES.items():
            size_opts = {"modes": max(n, 4)} if device == "spatial" else {"borealis": {"bins": max(n, 24)}}
            base = {**opts, **size_opts, "samples": samples}
            raw = create_solver("photonic", {**base, "postprocess": False}).solve(qubo, seed=seed, time_limit=time_limit)
            X = np.repeat(raw.samples, raw.counts, axis=0)
            R = random_subsets(X.sum(axis=1), n, np.random.default_rng(seed + 1))
            pp = create_solver("photonic", base).solve(qubo, seed=seed, time_limit=time_limit, initial=start)
            runs[device] = (X, R, raw, pp)
            log.info("pieces: %s on %s done", name, device)
        # One threshold per instance, from random subsets with every device's sample sizes pooled.
        pooled = qubo.energies(np.concatenate([r[1] for r in runs.values()]))
        threshold = e_star + 0.1 * (pooled.mean() - e_star)
        for device, (X, R, raw, pp) in runs.items():
            E, ER = qubo.energies(X), qubo.energies(R)
            p = float(mannwhitneyu(E, ER, alternative="less").pvalue) if np.ptp(np.concatenate([E, ER])) > 0 else 1.0
            info = pp.info
            rows.append({
                "instance": name, "n": n, "device": device, "optimum": e_star, "samples": int(len(X)),
                "low_threshold": float(threshold), "mean_raw": float(E.mean()), "mean_random": float(ER.mean()),
                "expected_trained": info.get("training", {}).get("expected_energy_per_step", [None])[-1],
                "p_low_raw": float((E <= threshold + 1e-9).mean()), "p_low_random": float((ER <= threshold + 1e-9).mean()),
                "mannwhitney_p": p, "best_raw": float(E.min()), "best_pp_device": info["best_energy_postprocessed"],
                "best_pp_initial": info["best_energy_postprocessed_from_initial"], "best_origin": pp.best_origin,
                "seconds": raw.timing["total"] + pp.timing["total"], "peak_rss_mib": round(peak_rss_mib(), 1)})
    print("\nRaw samples vs uniform random subsets of the same sizes (no post-processing); then the shared post-processing\n"
          "(low: E <= E* + 0.1 (mean E of random subsets with all devices' sizes pooled - E*); pp dev / pp init: best after local search from device samples / from the all-zero warm start)")
    print(f"{'instance':<34} {'n':>3} {'device':<18} {'E*':>10} {'mean raw':>11} {'mean rand':>11} {'P low':>6} {'P low r':>7} "
          f"{'MW p':>8} {'best raw':>10} {'pp dev':>10} {'pp init':>10} {'best from':>13} {'s':>5}")
    for r in rows:
        print(f"{r['instance'][:34]:<34} {r['n']:>3} {r['device']:<18} {r['optimum']:>10.4g} {r['mean_raw']:>11.5g} "
              f"{r['mean_random']:>11.5g} {r['p_low_raw']:>6.3f} {r['p_low_random']:>7.3f} {r['mannwhitney_p']:>8.1e} "
              f"{r['best_raw']:>10.5g} {r['best_pp_device']:>10.5g} {r['best_pp_initial']:>10.5g} {r['best_origin']:>13} "
              f"{r['seconds']:>5.1f}")
    for device in DEVICES:
        sel = [r for r in rows if r["device"] == device]
        if not sel:
            continue
        better = sum(r["mean_raw"] < r["mean_random"] for r in sel)
        signif = sum(r["mannwhitney_p"] < 0.01 for r in sel)
        opt_raw = sum(abs(r["best_raw"] - r["optimum"]) <= 1e-6 * max(1, abs(r["optimum"])) for r in sel)
        print(f"{device:<18}: mean raw energy below random on {better}/{len(sel)}; Mann-Whitney p < 0.01 on "
              f"{signif}/{len(sel)}; raw best = optimum on {opt_raw}/{len(sel)}; "
              f"mean P(low) raw {np.mean([r['p_low_raw'] for r in sel]):.3f} vs random {np.mean([r['p_low_random'] for r in sel]):.3f}")
    return rows


# --------------------------------------------------------------------------- end-to-end quality (older table)
def quality(instances: list[tuple[str, Qubo, float | None]], options: dict, time_limit: float, seeds: list[int]) -> list[dict]:
    rows = []
    for name, qubo, ground in instances:
        if ground is None:
            ground = ExactSolver(max_variables=26).solve(qubo, seed=0, time_limit=60).best_energy
        solver = create_solver("photonic", {**options, "modes": max(qubo.num_variables, 8), "ablation": True})
        for seed in seeds:
            result = solver.solve(qubo, seed=seed, time_limit=time_limit)
            info, ab = result.info, result.info["ablation"]
            rows.append({"instance": name, "n": qubo.num_variables, "seed": seed, "mode": info["mode"], "optimum": ground,
                         "gbs_raw": info["best_energy_raw"], "gbs_pp": info["best_energy_postprocessed"],
                         "rand_raw": ab["best_energy_raw"], "rand_pp": ab["best_energy_postprocessed"],
                         "t_total": result.timing["total"]})
    print(f"\n{'instance':<36} {'n':>3} {'mode':>6} {'optimum':>9} {'GBS raw':>9} {'GBS pp':>9} {'rand raw':>9} {'rand pp':>9} {'s':>5}")
    for r in rows:
        print(f"{r['instance'][:36]:<36} {r['n']:>3} {r['mode']:>6} {r['optimum']:>9.2f} {r['gbs_raw']:>9.2f} "
              f"{r['gbs_pp']:>9.2f} {r['rand_raw']:>9.2f} {r['rand_pp']:>9.2f} {r['t_total']:>5.1f}")
    return rows


# --------------------------------------------------------------------------- cold start
def startup() -> dict:
    """Start-up in fresh processes: numba cache empty (first run on a machine) and warm."""
    import tempfile

    code = ("import time; t = time.perf_counter(); from backends.photonic.device import ensure_ready; "
            "a = ensure_ready(True); b = ensure_ready(False); print(a, b, time.perf_counter() - t)")
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold cache", "warm cache"):
            r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                               env={**os.environ, "NUMBA_CACHE_DIR": cache})
            tor, haf, total = map(float, r.stdout.split()[-3:])
            out[label] = {"threshold_s": tor, "pnr_s": haf, "total_s": total}
    print("\nStart-up allowance of the time-limit contract (fresh processes; SF import included in the first figure)")
    for label, r in out.items():
        print(f"  {label}: threshold sampler {r['threshold_s']:.1f} s, PNR sampler {r['pnr_s']:.1f} s, total {r['total_s']:.1f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=["spatial-speed", "borealis-speed", "state", "pieces"])
    parser.add_argument("--quick", action="store_true", help="small sizes and budgets")
    parser.add_argument("--modes", type=int, nargs="+", default=[8, 16, 24, 32], help="spatial-speed sizes")
    parser.add_argument("--bins", type=int, nargs="+", default=[8, 12, 16, 20, 24], help="borealis-speed sizes")
    parser.add_argument("--state-bins", type=int, nargs="+", default=[16, 24, 32])
    parser.add_argument("--samples", type=int, default=40, help="samples per size in the speed sections")
    parser.add_argument("--piece-samples", type=int, default=200)
    parser.add_argument("--mean-photons", type=float, default=4.0)
    parser.add_argument("--detectors", choices=("threshold", "pnr"), default="threshold")
    parser.add_argument("--qubo", type=Path, action="append", default=[], help="extra QUBO file(s) (pieces, quality)")
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write all rows to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.quick:
        args.modes, args.bins, args.state_bins, args.samples, args.piece_samples = [8, 16], [8, 16], [16, 24], 20, 100
        args.seeds, args.time_limit = 1, 10.0
    out: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if "spatial-speed" in args.sections:
        out["spatial_speed"] = spatial_speed(args.modes, args.samples, args.mean_photons, args.detectors,
                                             sf_apps_samples=max(3, args.samples // 4))
    if "borealis-speed" in args.sections:
        out["borealis_speed"] = [*borealis_speed(args.bins, args.samples, "threshold"),
                                 *borealis_speed(args.bins, args.samples, "pnr")]
    if "state" in args.sections:
        out["state"] = state_build(args.state_bins, repeats=20)
    if "pieces" in args.sections:
        instances = [*freight_pieces("tiny", limit=24, count=1 if args.quick else 2, plans=4, seed=0),
                     *freight_pieces("china-core", limit=24, count=2 if args.quick else 4, plans=4, seed=0),
                     *railway_instances(4 if args.quick else 2)]
        for path in args.qubo:
            qubo, ground = load_qubo_file(path)
            instances.append((path.name, qubo, ground))
        out["pieces"] = pieces(instances, args.piece_samples, args.time_limit, seed=0)
    if "quality" in args.sections:
        instances = [*railway_instances(4 if args.quick else 1),
                     *[(f"onehot_{g}x{s}", one_hot_qubo(g, s, seed=g * 10 + s), None) for g, s in ([(4, 4)] if args.quick else [(4, 4), (4, 5), (5, 4)])],
                     *[(f"random_{n}", random_qubo(n, seed=100 + n), None) for n in ([12] if args.quick else [12, 16, 20])]]
        out["quality"] = quality(instances, {"samples": 60 if args.quick else 150, "train_steps": 20, "train_samples": 60},
                                 args.time_limit, list(range(args.seeds)))
    if "startup" in args.sections:
        out["startup"] = startup()
    print(f"\npeak RSS: {peak_rss_mib():.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
