"""Shared fixtures: small QUBOs for every backend and the fast option sets tests use."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from optimizer.data import find_data_folder
from optimizer.qubo import Qubo

# Two cores in CI: keep every numerical library on one thread so parallel pieces do not fight.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")

REPO = Path(__file__).resolve().parents[1]
PROBLEMS = REPO / "problems"
# Third-party data (published benchmark files) is never in the repository: it is found through
# optimizer.data (QFREIGHT_DATA, ../shared/data beside a checkout, the user cache). Tests reach it
# only through the `shared_data` fixture, which skips with the reason when there is none.
DATA_LOOKUP = find_data_folder()
#: The data folder, or a path that does not exist when there is none (use the fixture instead).
SHARED_DATA = DATA_LOOKUP.path or REPO / ".no-data-folder"


def random_qubo(n: int, *, seed: int, density: float = 0.6, integer: bool = False) -> Qubo:
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    if integer:
        M = np.round(M * 4)
    M[rng.random((n, n)) > density] = 0.0
    return Qubo.from_dense(M, offset=float(rng.normal()))


def one_hot_qubo(groups: int, size: int, *, seed: int, penalty: float = 10.0) -> Qubo:
    """Random costs on `groups` one-hot groups of `size` variables, with one-hot penalties."""
    rng = np.random.default_rng(seed)
    n = groups * size
    M = np.triu(rng.normal(size=(n, n)), 1) * 0.5
    M[np.diag_indices(n)] = rng.normal(size=n)
    group_idx = [tuple(range(g * size, (g + 1) * size)) for g in range(groups)]
    offset = 0.0
    for g in group_idx:
        # P (sum x - 1)^2 = P (1 - sum x + 2 sum_{i<j} x_i x_j)
        offset += penalty
        for a, i in enumerate(g):
            M[i, i] -= penalty
            for j in g[a + 1:]:
                M[i, j] += 2 * penalty
    labels = [f"g{g}/c{c}" for g in range(groups) for c in range(size)]
    return Qubo.from_dense(M, offset=offset, labels=labels, groups=group_idx)


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_python():
    """A suite started in the background of a non-interactive shell (``cmd &``, ``nohup``)
    inherits SIGINT as ignored, and Python then keeps it ignored: the Ctrl-C tests would test
    the shell, not qfreight. Restore what an interactive user has."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


def restore_sigint() -> None:
    """``preexec_fn`` for child processes that a test interrupts: SIGINT back to its default, so
    that the child's Python installs its KeyboardInterrupt handler even when ours was inherited
    as ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data folder; skips (with where it looked) when there is none."""
    if DATA_LOOKUP.path is None:
        pytest.skip(f"public test data not found: {DATA_LOOKUP.reason}")
    return DATA_LOOKUP.path


def require_data(folder: Path, *relative: str) -> list[Path]:
    """The named files of the data folder; skips when one is missing (a partly fetched folder)."""
    paths = [folder / r for r in relative]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"public test data incomplete: {', '.join(missing)} not found (qfreight data fetch)")
    return paths
