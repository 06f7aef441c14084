"""The Borealis-style time-domain device: spec validation, the unrolled state against Strawberry
Fields' own, joint sampling against thewalrus's exact probabilities, the correlations a marginal
sampler loses, decoding, training through the knobs, and the conformance suite on this device."""

from __future__ import annotations

import inspect
import itertools
import json

import numpy as np
import pytest

from backends import create_solver
from backends.photonic import borealis as bo
from backends.photonic.device import ensure_ready
from optimizer.errors import ConfigError
from optimizer.qubo import Qubo
from tests import test_conformance as conformance
from tests.conftest import PROBLEMS, one_hot_qubo

LOSSY = {"source_efficiency": 0.9, "detector_efficiency": 0.85, "channel_efficiencies": [1.0, 0.93, 0.97]}


def small_spec(delays, open_loops=None, **extra) -> bo.BorealisSpec:
    L = len(delays)
    fields = {"delays": list(delays), "open_loops": list(open_loops or [True] * L),
              "loop_efficiencies": [0.93, 0.88, 0.8][:L], "loop_phases": [0.478, -1.1, 2.3][:L], **LOSSY, **extra}
    return bo.load_spec(overrides=fields)


def random_program(spec: bo.BorealisSpec, n: int, seed: int, *, squeezing: float | None = None) -> bo.LoopProgram:
    lay = bo.layout(spec, n)
    km = bo.KnobMap(spec, lay)
    theta = np.random.default_rng(seed).uniform(km.lower, km.upper)
    program = km.program(theta)
    if squeezing is not None:
        program = bo.LoopProgram(np.full(n, squeezing), program.phases, program.angles)
    return program


def state(spec, program):
    lay = bo.layout(spec, program.squeezing.size)
    T = bo.transfer_matrices(spec, lay, program.phases[None], program.angles[None])
    return T[0], bo.covariances(T, program.squeezing[None])[0]


@pytest.fixture(scope="module")
def kernels():
    ensure_ready(True)
    ensure_ready(False)


# --------------------------------------------------------------------------- the spec
def test_default_spec_is_the_documented_borealis_layout():
    spec = bo.default_spec()
    assert spec.delays == (1, 6, 36) and spec.open_loops == (True, True, True)
    assert spec.detection == "pnr" and spec.bins == 24
    assert spec.source_efficiency * spec.detector_efficiency == pytest.approx(0.551)
    assert len(spec.channel_efficiencies) == 16 and max(spec.channel_efficiencies) == 1.0
    assert spec.beamsplitter_range == (0.0, pytest.approx(np.pi / 2))
    assert create_solver("photonic", {"device": "borealis"}).max_variables == 24


BAD_SPECS = [
    ({"delays": [1, 0, 36]}, "borealis.delays", "positive"),
    ({"delays": [1, -6, 36]}, "borealis.delays", "positive"),
    ({"loop_efficiencies": [0.9, 1.2, 0.8]}, "borealis.loop_efficiencies", "[0, 1]"),
    ({"source_efficiency": -0.1}, "borealis.source_efficiency", "[0, 1]"),
    ({"channel_efficiencies": [1.0, 1.5]}, "borealis.channel_efficiencies", "[0, 1]"),
    ({"squeezing_range": [1.0, 0.2]}, "borealis.squeezing_range", "reversed"),
    ({"phase_range": [0.5, -0.5]}, "borealis.phase_range", "reversed"),
    ({"beamsplitter_range": [1.0, 0.0]}, "borealis.beamsplitter_range", "reversed"),
    ({"bins": 2, "delays": [1, 1, 1]}, "borealis.delays", "more loops (3) than time bins (2)"),
    ({"open_loops": [True, False]}, "borealis.open_loops", "one per loop"),
    ({"detection": "bolometer"}, "borealis.detection", "expected one of"),
    ({"colour": "blue"}, "borealis.colour", "unknown field"),
]


@pytest.mark.parametrize("fields,field,reason", BAD_SPECS, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_SPECS)])
def test_bad_device_specs_are_refused_naming_the_field(fields, field, reason):
    with pytest.raises(ConfigError) as err:
        create_solver("photonic", {"device": "borealis", "borealis": fields})
    assert field in str(err.value) and reason in str(err.value)


def test_spec_file_is_read_and_validated(tmp_path):
    good = tmp_path / "dev.toml"
    good.write_text("[borealis]\nbins = 10\ndelays = [1, 2]\nopen_loops = [true, false]\n"
                    "loop_efficiencies = [0.9, 0.8]\nloop_phases = [0.0, 0.0]\n")
    solver = create_solver("photonic", {"device": "borealis", "spec": str(good)})
    assert solver.max_variables == 10 and solver.spec.open_loops == (True, False)
    bad = tmp_path / "bad.toml"
    bad.write_text("delays = [1, 6, 0]\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*borealis\.delays"):
        create_solver("photonic", {"device": "borealis", "spec": str(bad)})
    with pytest.raises(ConfigError, match="option.*of the spatial device"):
        create_solver("photonic", {"device": "borealis", "modes": 8})


