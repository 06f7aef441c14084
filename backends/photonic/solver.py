"""``PhotonicSolver``: Gaussian boson sampling on simulated photonic hardware as a QUBO heuristic.

Two devices (``device``):

* ``"spatial"`` (default) -- a programmable-interferometer chip (:mod:`.device`): any real symmetric
  matrix is embedded exactly (Takagi decomposition, Clements mesh) on Strawberry Fields' gaussian
  backend. Two ways to choose the matrix (``mode``):

  - ``"clique"`` -- GBS-seeded clique search (Arrazola & Bromley, PRL 121, 030503 (2018); Banchi
    et al., Sci. Adv. 6, eaax1950 (2020)): the node-weighted compatibility graph of the QUBO, node
    weights from the plans' costs with the penalty removed (:class:`.postprocess.QuboStructure`).
  - ``"vgbs"`` -- variational GBS (Banchi, Quesada & Arrazola, PRA 102, 012417 (2020)): mode
    weights trained with SF's stochastic cost (``apps.train``).
  - ``"auto"`` picks ``clique`` when the QUBO has one-hot groups or MWIS shape, else ``vgbs``.

* ``"borealis"`` -- a Borealis-style time-domain device (:mod:`.borealis`): one source, loops of
  1, 6 and 36 bins, per-bin squeezing / beamsplitter / phase knobs within the spec's ranges, loss
  everywhere, PNR or threshold detection. The knobs are trained on the exact expected QUBO energy
  of the decoded samples; all bins are sampled jointly from the program's exact state.

Samples, and what they are (``SampleSet.origins``): ``device`` -- raw device samples decoded
(click on bin / mode i means x_i = 1); ``postprocessed`` -- clique shrinking and QUBO local search
started from device samples, or local search started from the warm start ``initial`` alone (kept
apart in ``info["origins"]`` and ``info["best_energy_postprocessed_from_initial"]``, so a pipeline
can tell what the device contributed); ``initial`` -- the warm start row itself. With
``postprocess=False`` the result holds device samples only.

Time limit: the whole call counts, start-up included. Training, sampling and post-processing
ask one deadline; samples are drawn in batches of 1, 2, 4, ... up to ``batch_size`` (a fixed
schedule, so a seed gives the same samples whatever the machine's speed, unless the budget
binds) and each batch is cut to what the measured time per sample says fits the budget. The overrun stays within
10 % of the limit plus the start-up allowance ``timing["startup"]``: importing Strawberry Fields
and loading thewalrus's numba kernels, measured in every call (0 once done in the process;
about 2 s in a fresh process; 29-40 s for the torontonian and 10 s for the hafnian sampler once
per machine, when numba's on-disk cache is empty: ``benchmarks/photonic.py --sections startup``).
``tests/test_photonic.py`` checks it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import ClassVar

import numpy as np

from optimizer.qubo import Qubo
from optimizer.solving.solver import SampleSet, check_size
from optimizer.solving.stop import Deadline

from .device import DeviceSpec, GBSSampler, encode, ensure_ready

__all__ = ["PhotonicSolver", "MODES", "DEVICES"]

log = logging.getLogger(__name__)

MODES = ("auto", "clique", "vgbs")
DEVICES = ("spatial", "borealis")
#: Share of the time limit that training and sampling may use; post-processing gets the rest.
DEVICE_SHARE = 0.6
#: Share that training may use (VGBS on the spatial device, knob training on Borealis).
TRAIN_SHARE = 0.3


def _weighted_mean(values: np.ndarray, counts: np.ndarray) -> float | None:
    """Count-weighted mean energy of post-processed candidates (how often post-processing lands low)."""
    if len(values) == 0:
        return None
    return float(np.average(values, weights=counts))


def _budget(deadline: Deadline, share_of_limit: float) -> Deadline:
    """A stage budget that ends ``share_of_limit`` of the run's limit after the run started (never later
    than the run's own deadline)."""
    return Deadline(max(0.0, min(share_of_limit * deadline.seconds - deadline.elapsed, deadline.remaining)))


