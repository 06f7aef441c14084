"""numpy ``.npz`` QUBOs: E(x) = x^T M x + offset for the matrix M as stored.

The matrix is the array under key ``Q`` (or the archive's only array), dense and square, or a
matrix saved with ``scipy.sparse.save_npz`` (keys ``format``, ``shape``, ...). Because the energy
is the quadratic form of M as stored, a symmetric M (each pair in both triangles) and a
triangular M (each pair once) both read correctly: the pair (i, j) gets M_ij + M_ji, the diagonal
M_ii. Optional keys: ``offset`` (a scalar) and ``labels`` (strings). Nothing is unpickled
(``allow_pickle=False``), and every array's size is checked from its header before it is read.
qfreight writes the upper-triangular M in the scipy COO layout, which ``scipy.sparse.load_npz``
also reads.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError, Issue
from optimizer.qubo import Qubo
from optimizer.qubo.formats.convert import from_entries
from optimizer.qubo.formats.files import check_finite, check_variables, max_input_bytes

__all__ = ["read", "write_bytes", "MATRIX_KEY"]

MATRIX_KEY = "Q"
_SPARSE_KEYS = {"format", "shape"}


def _headers(data: bytes, source: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each member's shape and dtype, read from the .npy headers without loading the arrays."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InputError(source, Issue("file", f"not a readable .npz archive: {exc}")) from None
    limit = max_input_bytes()
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    with archive:
        for member in archive.infolist():
            key = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            try:
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f".npy format version {version} is not supported")
            except Exception as exc:  # damaged member: zipfile / numpy raise assorted types
                raise InputError(source, Issue(f"array {key}", f"not a readable .npy member: {exc}")) from None
            if dtype.hasobject:
                raise InputError(source, Issue(f"array {key}", "holds Python objects; qfreight never unpickles data"))
            total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if total > limit:
                raise InputError(source, Issue(f"array {key}", f"the arrays would take more than the {limit:,}-byte "
                                               "limit on inputs once decompressed (set QFREIGHT_MAX_INPUT_BYTES)"))
            out[key] = (tuple(shape), dtype)
    return out


def read(data: bytes, source: str, *, sense: str) -> Qubo:
    headers = _headers(data, source)
    arrays = np.load(io.BytesIO(data), allow_pickle=False)
    meta = {"source": source, "format": "npz", "name": Path(source).name}
    if _SPARSE_KEYS <= set(headers):
        shape = tuple(int(v) for v in np.asarray(arrays["shape"]).ravel())
        if len(shape) != 2 or shape[0] != shape[1]:
            raise InputError(source, Issue("shape", "the sparse matrix must be square", shape))
        check_variables(source, "shape", shape[0], len(data))
        try:
            M = sp.load_npz(io.BytesIO(data)).tocoo()
        except Exception as exc:
            raise InputError(source, Issue("file", f"not a readable scipy.sparse .npz: {exc}")) from None
        rows, cols, weights = M.row, M.col, np.asarray(M.data, dtype=np.float64)
        n = shape[0]
        meta["matrix"] = f"scipy.sparse {np.asarray(arrays['format']).item()!r}"
    else:
        matrices = [k for k in headers if k not in ("offset", "labels")]
        if MATRIX_KEY in headers:
            key = MATRIX_KEY
        elif len(matrices) == 1:
            key = matrices[0]
        else:
            raise InputError(source, Issue("keys", f"expected the matrix under key {MATRIX_KEY!r} (or a single array); "
                                           f"the archive holds {', '.join(sorted(headers)) or 'nothing'}"))
        shape, dtype = headers[key]
        if len(shape) != 2 or shape[0] != shape[1]:
            raise InputError(source, Issue(f"array {key}", "must be a square matrix", shape))
        if dtype.kind not in "biuf":
            raise InputError(source, Issue(f"array {key}", "must hold numbers", str(dtype)))
        M = np.asarray(arrays[key], dtype=np.float64)
        n = shape[0]
        check_finite(source, [(f"array {key}", M)])
        rows, cols = np.nonzero(M)
        weights = M[rows, cols]
        meta["matrix"] = f"dense {key!r}"
    check_finite(source, [("matrix entry", weights)])
    offset = 0.0
    if "offset" in headers:
        value = np.asarray(arrays["offset"])
        if value.size != 1 or value.dtype.kind not in "biuf" or not np.isfinite(value).all():
            raise InputError(source, Issue("offset", "must be one finite number", value.tolist()))
        offset = float(value.ravel()[0])
    labels: tuple[str, ...] = ()
    if "labels" in headers:
        value = np.asarray(arrays["labels"])
        if value.dtype.kind != "U" or value.shape != (n,):
            raise InputError(source, Issue("labels", f"must be {n} strings", str(value.dtype)))
        labels = tuple(str(v) for v in value)
        if len(set(labels)) != n:
            raise InputError(source, Issue("labels", "repeat a name"))
    return from_entries("npz", sense, n, rows, cols, weights, offset=offset, labels=labels, metadata=meta)


def write_bytes(qubo: Qubo, sense: str) -> bytes:
    sign = 1.0 if sense == "min" else -1.0
    M = sp.coo_array(sp.csr_array(qubo.Q) + sp.diags_array(np.asarray(qubo.h)))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.bytes_("coo"), shape=np.array(M.shape), row=M.row, col=M.col,
                        data=sign * M.data, offset=np.float64(sign * qubo.offset),
                        labels=np.array(qubo.labels, dtype=str))
    return buffer.getvalue()
