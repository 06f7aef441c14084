"""GAMS models (``.gms``; QPLIB ships every instance as one). Recognised, never read: parsing GAMS
robustly needs GAMS itself. The error names the same instance's ``.qplib`` file instead."""

from __future__ import annotations

import re
from pathlib import Path

from optimizer.errors import InputError, Issue

__all__ = ["refuse"]


def refuse(text: str, source: str) -> None:
    stem = Path(source).stem
    named = re.search(r"QPLIB_\d+", text) or re.fullmatch(r"QPLIB_\d+", stem)
    name = named.group(0) if named else stem
    hint = (f"read the same instance in QPLIB's own format instead: {name}.qplib "
            f"(https://qplib.zib.de/qplib/{name}.qplib, or `qfreight data fetch qplib` for the listed ones)")
    raise InputError(source, Issue("format", f"is a GAMS model (.gms); qfreight does not read GAMS; {hint}"))
