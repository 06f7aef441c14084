"""dimod's BQM serialisation: ``bqm.to_file()`` (``DIMODBQM`` header) or the JSON of
``bqm.to_serializable()``. SPIN models are converted to BINARY. A BQM's energy is minimised;
``--sense max`` reads it as a maximisation (negated)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats.convert import to_bqm
from optimizer.qubo.formats.files import check_finite, decode
from optimizer.qubo.formats.registry import sense_sign

__all__ = ["read", "write_bytes", "from_bqm"]


def from_bqm(bqm, source: str, fmt: str, *, sense: str = "min", order: Sequence | None = None) -> Qubo:
    """A dimod BQM (any vartype) -> our QUBO; labels become strings, in ``order`` or the BQM's."""
    import dimod

    bqm = bqm.change_vartype(dimod.BINARY, inplace=False) if bqm.vartype is dimod.SPIN else bqm
    variables = list(bqm.variables) if order is None else list(order)
    labels = tuple(str(v) for v in variables)
    if len(set(labels)) != len(labels):
        raise InputError(source, Issue("variables", "two variable labels are the same once written as text"))
    linear, (rows, cols, weights), offset = bqm.to_numpy_vectors(variable_order=variables)
    check_finite(source, [("linear coefficient", linear)], labels)
    check_finite(source, [("quadratic coefficient", weights), ("offset", [offset])])
    sign = sense_sign(sense)
    return Qubo.from_terms(len(variables), linear=sign * np.asarray(linear, dtype=np.float64), rows=rows,
                           cols=cols, weights=sign * np.asarray(weights, dtype=np.float64),
                           offset=sign * float(offset), labels=labels,
                           metadata={"source": source, "format": fmt, "name": Path(source).name, "sense": sense})


def read(data: bytes, source: str, *, sense: str) -> Qubo:
    import dimod

    try:
        if data.startswith(b"DIMODBQM"):
            bqm = dimod.BinaryQuadraticModel.from_file(io.BytesIO(data))
        else:
            obj = json.loads(decode(data, source))
            found = obj.get("type") if isinstance(obj, dict) else type(obj).__name__
            if found != "BinaryQuadraticModel":
                raise InputError(source, Issue("type", "expected dimod's serialised BinaryQuadraticModel "
                                               "(bqm.to_serializable())", found))
            bqm = dimod.BinaryQuadraticModel.from_serializable(obj)
    except InputError:
        raise
    except json.JSONDecodeError as exc:
        raise InputError(source, Issue(f"line {exc.lineno}", f"invalid JSON: {exc.msg}")) from None
    except Exception as exc:  # dimod raises assorted types on damaged files
        raise InputError(source, Issue("file", f"not a readable dimod BQM: {exc}")) from None
    return from_bqm(bqm, source, "dimod", sense=sense)


def write_bytes(qubo: Qubo, sense: str) -> bytes:
    sign = sense_sign(sense)
    bqm = to_bqm(qubo if sign > 0 else qubo.scaled(-1.0))
    with bqm.to_file() as f:
        return f.read()
