"""The QUBO core: the :class:`Qubo` type, the constrained :class:`BinaryModel`, the encoding from
one to the other (penalty rule, slack), and file formats (:mod:`optimizer.qubo.formats`)."""

from optimizer.qubo.qubo import Qubo

__all__ = ["Qubo"]