class PhotonicSolver:
    """GBS on a simulated photonic device, with shared post-processing (see the module docstring).

    Device: ``device`` ("spatial" | "borealis").
    Spatial device options: ``modes`` (largest QUBO, one mode per variable; default 16),
    ``mean_photons`` (target of the squeezed state; 4.0), ``max_squeezing`` (cap on r; 1.5),
    ``transmissivity`` (1 - loss per mode; 1.0), ``detectors`` ("threshold" | "pnr"; threshold),
    ``sampler`` ("state": SF program run once, batches from its state via thewalrus; "engine").
    Borealis device options: ``spec`` (path of a spec TOML file; default: the packaged
    ``borealis.toml``), ``borealis`` (a table of spec fields that override it, e.g. ``bins``).
    Common: ``max_variables`` (default: the device size), ``samples`` (per call), ``batch_size``
    (largest sampling batch), ``cutoff`` / ``max_photons`` (PNR Fock cutoff; samples above
    max_photons are redrawn), ``train_steps`` (VGBS steps, or L-BFGS-B iterations of the Borealis
    knob training), ``postprocess`` (False: device samples only), ``ablation`` (also post-process
    uniformly random subsets of the same sizes).
    Method (spatial): ``mode`` ("auto" | "clique" | "vgbs"), ``conflict_ratio`` (J_ij >= ratio *
    min(|h_i|, |h_j|) makes a conflict), ``weight_bias`` (how sharply node weights fall with a
    plan's cost above its shipment's cheapest), ``clique_iterations`` (SF clique.search steps),
    ``train_samples``, ``learning_rate``, ``resample_every`` (VGBS).
    """

    name: ClassVar[str] = "photonic"
    # A sampling heuristic: it may miss the exact optimum (the conformance suite then checks the
    # weaker bound). Everything else (energies, determinism, size limit, time limit) it must meet.
    heuristic: ClassVar[frozenset[str]] = frozenset({"optimum"})

    def __init__(
        self,
        *,
        device: str = "spatial",
        spec: str | None = None,
        borealis: Mapping[str, object] | None = None,
        modes: int | None = None,
        max_variables: int | None = None,
        mean_photons: float | None = None,
        max_squeezing: float | None = None,
        transmissivity: float | None = None,
        detectors: str | None = None,
        samples: int = 200,
        batch_size: int = 25,
        cutoff: int = 6,
        max_photons: int = 30,
        sampler: str = "state",
        mode: str = "auto",
        conflict_ratio: float = 1.0,
        weight_bias: float = 1.0,
        clique_iterations: int = 10,
        train_steps: int = 30,
        train_samples: int = 100,
        learning_rate: float = 0.3,
        resample_every: int = 10,
        ablation: bool = False,
        postprocess: bool = True,
    ):
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        self.device_kind = device
        self.spatial: DeviceSpec | None = None
        self.spec = None
        if device == "spatial":
            if spec is not None or borealis is not None:
                raise ValueError("spec and borealis are options of device = 'borealis'")
            self.spatial = DeviceSpec(
                modes=16 if modes is None else modes, mean_photons=4.0 if mean_photons is None else mean_photons,
                max_squeezing=1.5 if max_squeezing is None else max_squeezing,
                transmissivity=1.0 if transmissivity is None else transmissivity,
                detectors="threshold" if detectors is None else detectors, samples=samples, cutoff=cutoff,
                max_photons=max_photons)
            size = self.spatial.modes
        else:
            from .borealis import load_spec

            spatial_only = [k for k, v in (("modes", modes), ("mean_photons", mean_photons),
                                           ("max_squeezing", max_squeezing), ("transmissivity", transmissivity),
                                           ("detectors", detectors)) if v is not None]
            if spatial_only:
                raise ValueError(f"{', '.join(spatial_only)}: option(s) of the spatial device; the borealis device "
                                 "takes its size, loss and detection from its spec (spec / [backends.photonic.borealis])")
            if mode != "auto" or sampler != "state":
                raise ValueError("mode and sampler are options of the spatial device; the borealis device is always "
                                 "trained on the QUBO and sampled from its exact state")
            if borealis is not None and not isinstance(borealis, Mapping):
                raise ValueError("borealis must be a table of spec fields")
            self.spec = load_spec(spec, borealis)
            size = self.spec.bins
            if samples < 1 or cutoff < 2 or max_photons < 1:
                raise ValueError("samples must be >= 1, cutoff >= 2 and max_photons >= 1")
        if max_variables is None:
            max_variables = size
        if not 1 <= max_variables <= size:
            raise ValueError(f"max_variables must be between 1 and the device size ({size}), got {max_variables}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if sampler not in ("state", "engine"):
            raise ValueError(f"sampler must be 'state' or 'engine', got {sampler!r}")
        if batch_size < 1 or clique_iterations < 0 or train_steps < 0 or train_samples < 1 or resample_every < 1:
            raise ValueError("batch_size, train_samples, resample_every must be >= 1; "
                             "clique_iterations, train_steps >= 0")
        if not learning_rate > 0 or not conflict_ratio >= 0 or not weight_bias >= 0:
            raise ValueError("learning_rate must be > 0; conflict_ratio and weight_bias >= 0")
        self.max_variables = max_variables
        self.samples = samples
        self.cutoff, self.max_photons = cutoff, max_photons
        self.batch_size = batch_size
        self.sampler = sampler
        self.mode = mode
        self.conflict_ratio = conflict_ratio
        self.weight_bias = weight_bias
        self.clique_iterations = clique_iterations
        self.train_steps = train_steps
        self.train_samples = train_samples
        self.learning_rate = learning_rate
        self.resample_every = resample_every
        self.ablation = ablation
        self.postprocess = postprocess

    @property
    def threshold(self) -> bool:
        return self.spec.threshold if self.spec is not None else self.spatial.threshold

    # ------------------------------------------------------------------ sampling
    def _sample(self, draw: Callable[[int, int], np.ndarray], shots: int, n: int, rng: np.random.Generator, *,
                budget: Deadline, stats: dict) -> np.ndarray:
        """Up to ``shots`` patterns in batches of 1, 2, 4, ... ``batch_size``, seeded from ``rng``.

        The batch schedule does not depend on timing, so a seed gives the same samples on any
        machine unless the budget binds; then the last batch is cut to what fits and the loop
        stops. The first batch (one sample) always runs.
        """
        batches, drawn, spent, size = [], 0, 0.0, 1
        t1 = time.perf_counter()
        while drawn < shots:
            size = min(size, shots - drawn)
            if drawn:
                # Shrink the batch to what the time left allows (only when the budget binds, so only
                # then does timing change the samples); none fits: stop.
                per = spent / drawn
                size = min(size, int(budget.remaining / per) if per > 0 else size)
                if size < 1:
                    break
            seed = int(rng.integers(2**32))
            t = time.perf_counter()
            batches.append(np.asarray(draw(size, seed), dtype=np.int64).reshape(size, n))
            spent += time.perf_counter() - t
            drawn += size
            size = min(2 * size, self.batch_size)
        stats["simulate"] += time.perf_counter() - t1
        X = np.concatenate(batches) if batches else np.zeros((0, n), np.int64)
        stats["samples"] += len(X)
        stats["photons"] += int(X.sum())
        stats["clicks"] += int((X > 0).sum())
        return X

    def _draw_spatial(self, A: np.ndarray, shots: int, rng: np.random.Generator, *, budget: Deadline,
                      stats: dict, rescale: bool = True) -> np.ndarray:
        """Encode A, build the SF program once, and draw ``shots`` samples within ``budget``."""
        t0 = time.perf_counter()
        circuit = encode(A, self.spatial, rescale=rescale)
        gbs = GBSSampler(circuit, self.spatial, sampler=self.sampler)
        stats["compile"] += time.perf_counter() - t0
        stats["squeezing_capped"] = stats["squeezing_capped"] or circuit.squeezing_capped
        stats["expected_photons"].append(gbs.expected_photons())
        return self._sample(lambda k, s: gbs.sample(k, seed=s), shots, A.shape[0], rng, budget=budget, stats=stats)

    # ------------------------------------------------------------------ the two devices
    def _run_spatial(self, qubo: Qubo, structure, energies, rng, deadline: Deadline, stats: dict,
                     info: dict, timing: dict) -> tuple[np.ndarray, str]:
        mode = self.mode
        if mode == "auto":
            mode = "clique" if structure.has_conflict_structure() else "vgbs"
        info.update(mode=mode, device_spec=self.spatial.as_dict(), sampler=self.sampler)
        training = None
        if mode == "vgbs":
            from .vgbs import train

            t0 = time.perf_counter()
            A0 = encode(structure.vgbs_matrix(), self.spatial).A
            train_budget = _budget(deadline, TRAIN_SHARE)
            training = train(
                A0, energy=energies, threshold=self.spatial.threshold, steps=self.train_steps,
                draw=lambda A, k: self._draw_spatial(A, k, rng, budget=train_budget, stats=stats, rescale=False),
                learning_rate=self.learning_rate, train_samples=self.train_samples,
                resample_every=self.resample_every, max_singular=float(np.tanh(self.spatial.max_squeezing)),
                out_of_time=train_budget.expired)
            timing["train"] = time.perf_counter() - t0
            info.update(training_steps=training.steps, training_resamples=training.resamples,
                        training_samples=training.samples_drawn)
            A_final = training.A
        else:
            A_final = structure.clique_matrix()
            info.update(training_steps=0)
        patterns = self._draw_spatial(A_final, self.spatial.samples, rng, budget=_budget(deadline, DEVICE_SHARE),
                                      stats=stats, rescale=training is None)
        info["samples_final"] = len(patterns)
        if training is not None:
            # Expected QUBO energy under the device's distribution, per training round, then trained.
            info["mean_energy_per_round"] = [float(energies(S).mean()) for S in [*training.samples, patterns]
                                             if len(S)]
            if training.samples:
                # Training batches are GBS samples too: post-process them alongside the final ones.
                patterns = np.concatenate([*training.samples, patterns])
        return patterns, mode

    def _run_borealis(self, qubo: Qubo, structure, energies, rng, deadline: Deadline, stats: dict,
                      info: dict, timing: dict) -> tuple[np.ndarray, str]:
        from .borealis import (BorealisSampler, ClickModel, KnobMap, covariances, initial_program, layout,
                               matrix_space, train_program, transfer_matrices)

        spec, n = self.spec, qubo.num_variables
        t0 = time.perf_counter()
        lay = layout(spec, n)
        km = KnobMap(spec, lay)
        # Start: every loop at cross (output bin i carries source bin i), squeezing following the
        # node weights (cheap plans brighter), at the overall level with the lowest exact energy.
        lo, hi = spec.squeezing_range
        levels = np.linspace(lo, hi, 9)[1:] if hi > lo else np.array([hi])
        shape = structure.weights / structure.weights.max()
        starts = [initial_program(spec, lay, np.clip(level * (1.0 if spec.uniform_squeezing else shape), lo, hi))
                  for level in levels]
        thetas = np.stack([km.vector(p) for p in starts])
        sq, ph, an = km.arrays(thetas)
        model = ClickModel(qubo, spec.dark_count_probability)
        scan = model.expected_energy(covariances(transfer_matrices(spec, lay, ph, an), sq))
        start = starts[int(np.argmin(scan))]
        training = train_program(spec, lay, qubo, start, steps=self.train_steps,
                                 out_of_time=_budget(deadline, TRAIN_SHARE).expired)
        timing["train"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        device = BorealisSampler(spec, training.program, cutoff=self.cutoff, max_photons=self.max_photons)
        space = matrix_space(spec, lay, training.program)
        timing["compile"] = time.perf_counter() - t1
        stats["expected_photons"].append(device.expected_photons())
        patterns = self._sample(lambda k, s: device.sample(k, seed=s), self.samples, n, rng,
                                budget=_budget(deadline, DEVICE_SHARE), stats=stats)
        transmission = (np.abs(device.T) ** 2).sum(axis=0)   # per source bin: share reaching the detectors
        mode = "clique" if structure.has_conflict_structure() else "local"
        info.update(
            mode="borealis", postprocessing=mode, device_spec=spec.as_dict(), samples_final=len(patterns),
            layout={"bins_used": n, "acting_loops": [d for d, a in zip(spec.delays, lay.active) if a],
                    "bypassed_loops": [spec.delays[l] for l in lay.bypassed], "crop": lay.crop,
                    "program_length": lay.length},
            decoding=f"variable i <- output time bin crop + i (crop = {lay.crop}); x_i = 1 iff that bin "
                     "registered light (a click, or >= 1 photon), dark counts included",
            training_steps=training.steps,
            training={"steps": training.steps, "evaluations": training.evaluations, "stop": training.stop,
                      "seconds": training.seconds, "expected_energy_per_step": training.energies,
                      "mean_photons_per_step": training.photons,
                      "start_squeezing_scan": {"levels": levels.tolist(), "expected_energy": scan.tolist()}},
            mean_energy_per_round=training.energies,
            loss={"source_efficiency": spec.source_efficiency, "detector_efficiency": spec.detector_efficiency,
                  "loop_efficiencies": list(spec.loop_efficiencies),
                  "mean_transmission": float(transmission.mean()), "min_transmission": float(transmission.min()),
                  "max_transmission": float(transmission.max())},
            matrix_space=space,
            program=training.program.as_dict(),
        )
        return patterns, mode

    # ------------------------------------------------------------------ solve
    def solve(self, qubo: Qubo, *, seed: int, time_limit: float,
              initial: np.ndarray | None = None) -> SampleSet:
        from .postprocess import QuboStructure, clique_candidates, local_search, random_subsets

        deadline = Deadline(time_limit)
        check_size(self, qubo)
        n = qubo.num_variables
        if n == 0:
            return SampleSet.from_samples(qubo, np.zeros((1, 0), np.uint8), solver=self.name, timing={"total": 0.0})
        timing: dict[str, float] = {"startup": ensure_ready(self.threshold)}
        rng = np.random.default_rng(seed)
        structure = QuboStructure.of(qubo, conflict_ratio=self.conflict_ratio, weight_bias=self.weight_bias)
        stats: dict = {"compile": 0.0, "simulate": 0.0, "samples": 0, "photons": 0, "clicks": 0,
                       "squeezing_capped": False, "expected_photons": []}
        info: dict[str, object] = {"device": self.device_kind, "modes_used": n, "optimal": False,
                                   "startup_seconds": timing["startup"]}

        def energies(X: np.ndarray) -> np.ndarray:
            return qubo.energies((np.asarray(X) > 0).astype(np.uint8))

        run = self._run_borealis if self.device_kind == "borealis" else self._run_spatial
        patterns, mode = run(qubo, structure, energies, rng, deadline, stats, info, timing)
        raw = (patterns > 0).astype(np.uint8)
        raw_energies = energies(raw)
        sizes = raw.sum(axis=1)

        # The ablation gets the same post-processing budget the device samples got (so it may extend
        # the wall time of a run that asks for it; it is a diagnostic, off by default).
        pp_budget = deadline.remaining

        def pipeline(X: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray, dict]:
            """The post-processing that device samples and the ablation's random subsets go through."""
            t0 = time.perf_counter()
            pp_deadline = deadline if source == "device" else Deadline(pp_budget)
            counts = np.ones(len(X), dtype=np.int64)
            detail: dict[str, object] = {}
            if mode == "clique":
                C, c_counts, processed = clique_candidates(
                    structure, X, seed=int(rng.integers(2**32)), iterations=self.clique_iterations,
                    deadline=pp_deadline)
                detail["subgraphs_processed"] = processed
                # Local search starts from the clique candidates and from the raw samples too:
                # on QUBOs with slack bits a clique can sit in a basin the raw sample is not in,
                # and descending from both keeps post-processing from ending above the raw best.
                if len(C):
                    X = np.vstack([C, X])
                    counts = np.concatenate([c_counts, counts])
            evaluated = 0
            if len(X):
                X, evaluated = local_search(structure, X, deadline=pp_deadline)
            detail["local_search_moves_evaluated"] = evaluated
            detail["seconds"] = time.perf_counter() - t0
            return X, counts, detail

        empty = np.zeros((0, n), np.uint8)
        pp_X, pp_counts, pp_info = (pipeline(raw, "device") if self.postprocess
                                    else (empty, np.zeros(0, np.int64), {"seconds": 0.0}))
        start = None if initial is None else np.asarray(initial, dtype=np.uint8).reshape(1, n)
        init_X = empty
        if self.postprocess and start is not None:
            # The same local search from the warm start alone: a stand-in the pipeline can compare with.
            init_X, _ = local_search(structure, start, deadline=deadline)
        timing["postprocess"] = pp_info["seconds"]

        def best(X: np.ndarray) -> float | None:
            return float(energies(X).min()) if len(X) else None

        info.update(
            samples_drawn=stats["samples"],
            mean_photons_per_sample=stats["photons"] / max(stats["samples"], 1) if not self.threshold else None,
            mean_clicks_per_sample=stats["clicks"] / max(stats["samples"], 1),
            expected_photons_at_detectors=[float(p) for p in stats["expected_photons"]],
            squeezing_capped=bool(stats["squeezing_capped"]),
            best_energy_raw=best(raw),
            mean_energy_raw=float(raw_energies.mean()) if len(raw) else None,
            best_energy_postprocessed=best(pp_X),
            best_energy_postprocessed_from_initial=best(init_X),
            best_energy_initial=best(start) if start is not None and self.postprocess else None,
            mean_energy_postprocessed=_weighted_mean(energies(pp_X), pp_counts),
            postprocess={k: v for k, v in pp_info.items() if k != "seconds"},
            origins={"device": int(len(raw)), "postprocessed_from_device": int(len(pp_X)),
                     "postprocessed_from_initial": int(len(init_X)),
                     "initial": int(start is not None and self.postprocess)},
        )
        if self.ablation:
            # Same sizes, same count, same post-processing: only the sample source differs.
            X_rand = random_subsets(sizes, n, rng)
            ab_X, ab_counts, ab_info = pipeline(X_rand, "random")
            timing["ablation"] = ab_info["seconds"]
            info["ablation"] = {
                "source": "uniform random subsets with the device samples' sizes",
                "samples": int(len(X_rand)),
                "best_energy_raw": best(X_rand),
                "best_energy_postprocessed": best(ab_X),
                "mean_energy_postprocessed": _weighted_mean(energies(ab_X), ab_counts),
                **{k: v for k, v in ab_info.items() if k != "seconds"},
            }
        timing["compile"] = timing.get("compile", 0.0) + stats["compile"]
        timing["simulate"] = stats["simulate"]
        timing["total"] = deadline.elapsed
        parts = [(raw, np.ones(len(raw), np.int64), "device"), (pp_X, pp_counts, "postprocessed"),
                 (init_X, np.ones(len(init_X), np.int64), "postprocessed")]
        if start is not None and self.postprocess:
            parts.append((start, np.ones(1, np.int64), "initial"))
        parts = [p for p in parts if len(p[0])]
        rows = np.vstack([p[0] for p in parts])
        counts = np.concatenate([p[1] for p in parts])
        origins = [o for p in parts for o in [p[2]] * len(p[0])]
        return SampleSet.from_samples(qubo, rows, solver=self.name, counts=counts, origins=origins,
                                      timing=timing, info=info)
