"""A Borealis-style time-domain GBS device: its spec, loop programs, the exact state of the unrolled
program, joint sampling, and programming a QUBO through the loops' own knobs.

The device (Madsen et al., Nature 606, 75-81 (2022)): one source emits a train of squeezed time bins;
the train passes loops of ``delays`` bins in turn; at every time step each loop's variable
beamsplitter (angle alpha, transmission cos^2 alpha) couples the bin arriving at the loop with the
bin the loop has stored since ``delay`` steps, after a phase modulator on the arriving bin; the loop
keeps one output and passes the other on; loss acts at the source, on every round trip and at the
detectors; the detectors resolve photon numbers (or clicks). Nothing else is programmable: no
arbitrary interferometer, only per-bin squeezing, beamsplitter angles and phases within the spec's
ranges.

Conventions (those of Strawberry Fields' Borealis layout, so that its TDM programs and this module
describe the same device): ``Rgate(phi)`` on the arriving bin, ``BSgate(alpha, pi/2)`` on
(arriving, stored), the first output goes into the loop and picks up the loop's intrinsic phase
``Rgate(loop_phase)`` and its round-trip loss, the second output travels on. alpha = 0 is *cross*
(the arriving bin enters the loop, the stored one leaves), alpha = pi/2 is *bar* (the bin bypasses
the loop). The first ``delay`` bins that reach an open loop are set to cross (they fill it) and, after
the last bin, cross settings flush it (SF's ``tdm.vacuum_padding``), so exactly ``n`` computational
bins reach the detectors, starting ``crop`` = sum of the acting loops' delays steps after the first.

Decoding: variable i of the QUBO is the i-th computational output bin (time step ``crop + i``);
``x_i = 1`` when that bin registers at least one photon (PNR) or a click (threshold), dark counts
included.

Whose is what:

* Strawberry Fields: the program description. :func:`sf_program` writes the device as an
  ``sf.TDMProgram`` (mode layout from ``sf.tdm.get_mode_indices``, padding and crop from
  ``sf.tdm.vacuum_padding``), space-unrolls it and runs SF's gaussian backend *without*
  measurement; that state is the reference the tests compare against. SF's own TDM sampling is
  not used: its gaussian backend samples each bin from its marginal, cropping multi-loop programs
  raises ``NotImplementedError`` and measured space-unrolled runs fail in ``reshape_samples``
  (:data:`backends.photonic.compat.KNOWN_SF_LIMITS`); ``tdm.full_compile`` is hardware-specific
  (it snaps squeezing to the hardware's few uniform levels) and is not used either.
* This module: the unrolled transfer matrix ``T`` (``n`` output bins x ``n`` source bins, loss
  included) computed directly and vectorised over a batch of knob settings
  (:func:`transfer_matrices`), the state ``V = I + S_T (V_in - I) S_T^T`` (hbar = 2, xxpp),
  exact click moments from vacuum probabilities, and the training.
* thewalrus: joint sampling of all bins from that one covariance (``torontonian_sample_state`` /
  ``hafnian_sample_state``), so click correlations between bins are kept.

Programming a QUBO: a loop device cannot embed an arbitrary graph, so its knobs are trained
(in the spirit of variational GBS, Banchi, Quesada & Arrazola, PRA 102, 012417 (2020)) to lower
the expected QUBO energy of the decoded samples. Because the energy is quadratic in the decoded
bits, its expectation needs only the single and pairwise click probabilities, which are exact
functions of the Gaussian state: ``P(no click on S) = (1 - p_dark)^|S| / sqrt(det((V_S + I) / 2))``.
The objective is therefore exact (no sampling noise); its gradient is a forward difference over all
knobs at once (one batched state build), and L-BFGS-B keeps every knob within the spec's ranges.
"""

from __future__ import annotations

import math
import time
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np

from optimizer.qubo import Qubo

__all__ = [
    "BorealisSpec", "SpecError", "Layout", "LoopProgram", "KnobMap", "BorealisSampler", "Training",
    "ClickModel", "load_spec", "default_spec", "layout", "initial_program", "transfer_matrices",
    "covariances", "decode", "sf_program", "sf_state", "train_program", "matrix_space", "DETECTIONS",
]

DETECTIONS = ("pnr", "threshold")
HALF_PI = math.pi / 2
_FIELDS = ("bins", "delays", "open_loops", "source_efficiency", "detector_efficiency", "loop_efficiencies",
           "channel_efficiencies", "loop_phases", "dark_count_probability", "squeezing_range",
           "beamsplitter_range", "phase_range", "detection", "uniform_squeezing")


