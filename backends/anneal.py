"""Classical heuristic peer: simulated annealing and tabu search from dwave-samplers, run as a portfolio.

Two modes, chosen by ``num_reads``:

- **budget** (``num_reads`` unset, the default): keep sampling until ``time_limit`` (seconds, the
  whole call) or the ``target`` energy is reached, whichever comes first. Each round runs one tabu
  read and one batch of SA reads. A round's time slice starts at about a millisecond and doubles up
  to a twentieth of the budget, so a small instance gets thousands of short restarts and a large one
  long reads; the best samples are kept. No single read is allowed to outlast a slice by design
  (sweeps are sized to the instance, tabu reads carry their own timeout, SA is interrupted between
  reads), which is what bounds the overrun. Tabu reads start at the library's 20 ms and double too;
  a read stops early at the target.
- **work** (``num_reads = N``): exactly N reads with a fixed number of sweeps (SA) and of restarts
  (tabu, no clock inside a read), so the same seed gives the same samples on any machine and under
  any load. The time limit still stops the run between reads; ``info["stop_reason"]`` then says
  ``"time_limit"`` and the result is no longer load-independent.

Schedules follow dwave-samplers' own defaults: 1000 sweeps per SA read and a geometric beta schedule
whose range comes from the instance's coefficients (hot: the largest effective field flips with
probability 1/2; cold: the smallest gap is excited with probability 1 %; dwave-samplers
``_default_ising_beta_range``), computed here vectorised. Sweeps are reduced only when 1000 would
make one read longer than a twentieth of the budget. Tabu uses the library's tenure
(``min(20, n // 4)``) and MST2 restarts; it needs a dense n x n matrix, so it is used only up to
``tabu_max_variables``.

``target`` is an energy of the QUBO (minimisation, offset included); ``info["time_to_target_s"]``
is the time from the start of the call to the first sample at or below it. Ctrl-C during a solve
keeps what was found: the run stops after the read in progress and returns with
``info["interrupted"] = True`` (it raises KeyboardInterrupt only when not a single sample exists).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from optimizer.errors import MissingDependency
from optimizer.qubo import Qubo
from optimizer.solving.solver import SampleSet, check_size

__all__ = ["AnnealSolver", "to_bqm", "default_beta_range", "METHODS"]

METHODS = ("auto", "sa", "tabu")

#: A round's time slice: first and largest (as a share of the budget), in seconds.
_FIRST_SLICE_S = 1e-3
_MAX_SLICE_SHARE = 0.05
#: The first tabu read's timeout: TabuSampler's default per read.
_TABU_FIRST_S = 20e-3
#: SA cost before anything is measured: seconds per (spin + 2 x coupling) update (measured: 2-3 ns).
_SA_UNIT_S = 5e-9
#: Tabu copies its dense matrix at every read: seconds per matrix entry before it is measured.
_TABU_COPY_S = 25e-9
#: Samples kept in memory (bytes of the (reads, n) uint8 pool) before the worst are dropped.
_POOL_BYTES = 32 * 2**20


def to_bqm(qubo: Qubo):
    """The QUBO as a ``dimod.BinaryQuadraticModel`` over integer variables 0..n-1."""
    import dimod

    coo = qubo.Q.tocoo()
    return dimod.BinaryQuadraticModel.from_numpy_vectors(
        linear=np.asarray(qubo.h), quadratic=(coo.row, coo.col, coo.data), offset=qubo.offset,
        vartype=dimod.BINARY,
    )


def _ising(qubo: Qubo) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """dimod's BINARY -> SPIN map (x = (s + 1) / 2): h_spin, rows, cols, J, offset."""
    coo = qubo.Q.tocoo()
    n = qubo.num_variables
    row_sum = np.bincount(coo.row, weights=coo.data, minlength=n)
    col_sum = np.bincount(coo.col, weights=coo.data, minlength=n)
    h = np.asarray(qubo.h, dtype=np.float64) / 2.0 + (row_sum + col_sum) / 4.0
    offset = float(qubo.offset + qubo.h.sum() / 2.0 + coo.data.sum() / 4.0)
    return h, coo.row.astype(np.int32), coo.col.astype(np.int32), coo.data / 4.0, offset