def test_cli_solves_tiny_on_borealis_and_exits_2_on_a_bad_spec(tmp_path, capsys):
    from optimizer.cli import main

    good = tmp_path / "good.toml"
    good.write_text('[backends.photonic]\ndevice = "borealis"\nsamples = 60\n')
    code = main(["solve", str(PROBLEMS / "tiny.toml"), "--backend", "photonic", "--config", str(good),
                 "--time-limit", "10", "--out", str(tmp_path / "out")])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    # tiny's QUBO is larger than the device's 24 bins: the pipeline decomposes it into pieces.
    assert result["backend"] == "photonic" and "photonic" in result["solver"]["solver"]
    assert result["feasible"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[backends.photonic]\ndevice = "borealis"\n[backends.photonic.borealis]\nloop_efficiencies = [0.9, 1.5, 0.8]\n')
    code = main(["solve", str(PROBLEMS / "tiny.toml"), "--backend", "photonic", "--config", str(bad),
                 "--out", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert code == 2 and "borealis.loop_efficiencies" in err and "[0, 1]" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the unrolled state
@pytest.mark.parametrize("n,delays,open_loops", [(5, (1,), None), (6, (1, 2), None), (4, (2,), None),
                                                 (6, (1, 3), (True, False)), (5, (2, 3), None),
                                                 (6, (1, 6, 36), None), (4, (), None)])
def test_covariance_equals_strawberry_fields_space_unrolled_state(n, delays, open_loops):
    spec = small_spec(delays, open_loops)
    program = random_program(spec, n, seed=n + len(delays))
    lay = bo.layout(spec, n)
    _, V = state(spec, program)
    V_sf, crop = bo.sf_state(spec, lay, program)
    assert crop == lay.crop            # SF's vacuum_padding puts the first computational bin where we do
    np.testing.assert_allclose(V, V_sf, atol=1e-10, rtol=0)


def test_lossless_transfer_is_unitary_and_cross_only_program_keeps_bins_apart():
    spec = bo.load_spec(overrides={"source_efficiency": 1.0, "detector_efficiency": 1.0,
                                   "loop_efficiencies": [1.0, 1.0, 1.0], "channel_efficiencies": [1.0]})
    T, _ = state(spec, random_program(spec, 14, seed=3))
    np.testing.assert_allclose(T @ T.conj().T, np.eye(14), atol=1e-12)
    lay = bo.layout(spec, 14)
    T0, _ = state(spec, bo.initial_program(spec, lay, 0.5))
    np.testing.assert_allclose(np.abs(T0), np.eye(14), atol=1e-12)   # output bin i <- source bin i only


def test_decoding_variable_i_is_output_bin_i(kernels):
    """Light in source bin j only, all loops at cross: every click lands on variable j, nothing else."""
    spec = bo.default_spec()
    lay = bo.layout(spec, 9)
    r = np.zeros(9)
    r[2] = 1.0
    device = bo.BorealisSampler(spec, bo.initial_program(spec, lay, r))
    X = bo.decode(device.sample(200, seed=1))
    assert X[:, 2].mean() > 0.2
    assert X[:, np.arange(9) != 2].sum() == 0
    np.testing.assert_array_equal(bo.decode(np.array([[0, 3, 0, 0], [1, 0, 0, 2]])), [[0, 1, 0, 0], [1, 0, 0, 1]])


def test_bypassed_loops_and_knob_ranges():
    spec = bo.default_spec()
    lay = bo.layout(spec, 8)
    assert lay.active == (True, True, False) and lay.bypassed == (2,) and lay.crop == 7
    km = bo.KnobMap(spec, lay)
    assert km.size == 8 + (8 + 7) + (8 + 2)      # squeezing, loop 1 (phases, angles after the fill), loop 6
    program = km.program(km.upper)
    km.check(program)
    moved = bo.LoopProgram(program.squeezing, program.phases, program.angles.copy())
    moved.angles[0, 0] = 0.3                        # the bin that fills the delay-1 loop must stay at cross
    with pytest.raises(ValueError, match="fixed knobs"):
        km.check(moved)
    uniform = bo.load_spec(overrides={"uniform_squeezing": True})
    assert bo.KnobMap(uniform, lay).size == km.size - 7


# --------------------------------------------------------------------------- sampling
def _chi_square_pvalue(X: np.ndarray, probs: dict) -> float:
    from scipy.stats import chisquare

    shots = len(X)
    observed: dict = {}
    for row in map(tuple, X):
        observed[row] = observed.get(row, 0) + 1
    keys = [k for k, p in probs.items() if p * shots >= 5]
    obs = [observed.get(k, 0) for k in keys]
    exp = [probs[k] * shots for k in keys]
    obs.append(shots - sum(obs))
    exp.append(shots - sum(exp))
    exp = np.asarray(exp) * (sum(obs) / sum(exp))
    return float(chisquare(obs, exp).pvalue)


def test_threshold_click_patterns_match_thewalrus_exact_probabilities(kernels):
    from thewalrus import threshold_detection_prob

    spec = small_spec((1, 2), detection="threshold")
    program = random_program(spec, 5, seed=11, squeezing=0.6)
    device = bo.BorealisSampler(spec, program)
    X = device.sample(1500, seed=2024)
    mu = np.zeros(10)
    probs = {p: float(np.real(threshold_detection_prob(mu, device.cov, np.array(p), hbar=2)))
             for p in itertools.product((0, 1), repeat=5)}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-8)
    pvalue = _chi_square_pvalue(X, probs)
    assert pvalue > 1e-3, f"joint samples disagree with thewalrus's exact probabilities (p = {pvalue:.2g})"
    # The exact click model used for training agrees with the same probabilities.
    m1 = bo.ClickModel(Qubo.from_terms(5), 0.0).click_probabilities(device.cov[None])[0]
    marg = np.array([sum(p for k, p in probs.items() if k[i]) for i in range(5)])
    np.testing.assert_allclose(m1, marg, atol=1e-9)


def test_pnr_photon_counts_match_thewalrus_exact_probabilities(kernels):
    from thewalrus.quantum import probabilities

    spec = small_spec((1,))
    program = random_program(spec, 4, seed=5, squeezing=0.5)
    device = bo.BorealisSampler(spec, program, cutoff=6)
    X = device.sample(1200, seed=7)
    table = probabilities(np.zeros(8), device.cov, cutoff=5, hbar=2)
    probs = {p: float(table[p]) for p in itertools.product(range(5), repeat=4)}
    pvalue = _chi_square_pvalue(X, probs)
    assert pvalue > 1e-3, f"PNR samples disagree with thewalrus (p = {pvalue:.2g})"


def _pair_program():
    spec = small_spec((1,), detection="threshold")
    program = bo.LoopProgram(np.array([0.8, 0.8]), np.array([[0.0, 0.26]]), np.array([[0.0, np.pi / 4]]))
    return spec, program


def test_loop_coupled_bins_keep_their_click_correlation(kernels):
    """Bins 0 and 1 meet on the delay-1 loop's 50:50 beamsplitter. The exact click covariance is far
    from 0 (what sampling each bin from its marginal gives); joint sampling reproduces it."""
    spec, program = _pair_program()
    device = bo.BorealisSampler(spec, program)
    model = bo.ClickModel(Qubo.from_terms(2, rows=[0], cols=[1], weights=[1.0]), 0.0)
    m1, m2 = model.moments(device.cov[None])
    exact = float(m2[0, 0] - m1[0, 0] * m1[0, 1])
    shots = 3000
    X = bo.decode(device.sample(shots, seed=3)).astype(float)
    sigma = np.std((X[:, 0] - X[:, 0].mean()) * (X[:, 1] - X[:, 1].mean())) / np.sqrt(shots)
    assert exact > 10 * sigma, "the program should correlate the two bins measurably"
    empirical = float(np.cov(X.T, bias=True)[0, 1])
    assert abs(empirical - exact) < 4 * sigma
    # A marginal sampler (what SF's TDM simulation does) cannot reproduce it.
    rng = np.random.default_rng(3)
    marginal = (rng.random((shots, 2)) < m1[0]).astype(float)
    assert abs(float(np.cov(marginal.T, bias=True)[0, 1]) - exact) > 8 * sigma


def test_dark_counts_enter_samples_and_the_exact_model(kernels):
    spec = small_spec((1,), detection="threshold", dark_count_probability=0.2)
    lay = bo.layout(spec, 3)
    dark_only = bo.BorealisSampler(spec, bo.initial_program(spec, lay, 0.0))
    X = dark_only.sample(2000, seed=1)
    assert X.mean() == pytest.approx(0.2, abs=0.03)
    model = bo.ClickModel(Qubo.from_terms(3), 0.2)
    np.testing.assert_allclose(model.click_probabilities(dark_only.cov[None]), 0.2, atol=1e-12)


def test_expected_energy_is_exact(kernels):
    """The training objective equals the energy averaged over thewalrus's exact pattern
    probabilities, dark counts folded in by hand."""
    from thewalrus import threshold_detection_prob

    dark = 0.05
    spec = small_spec((1, 2), detection="threshold", dark_count_probability=dark)
    program = random_program(spec, 4, seed=9, squeezing=0.7)
    _, V = state(spec, program)
    qubo = Qubo.from_dense(np.random.default_rng(4).normal(size=(4, 4)), offset=0.5)
    patterns = np.array(list(itertools.product((0, 1), repeat=4)))
    light = np.array([float(np.real(threshold_detection_prob(np.zeros(8), V, p, hbar=2))) for p in patterns])
    # With independent dark counts, the observed pattern is light OR dark.
    observed = np.zeros(len(patterns))
    for a, pa in zip(patterns, light):
        for b in patterns:
            pb = np.prod(np.where(b == 1, dark, 1 - dark))
            observed[np.flatnonzero((patterns == (a | b)).all(axis=1))[0]] += pa * pb
    expected = float(observed @ qubo.energies(patterns.astype(np.uint8)))
    assert bo.ClickModel(qubo, dark).expected_energy(V[None])[0] == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------- programming a QUBO
def test_training_lowers_expected_and_sampled_energy_within_the_ranges(kernels):
    qubo = one_hot_qubo(3, 4, seed=8)
    opts = {"device": "borealis", "samples": 400, "postprocess": False}
    before = create_solver("photonic", {**opts, "train_steps": 0}).solve(qubo, seed=2, time_limit=30)
    after = create_solver("photonic", {**opts, "train_steps": 40}).solve(qubo, seed=2, time_limit=30)
    tr = after.info["training"]
    assert tr["steps"] >= 5 and len(tr["expected_energy_per_step"]) == tr["steps"] + 1
    assert tr["expected_energy_per_step"][-1] < tr["expected_energy_per_step"][0] - 0.5
    # The sampled mean energy follows the exact expectation, before and after training.
    for res, exact in ((before, before.info["training"]["expected_energy_per_step"][-1]),
                       (after, tr["expected_energy_per_step"][-1])):
        e = np.repeat(res.energies, res.counts)
        assert abs(e.mean() - exact) < 4 * e.std() / np.sqrt(len(e))
    assert after.info["mean_energy_raw"] < before.info["mean_energy_raw"]
    spec = create_solver("photonic", opts).spec
    program = bo.LoopProgram(*(np.asarray(after.info["program"][k]) for k in ("squeezing", "phases", "angles")))
    bo.KnobMap(spec, bo.layout(spec, 12)).check(program)   # every knob within the spec's ranges
    space = after.info["matrix_space"]
    assert 0 < space["local_dimension"] <= space["knobs"] and space["matrix_dimension"] == 12 * 13
    assert space["reachable_pairs"] < space["all_pairs"] or space["local_dimension"] < space["matrix_dimension"]
    assert {"mean_transmission", "loop_efficiencies"} <= set(after.info["loss"])
    assert len(tr["mean_photons_per_step"]) == tr["steps"] + 1
    json.dumps(after.info)


def test_same_seed_same_result_and_raw_samples_only_without_postprocessing(kernels):
    qubo = one_hot_qubo(2, 4, seed=5)
    opts = {"device": "borealis", "samples": 50, "train_steps": 5}
    a = create_solver("photonic", opts).solve(qubo, seed=9, time_limit=20)
    b = create_solver("photonic", opts).solve(qubo, seed=9, time_limit=20)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.counts, b.counts)
    c = create_solver("photonic", opts).solve(qubo, seed=10, time_limit=20)
    assert not (np.array_equal(a.samples, c.samples) and np.array_equal(a.counts, c.counts))
    raw = create_solver("photonic", {**opts, "postprocess": False}).solve(
        qubo, seed=9, time_limit=20, initial=np.zeros(8, np.uint8))
    assert set(raw.origins) == {"device"} and raw.num_reads == 50


# --------------------------------------------------------------------------- the conformance suite
BOREALIS_FAST = {"device": "borealis", "samples": 100, "train_steps": 10}
# Every conformance check that needs only the backend (and a case): the suite's own functions, run
# with the photonic backend's fast options swapped for a borealis-configured solver.
CONFORMANCE = sorted(name for name, fn in vars(conformance).items()
                     if name.startswith("test_") and inspect.isfunction(fn)
                     and "backend" in inspect.signature(fn).parameters
                     and set(inspect.signature(fn).parameters) <= {"backend", "case"})


@pytest.mark.parametrize("check", CONFORMANCE)
def test_conformance_suite_passes_on_the_borealis_device(check, monkeypatch, kernels):
    monkeypatch.setitem(conformance.FAST_OPTIONS, "photonic", BOREALIS_FAST)
    fn = getattr(conformance, check)
    params = inspect.signature(fn).parameters
    cases = sorted(conformance.CASES) if "case" in params else [None]
    for case in cases:
        kwargs = {"backend": "photonic", **({"case": case} if case else {})}
        fn(**kwargs)
