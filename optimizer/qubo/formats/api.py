"""Reading and writing QUBO and model files: the functions the rest of qfreight calls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats import bqm, bqp, gams, lp, mps, npz, qbsolv, qplib, rudy, triples
from optimizer.qubo.formats.files import check_finite, decode, read_input, split_instance
from optimizer.qubo.formats.program import ModelFile, Program, write_program
from optimizer.qubo.formats.registry import FORMATS, READ_FORMATS, WRITE_FORMATS, canonical_format, detect_format, \
    native_objective, resolve_sense, sense_sign, sniff
from optimizer.qubo.model import BinaryModel
from optimizer.solving.solver import SampleSet

__all__ = ["read_qubo", "read_qubos", "read_model", "read_any", "count_instances", "write_qubo", "write_model",
           "is_qubo_file", "describe_result", "target_energy", "ModelFile"]


def _format_of(path: Path, data: bytes, format: str | None) -> str:
    fmt = canonical_format(format) if format else detect_format(path, data)
    if fmt == "gams":
        gams.refuse(decode(data, str(path)), str(path))
    if not FORMATS[fmt].readable:
        raise InputError(str(path), Issue("format", f"{fmt} files can be written but not read; readable formats: "
                                          f"{', '.join(READ_FORMATS)}"))
    if not data.strip():
        raise InputError(str(path), Issue("file", f"is empty, expected a {fmt} file"))
    return fmt


def _constrained_model(fmt: str, data: bytes, source: str) -> ModelFile:
    if fmt == "lp":
        return lp.read_model(data, source)
    if fmt == "mps":
        return mps.read_model(data, source)
    return qplib.read_model(decode(data, source), source)


def _as_qubo(found: ModelFile, source: str, sense: str | None) -> Qubo:
    resolve_sense(str(found.metadata["format"]), sense, stated=found.sense, source=source)
    if found.constrained:
        rows = int(found.metadata.get("rows_in_file", found.model.num_rows))
        raise InputError(source, Issue("constraints", f"has {rows} constraints; it is read as a QUBO only when "
                                       "unconstrained (solve it as a constrained model: qfreight solve FILE "
                                       "--backend cpsat)"))
    return found.as_qubo()


def _load(spec: str | Path, format: str | None, sense: str | None, *, all_instances: bool) -> list[Qubo]:
    path, instance = split_instance(spec)
    source = str(path)
    data = read_input(path)
    fmt = _format_of(path, data, format)
    if fmt == "bqp":
        return bqp.read(decode(data, source), source, instance=instance, all_instances=all_instances,
                        sense=resolve_sense(fmt, sense, source=source))
    if instance not in (None, 1):
        raise InputError(source, Issue("instance", f"a {fmt} file holds one instance, numbered 1", instance))
    if fmt in ("mps", "qplib"):
        qubo = _as_qubo(_constrained_model(fmt, data, source), source, sense)
    elif fmt == "lp":
        qubo, stated = lp.read(data, source, sense=sense)
        resolve_sense(fmt, sense, stated=stated, source=source)
    else:
        chosen = resolve_sense(fmt, sense, source=source)
        if fmt == "qbsolv":
            qubo = qbsolv.read(decode(data, source), source, sense=chosen)
        elif fmt == "triples":
            qubo = triples.read(decode(data, source), source, sense=chosen)
        elif fmt == "rudy":
            qubo = rudy.read(decode(data, source), source, sense=chosen)
        elif fmt == "npz":
            qubo = npz.read(data, source, sense=chosen)
        else:
            qubo = bqm.read(data, source, sense=chosen)
    check_finite(source, [("linear coefficient", qubo.h)], qubo.labels)
    check_finite(source, [("quadratic coefficient", qubo.Q.data), ("offset", [qubo.offset])])
    return [qubo]


def read_qubo(spec: str | Path, *, format: str | None = None, sense: str | None = None) -> Qubo:
    """Read one QUBO, as our minimisation QUBO, from ``FILE`` or ``FILE#k`` (k-th instance, from 1).

    ``format`` (one of :data:`READ_FORMATS` or an alias such as ``qubo``) overrides detection;
    ``sense`` ("min" | "max") states the file's objective sense where the format does not
    (see :mod:`optimizer.qubo.formats.registry`). ``qubo.metadata`` records ``source``,
    ``format``, ``name``, ``sense`` and, for BQP files, ``instance``.
    """
    return _load(spec, format, sense, all_instances=False)[0]


def read_qubos(path: str | Path, *, format: str | None = None, sense: str | None = None) -> list[Qubo]:
    """Every instance in a file (one for single-instance formats)."""
    spec = str(path)
    if split_instance(spec)[1] is not None:
        return _load(spec, format, sense, all_instances=False)
    return _load(spec, format, sense, all_instances=True)


def read_model(spec: str | Path, *, format: str | None = None, sense: str | None = None) -> ModelFile:
    """A constrained binary model from an LP, MPS or QPLIB file (one-hot groups and ``A x <= b`` rows).

    The model minimises ``sense_sign(sense) * the file's objective``; ``ModelFile.sense`` is the
    sense the file states. Other formats hold unconstrained QUBOs and are returned as a model
    without rows.
    """
    path, instance = split_instance(spec)
    source = str(path)
    data = read_input(path)
    fmt = _format_of(path, data, format)
    if FORMATS[fmt].constrained:
        if instance not in (None, 1):
            raise InputError(source, Issue("instance", f"a {fmt} file holds one instance, numbered 1", instance))
        found = _constrained_model(fmt, data, source)
        resolve_sense(fmt, sense, stated=found.sense, source=source)
        return found
    qubo = read_qubo(spec, format=fmt, sense=sense)
    import scipy.sparse as sp

    n = qubo.num_variables
    model = BinaryModel(labels=qubo.labels, c=np.array(qubo.h, dtype=np.float64), P=qubo.Q.tocsr(),
                        offset=qubo.offset, groups=(), A=sp.csr_array((0, n)), b=np.zeros(0), row_names=())
    return ModelFile(model=model, sense=str(qubo.metadata.get("sense", "min")), metadata=dict(qubo.metadata))


def read_any(spec: str | Path, *, format: str | None = None, sense: str | None = None) -> Qubo | ModelFile:
    """A QUBO, or a :class:`ModelFile` where the file holds constraints (LP, MPS, QPLIB)."""
    path, _ = split_instance(spec)
    data = read_input(path)
    fmt = _format_of(path, data, format)
    if FORMATS[fmt].constrained:
        found = read_model(spec, format=fmt, sense=sense)
        if found.constrained:
            return found
    return read_qubo(spec, format=fmt, sense=sense)


def count_instances(path: str | Path, *, format: str | None = None) -> int:
    """How many instances a file holds (the ``k`` range of ``FILE#k``), without converting them."""
    path = Path(path)
    data = read_input(path)
    fmt = _format_of(path, data, format)
    if fmt != "bqp":
        return 1
    return bqp.count(decode(data, str(path)), str(path))


#: Suffixes that always mean a QUBO or model file (``.txt``: OR-Library and triple files).
_QUBO_SUFFIXES = {ext for f in FORMATS.values() for ext in f.extensions} | {".txt"}


def is_qubo_file(spec: str | Path) -> bool:
    """Whether ``qfreight solve SPEC`` should treat SPEC as a bare QUBO or model (not a freight problem).

    ``FILE#k`` and the QUBO/model extensions (``.qubo .bqp .bqm .lp .mps .qplib .npz .rudy .gms
    .txt``) are; ``.toml`` is a problem; a ``.json`` file is a QUBO only if it is dimod's
    serialised BQM. Anything else is decided by content. A missing or unreadable file is not
    decided here (the reader reports it); nothing but a regular file is ever opened.
    """
    path, instance = split_instance(spec)
    suffix = path.suffix.lower()
    if instance is not None or suffix in _QUBO_SUFFIXES:
        return True
    if suffix == ".toml":
        return False
    try:
        data = read_input(path, what="input file")
    except InputError:
        return False
    if suffix == ".json":
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(obj, dict) and obj.get("type") == "BinaryQuadraticModel"
    found = sniff(data)
    return found.format is not None or bool(found.candidates)


def describe_result(qubo: Qubo, result: SampleSet, *, top: int = 5) -> dict[str, object]:
    """A JSON-serialisable report of a solve on a bare QUBO: energies, not freight KPIs.

    ``sense`` is the sense the file was read with and ``objective_in_file`` restates the best
    energy in the file's own convention (for a ``bqp`` file, the maximised value that published
    optima are quoted in; for a rudy graph, the cut).
    """
    fmt = qubo.metadata.get("format")
    sense = str(qubo.metadata.get("sense") or (FORMATS[fmt].sense if fmt in FORMATS else "min"))
    best = result.best
    return {
        "source": qubo.metadata.get("source"),
        "format": fmt,
        "instance": qubo.metadata.get("instance"),
        "name": qubo.metadata.get("name"),
        "sense": sense,
        "num_variables": qubo.num_variables,
        "num_interactions": qubo.num_interactions,
        "solver": result.solver,
        "best_energy": result.best_energy,
        "objective_in_file": native_objective(fmt, result.best_energy, sense) if fmt in FORMATS else None,
        "sense_in_file": sense,
        "best_sample": [int(v) for v in best],
        "ones": [qubo.labels[i] for i in np.flatnonzero(best)],
        "lowest_energies": [float(e) for e in result.energies[:top]],
        "distinct_samples": len(result),
        "reads": result.num_reads,
        "probability_of_best": result.probability_of(result.best_energy),
        "timing": {k: float(v) for k, v in result.timing.items()},
        "info": dict(result.info),
    }


def target_energy(qubo: Qubo, target: float) -> float:
    """A target in the file's own convention (e.g. a published maximum) as an energy of our QUBO."""
    return sense_sign(str(qubo.metadata.get("sense") or "min")) * float(target)


# ---------------------------------------------------------------------------------------- writers
def _format_for_path(path: Path, format: str | None) -> str:
    if format:
        fmt = canonical_format(format)
    else:
        by_ext = {ext: f.name for f in FORMATS.values() for ext in f.extensions}
        fmt = by_ext.get(path.suffix.lower())
        if fmt is None:
            raise InputError(str(path), Issue("format", "cannot tell the format from the extension; name it "
                                              f"(one of {', '.join(WRITE_FORMATS)})", path.suffix))
    if not FORMATS[fmt].writable:
        raise InputError(str(path), Issue("format", f"{fmt} files cannot be written; writable formats: "
                                          f"{', '.join(WRITE_FORMATS)}"))
    return fmt


def write_qubo(qubo: Qubo, path: str | Path, format: str | None = None, *, sense: str | None = None) -> Path:
    """Write a QUBO as bqp, qbsolv (alias ``qubo``), triples, rudy, npz, dimod, lp, mps or qplib.

    The format is taken from ``format`` or the extension. ``sense`` is the objective sense the
    file is written in, for formats that do not state theirs: the numbers are then
    ``sense_sign(sense) * ours``; by default each format's own sense (bqp and rudy: max, the others
    min). lp, mps and qplib state their sense and are written as minimisations. A ``bqp`` or
    ``rudy`` file has no constant term: the offset is dropped (``FORMATS[...].keeps_offset``).
    """
    path = Path(path)
    fmt = _format_for_path(path, format)
    if FORMATS[fmt].states_sense:
        if sense not in (None, "min"):
            raise InputError(str(path), Issue("sense", f"{fmt} files are written as minimisations (they state "
                                              "their sense)", sense))
    sense = resolve_sense(fmt, sense, source=str(path))
    if fmt == "bqp":
        path.write_text(bqp.write_text(qubo, sense))
    elif fmt == "qbsolv":
        path.write_text(qbsolv.write_text(qubo, sense))
    elif fmt == "triples":
        path.write_text(triples.write_text(qubo, sense))
    elif fmt == "rudy":
        path.write_text(rudy.write_text(qubo, sense))
    elif fmt == "npz":
        path.write_bytes(npz.write_bytes(qubo, sense))
    elif fmt == "dimod":
        path.write_bytes(bqm.write_bytes(qubo, sense))
    else:
        write_program(Program.of_qubo(qubo), path, fmt)
    return path


def write_model(model: BinaryModel, path: str | Path, format: str | None = None) -> Path:
    """Write the constrained model (one-hot groups as equalities, capacity rows as ``<=``) as LP, MPS or QPLIB.

    LP is written by dimod (``dimod.lp.dump`` of a CQM), MPS by HiGHS (``highspy``, a QUADOBJ
    section for the quadratic costs), QPLIB by :mod:`.qplib`. Variable and row names are made
    valid for those formats ('/' and spaces become '_').
    """
    path = Path(path)
    fmt = _format_for_path(path, format)
    if not FORMATS[fmt].constrained:
        raise InputError(str(path), Issue("format", "a constrained model is written as lp, mps or qplib", fmt))
    write_program(Program.of_model(model), path, fmt)
    return path
