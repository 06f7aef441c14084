"""Results files: JSON-ready values, atomic writes, and a comparison's results.json / results.csv.

A reader never sees half a file: every write goes to a temporary file in the same folder and
is renamed over the old one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from optimizer.freight.evaluate import KPI_LABELS

__all__ = ["to_jsonable", "write_atomic", "write_bytes_atomic", "write_json_atomic", "csv_columns", "csv_cells",
           "csv_text", "write_results", "load_results", "safe_name", "default_output_dir", "prepare_output_dir",
           "OutputLock"]


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
    "greedy_objective", "baseline", "baseline_objective", "interrupted", "status", "best_origin",
    "device_contribution", "device_pieces", "device_pieces_beat_standins", "credited_rounds", "device_seconds",
    "standin_seconds",
)


# ------------------------------------------------------------------------------ results files
def csv_columns(doc: dict) -> list[str]:
    kpi_keys = list(KPI_LABELS)
    return [*_SCALAR_COLUMNS, *(f"kpi.{k}" for k in kpi_keys), *(f"baseline.{k}" for k in kpi_keys),
            *(f"change_percent.{k}" for k in kpi_keys)]


#: A text cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        # Text from input files (names, sources, error messages): quote a would-be formula with a
        # leading apostrophe, as spreadsheet-safe CSV writers do. Numbers are written as numbers.
        return "'" + value if value.startswith(_FORMULA_START) else value
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
    for prefix, field in (("kpi", "kpis"), ("baseline", "baseline_kpis"), ("change_percent", "kpi_change_percent")):
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


def _results_schema():
    """pydantic models of a comparison's results.json: the fields the reports read, typed; any
    other field is kept as it is (rows carry backend-specific metrics)."""
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, model_validator

    Number = float | None

    class Row(BaseModel):
        model_config = ConfigDict(extra="allow")
        instance: str
        backend: str
        seed: int
        error: str | None = None
        objective: Number = None
        feasible: bool | None = None
        optimal: bool | None = None
        bound: Number = None
        hybrid: bool | None = None
        time_solve_s: Number = None
        kpis: dict[str, float | None] | None = None
        plan: list[dict] | None = None
        trace: list[tuple[float, float]] | None = None

        @model_validator(mode="after")
        def _feasible_has_objective(self):
            if self.feasible and self.error is None and self.objective is None:
                raise ValueError("a feasible row needs an objective")
            return self

    class Instance(BaseModel):
        model_config = ConfigDict(extra="allow")
        kind: Literal["problem", "qubo"]

    class Document(BaseModel):
        model_config = ConfigDict(extra="allow")
        format: Literal["qfreight-comparison/1"]
        rows: list[Row]
        instances: dict[str, Instance]
        backends: list[str] = []
        seeds: list[int] = []

        @model_validator(mode="after")
        def _rows_name_instances(self):
            for k, row in enumerate(self.rows):
                if row.instance not in self.instances:
                    raise ValueError(f"rows[{k}].instance {row.instance!r} is not among the instances")
            return self

    return Document


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def load_results(run_dir: str | Path) -> dict:
    """The results document of a comparison folder (or a results.json path), validated: a
    hand-edited file with a missing or mistyped field is an InputError naming the field."""
    from pydantic import ValidationError

    from optimizer.errors import InputError, Issue
    from optimizer.inputs import decode, read_input

    path = Path(run_dir)
    if path.is_dir():
        path = path / "results.json"
    try:
        doc = json.loads(decode(read_input(path, what="results.json"), str(path)))
    except ValueError as exc:
        raise InputError(str(path), Issue("(syntax)", f"malformed JSON: {exc}")) from None
    if not isinstance(doc, dict) or doc.get("format") != "qfreight-comparison/1":
        raise InputError(str(path), Issue("format", "not the results.json of `qfreight compare`",
                                          doc.get("format") if isinstance(doc, dict) else None))
    try:
        _results_schema().model_validate(doc)
    except ValidationError as exc:
        issues = [Issue(_location(e["loc"]), e["msg"], e.get("input") if not isinstance(e.get("input"), (dict, list))
                        else None) for e in exc.errors()[:20]]
        raise InputError(str(path), issues) from None
    return doc


# ------------------------------------------------------------------------------ output folders
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, *, limit: int = 64) -> str:
    """A file-name-safe form of an input-derived name: letters, digits, ``.``, ``_``, ``-`` only,
    no leading dot, at most ``limit`` characters (``../../x`` becomes ``x``)."""
    cleaned = _UNSAFE.sub("-", unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode())
    cleaned = cleaned.strip("-.")[:limit].strip("-.")
    return cleaned or "run"


def default_output_dir(name: str, backend: str, *, root: str | Path = "results") -> Path:
    """``results/<name>-<backend>`` with the name made safe: never outside ``root``."""
    root = Path(root)
    out = root / f"{safe_name(name)}-{safe_name(backend)}"
    if not out.resolve().is_relative_to(root.resolve()):  # pragma: no cover - safe_name forbids it
        raise AssertionError(f"{out} leaves {root}")
    return out


def prepare_output_dir(path: str | Path, *, flag: str = "--out") -> Path:
    """Create the output folder (parents too) and check that it can be written, before any
    solving starts; an existing file or an unwritable place is an InputError naming ``flag``."""
    from optimizer.errors import InputError, Issue

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("command line", Issue(flag, "is an existing file, expected a folder", str(path)))
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test.", delete=True)
        probe.close()
    except OSError as exc:
        raise InputError("command line", Issue(flag, f"cannot write there: {exc.strerror or exc}",
                                               str(path))) from None
    return path


class OutputLock:
    """An exclusive claim on an output folder (``.qfreight.lock`` holding the owner's pid), so two
    runs writing the same folder at once refuse instead of silently overwriting each other. A
    lock left by a process that no longer runs is taken over."""

    NAME = ".qfreight.lock"

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / self.NAME
        self._held = False

    def __enter__(self) -> OutputLock:
        from optimizer.errors import InputError, Issue

        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and owner != os.getpid() and _alive(owner):
                    raise InputError("command line", Issue("--out", f"another qfreight run (pid {owner}) is writing "
                                                           "to this folder; wait for it or choose another --out",
                                                           str(self.path.parent))) from None
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            self._held = True
            return self
        raise InputError("command line", Issue("--out", "cannot take the output folder's lock", str(self.path)))

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or "0") or None
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc: object) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