class SpecError(ValueError):
    """A device spec is invalid; the message names every bad field (``borealis.<field>``)."""

    def __init__(self, source: str | None, problems: list[tuple[str, str, object]]):
        self.source = source
        self.fields = [f for f, _, _ in problems]
        where = f" ({source})" if source else ""
        super().__init__(f"device spec{where}: " + "; ".join(
            f"borealis.{f}: {why} (got {value!r})" for f, why, value in problems))


@dataclass(frozen=True)
class BorealisSpec:
    """A validated device spec. Efficiencies are transmissions in [0, 1]; angles in radians.

    ``bins``: time bins per shot (largest QUBO). ``delays``: loop lengths in bins, in path order.
    ``loop_efficiencies``: per round trip. ``channel_efficiencies``: relative, detector channel
    ``t mod len`` reads time step ``t``. ``dark_count_probability``: per bin and shot.
    ``squeezing_range`` / ``beamsplitter_range`` / ``phase_range``: (low, high) of the knobs.
    """

    bins: int
    delays: tuple[int, ...]
    open_loops: tuple[bool, ...]
    source_efficiency: float
    detector_efficiency: float
    loop_efficiencies: tuple[float, ...]
    channel_efficiencies: tuple[float, ...]
    loop_phases: tuple[float, ...]
    dark_count_probability: float
    squeezing_range: tuple[float, float]
    beamsplitter_range: tuple[float, float]
    phase_range: tuple[float, float]
    detection: str
    uniform_squeezing: bool

    @property
    def loops(self) -> int:
        return len(self.delays)

    @property
    def threshold(self) -> bool:
        return self.detection == "threshold"

    def as_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, source: str | None = None) -> BorealisSpec:
        """Validate a complete mapping of spec fields; every problem is reported at once."""
        problems: list[tuple[str, str, object]] = []
        for key in data:
            if key not in _FIELDS:
                problems.append((str(key), f"unknown field; known: {', '.join(_FIELDS)}", data[key]))
        for key in _FIELDS:
            if key not in data:
                problems.append((key, "missing", None))
        if problems:
            raise SpecError(source, problems)

        def number(key: str, value: object, *, integer: bool = False) -> float | None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
                problems.append((key, "expected an integer" if integer else "expected a number", value))
                return None
            if not math.isfinite(value):
                problems.append((key, "must be finite", value))
                return None
            return value

        def sequence(key: str, *, length: int | None = None) -> list | None:
            value = data[key]
            if not isinstance(value, (list, tuple)):
                problems.append((key, "expected a list", value))
                return None
            if length is not None and len(value) != length:
                problems.append((key, f"expected {length} entries, one per loop (delays has {length})", value))
                return None
            return list(value)

        def efficiency(key: str, value: object) -> float | None:
            v = number(key, value)
            if v is not None and not 0.0 <= v <= 1.0:
                problems.append((key, "an efficiency must be in [0, 1]", value))
                return None
            return v

        def span(key: str, low: float, high: float) -> tuple[float, float] | None:
            value = sequence(key)
            if value is None:
                return None
            if len(value) != 2:
                problems.append((key, "expected [low, high]", data[key]))
                return None
            lo, hi = number(key, value[0]), number(key, value[1])
            if lo is None or hi is None:
                return None
            if lo > hi:
                problems.append((key, "range reversed: low > high", data[key]))
                return None
            if lo < low - 1e-12 or hi > high + 1e-12:
                problems.append((key, f"must lie within [{low:.6g}, {high:.6g}]", data[key]))
                return None
            return float(lo), float(hi)

        bins = number("bins", data["bins"], integer=True)
        if bins is not None and bins < 1:
            problems.append(("bins", "must be >= 1", bins))
            bins = None
        delays = sequence("delays")
        if delays is not None:
            checked = [number("delays", d, integer=True) for d in delays]
            if any(d is None for d in checked):
                delays = None
            elif any(d < 1 for d in checked):
                problems.append(("delays", "every loop delay must be a positive number of time bins", data["delays"]))
                delays = None
            elif bins is not None and len(checked) > bins:
                problems.append(("delays", f"more loops ({len(checked)}) than time bins ({bins})", data["delays"]))
                delays = None
        loops = len(delays) if delays is not None else None
        open_loops = sequence("open_loops", length=loops)
        if open_loops is not None and not all(isinstance(v, bool) for v in open_loops):
            problems.append(("open_loops", "expected true/false per loop", data["open_loops"]))
            open_loops = None
        loop_eff = sequence("loop_efficiencies", length=loops)
        if loop_eff is not None:
            loop_eff = [efficiency("loop_efficiencies", v) for v in loop_eff]
        phases = sequence("loop_phases", length=loops)
        if phases is not None:
            phases = [number("loop_phases", v) for v in phases]
        channels = sequence("channel_efficiencies")
        if channels is not None:
            if not channels:
                problems.append(("channel_efficiencies", "needs at least one detector channel", channels))
            channels = [efficiency("channel_efficiencies", v) for v in channels]
        source_eff = efficiency("source_efficiency", data["source_efficiency"])
        detector_eff = efficiency("detector_efficiency", data["detector_efficiency"])
        dark = number("dark_count_probability", data["dark_count_probability"])
        if dark is not None and not 0.0 <= dark < 1.0:
            problems.append(("dark_count_probability", "a probability per bin, in [0, 1)", dark))
        squeezing = span("squeezing_range", 0.0, 10.0)
        bs = span("beamsplitter_range", 0.0, HALF_PI)
        if bs is not None and bs[0] > 0.0:
            problems.append(("beamsplitter_range", "must include 0 (cross), which fills and empties the loops", data["beamsplitter_range"]))
        phase = span("phase_range", -math.pi, math.pi)
        detection = data["detection"]
        if detection not in DETECTIONS:
            problems.append(("detection", f"expected one of {', '.join(DETECTIONS)}", detection))
        uniform = data["uniform_squeezing"]
        if not isinstance(uniform, bool):
            problems.append(("uniform_squeezing", "expected true or false", uniform))
        if problems:
            raise SpecError(source, problems)
        return cls(bins=int(bins), delays=tuple(int(d) for d in delays), open_loops=tuple(open_loops),
                   source_efficiency=float(source_eff), detector_efficiency=float(detector_eff),
                   loop_efficiencies=tuple(float(v) for v in loop_eff),
                   channel_efficiencies=tuple(float(v) for v in channels),
                   loop_phases=tuple(float(v) for v in phases), dark_count_probability=float(dark),
                   squeezing_range=squeezing, beamsplitter_range=bs, phase_range=phase, detection=str(detection),
                   uniform_squeezing=bool(uniform))


