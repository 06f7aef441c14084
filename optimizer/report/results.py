"""Results files: JSON-ready values, atomic writes, and a comparison's results.json / results.csv.

A reader never sees half a file: every write goes to a temporary file in the same folder and
is renamed over the old one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from optimizer.freight.evaluate import KPI_LABELS

__all__ = ["to_jsonable", "write_atomic", "write_bytes_atomic", "write_json_atomic", "csv_columns", "csv_cells",
           "csv_text", "write_results", "load_results"]


def to_jsonable(value):
    """numpy scalars/arrays and tuples to plain JSON types; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half of one."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """:func:`write_atomic` for bytes (PNG files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: object) -> Path:
    return write_atomic(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


_SCALAR_COLUMNS = (
    "instance", "instance_kind", "source", "backend", "seed", "reference_only", "error", "versions",
    "qubo_variables", "model_variables", "shipments",
    "objective", "objective_unit", "qubo_energy", "feasible", "optimal", "bound",
    "gap", "gap_reference", "reference_objective", "best_known", "reached_best_known",
    "hybrid", "time_limit_s", "time_solve_s", "time_classical_s", "time_quantum_sim_s", "time_postprocess_s",
    "time_prepare_s", "time_evaluate_s", "wall_s",
    "reads", "evaluations", "shots",
    "qaoa_approximation_ratio", "qaoa_optimum_probability", "qaoa_best_probability",
    "photonic_mean_photons_per_sample", "photonic_mean_clicks_per_sample",
    "photonic_gbs_best_energy", "photonic_random_best_energy", "probability_of_best",
    "greedy_objective", "interrupted",
)


# ------------------------------------------------------------------------------ results files
def csv_columns(doc: dict) -> list[str]:
    kpi_keys = list(KPI_LABELS)
    return [*_SCALAR_COLUMNS, *(f"kpi.{k}" for k in kpi_keys), *(f"greedy.{k}" for k in kpi_keys),
            *(f"change_percent.{k}" for k in kpi_keys)]


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if np.isfinite(value) else ""
    if isinstance(value, dict):
        return ";".join(f"{k}={'' if v is None else v}" for k, v in value.items())
    return str(value)


def csv_cells(row: dict) -> dict[str, str]:
    """One results.csv row: the row's scalars, versions as ``pkg=ver;...``, KPIs flattened."""
    out = {key: _csv_value(row.get(key)) for key in _SCALAR_COLUMNS}
    for prefix, field in (("kpi", "kpis"), ("greedy", "greedy_kpis"), ("change_percent", "kpi_change_percent")):
        values = row.get(field) or {}
        for key in KPI_LABELS:
            out[f"{prefix}.{key}"] = _csv_value(values.get(key))
    return out


def csv_text(doc: dict) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=csv_columns(doc), lineterminator="\n")
    writer.writeheader()
    for row in doc["rows"]:
        writer.writerow(csv_cells(row))
    return buf.getvalue()


def write_results(doc: dict, out_dir: str | Path) -> None:
    """results.json then results.csv, each atomically (a reader never sees half a file)."""
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / "results.json", doc)
    write_atomic(out_dir / "results.csv", csv_text(doc))


def load_results(run_dir: str | Path) -> dict:
    """The results document of a comparison folder (or a results.json path)."""
    import json

    from optimizer.errors import InputError, Issue

    path = Path(run_dir)
    if path.is_dir():
        path = path / "results.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(str(path), Issue("(file)", f"cannot read: {exc.strerror or exc}")) from None
    except ValueError as exc:
        raise InputError(str(path), Issue("(syntax)", f"malformed JSON: {exc}")) from None
    if not isinstance(doc, dict) or doc.get("format") != "qfreight-comparison/1" \
            or not isinstance(doc.get("rows"), list) or not isinstance(doc.get("instances"), dict):
        raise InputError(str(path), Issue("format", "not the results.json of `qfreight compare`",
                                          doc.get("format") if isinstance(doc, dict) else None))
    return doc
