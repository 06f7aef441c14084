"""Variational GBS for general QUBOs (Banchi, Quesada & Arrazola, "Training Gaussian boson
sampling distributions", PRA 102, 012417 (2020); Strawberry Fields' ``apps.train``).

The distribution of GBS with matrix A(theta) = W(theta) A W(theta), W = diag(sqrt(exp(-theta)))
(``train.embed.Exp``) is trained to lower the expected QUBO energy of its click patterns, using
SF's stochastic cost (``train.Stochastic``): samples are drawn once from a reference matrix and
re-weighted to the current theta, so no resampling is needed per step. The gradient here is
``Stochastic.grad``'s formula evaluated for all samples at once (SF recomputes the determinants
and mean clicks per sample); ``tests/test_photonic.py`` checks the two agree. Two additions a
practitioner would make: the energy is centred and scaled by the reference samples (a baseline:
it does not change the expected gradient, since the probabilities sum to one), and the
reference is refreshed every ``resample_every`` steps (the re-weighting degrades as theta moves).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .compat import import_strawberryfields

__all__ = ["TrainingResult", "stochastic_cost_and_grad", "make_vgbs"]


def make_vgbs(A: np.ndarray, *, threshold: bool, samples: np.ndarray | None = None):
    """SF's ``train.VGBS`` around an already-scaled matrix (no second rescaling)."""
    import_strawberryfields()
    from strawberryfields.apps import train

    n = A.shape[0]
    vgbs = train.VGBS(A, 1.0, train.embed.Exp(n), threshold=threshold)
    # VGBS rescales its input to the n_mean it is given; A is already scaled for the device
    # (target photons, squeezing cap), so keep it exactly.
    vgbs.A_init = np.asarray(A, dtype=np.float64)
    if samples is not None and len(samples):
        vgbs.add_A_init_samples(np.asarray(samples))
    return vgbs


def stochastic_cost_and_grad(vgbs, h_values: np.ndarray, samples: np.ndarray,
                             params: np.ndarray) -> tuple[float, np.ndarray]:
    """SF ``train.Stochastic`` cost and gradient, vectorised over samples.

    ``h_values[k]`` is the cost of ``samples[k]`` (drawn from ``vgbs.A_init``).
    """
    from strawberryfields.apps.train.param import _Omat

    S = np.asarray(samples, dtype=np.float64)
    w = vgbs.embedding(params)
    jac = vgbs.embedding.jacobian(params)
    A = vgbs.A(params)
    eye = np.identity(2 * vgbs.n_modes)
    dets = np.sqrt(np.linalg.det(eye - _Omat(A)) / np.linalg.det(eye - _Omat(vgbs.A_init)))
    prod = np.exp(S @ np.log(w))
    hr = h_values * dets * prod
    means = vgbs.mean_clicks_by_mode(params) if vgbs.threshold else vgbs.mean_photons_by_mode(params)
    diff = S - means[None, :]
    grad = ((hr[:, None] * diff / w[None, :]) @ jac).mean(axis=0)
    return float(hr.mean()), np.real(grad)


@dataclass
class TrainingResult:
    A: np.ndarray                         # trained matrix
    steps: int
    resamples: int
    samples_drawn: int
    costs: list[float] = field(default_factory=list)   # normalised expected energy per step
    weights: np.ndarray | None = None     # cumulative mode weights relative to the start
    samples: list[np.ndarray] = field(default_factory=list)  # every training batch (for post-processing)


def train(A0: np.ndarray, *, energy: Callable[[np.ndarray], np.ndarray], draw: Callable[[np.ndarray, int], np.ndarray],
          threshold: bool, steps: int, learning_rate: float, train_samples: int, resample_every: int,
          max_singular: float, out_of_time: Callable[[], bool]) -> TrainingResult:
    """Gradient descent on SF's stochastic cost; ``draw(A, k)`` returns k GBS samples of A."""
    A_ref = np.asarray(A0, dtype=np.float64)
    result = TrainingResult(A=A_ref, steps=0, resamples=0, samples_drawn=0, weights=np.ones(len(A_ref)))
    if steps <= 0 or not np.any(A_ref):
        return result
    n = len(A_ref)
    while result.steps < steps and not out_of_time():
        samples = draw(A_ref, train_samples)
        result.samples.append(samples)
        result.samples_drawn += len(samples)
        result.resamples += 1
        vgbs = make_vgbs(A_ref, threshold=threshold, samples=samples)
        e = energy(samples)
        scale = e.std() if e.std() > 0 else 1.0
        h_values = (e - e.mean()) / scale
        theta = np.zeros(n)
        for _ in range(resample_every):
            if result.steps >= steps or out_of_time():
                break
            cost, grad = stochastic_cost_and_grad(vgbs, h_values, samples, theta)
            theta = theta - learning_rate * grad
            # Project onto what the device can squeeze: scaling every weight by c scales A(theta)
            # by c, so shift theta uniformly until the largest singular value is within the cap.
            s_max = np.linalg.norm(vgbs.A(theta), 2)
            if s_max > max_singular:
                theta = theta + np.log(s_max / max_singular)
            result.costs.append(cost)
            result.steps += 1
        A_ref = vgbs.A(theta)
        result.weights = result.weights * np.exp(-theta)
    result.A = A_ref
    return result