def default_beta_range(h: np.ndarray, rows: np.ndarray, cols: np.ndarray, J: np.ndarray,
                       *, excitation_rate: float = 0.01) -> tuple[float, float]:
    """dwave-samplers' default (hot, cold) beta of an Ising model, vectorised (same numbers).

    Hot: ``log(2) / (2 max_i sum |bias|)``; cold: ``log(#minimal gaps / rate) / (2 min gap)`` with
    a spin's gap approximated by its smallest non-zero |h_i| or |J_ij|.
    """
    n = h.shape[0]
    absJ = np.abs(J)
    total = np.abs(h) + np.bincount(rows, weights=absJ, minlength=n) + np.bincount(cols, weights=absJ, minlength=n)
    smallest = np.where(h != 0, np.abs(h), np.inf)
    nz = absJ != 0
    np.minimum.at(smallest, rows[nz], absJ[nz])
    np.minimum.at(smallest, cols[nz], absJ[nz])
    finite = smallest[np.isfinite(smallest)]
    if finite.size == 0:
        return 0.1, 1.0  # all biases zero: the library's arbitrary range
    top = float(total.max(initial=0.0))
    hot = math.log(2) / (2 * top) if top > 0 else 1.0
    gap = float(finite.min())
    count = int(np.count_nonzero(finite == gap))
    return hot, math.log(count / excitation_rate) / (2 * gap)


