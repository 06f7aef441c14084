"""The run configuration: one TOML file, one table per component; unknown keys are errors.

::

    [solver]            backend, seed, time_limit (seconds, the whole run: preparation included),
                        budget ("time" | "work"), work (CP-SAT deterministic seconds in work mode),
                        lns ("auto" | "on" | "off": large-neighbourhood search for model solvers)
    [lns]               neighbourhood size, time per neighbourhood, neighbourhoods per round, selection
    [model]             k_routes, max_departure_slots (0: whole horizon), light_engines, inequality
                        ("slack" | "unbalanced"), penalty
    [objective]         weights cost, lateness, dwell, diesel, co2; mode ("weighted" | "service-first");
                        guard_baseline (see optimizer.freight.objective)
    [backends.<name>]   keyword options of that backend (see `qfreight backends`)
    [hybrid]            decomposition when the QUBO exceeds the backend's max_variables
    [refine]            CP-SAT refinement of the hybrid result on the constrained model
    [executor]          where independent subproblems run: local or a Dask cluster
    [qubo]              bare QUBO / model files: sense ("auto" | "min" | "max"), format ("auto" | a
                        readable format), target (stop once reached; in the file's convention)

CLI flags override the file (see :meth:`Config.override`).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.errors import ConfigError, InputError, Issue
from optimizer.freight.objective import CRITERIA, Objective

__all__ = ["Config", "SolverSection", "ModelSection", "LnsSection", "load_config", "parse_config", "BOUNDS"]


@dataclass(frozen=True)
class SolverSection:
    backend: str = "cpsat"
    seed: int = 0
    time_limit: float = 30.0  # seconds, for the whole run (preparation included)
    # "time": stop on the wall clock (time_limit). "work": stop on fixed work, so the same seed gives
    # the same plan on any machine and load: CP-SAT's deterministic time (``work``), fixed reads,
    # evaluations and samples (each backend's own options), fixed rounds; time_limit is then only a
    # safety net that ends the run with status time_limit.
    budget: str = "time"
    work: float = 10.0  # CP-SAT deterministic-time units in work mode (per whole-model solve)
    lns: str = "auto"  # "auto": LNS when the model has more than lns_variables variables


@dataclass(frozen=True)
class LnsSection:
    """Large-neighbourhood search on the model: CP-SAT re-solves neighbourhoods of whole shipments."""

    auto_variables: int = 20_000  # [solver] lns = "auto" switches to LNS above this many model variables
    subproblem_size: int = 600  # model variables per neighbourhood
    piece_time: float = 0.5  # seconds (or, in work mode, deterministic units) per neighbourhood
    pieces_per_round: int = 1  # non-overlapping neighbourhoods solved at once (through [executor])
    selection: str = "adaptive"  # adaptive | energy-impact | resource | window | worst | random
    workers: int = 1  # CP-SAT workers per neighbourhood
    rounds: int = 1000  # in work mode the loop's stop (rounds of neighbourhoods)
    patience: int = 200  # rounds without improvement before stopping


@dataclass(frozen=True)
class ModelSection:
    k_routes: int = 2
    max_departure_slots: int = 0  # 0: every slot from the release to the end of the horizon
    light_engines: int = 1  # light-engine moves per corridor, direction and slot where a fleet can run short
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
    piece_time: float = 10.0  # seconds per piece for the device (and as much again for the stand-ins)
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
    # The embedded LocalCluster's workers: threads of this process (CP-SAT and the simulators
    # release the GIL, and nothing is pickled) or separate worker processes, as on a real cluster.
    processes: bool = False


@dataclass(frozen=True)
class QuboSection:
    """How bare QUBO and model files are read (``--sense``, ``--format``, ``--target`` override it).

    ``sense = "auto"``: the file's statement, else the format's default (see
    :mod:`optimizer.qubo.formats.registry`). ``target``: a value in the file's own convention
    (e.g. a published maximum); a backend with a ``target`` option stops once it reaches it.
    """

    sense: str = "auto"
    format: str = "auto"
    target: float | None = None

    @property
    def requested_sense(self) -> str | None:
        return None if self.sense == "auto" else self.sense

    @property
    def requested_format(self) -> str | None:
        return None if self.format == "auto" else self.format


@dataclass(frozen=True)
class ReplanSection:
    """``[replan]``: the stability term of re-planning (``qfreight replan``, ``simulate``, ``serve``)."""

    change_cost_cny: float = 1000.0  # CNY per shipment whose route or departure slot changes


@dataclass(frozen=True)
class Config:
    solver: SolverSection = field(default_factory=SolverSection)
    model: ModelSection = field(default_factory=ModelSection)
    objective: Objective = field(default_factory=Objective)
    backends: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    hybrid: HybridSection = field(default_factory=HybridSection)
    refine: RefineSection = field(default_factory=RefineSection)
    executor: ExecutorSection = field(default_factory=ExecutorSection)
    qubo: QuboSection = field(default_factory=QuboSection)
    lns: LnsSection = field(default_factory=LnsSection)
    replan: ReplanSection = field(default_factory=ReplanSection)
    source: str | None = None

    def backend_options(self, name: str) -> dict[str, object]:
        return dict(self.backends.get(name, {}))

    def override(self, **solver_fields: object) -> Config:
        """A copy with the given [solver] fields replaced (None values are ignored), checked
        like the file's values (a ConfigError names the flag's field)."""
        given = {k: v for k, v in solver_fields.items() if v is not None}
        issues: list[Issue] = []
        for key, value in given.items():
            _check_value("solver", key, value, issues)
        if issues:
            raise ConfigError("command line", issues)
        return dataclasses.replace(self, solver=dataclasses.replace(self.solver, **given))


_TYPES = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}

_WEEK = 7 * 24 * 3600.0
#: Bounds of the numeric keys, (lowest, highest), inclusive; seconds and counts. Every float
#: must also be finite. They are generous: their job is to refuse values no run can honour.
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("solver", "seed"): (0, 2**32 - 1),
    ("solver", "time_limit"): (1e-3, _WEEK),
    ("model", "k_routes"): (1, 64),
    ("model", "max_departure_slots"): (0, 1_000_000),
    ("model", "light_engines"): (0, 100),
    ("model", "penalty"): (1e-12, 1e15),
    ("hybrid", "subproblem_size"): (0, 100_000),
    ("hybrid", "rounds"): (1, 10**8),
    ("hybrid", "patience"): (1, 10**8),
    ("hybrid", "pieces_per_round"): (1, 4096),
    ("hybrid", "plans_per_shipment"): (0, 100_000),
    ("hybrid", "piece_time"): (1e-3, _WEEK),
    ("refine", "time_limit"): (1e-3, _WEEK),
    ("refine", "workers"): (1, 1024),
    ("executor", "workers"): (1, 65_536),
    ("solver", "work"): (1e-3, 1e9),
    ("lns", "auto_variables"): (0, 10**9),
    ("lns", "subproblem_size"): (2, 10**6),
    ("lns", "piece_time"): (1e-3, _WEEK),
    ("lns", "pieces_per_round"): (1, 4096),
    ("lns", "workers"): (1, 1024),
    ("lns", "rounds"): (1, 10**9),
    ("lns", "patience"): (1, 10**9),
    ("replan", "change_cost_cny"): (0, 1e9),
}


def _check_value(section: str, key: str, value: object, issues: list[Issue]) -> bool:
    """Finite, and within :data:`BOUNDS`; records an issue naming ``section.key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    if isinstance(value, float) and not math.isfinite(value):
        issues.append(Issue(f"{section}.{key}", "must be a finite number", value))
        return False
    bounds = BOUNDS.get((section, key))
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        issues.append(Issue(f"{section}.{key}", f"must be between {bounds[0]:g} and {bounds[1]:g}", value))
        return False
    return True


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
        if not _check_value(name, key, value, issues):
            continue
        values[key] = expected(value)
    return cls(**values)