def _read_toml(text: str, source: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(source, [("(file)", f"not valid TOML: {exc}", None)]) from None


def default_spec_mapping() -> dict[str, object]:
    """The packaged default spec (``borealis.toml`` beside this module), unvalidated."""
    return _read_toml(files("backends.photonic").joinpath("borealis.toml").read_text(encoding="utf-8"),
                      "borealis.toml")


def default_spec() -> BorealisSpec:
    return BorealisSpec.from_mapping(default_spec_mapping(), source="borealis.toml (packaged default)")


def load_spec(path: str | Path | None = None, overrides: Mapping[str, object] | None = None) -> BorealisSpec:
    """The packaged default, then the keys of the spec file ``path``, then ``overrides``; validated.

    A spec file holds the fields at top level or under a ``[borealis]`` table.
    """
    data = default_spec_mapping()
    source = None
    if path is not None:
        source = str(path)
        p = Path(path)
        if not p.is_file():
            raise SpecError(source, [("(file)", "no such spec file (a path relative to the working directory)", source)])
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(source, [("(file)", f"cannot read: {exc}", None)]) from None
        user = _read_toml(text, source)
        if set(user) == {"borealis"} and isinstance(user["borealis"], Mapping):
            user = dict(user["borealis"])
        data.update(user)
    if overrides:
        if not isinstance(overrides, Mapping):
            raise SpecError(source, [("(table)", "expected a table of spec fields", overrides)])
        data.update(overrides)
        source = f"{source} + [backends.photonic.borealis]" if source else "[backends.photonic.borealis]"
    return BorealisSpec.from_mapping(data, source=source)


# --------------------------------------------------------------------------- program layout and knobs
@dataclass(frozen=True)
class Layout:
    """How an ``n``-bin program sits on the device.

    ``active[l]``: loop l acts (open and shorter than the program); ``bypassed``: open loops set to
    bar throughout because their delay is >= n (they could couple no two bins, only add loss);
    ``offsets[l]``: time step at which the first computational bin reaches loop l; ``crop``: step of
    the first computational output bin; ``length``: steps in the padded program (n + crop).
    """

    n: int
    active: tuple[bool, ...]
    bypassed: tuple[int, ...]
    offsets: tuple[int, ...]
    crop: int
    length: int


def layout(spec: BorealisSpec, n: int) -> Layout:
    if not 1 <= n <= spec.bins:
        raise ValueError(f"a program needs 1..{spec.bins} bins, got {n}")
    active, bypassed, offsets, t = [], [], [], 0
    for l, (d, is_open) in enumerate(zip(spec.delays, spec.open_loops)):
        offsets.append(t)
        acts = bool(is_open and d < n)
        if is_open and not acts:
            bypassed.append(l)
        active.append(acts)
        t += d if acts else 0
    return Layout(n=n, active=tuple(active), bypassed=tuple(bypassed), offsets=tuple(offsets), crop=t, length=n + t)


@dataclass(frozen=True, eq=False)
class LoopProgram:
    """The knobs of one shot: ``squeezing[k]`` (r of source bin k, ``Sgate(r)``), and for each loop l
    ``phases[l, k]`` / ``angles[l, k]`` applied to the k-th computational bin reaching loop l."""

    squeezing: np.ndarray   # (n,)
    phases: np.ndarray      # (L, n)
    angles: np.ndarray      # (L, n)

    def as_dict(self) -> dict[str, object]:
        return {"squeezing": self.squeezing.tolist(), "phases": self.phases.tolist(), "angles": self.angles.tolist()}


class KnobMap:
    """The free knobs of a layout as one real vector (what training moves), with their bounds.

    Squeezing: one knob per bin (one in all when ``uniform_squeezing``). Per acting loop: a phase for
    every bin reaching it, and an angle for every bin after the first ``delay`` (which fill the loop
    and are fixed at cross). Loops that do not act hold bar (angle pi/2) and phase 0.
    """

    def __init__(self, spec: BorealisSpec, lay: Layout):
        self.spec, self.layout = spec, lay
        n, L = lay.n, spec.loops
        self._sq = 1 if spec.uniform_squeezing else n
        slots = []   # (kind, loop, first bin)
        for l in range(L):
            if lay.active[l]:
                slots.append(("phase", l, 0))
                slots.append(("angle", l, spec.delays[l]))
        self._slots = slots
        self.size = self._sq + sum(n - first for _, _, first in slots)
        lo, hi = [spec.squeezing_range[0]] * self._sq, [spec.squeezing_range[1]] * self._sq
        for kind, _, first in slots:
            rng = spec.phase_range if kind == "phase" else spec.beamsplitter_range
            lo += [rng[0]] * (n - first)
            hi += [rng[1]] * (n - first)
        self.lower, self.upper = np.array(lo), np.array(hi)

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return list(zip(self.lower.tolist(), self.upper.tolist()))

    def arrays(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(K, size) knob vectors -> squeezing (K, n), phases (K, L, n), angles (K, L, n)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        K, n, L = theta.shape[0], self.layout.n, self.spec.loops
        sq = np.broadcast_to(theta[:, : self._sq], (K, n)).copy()
        phases = np.zeros((K, L, n))
        angles = np.full((K, L, n), HALF_PI)
        for l in range(L):
            if self.layout.active[l]:
                angles[:, l, :] = 0.0
        at = self._sq
        for kind, l, first in self._slots:
            width = n - first
            target = phases if kind == "phase" else angles
            target[:, l, first:] = theta[:, at: at + width]
            at += width
        return sq, phases, angles

    def program(self, theta: np.ndarray) -> LoopProgram:
        sq, ph, an = self.arrays(theta)
        return LoopProgram(squeezing=sq[0], phases=ph[0], angles=an[0])

    def vector(self, program: LoopProgram) -> np.ndarray:
        n = self.layout.n
        parts = [np.asarray(program.squeezing[: self._sq] if self._sq == n else [program.squeezing[0]], float)]
        for kind, l, first in self._slots:
            parts.append((program.phases if kind == "phase" else program.angles)[l, first:])
        return np.concatenate(parts)

    def check(self, program: LoopProgram) -> None:
        """Refuse a program that the device cannot run (knob out of range, a fixed knob moved)."""
        n, L = self.layout.n, self.spec.loops
        if program.squeezing.shape != (n,) or program.phases.shape != (L, n) or program.angles.shape != (L, n):
            raise ValueError(f"program shapes must be ({n},), ({L}, {n}), ({L}, {n})")
        if self.spec.uniform_squeezing and np.ptp(program.squeezing) > 1e-12:
            raise ValueError("this device sets one squeezing level per shot (uniform_squeezing)")
        rebuilt = self.arrays(self.vector(program))
        given = (program.squeezing, program.phases, program.angles)
        if not all(np.allclose(a[0], b, atol=1e-12) for a, b in zip(rebuilt, given)):
            raise ValueError("fixed knobs moved: the first `delay` bins of an acting loop must be at cross (0) and "
                             "a loop that does not act must stay at bar (pi/2) with phase 0")
        v = self.vector(program)
        if np.any(v < self.lower - 1e-12) or np.any(v > self.upper + 1e-12):
            raise ValueError("a knob is outside the spec's squeezing / beamsplitter / phase range")


def initial_program(spec: BorealisSpec, lay: Layout, squeezing: float | np.ndarray) -> LoopProgram:
    """All acting loops at cross (each bin is only delayed: output bin i carries source bin i), phases 0."""
    km = KnobMap(spec, lay)
    theta = np.zeros(km.size)
    sq = np.broadcast_to(np.asarray(squeezing, dtype=np.float64), (lay.n,))
    theta[: km._sq] = sq[: km._sq]
    sq_, ph, an = km.arrays(np.clip(theta, km.lower, km.upper))
    return LoopProgram(squeezing=sq_[0], phases=ph[0], angles=an[0])


# --------------------------------------------------------------------------- the unrolled state
def transfer_matrices(spec: BorealisSpec, lay: Layout, phases: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Transfer matrices ``T`` (K, n, n) of a batch of programs: output bin i <- source bin k, loss included.

    Time-stepped like the hardware, vectorised over the batch and over the ``delay`` steps of a
    loop that are independent (a loop's stored bins are all written one round trip earlier).
    """
    phases = np.asarray(phases, dtype=np.float64)
    angles = np.asarray(angles, dtype=np.float64)
    K, n, P = phases.shape[0], lay.n, lay.length
    stream = np.zeros((K, P, n), dtype=np.complex128)
    stream[:, np.arange(n), np.arange(n)] = math.sqrt(spec.source_efficiency)
    for l, d in enumerate(spec.delays):
        if not lay.active[l]:
            # Bar throughout: BSgate(pi/2, pi/2) hands the bin on with a factor i, no delay, no loss.
            stream *= 1j
            continue
        o = lay.offsets[l]
        phi = np.zeros((K, P))
        alpha = np.zeros((K, P))
        phi[:, o: o + n] = phases[:, l]
        alpha[:, o: o + n] = angles[:, l]
        rot = np.exp(1j * phi)[..., None]
        c, s = np.cos(alpha)[..., None], np.sin(alpha)[..., None]
        keep = math.sqrt(spec.loop_efficiencies[l]) * np.exp(1j * spec.loop_phases[l])
        out = np.empty_like(stream)
        stored = np.zeros((K, d, n), dtype=np.complex128)
        for t0 in range(0, P, d):
            t1 = min(t0 + d, P)
            w = t1 - t0
            x = stream[:, t0:t1] * rot[:, t0:t1]
            y = stored[:, :w]
            cc, ss = c[:, t0:t1], s[:, t0:t1]
            out[:, t0:t1] = 1j * ss * x + cc * y
            stored[:, :w] = keep * (cc * x + 1j * ss * y)
        stream = out
    steps = lay.crop + np.arange(n)
    channels = np.asarray(spec.channel_efficiencies)[steps % len(spec.channel_efficiencies)]
    return stream[:, lay.crop: lay.crop + n, :] * np.sqrt(spec.detector_efficiency * channels)[None, :, None]


def covariances(T: np.ndarray, squeezing: np.ndarray) -> np.ndarray:
    """Output covariance (K, 2n, 2n), xxpp, hbar = 2 (vacuum = I), of squeezed vacuum through ``T``.

    ``V = I + S_T (V_in - I) S_T^T`` with ``S_T = [[Re T, -Im T], [Im T, Re T]]``: the loss ports
    carry vacuum, so the loss adds exactly ``I - S_T S_T^T``.
    """
    T = np.asarray(T)
    r = np.atleast_2d(np.asarray(squeezing, dtype=np.float64))
    K, n, _ = T.shape
    X, Y = T.real, T.imag
    dx, dp = np.expm1(-2 * r), np.expm1(2 * r)   # Sgate(r): x -> e^-r x, p -> e^r p
    Xdx, Ydp = X * dx[:, None, :], Y * dp[:, None, :]
    Xdp, Ydx = X * dp[:, None, :], Y * dx[:, None, :]
    t = lambda M: np.swapaxes(M, 1, 2)  # noqa: E731
    V = np.empty((K, 2 * n, 2 * n))
    V[:, :n, :n] = Xdx @ t(X) + Ydp @ t(Y)
    V[:, :n, n:] = Xdx @ t(Y) - Ydp @ t(X)
    V[:, n:, :n] = t(V[:, :n, n:])
    V[:, n:, n:] = Ydx @ t(Y) + Xdp @ t(X)
    V += np.eye(2 * n)[None]
    return V


def decode(patterns: np.ndarray) -> np.ndarray:
    """Detector patterns (shots, n) -> QUBO assignments: x_i = 1 iff output bin i registered light."""
    return (np.asarray(patterns) > 0).astype(np.uint8)


class ClickModel:
    """Exact click statistics of a batch of states, for the QUBO's variables and coupled pairs."""

    def __init__(self, qubo: Qubo, dark: float):
        self.n = qubo.num_variables
        coo = qubo.Q.tocoo()
        self.i, self.j, self.q = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
        self.h = np.asarray(qubo.h, dtype=np.float64)
        self.offset = float(qubo.offset)
        self.keep = 1.0 - float(dark)
        n = self.n
        self._single = np.stack([np.arange(n), np.arange(n) + n], axis=1)
        self._pair = np.stack([self.i, self.j, self.i + n, self.j + n], axis=1)

    @staticmethod
    def _vacuum(V: np.ndarray, idx: np.ndarray) -> np.ndarray:
        sub = V[:, idx[:, :, None], idx[:, None, :]]             # (K, m, s, s)
        eye = np.eye(idx.shape[1])
        return 1.0 / np.sqrt(np.linalg.det(0.5 * (sub + eye)))

    def click_probabilities(self, V: np.ndarray) -> np.ndarray:
        """(K, n): P(x_i = 1)."""
        return 1.0 - self.keep * self._vacuum(V, self._single)

    def moments(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, n) P(x_i = 1) and (K, pairs) P(x_i = x_j = 1) for the QUBO's coupled pairs."""
        p0 = self.keep * self._vacuum(V, self._single)
        m1 = 1.0 - p0
        if self.i.size == 0:
            return m1, np.zeros((V.shape[0], 0))
        p00 = self.keep ** 2 * self._vacuum(V, self._pair)
        m2 = 1.0 - p0[:, self.i] - p0[:, self.j] + p00
        return m1, m2

    def expected_energy(self, V: np.ndarray) -> np.ndarray:
        """(K,) exact E[x^T Q x + h^T x + offset] under the decoded click distribution."""
        m1, m2 = self.moments(V)
        return self.offset + m1 @ self.h + (m2 @ self.q if self.q.size else 0.0)


def mean_photons(V: np.ndarray) -> np.ndarray:
    """(K,) mean photon number at the detectors: sum_i (V_xx,ii + V_pp,ii) / 4 - 1/2."""
    n = V.shape[1] // 2
    d = np.diagonal(V, axis1=1, axis2=2)
    return (d[:, :n] + d[:, n:]).sum(axis=1) / 4.0 - n / 2.0


# --------------------------------------------------------------------------- Strawberry Fields' view
def sf_program(spec: BorealisSpec, lay: Layout, program: LoopProgram):
    """The device as an SF ``TDMProgram`` (losses as ``LossChannel``), space-unrolled; returns (prog, crop).

    Built with SF's own Borealis layout helpers: ``get_mode_indices`` for the concurrent modes and
    ``vacuum_padding`` for the prologue/epilogue and the crop. Loops that do not act get SF's
    closed-loop settings (bar, phase 0), as ``tdm.borealis_gbs`` does for ``open_loops=False``.
    """
    from .compat import import_strawberryfields

    sf = import_strawberryfields()
    from strawberryfields import ops
    from strawberryfields.tdm import get_mode_indices, vacuum_padding

    L = spec.loops
    gate_args = {"Sgate": program.squeezing.tolist(),
                 "loops": {l: {"Rgate": program.phases[l].tolist(), "BSgate": program.angles[l].tolist()}
                           for l in range(L)}}
    # SF's padding needs at least one loop; without loops there is nothing to pad.
    padded = vacuum_padding(gate_args, delays=list(spec.delays)) if L else {**gate_args, "crop": 0}
    length = len(padded["loops"][0]["Rgate"]) if L else lay.n
    channels = np.asarray(spec.channel_efficiencies)
    detect = (spec.detector_efficiency * channels[np.arange(length) % len(channels)]).tolist()
    modes, concurrent = get_mode_indices(list(spec.delays))
    args = [padded["Sgate"]]
    for l in range(L):
        args += [padded["loops"][l]["Rgate"], padded["loops"][l]["BSgate"]]
    args.append(detect)
    prog = sf.TDMProgram(concurrent)
    with prog.context(*args) as (p, q):
        ops.Sgate(p[0]) | q[modes[0]]
        ops.LossChannel(spec.source_efficiency) | q[modes[0]]
        for l in range(L):
            ops.Rgate(p[1 + 2 * l]) | q[modes[l]]
            ops.BSgate(p[2 + 2 * l], HALF_PI) | (q[modes[l]], q[modes[l + 1]])
            ops.Rgate(spec.loop_phases[l]) | q[modes[l]]
            ops.LossChannel(spec.loop_efficiencies[l]) | q[modes[l]]
        ops.LossChannel(p[len(args) - 1]) | q[0]
    prog.space_unroll()
    return prog, int(padded["crop"])


def sf_state(spec: BorealisSpec, lay: Layout, program: LoopProgram) -> tuple[np.ndarray, int]:
    """SF's gaussian-backend covariance (xxpp, hbar = 2) of the computational output bins, and the crop."""
    from .compat import import_strawberryfields

    sf = import_strawberryfields()
    prog, crop = sf_program(spec, lay, program)
    state = sf.Engine("gaussian").run(prog).state
    cov = np.asarray(state.cov())
    m = cov.shape[0] // 2
    idx = np.concatenate([crop + np.arange(lay.n), m + crop + np.arange(lay.n)])
    return cov[np.ix_(idx, idx)], crop


# --------------------------------------------------------------------------- sampling
class BorealisSampler:
    """One program on the device: its exact joint state, sampled with thewalrus, dark counts added."""

    def __init__(self, spec: BorealisSpec, program: LoopProgram, *, cutoff: int = 6, max_photons: int = 30):
        t0 = time.perf_counter()
        self.spec, self.program = spec, program
        self.n = int(program.squeezing.shape[0])
        self.layout = layout(spec, self.n)
        KnobMap(spec, self.layout).check(program)
        self.cutoff, self.max_photons = cutoff, max_photons
        self.T = transfer_matrices(spec, self.layout, program.phases[None], program.angles[None])[0]
        self.cov = covariances(self.T[None], program.squeezing[None])[0]
        self.build_seconds = time.perf_counter() - t0

    def expected_photons(self) -> float:
        return float(mean_photons(self.cov[None])[0])

    def sample(self, shots: int, *, seed: int) -> np.ndarray:
        """``shots`` joint detector patterns (photon counts for PNR, 0/1 for threshold), dark counts included."""
        from .device import isolated_global_rng

        if shots < 1:
            return np.zeros((0, self.n), dtype=np.int64)
        rng = np.random.default_rng([int(seed) % 2**32, 1])
        if not np.any(self.program.squeezing > 0):
            out = np.zeros((shots, self.n), dtype=np.int64)
        else:
            with isolated_global_rng(seed), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=RuntimeWarning)
                if self.spec.threshold:
                    from thewalrus.samples import torontonian_sample_state

                    out = torontonian_sample_state(self.cov, shots, hbar=2, max_photons=self.max_photons)
                else:
                    from thewalrus.samples import hafnian_sample_state

                    out = hafnian_sample_state(self.cov, shots, hbar=2, cutoff=self.cutoff,
                                               max_photons=self.max_photons)
            out = np.asarray(out, dtype=np.int64).reshape(shots, self.n)
        p = self.spec.dark_count_probability
        if p > 0:
            dark = (rng.random(out.shape) < p).astype(np.int64)
            out = np.maximum(out, dark) if self.spec.threshold else out + dark
        return out


# --------------------------------------------------------------------------- training
@dataclass
class Training:
    """What programming the device for a QUBO did; energies are exact expectations (QUBO units)."""

    program: LoopProgram
    steps: int
    evaluations: int
    energies: list[float] = field(default_factory=list)       # expected energy at the start and after each step
    photons: list[float] = field(default_factory=list)        # mean photons at the detectors, same points
    stop: str = "steps"
    seconds: float = 0.0


class _OutOfTime(Exception):
    pass


def _batched_objective(spec, lay, km: KnobMap, model: ClickModel, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sq, ph, an = km.arrays(theta)
    V = covariances(transfer_matrices(spec, lay, ph, an), sq)
    return model.expected_energy(V), V


def train_program(spec: BorealisSpec, lay: Layout, qubo: Qubo, start: LoopProgram, *, steps: int,
                  out_of_time: Callable[[], bool], step_size: float = 1e-6) -> Training:
    """Lower the exact expected QUBO energy of the decoded samples over the knobs (L-BFGS-B, spec bounds).

    The gradient is a forward difference for every knob from one batched state build (backward at
    an upper bound). The energy is scaled by the QUBO's largest coefficient for conditioning.
    """
    from scipy.optimize import minimize

    t0 = time.perf_counter()
    km = KnobMap(spec, lay)
    model = ClickModel(qubo, spec.dark_count_probability)
    scale = max(float(np.abs(qubo.h).max(initial=0.0)), float(np.abs(qubo.Q.data).max(initial=0.0)), 1e-12)
    x0 = np.clip(km.vector(start), km.lower, km.upper)
    e0, V0 = _batched_objective(spec, lay, km, model, x0[None])
    result = Training(program=km.program(x0), steps=0, evaluations=1, energies=[float(e0[0])],
                      photons=[float(mean_photons(V0)[0])])
    if steps <= 0 or km.size == 0 or out_of_time():
        result.stop = "no training" if steps <= 0 or km.size == 0 else "time_limit"
        result.seconds = time.perf_counter() - t0
        return result
    best = {"x": x0.copy(), "f": float(e0[0])}
    eye = np.eye(km.size)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        if out_of_time():
            raise _OutOfTime
        h = np.where(x + step_size <= km.upper, step_size, -step_size)
        batch = np.vstack([x[None], x[None] + eye * h[:, None]])
        e, _ = _batched_objective(spec, lay, km, model, batch)
        result.evaluations += 1
        if e[0] < best["f"]:
            best["x"], best["f"] = x.copy(), float(e[0])
        return float(e[0] / scale), (e[1:] - e[0]) / h / scale

    def callback(intermediate_result) -> None:
        result.steps += 1
        x = intermediate_result.x
        e, V = _batched_objective(spec, lay, km, model, x[None])
        result.energies.append(float(e[0]))
        result.photons.append(float(mean_photons(V)[0]))

    try:
        res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=km.bounds, callback=callback,
                       options={"maxiter": int(steps), "ftol": 1e-12, "gtol": 1e-9})
        result.stop = "steps" if result.steps >= steps else "converged"
        x_final = res.x if res.fun * scale <= best["f"] + 1e-12 * scale else best["x"]
    except _OutOfTime:
        result.stop = "time_limit"
        x_final = best["x"]
    result.program = km.program(np.clip(x_final, km.lower, km.upper))
    result.seconds = time.perf_counter() - t0
    return result


def matrix_space(spec: BorealisSpec, lay: Layout, program: LoopProgram, *, seed: int = 0,
                 step_size: float = 1e-6) -> dict[str, object]:
    """How much of the space of GBS matrices the program reaches and uses.

    ``B = T diag(tanh r) T^T`` (complex symmetric; the A-matrix of the state when lossless).
    ``local_dimension``: rank of dB/d(knobs) at the program, the dimension of the realisable set
    there, against ``matrix_dimension`` = n (n + 1) real dimensions of complex symmetric matrices.
    ``reachable_pairs``: bin pairs the loop structure can couple at all (B_ij != 0 for generic knobs);
    ``coupled_pairs``: pairs the program couples (|B_ij| > 1e-3 max |B|); ``knobs_at_bounds``.
    """
    km = KnobMap(spec, lay)
    n = lay.n
    x = km.vector(program)
    iu = np.triu_indices(n)
    off = np.triu_indices(n, 1)

    def B(theta: np.ndarray) -> np.ndarray:
        sq, ph, an = km.arrays(theta)
        T = transfer_matrices(spec, lay, ph, an)
        return np.einsum("kij,kj,klj->kil", T, np.tanh(sq), T)

    out: dict[str, object] = {"knobs": km.size, "matrix_dimension": n * (n + 1), "all_pairs": n * (n - 1) // 2}
    at_bound = (np.isclose(x, km.lower, atol=1e-9) | np.isclose(x, km.upper, atol=1e-9)) if km.size else np.zeros(0, bool)
    out["knobs_at_bounds"] = int(at_bound.sum())
    if km.size:
        h = np.where(x + step_size <= km.upper, step_size, -step_size)
        Bs = B(np.vstack([x[None], x[None] + np.eye(km.size) * h[:, None]]))
        D = (Bs[1:][:, iu[0], iu[1]] - Bs[0][iu]) / h[:, None]
        J = np.concatenate([D.real, D.imag], axis=1)
        sv = np.linalg.svd(J, compute_uv=False)
        rank = int((sv > 1e-6 * sv.max()).sum()) if sv.size and sv.max() > 0 else 0
    else:
        Bs = B(x[None])
        rank = 0
    out["local_dimension"] = rank
    out["dimension_share"] = rank / (n * (n + 1))
    generic = np.random.default_rng(seed).uniform(km.lower, km.upper)
    Bg = B(generic[None])[0]
    out["reachable_pairs"] = int((np.abs(Bg[off]) > 1e-12 * max(np.abs(Bg).max(), 1e-300)).sum())
    B0 = Bs[0]
    out["coupled_pairs"] = int((np.abs(B0[off]) > 1e-3 * max(np.abs(B0).max(), 1e-300)).sum())
    return out
