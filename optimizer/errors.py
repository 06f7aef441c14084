"""Errors a user can act on. Each names where the problem is and what was expected.

The CLI turns every :class:`QfreightError` into a message and exit code 2 (bad input) or 1
(a solver could not run); anything else escaping is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "QfreightError",
    "Issue",
    "InputError",
    "ConfigError",
    "SolverError",
    "ProblemTooLarge",
    "MissingDependency",
]


class QfreightError(Exception):
    """Base of every error qfreight raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Issue:
    """One thing wrong with an input file: where, what was found, what was expected."""

    field: str
    message: str
    value: object = None

    def render(self, source: str | None = None) -> str:
        where = f"{source}: " if source else ""
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{where}{self.field}: {self.message}{shown}"


class InputError(QfreightError):
    """An input file (problem, QUBO, config) is unreadable or invalid; lists every issue found."""

    exit_code = 2

    def __init__(self, source: str | None, issues: list[Issue] | Issue):
        self.source = source
        self.issues = [issues] if isinstance(issues, Issue) else list(issues)
        super().__init__("\n".join(issue.render(source) for issue in self.issues))


class ConfigError(InputError):
    """A config file or option is invalid (unknown key, wrong type, unknown backend)."""


class SolverError(QfreightError):
    """A backend could not solve the given input."""


class ProblemTooLarge(SolverError):
    """The QUBO has more variables than the backend (a simulated device) accepts."""

    def __init__(self, backend: str, num_variables: int, limit: int):
        self.backend, self.num_variables, self.limit = backend, num_variables, limit
        super().__init__(
            f"backend {backend!r} accepts at most {limit} binary variables; this QUBO has "
            f"{num_variables}. Use the hybrid pipeline (it decomposes to device size) or a classical backend."
        )


class MissingDependency(SolverError):
    """An optional package a backend needs is not installed."""

    def __init__(self, backend: str, package: str, hint: str | None = None):
        self.backend, self.package = backend, package
        super().__init__(
            f"backend {backend!r} needs the package {package!r}: {hint or f'pip install {package}'}"
        )
