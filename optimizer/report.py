"""Writing results: atomic files and the fixed-width KPI table the CLI prints."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from optimizer.evaluate import KPI_LABELS, Kpis

__all__ = ["write_atomic", "write_json_atomic", "kpi_table", "to_jsonable"]


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: object) -> Path:
    return write_atomic(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def _fmt(key: str, value: float) -> str:
    if key in ("on_time_share", "priority_weighted_on_time"):
        return f"{100 * value:.1f}"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e6:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def kpi_table(plan: Kpis | None, baseline: Kpis, *, plan_name: str = "plan") -> str:
    """Plan vs greedy dispatcher, one KPI a line, with the change in percent (lower-is-better
    KPIs improve when negative; on-time shares improve when positive)."""
    header = f"{'KPI':<28}{'unit':>6}{'greedy':>16}{plan_name:>16}{'change':>10}"
    lines = [header, "-" * len(header)]
    for key, (label, unit) in KPI_LABELS.items():
        base = getattr(baseline, key)
        if plan is None:
            lines.append(f"{label:<28}{unit:>6}{_fmt(key, base):>16}{'-':>16}{'':>10}")
            continue
        value = getattr(plan, key)
        change = "" if base == 0 else f"{100 * (value - base) / abs(base):+.1f}%"
        lines.append(f"{label:<28}{unit:>6}{_fmt(key, base):>16}{_fmt(key, value):>16}{change:>10}")
    return "\n".join(lines)
