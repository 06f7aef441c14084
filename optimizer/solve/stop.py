"""Stop criteria: when a run or a loop ends (a wall-clock budget, rounds, no improvement)."""

from __future__ import annotations

__all__ = ["Deadline"]


class Deadline:
    """A wall-clock budget in seconds, measured with ``time.perf_counter``."""

    def __init__(self, seconds: float):
        import time

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
