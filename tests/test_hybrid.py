"""The decomposition loop: exact pieces, whole groups, never worse, stand-in attribution, same seed
same answer on every executor."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import create_solver
from optimizer.qubo import Qubo
from optimizer.qubo.restrict import submodel
from optimizer.solving import decompose as loop
from optimizer.solving.decompose import ModelSource, QuboPieceSolver, QuboSource, choose_units, decompose
from optimizer.solving.executor import DaskExecutor, LocalExecutor, create_executor
from optimizer.solving.result import STANDINS
from optimizer.solving.solver import SampleSet
from optimizer.solving.stop import Deadline, MaxRounds, MultipleCriteria, NoImprovement
from tests.conftest import PROBLEMS, one_hot_qubo, random_qubo


def one_hot_optimum(qubo: Qubo, groups: int, size: int) -> float:
    """Lowest energy over all one-hot assignments (the optimum: penalties dominate)."""
    choice = np.array(list(itertools.product(range(size), repeat=groups)))
    X = np.zeros((len(choice), groups * size), np.uint8)
    for g in range(groups):
        X[np.arange(len(choice)), g * size + choice[:, g]] = 1
    return float(qubo.energies(X).min())


def first_members(qubo: Qubo) -> np.ndarray:
    warm = np.zeros(qubo.num_variables, np.uint8)
    warm[[g[0] for g in qubo.groups]] = 1
    return warm


def run_qubo(qubo, solver, *, seed=0, time_limit=20.0, start=None, rounds=30, patience=10, attribution=False,
             **kwargs):
    start = first_members(qubo) if start is None else start
    return decompose(QuboSource(qubo), QuboPieceSolver(solver), start=start, seed=seed,
                     stop=MultipleCriteria([MaxRounds(rounds), NoImprovement(patience)]),
                     deadline=Deadline(time_limit), attribution=attribution, **kwargs)


@pytest.fixture
def small_exact():
    return create_solver("exact", {"max_variables": 12})


# ---------------------------------------------------------------------------- pieces
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 14), data=st.data())
def test_clamped_piece_energy_is_exact(seed, n, data):
    qubo = random_qubo(n, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n).astype(np.uint8)
    free = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n))))
    fixed = np.setdiff1d(np.arange(n), free)
    sub, sub_free = qubo.clamp(dict(zip(fixed.tolist(), x[fixed].tolist())))
    assert np.array_equal(sub_free, free)
    y = rng.integers(0, 2, free.size).astype(np.uint8)
    full = x.copy()
    full[free] = y
    assert qubo.energy(full) == pytest.approx(sub.energy(y), abs=1e-9)


@pytest.mark.parametrize("selection", ["energy-impact", "resource", "random"])
@pytest.mark.parametrize("limit", [4, 9, 12])
def test_pieces_are_whole_groups_within_the_limit(selection, limit):
    # Groups of 4 plus 8 lone variables.
    n = 20
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(np.triu(rng.random((n, n)) < 0.3, 1))
    qubo = Qubo.from_terms(n, linear=rng.normal(size=n), rows=rows, cols=cols, weights=rng.normal(size=rows.size),
                           groups=[(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)])
    source = QuboSource(qubo)
    assert source.num_units == 3 + 8
    x = rng.integers(0, 2, n).astype(np.uint8)
    for round_ in range(20):
        units = choose_units(source, x, budget=limit, rng=np.random.default_rng(round_), selection=selection,
                             avoid=set(), sizes=source.unit_sizes())
        piece = source.piece(x, units)
        assert 0 < piece.variables.size <= limit
        chosen = set(piece.variables.tolist())
        for group in qubo.groups:
            assert chosen.isdisjoint(group) or chosen.issuperset(group)
        # The piece's QUBO is the exact clamp: its energy of the incumbent is the full energy.
        assert piece.qubo.energy(piece.start) == pytest.approx(qubo.energy(x), abs=1e-9)


def test_unknown_selection_is_an_error(small_exact):
    with pytest.raises(ValueError, match="selection"):
        run_qubo(one_hot_qubo(3, 3, seed=0), small_exact, selection="greedy")


# ---------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_never_worse_than_warm_start(seed, small_exact):
    qubo = one_hot_qubo(8, 4, seed=seed)
    warm = first_members(qubo)
    run = run_qubo(qubo, small_exact, seed=seed, start=warm)
    assert run.value <= qubo.energy(warm) + 1e-9
    assert run.value == pytest.approx(qubo.energy(run.x), abs=1e-9)
    assert run.stages[0].stage == "warm_start" and run.stages[0].objective == pytest.approx(qubo.energy(warm))
    values = [s.objective for s in run.stages]
    assert all(b <= a + 1e-9 for a, b in zip(values, values[1:]))  # the incumbent only improves
    assert all(s.subproblem_size <= 12 for s in run.stages if s.stage == "round")
    assert run.rounds == len(run.stages) - 1


def test_larger_than_device_reaches_the_optimum(small_exact):
    qubo = one_hot_qubo(8, 4, seed=3)  # 32 variables, device takes 12
    # From the naive start only 6 of the 56 three-group pieces hold the last improving move.
    run = run_qubo(qubo, small_exact, rounds=80, patience=40)
    assert run.value == pytest.approx(one_hot_optimum(qubo, 8, 4), abs=1e-9)


def test_result_is_optimal_for_every_piece_of_three_groups(small_exact):
    # Whatever optimum it stops in, no piece of 3 whole groups can improve it (a 3-opt local optimum).
    qubo = one_hot_qubo(8, 4, seed=1)
    run = run_qubo(qubo, small_exact, rounds=200, patience=60, selection="random")
    x = run.x
    for triple in itertools.combinations(range(8), 3):
        free = np.array([i for g in triple for i in qubo.groups[g]])
        fixed = np.setdiff1d(np.arange(32), free)
        sub, _ = qubo.clamp(dict(zip(fixed.tolist(), x[fixed].tolist())))
        assert small_exact.solve(sub).best_energy >= run.value - 1e-9


def test_qaoa_device_on_a_larger_qubo():
    qaoa = create_solver("qaoa", {"max_variables": 12, "reps": 1, "maxiter": 20})
    qubo = one_hot_qubo(8, 4, seed=3)
    run = run_qubo(qubo, qaoa, time_limit=30, rounds=20, patience=8)
    assert run.value <= run.start_value + 1e-9
    optimum = one_hot_optimum(qubo, 8, 4)
    assert run.value <= optimum + 0.1 * abs(optimum)


def test_refine_hook_is_kept_only_when_it_helps(small_exact):
    qubo = one_hot_qubo(5, 3, seed=4)
    bad = lambda x, seconds: np.ones_like(x)  # noqa: E731 - breaks every one-hot group
    run = run_qubo(qubo, small_exact, rounds=5, refine=bad, refine_time=1.0)
    assert run.stages[-1].stage == "refine" and not run.stages[-1].accepted
    assert run.value < qubo.energy(np.ones(15, np.uint8))


def test_ctrl_c_returns_the_best_so_far(small_exact):
    qubo = one_hot_qubo(8, 4, seed=2)
    seen = []

    def progress(stage):
        seen.append(stage)
        if stage.stage == "round" and stage.round == 3:
            raise KeyboardInterrupt

    run = run_qubo(qubo, small_exact, rounds=50, patience=50, on_progress=progress)
    assert run.interrupted and run.stop == "interrupted"
    assert run.value == pytest.approx(run.stages[-1].objective)
    assert len(seen) == len(run.stages) == 4


def test_stop_criteria_compose():
    stop = MultipleCriteria([MaxRounds(5), NoImprovement(2)])
    assert [stop(v) for v in (10.0, 9.0, 9.0, 9.0)] == [False, False, False, True]
    assert stop.reason == "no_improvement"
    rounds = MultipleCriteria([MaxRounds(2), NoImprovement(10)])
    assert [rounds(v) for v in (3.0, 2.0, 1.0)] == [False, False, True] and rounds.reason == "rounds"


# ---------------------------------------------------------------------------- attribution
class EchoSolver:
    """A "device" that hands back its warm start unchanged, labelled as its own output: the
    accounting must credit it with nothing."""

    name = "echo"
    max_variables = 12

    def solve(self, qubo, *, seed, time_limit, initial=None):
        return SampleSet.from_samples(qubo, np.asarray(initial, np.uint8)[None, :], solver=self.name,
                                      origins="device", timing={"total": 0.01})


def test_a_device_that_returns_its_warm_start_gets_no_credit():
    qubo = one_hot_qubo(8, 4, seed=6)
    run = run_qubo(qubo, EchoSolver(), rounds=6, patience=6, attribution=True)
    pieces = [p for s in run.stages for p in s.pieces]
    assert pieces and all(set(p.standins) == set(STANDINS) for p in pieces)
    assert run.device_contribution == 0.0 and run.credited_rounds == 0
    assert all(p.contribution == 0.0 and p.accepted_from != "device" for p in pieces)
    # The stand-ins' own answers still move the incumbent: their gain is credited to them.
    assert run.value < run.start_value
    assert {p.accepted_from for p in pieces} - {None} <= {"local_search", "random", "anneal"}


def test_device_is_credited_only_beyond_the_best_standin(monkeypatch, small_exact):
    qubo = one_hot_qubo(6, 4, seed=8)
    real = loop.standins

    def weak_standins(piece, device, solver, **kwargs):
        answers, seconds = real(piece, device, solver, **kwargs)
        # Only the incumbent is left: whatever the device improves is beyond every stand-in.
        return {name: (answers["incumbent"] if name == "incumbent" else None) for name in answers}, seconds

    monkeypatch.setattr(loop, "standins", weak_standins)
    run = run_qubo(qubo, small_exact, rounds=8, patience=8, attribution=True)
    assert run.value < run.start_value
    pieces = [p for s in run.stages for p in s.pieces]
    gained = sum(s.gain for s in run.stages if s.stage == "round")
    assert run.device_contribution == pytest.approx(gained, rel=1e-9)
    assert run.credited_rounds == sum(1 for s in run.stages if s.stage == "round" and s.accepted)
    for p in pieces:
        assert p.contribution == pytest.approx(max(0.0, p.current - p.device), abs=1e-9)


# ---------------------------------------------------------------------------- executors
def test_local_and_dask_executors_give_the_same_result(small_exact):
    qubo = one_hot_qubo(8, 4, seed=5)
    kwargs = dict(seed=7, time_limit=60, rounds=8, patience=8, pieces_per_round=2)
    with LocalExecutor() as local:
        a = run_qubo(qubo, small_exact, executor=local, **kwargs)
    with DaskExecutor(n_workers=1, threads_per_worker=1, processes=False) as dask:
        assert dask.map(abs, [-1, 2, -3]) == [1, 2, 3]
        b = run_qubo(qubo, small_exact, executor=dask, **kwargs)
    assert np.array_equal(a.x, b.x)
    assert [s.objective for s in a.stages] == [s.objective for s in b.stages]


def test_create_executor_checks_its_kind():
    with create_executor("local") as ex:
        assert ex.map(str, [1, 2]) == ["1", "2"]
    with pytest.raises(ValueError, match="unknown executor kind"):
        create_executor("ray")


# ---------------------------------------------------------------------------- freight models
@pytest.fixture(scope="module")
def china_prepared():
    from optimizer.freight.problem import load_problem
    from optimizer.solving.config import Config
    from optimizer.solving.pipeline import prepare

    return prepare(load_problem(PROBLEMS / "china-core.toml"), Config())


def run_model(prep, solver, *, seed=0, time_limit=20.0, rounds=10, patience=10, attribution=False, **kwargs):
    # Device pieces over plans, train counts repaired exactly (as the pipeline builds them).
    source = ModelSource(prep.model, names=[s.id for s in prep.problem.shipments], plans_per_group=4,
                         surrogate=prep.pieces)
    return decompose(source, QuboPieceSolver(solver), start=prep.greedy, seed=seed,
                     stop=MultipleCriteria([MaxRounds(rounds), NoImprovement(patience)]),
                     deadline=Deadline(time_limit), attribution=attribution, **kwargs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 4))
def test_submodel_is_exact(china_prepared, seed, count):
    """Objective and feasibility of the full plan == those of the piece, for any piece assignment."""
    model = china_prepared.model
    rng = np.random.default_rng(seed)
    x = china_prepared.greedy.copy()
    groups = sorted(rng.choice(len(model.groups), size=count, replace=False).tolist())
    variables = np.concatenate([model.groups[g] for g in groups])
    sub = submodel(model, x, variables)
    for _ in range(10):
        y = np.zeros(sub.num_variables, dtype=np.uint8)
        for members in sub.groups:
            y[rng.choice(members)] = 1
        full = x.copy()
        full[variables] = y
        assert sub.objective(y)[0] == pytest.approx(model.objective(full)[0], rel=1e-12)
        assert bool(sub.is_feasible(y)[0]) == bool(model.is_feasible(full)[0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 6))
def test_piece_sizes_are_the_sizes_of_the_pieces_built(china_prepared, seed, count):
    """LNS picks a neighbourhood's prefix from these counts without building it: they must be
    the exact variable counts (plans and auxiliary train counts) of the pieces built."""
    model = china_prepared.model
    rng = np.random.default_rng(seed)
    x = china_prepared.greedy.copy()
    source = ModelSource(model, names=[s.id for s in china_prepared.problem.shipments])
    units = rng.choice(len(model.groups), size=count, replace=False).tolist()
    sizes = source.piece_sizes(x, units)
    for k in range(1, count + 1):
        piece = source.piece(x, units[:k], qubo=False)
        assert sizes[k - 1] == piece.model.num_variables == piece.variables.size


def test_model_pieces_improve_on_greedy_with_attribution(china_prepared):
    prep = china_prepared
    device = create_solver("exact", {"max_variables": 18})
    run = run_model(prep, device, seed=2, time_limit=20, rounds=8, attribution=True)
    greedy = float(prep.model.objective(prep.greedy)[0])
    assert prep.model.is_feasible(run.x)[0]
    assert run.value == pytest.approx(prep.model.objective(run.x)[0], rel=1e-12)
    assert run.value < greedy
    rounds = [s for s in run.stages if s.stage == "round"]
    assert all(s.subproblem_size <= 18 for s in rounds)
    pieces = [p for s in rounds for p in s.pieces]
    assert all(set(p.standins) == set(STANDINS) and p.contribution >= 0 for p in pieces)
    assert all(p.names and all(n.startswith("S") for n in p.names) for p in pieces)
    info = run.info()
    assert info["device_contribution"] == pytest.approx(sum(p.contribution for p in pieces))
    json.dumps(info)


def test_model_pieces_on_qaoa_and_photonic(china_prepared):
    prep = china_prepared
    greedy = float(prep.model.objective(prep.greedy)[0])
    photonic = create_solver("photonic", {"modes": 12, "samples": 40})
    run = run_model(prep, photonic, time_limit=8, rounds=3)
    assert prep.model.is_feasible(run.x)[0] and run.value <= greedy + 1e-6
    assert all(s.subproblem_size <= 12 for s in run.stages if s.stage == "round")
    # QAOA simulates pieces in their one-hot subspace: sized by amplitudes (4^10), not qubits.
    qaoa = create_solver("qaoa", {"reps": 1, "maxiter": 15})
    run = decompose(ModelSource(prep.model, names=[s.id for s in prep.problem.shipments], plans_per_group=4,
                                surrogate=prep.pieces),
                    QuboPieceSolver(qaoa, inequality="unbalanced"), start=prep.greedy, seed=0,
                    stop=MultipleCriteria([MaxRounds(2), NoImprovement(2)]), deadline=Deadline(20), attribution=False)
    assert prep.model.is_feasible(run.x)[0] and run.value <= greedy + 1e-6
    pieces = [p for s in run.stages for p in s.pieces]
    assert pieces and all(len(p.names) >= 10 for p in pieces)


def test_real_local_cluster_with_worker_processes_matches_local(china_prepared):
    """A real Dask LocalCluster (separate worker processes, reached by its address)."""
    from dask.distributed import LocalCluster

    prep = china_prepared
    device = create_solver("exact", {"max_variables": 16})
    kwargs = dict(seed=5, time_limit=60, rounds=4, pieces_per_round=2)
    local = run_model(prep, device, executor=LocalExecutor(), **kwargs)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with DaskExecutor(address=cluster.scheduler_address) as ex:
            remote = run_model(prep, device, executor=ex, **kwargs)
    np.testing.assert_array_equal(local.x, remote.x)
    assert [s.objective for s in local.stages] == [s.objective for s in remote.stages]


def test_cli_ctrl_c_writes_best_plan_and_exits_130(tmp_path, monkeypatch, capsys):
    from optimizer.cli import main

    calls = {"n": 0}
    real = loop._solve_piece_task

    def interrupting(task):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(loop, "_solve_piece_task", interrupting)
    code = main(["solve", str(PROBLEMS / "china-core.toml"), "--backend", "exact", "--time-limit", "30",
                 "--out", str(tmp_path)])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["feasible"] and result["objective_cny"] <= result["greedy_objective_cny"] + 1e-6


class _SlowStart:
    """The exact solver, reporting a one-time start-up (as the photonic backend reports importing
    Strawberry Fields and loading thewalrus's kernels) inside its total time."""

    def __init__(self, startup: float):
        self.inner = create_solver("exact", {"max_variables": 18})
        self.name, self.max_variables, self.startup = "slow-start", 18, startup

    def solve(self, qubo, *, seed=0, time_limit=None, initial=None):
        result = self.inner.solve(qubo, seed=seed, time_limit=time_limit, initial=initial)
        timing = {**result.timing, "startup": self.startup, "total": self.startup + result.timing.get("total", 0.0)}
        return SampleSet(samples=result.samples, energies=result.energies, counts=result.counts, solver=self.name,
                         timing=timing, info=result.info, origins=result.origins, origin_counts=result.origin_counts)


def test_standins_get_the_devices_solving_time_not_its_start_up(china_prepared):
    """Fuzzing found a 2 s photonic run taking 14 s: the stand-ins were given the device's total
    seconds, Strawberry Fields' import included, and annealed for as long again."""
    run = run_model(china_prepared, _SlowStart(startup=4.0), seed=1, time_limit=20, rounds=1, attribution=True)
    pieces = [p for s in run.stages if s.stage == "round" for p in s.pieces]
    assert pieces and all(p.device_seconds >= 4.0 for p in pieces)
    assert all(p.standin_seconds < 2.0 for p in pieces)
