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
from optimizer.solving.solver import Solver

__all__ = ["BackendSpec", "REGISTRY", "ENTRY_POINT_GROUP", "backend_names", "create_solver", "solver_class",
           "backend_options", "check_backend_options", "is_installed"]

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


def _option_types(name: str) -> dict[str, object]:
    """The annotated type of each keyword-only option (string annotations resolved)."""
    import typing

    init = solver_class(name).__init__
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to no type check
        hints = {}
    return {key: hints.get(key) for key in backend_options(name)}


def check_backend_options(name: str, options: Mapping[str, object]) -> list[Issue]:
    """Issues with a ``[backends.<name>]`` table: unknown keys, values of the wrong type (checked
    strictly against the option's annotation: ``reps = "2"`` is not an int), non-finite numbers."""
    import math

    from pydantic import TypeAdapter, ValidationError

    known = backend_options(name)
    types = _option_types(name)
    issues: list[Issue] = []
    for key, value in options.items():
        where = f"backends.{name}.{key}"
        if key not in known:
            issues.append(Issue(where, f"unknown option; known options: {', '.join(sorted(known)) or 'none'}"))
            continue
        if isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(where, "must be a finite number", value))
            continue
        hint = types.get(key)
        if hint is None:
            continue
        try:
            TypeAdapter(hint).validate_python(value, strict=True)
        except ValidationError as exc:
            expected = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            issues.append(Issue(where, f"expected {expected} ({exc.errors()[0]['msg'].lower()})", value))
    return issues


def create_solver(name: str, options: Mapping[str, object] | None = None, *, source: str | None = None) -> Solver:
    """Build a backend from its options; unknown keys and mistyped values are a :class:`ConfigError`."""
    cls = solver_class(name)
    options = dict(options or {})
    issues = check_backend_options(name, options)
    if issues:
        raise ConfigError(source, issues)
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, Issue(f"backends.{name}", str(exc))) from None