def _objective_section(raw: object, issues: list[Issue]) -> Objective:
    """``[objective]``: weights (finite, >= 0), mode, guard_baseline (true/false; default: on in
    service-first mode)."""
    if not isinstance(raw, Mapping):
        issues.append(Issue("objective", "expected a table", raw))
        return Objective()
    known = (*CRITERIA, "mode", "guard_baseline")
    values: dict[str, object] = {}
    for key, value in raw.items():
        if key not in known:
            issues.append(Issue(f"objective.{key}", f"unknown key; known keys: {', '.join(known)}"))
        elif key == "mode" and not isinstance(value, str):
            issues.append(Issue("objective.mode", "expected a string", value))
        elif key == "guard_baseline" and not isinstance(value, bool):
            issues.append(Issue("objective.guard_baseline", "expected true or false", value))
        elif key in CRITERIA and (isinstance(value, bool) or not isinstance(value, (int, float))):
            issues.append(Issue(f"objective.{key}", "expected a number", value))
        else:
            values[key] = float(value) if key in CRITERIA else value
    objective = Objective(**values)
    for name, message, value in objective.problems():
        issues.append(Issue(f"objective.{name}", message, value))
    return objective if not objective.problems() else Objective()


def parse_config(data: Mapping[str, object], *, source: str | None = None) -> Config:
    from backends import REGISTRY, check_backend_options

    issues: list[Issue] = []
    known = ("solver", "model", "objective", "backends", "hybrid", "refine", "executor", "qubo", "lns", "replan")
    for key in data:
        if key not in known:
            issues.append(Issue(key, f"unknown section; known sections: {', '.join(known)}"))
    solver = _section(SolverSection, data.get("solver", {}), "solver", source, issues)
    model = _section(ModelSection, data.get("model", {}), "model", source, issues)
    objective = _objective_section(data.get("objective", {}), issues)
    hybrid = _section(HybridSection, data.get("hybrid", {}), "hybrid", source, issues)
    refine = _section(RefineSection, data.get("refine", {}), "refine", source, issues)
    executor = _section(ExecutorSection, data.get("executor", {}), "executor", source, issues)
    qubo = _section(QuboSection, data.get("qubo", {}), "qubo", source, issues)
    lns = _section(LnsSection, data.get("lns", {}), "lns", source, issues)
    replan = _section(ReplanSection, data.get("replan", {}), "replan", source, issues)
    _check_qubo_section(qubo, issues)
    from optimizer.solving.decompose import SELECTIONS

    if solver.budget not in ("time", "work"):
        issues.append(Issue("solver.budget", "expected 'time' or 'work'", solver.budget))
    if solver.lns not in ("auto", "on", "off"):
        issues.append(Issue("solver.lns", "expected 'auto', 'on' or 'off'", solver.lns))
    if lns.selection not in SELECTIONS:
        issues.append(Issue("lns.selection", f"expected one of {', '.join(SELECTIONS)}", lns.selection))
    if hybrid.piece_inequality not in ("auto", "slack", "unbalanced"):
        issues.append(Issue("hybrid.piece_inequality", "expected 'auto', 'slack' or 'unbalanced'",
                            hybrid.piece_inequality))
    if hybrid.selection not in SELECTIONS:
        issues.append(Issue("hybrid.selection", f"expected one of {', '.join(SELECTIONS)}", hybrid.selection))
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
            issues += check_backend_options(name, options)
            backends[name] = dict(options)
    if issues:
        raise ConfigError(source, issues)
    return Config(solver=solver, model=model, objective=objective, backends=backends, hybrid=hybrid, refine=refine,
                  executor=executor, qubo=qubo, lns=lns, replan=replan, source=source)


def _check_qubo_section(qubo: QuboSection, issues: list[Issue]) -> None:
    from optimizer.qubo.formats import READ_FORMATS, format_choices

    if qubo.sense not in ("auto", "min", "max"):
        issues.append(Issue("qubo.sense", "expected 'auto', 'min' or 'max'", qubo.sense))
    if qubo.format != "auto" and qubo.format.lower() not in format_choices(readable=True):
        issues.append(Issue("qubo.format", f"expected 'auto' or a readable format ({', '.join(READ_FORMATS)})",
                            qubo.format))


#: A config file is a few tables: anything larger is not one.
_CONFIG_BYTES = 1 << 20


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    from optimizer.inputs import decode, read_input

    source = str(path)
    try:
        text = decode(read_input(path, what="config file (TOML)", limit=_CONFIG_BYTES), source)
    except InputError as exc:
        raise ConfigError(source, exc.issues) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, Issue("(syntax)", f"malformed TOML: {exc}")) from None
    return parse_config(data, source=source)