@contextlib.contextmanager
def _sigint_flag():
    """While active (main thread only), Ctrl-C sets a flag instead of raising mid-batch."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    except (ValueError, OSError):  # no signal support here: Ctrl-C behaves as before
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class _Pool:
    """Every read's sample while they fit in memory; past that, the best distinct ones."""

    n: int
    rows: list[np.ndarray] = field(default_factory=list)
    energies: list[np.ndarray] = field(default_factory=list)
    kept: int = 0
    discarded: int = 0

    def add(self, X: np.ndarray, E: np.ndarray) -> None:
        self.rows.append(X)
        self.energies.append(E)
        self.kept += X.shape[0]
        if self.kept * max(self.n, 1) > _POOL_BYTES:
            self._compact()

    def _compact(self) -> None:
        X = np.concatenate(self.rows)
        E = np.concatenate(self.energies)
        unique, first = np.unique(X, axis=0, return_index=True)
        keep = first[np.argsort(E[first], kind="stable")][: max(1, _POOL_BYTES // (2 * max(self.n, 1)))]
        self.discarded += X.shape[0] - keep.size
        self.rows, self.energies, self.kept = [X[keep]], [E[keep]], int(keep.size)


class AnnealSolver:
    """Simulated annealing and tabu search (dwave-samplers), under a time budget or a fixed work amount.

    Options (keyword-only; ``[backends.anneal]`` in the config file):

    - ``method``: ``"auto"`` (budget mode: tabu restarts and SA batches in turn; fixed work: SA),
      ``"sa"`` or ``"tabu"``;
    - ``num_reads``: None for the budget mode; a number of reads for the fixed-work mode;
    - ``num_sweeps``: SA sweeps per read (None: 1000, fewer only when a read would exceed a
      twentieth of the budget);
    - ``beta_range``: ``[hot, cold]`` (None: the library's rule from the coefficients);
    - ``tabu_restarts``: MST2 restarts per tabu read in the fixed-work mode;
    - ``tabu_max_variables``: tabu needs a dense n x n matrix; larger QUBOs use SA only;
    - ``target``: stop once a sample's energy is at or below it (QUBO energy, offset included);
    - ``max_variables``: refuse larger QUBOs (None: unlimited).
    """

    name: ClassVar[str] = "anneal"
    # A heuristic: it may miss the optimum, though on the conformance instances it should not.
    heuristic: ClassVar[frozenset[str]] = frozenset({"optimum"})

    def __init__(self, *, method: str = "auto", num_reads: int | None = None, num_sweeps: int | None = None,
                 beta_range: Sequence[float] | None = None, tabu_restarts: int = 1,
                 tabu_max_variables: int = 2500, target: float | None = None, max_variables: int | None = None):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        for label, value in (("num_reads", num_reads), ("num_sweeps", num_sweeps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{label} must be a positive integer or unset, got {value!r}")
        if isinstance(tabu_restarts, bool) or not isinstance(tabu_restarts, int) or tabu_restarts < 0:
            raise ValueError(f"tabu_restarts must be an integer >= 0, got {tabu_restarts!r}")
        if isinstance(tabu_max_variables, bool) or not isinstance(tabu_max_variables, int) or tabu_max_variables < 0:
            raise ValueError(f"tabu_max_variables must be an integer >= 0, got {tabu_max_variables!r}")
        if beta_range is not None:
            beta_range = tuple(float(b) for b in beta_range)
            if len(beta_range) != 2 or not all(math.isfinite(b) and b > 0 for b in beta_range):
                raise ValueError(f"beta_range must be two positive numbers [hot, cold], got {beta_range!r}")
        if target is not None and (isinstance(target, bool) or not math.isfinite(float(target))):
            raise ValueError(f"target must be a finite energy, got {target!r}")
        self.method = method
        self.num_reads = num_reads
        self.num_sweeps = num_sweeps
        self.beta_range = beta_range
        self.tabu_restarts = tabu_restarts
        self.tabu_max_variables = tabu_max_variables
        self.target = None if target is None else float(target)
        self.max_variables = max_variables

    # ------------------------------------------------------------------ library access
    @staticmethod
    def _kernels():
        try:
            from dwave.samplers.sa.simulated_annealing import simulated_annealing
            from dwave.samplers.tabu import TabuSearch
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise MissingDependency("anneal", "dwave-samplers") from exc
        return simulated_annealing, TabuSearch

    def methods_for(self, n: int) -> tuple[str, ...]:
        """The methods a QUBO of ``n`` variables gets.

        ``auto`` is tabu and SA in the budget mode (tabu only up to ``tabu_max_variables``), and SA
        alone in the fixed-work mode, where a read must be a small, fixed amount of work (a tabu
        read runs at least 500,000 variable updates, the library's ``lower_bound_z``).
        """
        if self.method == "sa" or (self.method == "auto" and (n > self.tabu_max_variables
                                                               or self.num_reads is not None)):
            return ("sa",)
        if self.method == "tabu":
            if n > self.tabu_max_variables:
                raise ValueError(f"method 'tabu' needs a dense {n} x {n} matrix; tabu_max_variables is "
                                 f"{self.tabu_max_variables} (raise it, or use method 'sa' or 'auto')")
            return ("tabu",)
        return ("tabu", "sa")

    # ------------------------------------------------------------------ solve
    def solve(self, qubo: Qubo, *, seed: int, time_limit: float,
              initial: np.ndarray | None = None) -> SampleSet:
        check_size(self, qubo)
        started = time.perf_counter()
        n = qubo.num_variables
        if n == 0:
            return SampleSet.from_samples(qubo, np.zeros((1, 0), np.uint8), solver=self.name,
                                          timing={"total": 0.0}, info={"reads": 0, "optimal": False})
        if initial is not None:
            initial = np.asarray(initial).ravel()
            if initial.shape != (n,) or not np.isin(initial, (0, 1)).all():
                raise ValueError(f"initial must be a 0/1 vector of length {n}")
            initial = initial.astype(np.uint8)
        methods = self.methods_for(n)
        run = _Run(self, qubo, methods, seed=seed, started=started, time_limit=float(time_limit),
                   initial=initial)
        with _sigint_flag() as interrupted:
            run.interrupted = interrupted
            if self.num_reads is None:
                run.budget()
            else:
                run.fixed_work(self.num_reads)
        return run.result()


class _Run:
    """One call's state: the kernels, the clock, the pool of samples and the best so far."""

    def __init__(self, solver: AnnealSolver, qubo: Qubo, methods: tuple[str, ...], *, seed: int,
                 started: float, time_limit: float, initial: np.ndarray | None):
        self.solver, self.qubo, self.methods = solver, qubo, methods
        self.n = qubo.num_variables
        self.clock = time.perf_counter
        self.started = started
        self.time_limit = max(0.0, time_limit)
        self.deadline = started + self.time_limit
        # Two's complement for negative seeds: every integer is a valid, distinct seed.
        self.rng = np.random.default_rng(int(seed) % 2**64)
        self.initial = initial
        self.target = solver.target
        self.tolerance = 1e-9 * max(1.0, abs(self.target)) if self.target is not None else 0.0
        self.sa_kernel, self.tabu_kernel = solver._kernels()
        self.pool = _Pool(self.n)
        self.interrupted: threading.Event = threading.Event()
        self.best_energy = math.inf
        self.best_by: str | None = None
        self.time_to_best: float | None = None
        self.time_to_target: float | None = None
        self.first_read_at: float | None = None
        self.reads = {"sa": 0, "tabu": 0}
        self.stop_reason = "reads"
        self._sa: dict[str, object] | None = None
        self._tabu: np.ndarray | None = None
        self.sa_unit_s = _SA_UNIT_S
        # A kernel call's set-up before its first read: prior 0.25 us per variable and coupling.
        self.sa_call_s = 5e-5 + 2.5e-7 * (self.n + qubo.num_interactions)
        self.sa_calls = 0
        self.tabu_overhead_s: float | None = None
        self.last_tabu_timeout_ms: int | None = None
        self.num_sweeps: int | None = None
        self.warm_used = {"sa": False, "tabu": False}

    # ------------------------------------------------------------------ bookkeeping
    @property
    def reached(self) -> bool:
        return self.target is not None and self.best_energy <= self.target + self.tolerance

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def _kernel_starts(self) -> float:
        now = self.clock()
        if self.first_read_at is None:
            self.first_read_at = now
        return now

    def _record(self, X: np.ndarray, method: str) -> None:
        now = self.clock()
        E = self.qubo.energies(X)
        self.pool.add(X, E)
        self.reads[method] += X.shape[0]
        k = int(np.argmin(E))
        if E[k] < self.best_energy - 1e-12:
            self.best_energy, self.best_by, self.time_to_best = float(E[k]), method, now - self.started
        if self.reached and self.time_to_target is None:
            self.time_to_target = now - self.started

    def _stopping(self) -> str | None:
        if self.interrupted.is_set():
            return "interrupted"
        if self.reached:
            return "target"
        # However short the budget, a result has at least one read: an answer, late, beats none.
        if self.remaining() <= 0 and self.pool.kept:
            return "time_limit"
        return None

    # ------------------------------------------------------------------ SA
    def _sa_setup(self) -> dict[str, object]:
        if self._sa is None:
            h, rows, cols, J, offset = _ising(self.qubo)
            if self.solver.beta_range is not None:
                hot, cold = self.solver.beta_range
            else:
                hot, cold = default_beta_range(h, rows, cols, J)
            # Plain lists: the kernel converts its inputs element by element, lists fastest.
            self._sa = {"h": h.tolist(), "rows": rows.tolist(), "cols": cols.tolist(), "J": J.tolist(),
                        "beta": (hot, cold), "work": self.n + 2 * len(rows), "schedules": {}}
        return self._sa

    def _sweeps(self, budget_mode: bool) -> int:
        """1000 (the library's default) unless a read would then exceed a twentieth of the budget."""
        if self.solver.num_sweeps is not None:
            return self.solver.num_sweeps
        if not budget_mode:
            return 1000
        sa = self._sa_setup()
        read_budget = max(1e-3, _MAX_SLICE_SHARE * self.time_limit)
        return int(min(1000, max(10, read_budget / (self.sa_unit_s * sa["work"]))))

    def _schedule(self, sweeps: int) -> list[float]:
        sa = self._sa_setup()
        cached = sa["schedules"].get(sweeps)
        if cached is None:
            hot, cold = sa["beta"]
            cached = [cold] if sweeps == 1 else np.geomspace(hot, cold, num=sweeps).tolist()
            sa["schedules"][sweeps] = cached
        return cached

    def sa_read_s(self, sweeps: int) -> float:
        """Predicted seconds of one SA read (after the call's set-up)."""
        return sweeps * self.sa_unit_s * self._sa_setup()["work"]

    def sa_batch(self, reads: int, sweeps: int, *, stop_at: float | None) -> None:
        """One kernel call: up to ``reads`` reads, interrupted between reads at ``stop_at``."""
        sa = self._sa_setup()
        # The kernel anneals the states in place: keep the (reads, n) int8 block within the pool's size.
        reads = max(1, min(reads, _POOL_BYTES // max(self.n, 1)))
        states = (2 * self.rng.integers(0, 2, size=(reads, self.n), dtype=np.int8) - 1).astype(np.int8)
        if self.initial is not None and not self.warm_used["sa"]:
            states[0] = 2 * self.initial.astype(np.int8) - 1
            self.warm_used["sa"] = True
        flag = self.interrupted

        def interrupt() -> bool:
            return flag.is_set() or (stop_at is not None and self.clock() >= stop_at)

        t = self._kernel_starts()
        samples, _ = self.sa_kernel(reads, sa["h"], sa["rows"], sa["cols"], sa["J"], 1, self._schedule(sweeps),
                                    int(self.rng.integers(1, 2**63)), np.ascontiguousarray(states),
                                    False, "Metropolis", interrupt)
        elapsed = self.clock() - t
        done = samples.shape[0]
        self.sa_calls += 1
        if done:
            # Learn the machine's speed: a call costs its set-up (input conversion, neighbour lists)
            # plus its reads. The read cost is learnt from calls long enough to dominate the set-up.
            work = done * sweeps * sa["work"]
            if elapsed > 2 * self.sa_call_s:
                self.sa_unit_s = min(1e-6, max(1e-11, (elapsed - self.sa_call_s) / work))
            observed = max(0.0, elapsed - work * self.sa_unit_s)
            self.sa_call_s = observed if self.sa_calls == 1 else 0.5 * (self.sa_call_s + observed)
            self._record(((samples.astype(np.int16) + 1) // 2).astype(np.uint8), "sa")

    # ------------------------------------------------------------------ tabu
    def _tabu_matrix(self) -> np.ndarray:
        if self._tabu is None:
            # The library's own layout (TabuSampler._bqm_to_tabu_qubo): h on the diagonal, Q/2 each side.
            M = self.qubo.to_dense()
            self._tabu = np.ascontiguousarray(0.5 * (M + M.T))
        return self._tabu

    def tabu_read(self, *, timeout_ms: int, restarts: int) -> None:
        matrix = self._tabu_matrix()
        if self.initial is not None and not self.warm_used["tabu"]:
            start = self.initial.astype(np.intc)
            self.warm_used["tabu"] = True
        else:
            start = self.rng.integers(0, 2, size=self.n).astype(np.intc)
        threshold = None if self.target is None else self.target - self.qubo.offset + self.tolerance
        t = self._kernel_starts()
        search = self.tabu_kernel(matrix, start, min(20, self.n // 4), timeout_ms, restarts,
                                  int(self.rng.integers(0, 2**32)), threshold)
        x = np.asarray(search.bestSolution(), dtype=np.uint8)[None, :]
        elapsed = self.clock() - t
        if timeout_ms > 0:
            self.tabu_overhead_s = max(0.0, elapsed - timeout_ms / 1000.0) if self.tabu_overhead_s is None else \
                0.5 * self.tabu_overhead_s + 0.5 * max(0.0, elapsed - timeout_ms / 1000.0)
            self.last_tabu_timeout_ms = timeout_ms
        self._record(x, "tabu")

    # ------------------------------------------------------------------ the two modes
    def budget(self) -> None:
        """Rounds of (tabu read, SA batch) with doubling slices, until the deadline or the target."""
        max_slice = max(_FIRST_SLICE_S, _MAX_SLICE_SHARE * self.time_limit)
        slice_s = _FIRST_SLICE_S
        # Tabu reads start at the library's own timeout (20 ms): a read stops as soon as it reaches
        # the target, so a long first read costs nothing when it succeeds early.
        tabu_slice = min(max_slice, _TABU_FIRST_S)
        use_tabu = "tabu" in self.methods
        if use_tabu:
            copy_s = _TABU_COPY_S * self.n * self.n
            # A tabu read whose matrix copy alone takes most of a slice is not worth it.
            if "sa" in self.methods and copy_s > 0.5 * max_slice:
                use_tabu = False
            else:
                tabu_slice = max(tabu_slice, 2 * copy_s)
        sweeps: int | None = None  # sized at the first SA batch: a tabu hit may make SA unnecessary
        while (reason := self._stopping()) is None:
            if use_tabu:
                overhead = self.tabu_overhead_s if self.tabu_overhead_s is not None else _TABU_COPY_S * self.n ** 2
                window = min(tabu_slice, self.remaining()) - overhead
                if window >= 0.5e-3 or "sa" not in self.methods:
                    self.tabu_read(timeout_ms=max(1, round(window * 1000)), restarts=1_000_000)
                if (reason := self._stopping()) is not None:
                    break
            if "sa" in self.methods:
                if sweeps is None:
                    sweeps = self.num_sweeps = self._sweeps(True)
                remaining = self.remaining()
                if self.pool.kept and remaining < self.sa_call_s + self.sa_read_s(sweeps):
                    # Not even one more read fits: starting a call would overrun the budget.
                    if not use_tabu:
                        reason = "time_limit"
                        break
                else:
                    # A call pays its set-up once: make it long enough for the set-up not to dominate.
                    window = min(max(slice_s, 4 * self.sa_call_s), remaining)
                    reads = int(window / max(self.sa_read_s(sweeps), 1e-9)) + 1
                    first = self.sa_calls == 0
                    self.sa_batch(reads, sweeps, stop_at=min(self.deadline, self.clock() + window))
                    if first and self.solver.num_sweeps is None:
                        # The first call measured the real speed: size the reads to the budget again.
                        sweeps = self.num_sweeps = self._sweeps(True)
            slice_s = min(2 * slice_s, max_slice)
            tabu_slice = min(2 * tabu_slice, max(max_slice, tabu_slice))
        self.stop_reason = reason

    def fixed_work(self, num_reads: int) -> None:
        """Exactly ``num_reads`` reads, no clock inside a read (deterministic for a given seed)."""
        tabu_reads = 0
        if "tabu" in self.methods:
            tabu_reads = num_reads if "sa" not in self.methods else num_reads // 2
        sa_reads = num_reads - tabu_reads
        sweeps = self._sweeps(False) if sa_reads else None
        self.num_sweeps = sweeps
        self.stop_reason = "reads"
        for _ in range(tabu_reads):
            if (reason := self._stopping()) is not None:
                self.stop_reason = reason
                return
            # timeout -1: the read ends after its restarts, never on the clock.
            self.tabu_read(timeout_ms=-1, restarts=self.solver.tabu_restarts)
        done = 0
        while done < sa_reads:
            if (reason := self._stopping()) is not None:
                self.stop_reason = reason
                return
            batch = min(64, sa_reads - done)
            before = self.reads["sa"]
            self.sa_batch(batch, sweeps, stop_at=self.deadline)
            done += max(1, self.reads["sa"] - before)
        if self.reached:
            self.stop_reason = "target"

    # ------------------------------------------------------------------ result
    def result(self) -> SampleSet:
        if self.pool.kept == 0:
            if self.initial is None:
                # Only Ctrl-C before the first read ends a run without a sample: nothing to keep.
                raise KeyboardInterrupt
            rows, origins = self.initial[None, :], ["initial"]
        else:
            rows = np.concatenate(self.pool.rows)
            origins = ["device"] * rows.shape[0]
            if self.initial is not None:
                rows = np.vstack([rows, self.initial[None, :]])
                origins.append("initial")
        if self.interrupted.is_set():
            self.stop_reason = "interrupted"
        startup = (self.first_read_at or self.clock()) - self.started
        reads = self.reads["sa"] + self.reads["tabu"]
        info = {
            "method": self.solver.method,
            "methods": list(self.methods),
            "mode": "budget" if self.solver.num_reads is None else "work",
            "reads": int(reads),
            "sa_reads": int(self.reads["sa"]),
            "tabu_reads": int(self.reads["tabu"]),
            "reads_discarded": int(self.pool.discarded),
            "num_sweeps": self.num_sweeps,
            "beta_range": list(self._sa["beta"]) if self._sa is not None else None,
            "tabu_timeout_ms": self.last_tabu_timeout_ms,
            "target": self.target,
            "reached_target": bool(self.reached) if self.target is not None else None,
            "time_to_target_s": self.time_to_target,
            "time_to_best_s": self.time_to_best,
            "best_found_by": self.best_by,
            "stop_reason": self.stop_reason,
            "interrupted": self.interrupted.is_set(),
            "startup_s": startup,
            "optimal": False,
        }
        total = self.clock() - self.started
        return SampleSet.from_samples(self.qubo, rows, solver=self.solver.name, origins=origins, info=info,
                                      timing={"total": total, "classical": total, "startup": startup})
