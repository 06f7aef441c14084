"""Train batches: the bounded integer encoding of train counts, yard occupancy and locomotive
availability rules, and the light-engine batches."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from optimizer.freight.candidates import CandidateOptions, generate_candidates
from optimizer.freight.model import aux_layout
from optimizer.freight.trains import (
    AuxLayout,
    Batches,
    bounded_weights,
    fleet_times,
    yard_occupancy,
)
from tests.freight_cases import corridor, hub, network_problem, shipment


@given(st.integers(0, 600))
def test_bounded_weights_cover_exactly_zero_to_upper(upper):
    weights = bounded_weights(upper)
    assert sum(weights) == upper
    sums = {sum(c) for r in range(len(weights) + 1) for c in itertools.combinations(weights, r)} if upper <= 64 \
        else None
    if sums is not None:
        assert sums == set(range(upper + 1))
    assert len(weights) == (0 if upper == 0 else int(np.floor(np.log2(upper))) + 1)


def _batches(uppers) -> Batches:
    B = len(uppers)
    z = np.zeros(B, dtype=np.int64)
    upper = np.asarray(uppers, dtype=np.int64)
    return Batches(z, z, np.arange(B), z, z, z, upper, upper, z)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=6), st.data())
def test_layout_encodes_and_reads_back_every_train_count(uppers, data):
    batches = _batches(uppers)
    layout = AuxLayout.of(3, batches)
    trains = np.array([data.draw(st.integers(0, u)) for u in uppers])
    bits = layout.encode(trains, batches.upper)
    x = np.concatenate([np.zeros(3, dtype=np.uint8), bits])
    np.testing.assert_array_equal(layout.trains(x)[0], trains)
    assert layout.num_variables == 3 + sum(len(bounded_weights(u)) for u in uppers)


def test_yard_occupancy_spans_every_slot_handling_overlaps():
    """1 h slots: arrival 02:30 with 90 min handling -> slots 2 and 3; arrival 02:00 with 60 min
    -> slot 2 only; with no handling the arrival slot alone."""
    problem = network_problem([hub("A"), hub("B", handling=1.5), hub("C", handling=1.0), hub("D", handling=0.0)],
                              [corridor("A", "B"), corridor("A", "C"), corridor("A", "D")],
                              [shipment("S1", "A", "B")], slots=4)
    index = problem.hub_index
    batches = Batches(np.array([0, 1, 2]), np.zeros(3, np.int64), np.zeros(3, np.int64), np.array([150, 120, 150]),
                      np.zeros(3, np.int64), np.array([index["B"], index["C"], index["D"]]), np.ones(3, np.int64),
                      np.ones(3, np.int64), np.zeros(3, np.int64))
    b, s = yard_occupancy(problem, batches)
    assert sorted(zip(b.tolist(), s.tolist())) == [(0, 2), (0, 3), (1, 2), (2, 2)]
    # Locomotives are available at the far end after that hub's turnaround (1 h in these cases).
    np.testing.assert_array_equal(fleet_times(problem, batches), [210, 180, 210])


def test_light_engine_batches_only_into_hubs_that_can_run_short():
    problem = network_problem([hub("A", locomotives=3), hub("B", locomotives=0), hub("C", locomotives=9)],
                              [corridor("A", "B", km=80.0), corridor("A", "C", km=80.0)],
                              [shipment("S1", "B", "A"), shipment("S2", "C", "A")], slots=4)
    cset = generate_candidates(problem)
    light = np.flatnonzero(cset.batches.light_max > 0)
    into = {problem.hubs[int(cset.batches.destination[b])].id for b in light}
    assert into == {"B"}  # C has enough locomotives for every departure it could see
    none = generate_candidates(problem, CandidateOptions(light_engines=0))
    assert not (none.batches.light_max > 0).any()
    assert aux_layout(cset).num_bits > aux_layout(none).num_bits
