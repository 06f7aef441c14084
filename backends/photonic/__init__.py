"""Photonic backend: Gaussian boson sampling on Strawberry Fields, standing in for Borealis-style hardware.

Importing this package is cheap (numpy only): Strawberry Fields, thewalrus and networkx are
imported inside the functions that use them, after :mod:`backends.photonic.compat` has made SF
importable on current scipy.

* :mod:`.compat` -- the scipy/numpy compatibility layer for Strawberry Fields 0.23.0
* :mod:`.device` -- the spatial device: spec, the SF circuit, batched sampling, RNG isolation, start-up
* :mod:`.borealis` -- the Borealis-style time-domain device (``device = "borealis"``; default spec
  ``borealis.toml``): loop programs, the exact unrolled state, joint sampling, knob training
* :mod:`.postprocess` -- conflict graph, cost-carrying node weights, SF clique search, QUBO local
  search, random-subset ablation
* :mod:`.vgbs` -- variational GBS training (SF apps.train)
* :mod:`.solver` -- :class:`PhotonicSolver`, registered as ``photonic``
"""

from .solver import PhotonicSolver

__all__ = ["PhotonicSolver"]
