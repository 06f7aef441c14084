"""The Qubo type: canonical form, vectorised energies, Ising form, exact clamping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.qubo import Qubo
from tests.conftest import random_qubo


def all_assignments(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)


def test_from_terms_folds_duplicates_lower_triangle_and_diagonal():
    q = Qubo.from_terms(3, linear=[1, 0, 0], rows=[0, 1, 2, 1], cols=[1, 0, 2, 2], weights=[1.0, 2.0, 5.0, -1.0])
    assert q.Q.toarray().tolist() == [[0, 3, 0], [0, 0, -1], [0, 0, 0]]
    assert q.h.tolist() == [1, 0, 5]


def test_energies_match_dense_definition():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(7, 7))
    q = Qubo.from_dense(M, offset=2.5)
    X = all_assignments(7)
    expected = np.einsum("ki,ij,kj->k", X, M, X) + 2.5
    np.testing.assert_allclose(q.energies(X), expected, atol=1e-12)


def test_ising_form_matches_energies():
    q = random_qubo(6, seed=3)
    J, g, c = q.ising()
    X = all_assignments(6)
    Z = 1 - 2 * X.astype(float)
    ising = np.einsum("ki,ij,kj->k", Z, J.toarray(), Z) + Z @ g + c
    np.testing.assert_allclose(ising, q.energies(X), atol=1e-10)


def test_local_fields_are_flip_deltas():
    q = random_qubo(8, seed=4)
    x = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    flips = np.tile(x, (8, 1)) ^ np.eye(8, dtype=int)
    np.testing.assert_allclose(q.local_fields(x), q.energies(flips) - q.energy(x), atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 9), data=st.data())
def test_clamp_is_exact(seed, n, data):
    q = random_qubo(n, seed=seed)
    fixed_idx = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n - 1))
    fixed = {i: data.draw(st.integers(0, 1)) for i in fixed_idx}
    sub, free = q.clamp(fixed)
    rng = np.random.default_rng(seed)
    Y = rng.integers(0, 2, size=(16, free.size))
    X = np.zeros((16, n), dtype=int)
    X[:, free] = Y
    for i, v in fixed.items():
        X[:, i] = v
    np.testing.assert_allclose(q.energies(X), sub.energies(Y), atol=1e-9)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="labels must be unique"):
        Qubo.from_terms(2, labels=["a", "a"])
    with pytest.raises(ValueError, match="disjoint"):
        Qubo.from_terms(3, groups=[(0, 1), (1, 2)])
    with pytest.raises(ValueError, match="out of range"):
        Qubo.from_terms(2, rows=[0], cols=[5], weights=[1.0])


def test_arrays_are_read_only():
    q = random_qubo(4, seed=0)
    with pytest.raises(ValueError):
        q.h[0] = 1.0
