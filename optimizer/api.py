"""The Python API: what ``optimizer/__init__.py`` exports and the CLI calls.

::

    import optimizer

    problem = optimizer.load_problem("problems/typhoon-pearl-river.toml")
    result = optimizer.solve(problem, backend="cpsat", time_limit=20)
    print(result.status, result.objective, result.kpis.on_time_share)

``solve`` takes a freight :class:`~optimizer.freight.problem.Problem` (or a problem file's
path), or a bare :class:`~optimizer.qubo.qubo.Qubo` (or a QUBO file's path), and returns a typed,
frozen :class:`~optimizer.solving.result.Result` whose ``status`` is one of
:class:`~optimizer.solving.result.Status`. Conventions: minimisation; objectives in CNY for
freight problems and in QUBO energy for bare QUBOs; times in seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from optimizer.freight.problem import Problem, load_problem
from optimizer.qubo.qubo import Qubo
from optimizer.solving.config import Config, load_config, parse_config
from optimizer.solving.result import Result, StageRecord, Status
from optimizer.solving.stop import Deadline

__all__ = ["load_problem", "solve", "compare", "read_qubo", "write_qubo", "as_config"]


def as_config(config: Config | str | Path | Mapping | None) -> Config:
    """A :class:`Config` from a Config, a TOML file's path, a parsed mapping, or None (defaults)."""
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return parse_config(config, source="(mapping)")
    return load_config(config)


def solve(problem: Problem | Qubo | str | Path, *, backend: str | None = "cpsat",
          config: Config | str | Path | Mapping | None = None, seed: int | None = None,
          time_limit: float | None = None, on_progress: Callable[[StageRecord], None] | None = None,
          deadline: Deadline | None = None) -> Result:
    """Solve a freight problem or a bare QUBO with ``backend`` and return the checked :class:`Result`.

    ``time_limit`` (seconds) covers the whole run, preparation included; ``backend``, ``seed``
    and ``time_limit`` override the config's ``[solver]`` table (``backend=None`` keeps the
    config's). ``deadline`` (an :class:`optimizer.solving.stop.Deadline` already running, e.g. from
    before the caller read the problem file) replaces the one started here. Bad input raises
    :class:`~optimizer.errors.InputError`; the plan of a result is re-checked against the
    problem's own constraints before ``feasible`` or ``optimal`` is set.
    """
    cfg = as_config(config).override(backend=backend, seed=seed, time_limit=time_limit)
    from backends import REGISTRY
    from optimizer.errors import ConfigError, Issue

    if cfg.solver.backend not in REGISTRY:
        raise ConfigError(None, Issue("backend", f"unknown backend; known: {', '.join(REGISTRY)}", cfg.solver.backend))
    deadline = deadline or Deadline(cfg.solver.time_limit)
    if isinstance(problem, (str, Path)):
        from optimizer.qubo.formats import is_qubo_file

        problem = load_problem(problem) if not is_qubo_file(str(problem)) else read_qubo(
            problem, format=cfg.qubo.requested_format, sense=cfg.qubo.requested_sense)
    if isinstance(problem, Qubo):
        return _solve_qubo(problem, cfg, deadline, on_progress)
    if not isinstance(problem, Problem):
        raise TypeError(f"solve() takes a Problem, a Qubo or a file path, not {type(problem).__name__}")
    from optimizer.solving.pipeline import PreparationTimeout, solve_problem

    try:
        outcome = solve_problem(problem, cfg, deadline=deadline, on_progress=on_progress)
    except PreparationTimeout as exc:
        return Result(status=Status.TIME_LIMIT, backend=cfg.solver.backend, seed=cfg.solver.seed, objective=None,
                      problem=problem.name, message=str(exc), timing={"total": deadline.elapsed},
                      details={"problem": problem.name, "status": "time_limit", "message": str(exc)})
    return outcome.result()


def _solve_qubo(qubo: Qubo, cfg: Config, deadline: Deadline, on_progress) -> Result:
    from backends import create_solver
    from optimizer.qubo.formats import describe_result
    from optimizer.solving.hybrid import solve_qubo

    solver = create_solver(cfg.solver.backend, cfg.backend_options(cfg.solver.backend), source=cfg.source)
    samples, hybrid = solve_qubo(qubo, solver, cfg, seed=cfg.solver.seed, time_limit=max(deadline.remaining, 0.01),
                                 on_progress=on_progress)
    info = dict(samples.info)
    optimal = bool(info.get("optimal")) and not hybrid
    interrupted = bool(info.get("interrupted"))
    status = Status.INTERRUPTED if interrupted else (Status.OPTIMAL if optimal else Status.FEASIBLE)
    stages = tuple(_stages_from_json(info.get("stages", ())))
    details = describe_result(qubo, samples)
    return Result(status=status, backend=cfg.solver.backend, seed=cfg.solver.seed, objective=samples.best_energy,
                  bound=info.get("bound"), feasible=True, energy=samples.best_energy, stages=stages,
                  timing={"total": deadline.elapsed, **{k: float(v) for k, v in samples.timing.items()}},
                  problem=str(qubo.metadata.get("name") or ""), details=details)


def _stages_from_json(stages) -> list[StageRecord]:
    from optimizer.solving.result import PieceRecord

    out = []
    for s in stages:
        pieces = tuple(PieceRecord(**{k: (tuple(v) if k == "names" else v) for k, v in p.items()
                                      if k in {f.name for f in dataclasses.fields(PieceRecord)}})
                       for p in s.get("pieces", ()))
        fields = {f.name for f in dataclasses.fields(StageRecord)}
        out.append(StageRecord(**{**{k: v for k, v in s.items() if k in fields and k != "pieces"}, "pieces": pieces}))
    return out


def compare(files: Sequence[str | Path], *, backends: Sequence[str] | None = None, seeds: int = 1,
            time_limit: float | None = None, config: Config | str | Path | Mapping | None = None,
            out_dir: str | Path = "results/compare") -> dict:
    """Every file x backend x seed (CP-SAT always as the reference); writes results.json,
    results.csv, report.md and report.html into ``out_dir`` and returns the results document."""
    from backends import REGISTRY, is_installed
    from optimizer.solving.compare import run_comparison

    cfg = as_config(config)
    chosen = list(backends) if backends is not None else [b for b in REGISTRY if b != "exact" and is_installed(b)]
    return run_comparison([str(f) for f in files], cfg, backends=chosen,
                          seeds=list(range(cfg.solver.seed, cfg.solver.seed + seeds)),
                          time_limit=time_limit or cfg.solver.time_limit, out_dir=Path(out_dir))


def read_qubo(path: str | Path, *, format: str | None = None, sense: str | None = None) -> Qubo:
    """Read a QUBO file (OR-Library bqp, qbsolv, triples, rudy/Gset, QPLIB, npz, dimod JSON, LP)."""
    from optimizer.qubo.formats import read_qubo as _read

    return _read(path, format=format, sense=sense)


def write_qubo(qubo: Qubo, path: str | Path, format: str | None = None) -> Path:
    """Write a QUBO in a format (by ``format`` or the file's suffix)."""
    from optimizer.qubo.formats import write_qubo as _write

    return _write(qubo, path, format)
