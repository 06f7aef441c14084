"""Stop criteria: when a run or a loop ends.

:class:`Deadline` is the wall-clock budget of a whole run (preparation included): every stage
asks it how much time is left. The loop criteria follow PyVRP's ``pyvrp.stop``: small callables
that a loop asks once per round with the best objective so far, composable with
:class:`MultipleCriteria` (``MultipleCriteria([MaxRounds(200), NoImprovement(30), MaxRuntime(60)])``),
so no loop copies ``time_limit`` / ``rounds`` / ``patience`` into its own bookkeeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Deadline", "StoppingCriterion", "MaxRuntime", "MaxRounds", "NoImprovement", "MultipleCriteria"]


class Deadline:
    """A wall-clock budget in seconds, measured with ``time.perf_counter`` from construction."""

    def __init__(self, seconds: float):
        self._clock = time.perf_counter
        self.start = self._clock()
        self.seconds = float(seconds)

    @property
    def elapsed(self) -> float:
        return self._clock() - self.start

    @property
    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    def expired(self) -> bool:
        return self.elapsed >= self.seconds

    def child(self, seconds: float | None = None) -> Deadline:
        """A budget inside this one: at most ``seconds`` and never past this deadline."""
        limit = self.remaining if seconds is None else min(float(seconds), self.remaining)
        return Deadline(limit)

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g} s, {self.remaining:.3g} s left)"


@runtime_checkable
class StoppingCriterion(Protocol):
    """Asked once per round with the best objective so far; True means stop before the round."""

    def __call__(self, best: float) -> bool: ...

    @property
    def reason(self) -> str: ...


class MaxRuntime:
    """Stop once ``seconds`` have passed since the first call (or since ``deadline`` started)."""

    def __init__(self, seconds: float | None = None, *, deadline: Deadline | None = None):
        if seconds is None and deadline is None:
            raise ValueError("give seconds or a deadline")
        if seconds is not None and seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self.deadline = deadline if seconds is None else None
        self.seconds = seconds
        self._start: float | None = None
        self.reason = "time_limit"

    def __call__(self, best: float) -> bool:
        if self.deadline is not None:
            return self.deadline.expired()
        if self._start is None:
            self._start = time.perf_counter()
        return time.perf_counter() - self._start >= self.seconds


class MaxRounds:
    """Stop after ``rounds`` rounds (the call before round ``rounds + 1`` says stop)."""

    def __init__(self, rounds: int):
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")
        self.rounds = int(rounds)
        self._calls = 0
        self.reason = "rounds"

    def __call__(self, best: float) -> bool:
        self._calls += 1
        return self._calls > self.rounds


class NoImprovement:
    """Stop after ``rounds`` consecutive rounds in which the best objective did not drop by more
    than ``tolerance`` (relative to ``max(1, |best|)``)."""

    def __init__(self, rounds: int, *, tolerance: float = 1e-9):
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        self.rounds = int(rounds)
        self.tolerance = tolerance
        self._best = math.inf
        self._stale = -1
        self.reason = "no_improvement"

    def __call__(self, best: float) -> bool:
        if best < self._best - self.tolerance * max(1.0, abs(best)):
            self._best = best
            self._stale = 0
        else:
            self._stale += 1
        return self._stale >= self.rounds


class MultipleCriteria:
    """Stop when any of the criteria says so; ``reason`` names the first that did."""

    def __init__(self, criteria: Sequence[StoppingCriterion]):
        if not criteria:
            raise ValueError("need at least one criterion")
        self.criteria = tuple(criteria)
        self.reason = ""

    def __call__(self, best: float) -> bool:
        # Every criterion sees every round (NoImprovement counts rounds), so no short-circuit.
        hits = [c for c in self.criteria if c(best)]
        if hits:
            self.reason = hits[0].reason
        return bool(hits)
