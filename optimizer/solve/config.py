"""The run configuration: one TOML file, one table per component; unknown keys are errors.

::

    [solver]            backend, seed, time_limit (seconds)
    [model]             k_routes, max_departure_slots, inequality ("slack" | "unbalanced"), penalty
    [backends.<name>]   keyword options of that backend (see `qfreight backends`)
    [hybrid]            decomposition when the QUBO exceeds the backend's max_variables
    [refine]            CP-SAT refinement of the hybrid result on the constrained model
    [executor]          where independent subproblems run: local or a Dask cluster

CLI flags override the file (see :meth:`Config.override`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.errors import ConfigError, Issue

__all__ = ["Config", "SolverSection", "ModelSection", "load_config", "parse_config"]


@dataclass(frozen=True)
class SolverSection:
    backend: str = "cpsat"
    seed: int = 0
    time_limit: float = 30.0  # seconds


@dataclass(frozen=True)
class ModelSection:
    k_routes: int = 2
    max_departure_slots: int = 4
    inequality: str = "slack"
    penalty: float | None = None  # None: the guaranteed rule in optimizer.qubo.encoding


@dataclass(frozen=True)
class HybridSection:
    subproblem_size: int = 0  # 0: the backend's max_variables
    rounds: int = 200
    patience: int = 30
    pieces_per_round: int = 1
    selection: str = "energy-impact"  # energy-impact | resource | random
    plans_per_shipment: int = 4  # plans of each shipment in a piece (current + cheapest others); 0: all
    # Solve every device piece also with the trivial stand-ins (incumbent, local search, random
    # samples, annealing) and credit the device only with what it found beyond them.
    attribution: bool = True
    piece_inequality: str = "auto"  # capacity rows in pieces: "slack", "unbalanced", or the backend's choice


@dataclass(frozen=True)
class RefineSection:
    enabled: bool = True
    time_limit: float = 10.0  # seconds
    workers: int = 1


@dataclass(frozen=True)
class ExecutorSection:
    kind: str = "local"  # local | dask
    workers: int = 1
    address: str = ""  # Dask scheduler, e.g. "tcp://host:8786"; empty: start a LocalCluster


@dataclass(frozen=True)
class Config:
    solver: SolverSection = field(default_factory=SolverSection)
    model: ModelSection = field(default_factory=ModelSection)
    backends: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    hybrid: HybridSection = field(default_factory=HybridSection)
    refine: RefineSection = field(default_factory=RefineSection)
    executor: ExecutorSection = field(default_factory=ExecutorSection)
    source: str | None = None

    def backend_options(self, name: str) -> dict[str, object]:
        return dict(self.backends.get(name, {}))

    def override(self, **solver_fields: object) -> Config:
        """A copy with the given [solver] fields replaced (None values are ignored)."""
        given = {k: v for k, v in solver_fields.items() if v is not None}
        return dataclasses.replace(self, solver=dataclasses.replace(self.solver, **given))


_TYPES = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _section(cls, raw: object, name: str, source: str | None, issues: list[Issue]):
    if not isinstance(raw, Mapping):
        issues.append(Issue(name, "expected a table", raw))
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in fields:
            issues.append(Issue(f"{name}.{key}", f"unknown key; known keys: {', '.join(fields)}"))
            continue
        default = fields[key].default
        expected = type(default) if default is not None else float
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, _TYPES[expected]):
            issues.append(Issue(f"{name}.{key}", f"expected {expected.__name__}", value))
            continue
        values[key] = expected(value)
    return cls(**values)


def parse_config(data: Mapping[str, object], *, source: str | None = None) -> Config:
    from backends import REGISTRY, backend_options

    issues: list[Issue] = []
    known = ("solver", "model", "backends", "hybrid", "refine", "executor")
    for key in data:
        if key not in known:
            issues.append(Issue(key, f"unknown section; known sections: {', '.join(known)}"))
    solver = _section(SolverSection, data.get("solver", {}), "solver", source, issues)
    model = _section(ModelSection, data.get("model", {}), "model", source, issues)
    hybrid = _section(HybridSection, data.get("hybrid", {}), "hybrid", source, issues)
    refine = _section(RefineSection, data.get("refine", {}), "refine", source, issues)
    executor = _section(ExecutorSection, data.get("executor", {}), "executor", source, issues)
    if hybrid.piece_inequality not in ("auto", "slack", "unbalanced"):
        issues.append(Issue("hybrid.piece_inequality", "expected 'auto', 'slack' or 'unbalanced'",
                            hybrid.piece_inequality))
    if hybrid.selection not in ("energy-impact", "resource", "random"):
        issues.append(Issue("hybrid.selection", "expected 'energy-impact', 'resource' or 'random'", hybrid.selection))
    if hybrid.subproblem_size < 0 or hybrid.plans_per_shipment < 0 or hybrid.rounds < 1 or hybrid.patience < 1 or hybrid.pieces_per_round < 1:
        issues.append(Issue("hybrid", "subproblem_size must be >= 0; rounds, patience, pieces_per_round >= 1"))
    if executor.kind not in ("local", "dask"):
        issues.append(Issue("executor.kind", "expected 'local' or 'dask'", executor.kind))
    if refine.time_limit <= 0 or refine.workers < 1 or executor.workers < 1:
        issues.append(Issue("refine/executor", "time_limit must be > 0 and workers >= 1"))
    if solver.backend not in REGISTRY:
        issues.append(Issue("solver.backend", f"unknown backend; known: {', '.join(REGISTRY)}", solver.backend))
    if solver.time_limit <= 0:
        issues.append(Issue("solver.time_limit", "must be > 0 seconds", solver.time_limit))
    if model.inequality not in ("slack", "unbalanced"):
        issues.append(Issue("model.inequality", "expected 'slack' or 'unbalanced'", model.inequality))
    if model.k_routes < 1 or model.max_departure_slots < 1:
        issues.append(Issue("model", "k_routes and max_departure_slots must be at least 1"))
    backends_raw = data.get("backends", {})
    backends: dict[str, dict[str, object]] = {}
    if not isinstance(backends_raw, Mapping):
        issues.append(Issue("backends", "expected a table of backend tables", backends_raw))
    else:
        for name, options in backends_raw.items():
            if name not in REGISTRY:
                issues.append(Issue(f"backends.{name}", f"unknown backend; known: {', '.join(REGISTRY)}"))
                continue
            if not isinstance(options, Mapping):
                issues.append(Issue(f"backends.{name}", "expected a table of options", options))
                continue
            allowed = backend_options(name)
            for key in options:
                if key not in allowed:
                    issues.append(Issue(f"backends.{name}.{key}",
                                        f"unknown option; known options: {', '.join(sorted(allowed))}"))
            backends[name] = dict(options)
    if issues:
        raise ConfigError(source, issues)
    return Config(solver=solver, model=model, backends=backends, hybrid=hybrid, refine=refine, executor=executor,
                  source=source)


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, Issue("(file)", f"cannot read: {exc.strerror or exc}")) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, Issue("(syntax)", f"malformed TOML: {exc}")) from None
    return parse_config(data, source=source)
