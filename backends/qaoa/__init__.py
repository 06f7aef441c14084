"""Gate-model QAOA backend (registered as ``qaoa``).

Engines (option ``engine``):

* ``"statevector"`` (default): the exact fast simulator in :mod:`backends.qaoa.engine`. The cost
  diagonal is built once from the sparse QUBO; each layer is one phase multiply and one mixer pass;
  the objective is the exact expectation (or CVaR); the final state is sampled ``shots`` times.
  With X mixers it simulates all 2^n amplitudes; with XY mixers it simulates only the feasible
  subspace of the one-hot groups (one tensor axis of size k per group, one axis of size 2 per
  other variable).
* ``"aer"``: the same ansatz as qiskit circuits (:mod:`backends.qaoa.circuits`) run on qiskit-aer,
  exactly (probabilities saved by the simulator) or with shot noise, optionally with a noise model.
* ``"qiskit-optimization"``: the stock ``MinimumEigenOptimizer(QAOA(...))`` with an Aer sampler.

Conventions shared by every engine: qubit i carries variable i, |0> means x_i = 0, and a basis
index b encodes x_i = (b >> i) & 1 (qiskit's little-endian order). The cost unitary is
exp(-i gamma E(x) / s) where s (``cost_scale``) is the RMS local field of the Ising form (see
:func:`backends.qaoa.space.cost_scale`), so gamma ~ 0.5 is a sensible p = 1 angle for any QUBO.
"""

from backends.qaoa.solver import QaoaSolver

__all__ = ["QaoaSolver"]
