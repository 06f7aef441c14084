"""QUBO and binary-program files in and out, with every format's sign convention stated in one place.

qfreight's own convention is a **minimisation** QUBO (see :mod:`optimizer.qubo`)::

    E(x) = x^T Q x + h^T x + offset,   x in {0, 1}^n,   Q strictly upper triangular

Each format says what its numbers mean (:data:`FORMATS`); :mod:`.registry` holds the one
sign-convention table (``E = SENSE_SIGN[sense] * the file's objective``, with each format's entry
factors in ``TERM_FACTORS``). No other code negates, halves or doubles a file's coefficients.

============  ========  =====  ==================================================================
format        sense     base   meaning of the file
============  ========  =====  ==================================================================
``bqp``       max       1      OR-Library BQP (Beasley 1990): sum_i sum_j q_ij x_i x_j, q symmetric,
                               each pair listed once (i <= j), so an off-diagonal entry counts
                               twice. Several instances per file: ``FILE#k`` (k from 1).
``qbsolv``    min       0      qbsolv ``.qubo``: ``p qubo 0 maxDiagonals nDiagonals nElements``,
                               diagonal lines, then couplers; ``c`` comments. sum w_ij x_i x_j,
                               minimised unless ``--sense max`` (qbsolv's ``-m``).
``triples``   min       0      ``#`` comments, ``n m``, m lines ``i j w`` (the iitis railway QUBOs).
``rudy``      max       1      max-cut graph (rudy / Gset): ``n m`` then edges ``i j w``; the
                               objective is the cut weight sum w (x_i + x_j - 2 x_i x_j).
``npz``       min       0      numpy archive: x^T M x + offset, M under key ``Q`` (or scipy.sparse).
``dimod``     min       -      dimod's BQM serialisation (``to_file`` or ``to_serializable`` JSON).
``lp``        in file   -      CPLEX LP (dimod.lp); constrained files are models (:func:`read_model`).
``mps``       in file   -      MPS with QUADOBJ (HiGHS); constrained files are models.
``qplib``     in file   1      QPLIB native format of binary QPs; constrained files are models.
``gams``      -         -      QPLIB's ``.gms`` GAMS models: recognised and refused (use ``.qplib``).
============  ========  =====  ==================================================================

Detection (:func:`detect_format`) reads the content and never guesses between confusable formats
(``n m`` files with neither an index 0 nor an index n fit both triples and rudy): it asks for
``--format`` and names the candidates. Every input is read through
:func:`~optimizer.qubo.formats.files.read_input` (regular files only, a size cap, header counts
checked against the file size, non-finite coefficients refused). Every problem with an input file
raises :class:`~optimizer.errors.InputError` naming the file, the line (or field) and the reason.
"""

from __future__ import annotations

from optimizer.qubo.formats.api import ModelFile, count_instances, describe_result, is_qubo_file, read_any, \
    read_model, read_qubo, read_qubos, target_energy, write_model, write_qubo
from optimizer.qubo.formats.files import DEFAULT_MAX_INPUT_BYTES, max_input_bytes, read_input, split_instance
from optimizer.qubo.formats.registry import FORMATS, READ_FORMATS, SENSE_SIGN, SENSES, TERM_FACTORS, \
    WRITE_FORMATS, QuboFormat, canonical_format, detect_format, format_choices, native_objective, resolve_sense, \
    sense_sign, sniff

__all__ = [
    "QuboFormat",
    "FORMATS",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "SENSES",
    "SENSE_SIGN",
    "TERM_FACTORS",
    "ModelFile",
    "canonical_format",
    "format_choices",
    "resolve_sense",
    "sense_sign",
    "split_instance",
    "detect_format",
    "sniff",
    "count_instances",
    "read_input",
    "max_input_bytes",
    "DEFAULT_MAX_INPUT_BYTES",
    "read_qubo",
    "read_qubos",
    "read_model",
    "read_any",
    "write_qubo",
    "write_model",
    "native_objective",
    "is_qubo_file",
    "describe_result",
    "target_energy",
]
