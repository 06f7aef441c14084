"""qfreight: a hybrid quantum-classical optimiser for freight-rail scheduling.

The Python API (see :mod:`optimizer.api`)::

    import optimizer

    result = optimizer.solve(optimizer.load_problem("problems/tiny.toml"), backend="cpsat")
    print(result.status, result.objective)

Layers: :mod:`optimizer.freight` (the domain), :mod:`optimizer.qubo` (QUBO core and file formats),
:mod:`optimizer.solving` (solver interface, pipeline, decomposition, config), :mod:`optimizer.report`
(results and reports), :mod:`optimizer.serve` (the dispatcher dashboard); ``qfreight`` (the CLI) is a
thin layer over the API.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from optimizer.api import compare, load_problem, read_qubo, solve, write_qubo
from optimizer.freight.problem import Problem
from optimizer.qubo.qubo import Qubo
from optimizer.solving.config import Config, load_config
from optimizer.solving.result import PieceRecord, Result, StageRecord, Status
from optimizer.solving.solver import SampleSet, Solver

try:
    __version__ = version("qfreight")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "unknown"

__all__ = ["solve", "compare", "load_problem", "load_config", "read_qubo", "write_qubo", "Problem", "Qubo",
           "SampleSet", "Solver", "Result", "Status", "StageRecord", "PieceRecord", "Config", "__version__"]
