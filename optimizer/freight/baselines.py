"""Baseline dispatchers: the plans a dispatcher's rules give, to compare every solver with.

Each baseline returns a feasible model assignment (variable i = candidate i).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from optimizer.freight.candidates import CandidateSet

__all__ = ["greedy_dispatch"]


def greedy_dispatch(cset: CandidateSet) -> np.ndarray:
    """Baseline: first come first served (release, then priority), shortest route, earliest slot
    with room on every resource; otherwise defer. Returns a feasible model assignment."""
    problem = cset.problem
    used: dict[str, float] = defaultdict(float)
    x = np.zeros(len(cset.candidates), dtype=np.uint8)
    order = sorted(range(len(problem.shipments)),
                   key=lambda s: (problem.shipments[s].release, -problem.shipments[s].priority, s))
    for s in order:
        members = cset.groups[s]
        moving = [i for i in members if not cset.candidates[i].deferred]
        defer = next(i for i in members if cset.candidates[i].deferred)
        # Shortest route per departure slot: the first candidate listed for that slot.
        first_per_slot: dict[int, int] = {}
        for i in moving:
            first_per_slot.setdefault(cset.candidates[i].slot, i)
        choice = defer
        for slot in sorted(first_per_slot):
            cand = cset.candidates[first_per_slot[slot]]
            if all(used[key] + amount <= cset.bounds[key] + 1e-9 for key, amount in cand.uses):
                choice = first_per_slot[slot]
                break
        for key, amount in cset.candidates[choice].uses:
            used[key] += amount
        x[choice] = 1
    return x
