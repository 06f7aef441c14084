"""Crew duty: where crews are relieved, and how long each crew works a timed train (hours).

The rule (``[operations] crew_duty_hours``, see :class:`optimizer.freight.problem.Operations`):
crews are relieved at transfer yards and at a train's origin and destination; a crew's duty runs
from the train entering the first corridor after a relief point to its arrival at the next one,
stops at other hubs included. Candidates never offer a plan with a longer stretch and the plan
check refuses one, both through :func:`duty_violations`.
"""

from __future__ import annotations

from optimizer.freight.network import Movement
from optimizer.freight.problem import Problem

__all__ = ["duty_stretches", "duty_violations"]

#: Rounding of times to whole minutes must not make a stretch of exactly the limit too long.
_TOLERANCE_HOURS = 1e-6


def duty_stretches(problem: Problem, movement: Movement) -> list[tuple[str, str, float]]:
    """(relieved at, relieved next at, hours on duty) for each crew of ``movement``, in order."""
    relief = {h.id for h in problem.hubs if h.kind == "transfer"}
    out: list[tuple[str, str, float]] = []
    start_hub, start = movement.route[0], movement.legs[0].enter
    for k, leg in enumerate(movement.legs):
        last = k == len(movement.legs) - 1
        if last or leg.destination in relief:
            out.append((start_hub, leg.destination, leg.exit - start))
            if not last:
                start_hub, start = leg.destination, movement.legs[k + 1].enter
    return out


def duty_violations(problem: Problem, movement: Movement) -> list[str]:
    """Each crew stretch of ``movement`` longer than the problem's duty limit, as a message."""
    limit = problem.operations.crew_duty_hours
    if limit is None:
        return []
    return [f"crew on duty {hours:.2f} h from {a} to {b}, more than crew_duty_hours = {limit:g}"
            for a, b, hours in duty_stretches(problem, movement) if hours > limit + _TOLERANCE_HOURS]
