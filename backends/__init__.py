"""The backend registry: one explicit table from name to implementation.

Implementations are imported lazily, so ``qfreight validate`` never pays for importing qiskit
or Strawberry Fields. Options come from the config file's ``[backends.<name>]`` table and are
passed as keyword-only constructor arguments; an unknown option is an error that lists the
known ones.

Third-party backends need no edit here: an installed distribution declares them in the entry-point
group ``qfreight.backends`` (``name = "module:Class"``), and they join the table the first time it
is read. A built-in name cannot be taken over; such an entry is listed in :data:`REGISTRY`'s
``problems`` instead.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from optimizer.errors import ConfigError, Issue
from optimizer.solve.solver import Solver

__all__ = ["BackendSpec", "REGISTRY", "ENTRY_POINT_GROUP", "backend_names", "create_solver", "solver_class",
           "backend_options", "is_installed"]

ENTRY_POINT_GROUP = "qfreight.backends"


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"
    requires: tuple[str, ...]  # importable module names the backend needs
    summary: str
    distribution: str | None = None  # the installed distribution that declared it (None: built in)


BUILTIN: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("exact", "backends.exact:ExactSolver", ("numpy",),
                    "vectorised brute force over all 2^n assignments (the test oracle)"),
        BackendSpec("anneal", "backends.anneal:AnnealSolver", ("dwave.samplers",),
                    "simulated annealing or tabu search (dwave-samplers)"),
        BackendSpec("cpsat", "backends.cpsat:CpSatSolver", ("ortools",),
                    "OR-Tools CP-SAT: proven optimum or best bound"),
        BackendSpec("qaoa", "backends.qaoa:QaoaSolver", ("qiskit", "qiskit_aer"),
                    "gate-model QAOA on qiskit-aer, with an exact statevector engine"),
        BackendSpec("photonic", "backends.photonic:PhotonicSolver", ("strawberryfields", "thewalrus", "networkx"),
                    "Gaussian boson sampling on the Strawberry Fields simulator"),
    )
}


class _Registry(Mapping[str, BackendSpec]):
    """The built-in table plus the ``qfreight.backends`` entry points, read once (``refresh`` rereads)."""

    def __init__(self) -> None:
        self._table: dict[str, BackendSpec] | None = None
        self.problems: list[str] = []

    def refresh(self) -> None:
        self._table = None

    def _load(self) -> dict[str, BackendSpec]:
        if self._table is None:
            table = dict(BUILTIN)
            problems: list[str] = []
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = getattr(getattr(ep, "dist", None), "name", None)
                if ep.name in table:
                    problems.append(f"entry point {ep.name!r} of {dist or 'an installed distribution'} ignored: "
                                    f"the name is already taken by {table[ep.name].target}")
                    continue
                module, _, attr = ep.value.partition(":")
                if not module or not attr:
                    problems.append(f"entry point {ep.name!r} ignored: expected 'module:Class', got {ep.value!r}")
                    continue
                table[ep.name] = BackendSpec(ep.name, ep.value, (module,),
                                             f"third-party backend from {dist or module}", dist)
            self._table, self.problems = table, problems
        return self._table

    def __getitem__(self, name: str) -> BackendSpec:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


REGISTRY = _Registry()


def backend_names() -> list[str]:
    return list(REGISTRY)


def _spec(name: str) -> BackendSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(None, Issue("solver.backend", f"unknown backend; known: {', '.join(REGISTRY)}",
                                      name)) from None


def solver_class(name: str) -> type:
    module_name, _, class_name = _spec(name).target.partition(":")
    module = importlib.import_module(module_name)
    return module.__dict__[class_name]


def is_installed(name: str) -> bool:
    return all(importlib.util.find_spec(mod.split(".")[0]) is not None for mod in _spec(name).requires)


def backend_options(name: str) -> dict[str, object]:
    """The keyword-only options a backend takes, with their defaults."""
    params = inspect.signature(solver_class(name).__init__).parameters
    return {p.name: p.default for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def create_solver(name: str, options: Mapping[str, object] | None = None, *, source: str | None = None) -> Solver:
    """Build a backend from its options; unknown option keys are a :class:`ConfigError`."""
    cls = solver_class(name)
    known = backend_options(name)
    options = dict(options or {})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(source, [
            Issue(f"backends.{name}.{key}", f"unknown option; known options: {', '.join(sorted(known)) or 'none'}")
            for key in unknown
        ])
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, Issue(f"backends.{name}", str(exc))) from None
