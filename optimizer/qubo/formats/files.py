"""Reading input files as contracts, and the line parsing every text format shares.

Every input file goes through :func:`read_input`: only a regular file is read (a FIFO, a device
such as ``/dev/zero``, a socket or a directory is refused, also through a symlink, before a byte
is read), and at most :func:`max_input_bytes` bytes (256 MiB unless ``QFREIGHT_MAX_INPUT_BYTES``
says otherwise). Counts a header declares are checked against the file's size before anything is
allocated (:func:`check_variables`, :func:`check_entries`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimizer.errors import InputError, Issue
from optimizer.inputs import DEFAULT_MAX_INPUT_BYTES, decode, max_input_bytes, read_input

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "MAX_VARIABLES", "max_input_bytes", "read_input", "decode",
           "split_instance", "check_variables", "check_entries", "Lines", "parse_entries", "qfreight_comments",
           "number", "label_comments", "default_labels", "check_finite"]

#: Largest variable count a header may declare: a variable costs about 100 bytes of memory
#: (linear term, label) before any data, so a header cannot ask for gigabytes by itself.
MAX_VARIABLES = 20_000_000










def split_instance(spec: str | Path) -> tuple[Path, int | None]:
    """``"bqp50.txt#3"`` -> (Path("bqp50.txt"), 3); a path without ``#k`` gives (path, None).

    A file whose name really contains ``#`` wins over the instance reading.
    """
    text = str(spec)
    path = Path(text)
    base, sep, suffix = text.rpartition("#")
    if not sep or path.exists():
        return path, None
    if not re.fullmatch(r"\d+", suffix.strip()):
        raise InputError(text, Issue("instance", "expected FILE#k with k a positive integer", suffix))
    k = int(suffix)
    if k < 1:
        raise InputError(base, Issue("instance", "instances are numbered from 1", k))
    return Path(base), k


def check_variables(source: str, where: str, n: int, size: int) -> None:
    """A declared variable count must fit the file: at most max(10^6, size in bytes) and MAX_VARIABLES."""
    bound = min(MAX_VARIABLES, max(1_000_000, size))
    if n > bound:
        raise InputError(source, Issue(where, f"declares {n:,} variables, more than a {size:,}-byte file can "
                                       f"describe (at most {bound:,})", n))


def check_entries(source: str, where: str, count: int, size: int, *, min_bytes: int = 5) -> None:
    """A declared entry count must fit the file: each entry takes at least ``min_bytes`` bytes."""
    if count > size // min_bytes + 1:
        raise InputError(source, Issue(where, f"declares {count:,} entries, more than a {size:,}-byte file holds",
                                       count))


# ---------------------------------------------------------------------------------------- text lines
@dataclass
class Lines:
    """The data lines of a text file: (line number, tokens), comments and blanks dropped."""

    source: str
    lines: list[tuple[int, list[str]]]
    comments: list[tuple[int, str]]
    size: int = 0
    pos: int = 0

    @classmethod
    def of(cls, text: str, source: str, comment: str | None) -> Lines:
        lines, comments = [], []
        for number, raw in enumerate(text.splitlines(), start=1):
            stripped = raw.strip()
            if not stripped:
                continue
            is_comment = comment is not None and (
                stripped == comment or stripped[:len(comment) + 1] in (comment + " ", comment + "\t")
                or (comment == "#" and stripped.startswith("#")))
            if is_comment:
                comments.append((number, stripped[len(comment):].strip()))
                continue
            lines.append((number, stripped.split()))
        return cls(source, lines, comments, size=len(text))

    def next(self, what: str) -> tuple[int, list[str]]:
        if self.pos >= len(self.lines):
            last = self.lines[-1][0] if self.lines else 0
            raise InputError(self.source, Issue(f"line {last + 1}", f"file ends early: expected {what}"))
        item = self.lines[self.pos]
        self.pos += 1
        return item

    def error(self, line: int, message: str, value: object = None) -> InputError:
        return InputError(self.source, Issue(f"line {line}", message, value))

    def int_token(self, line: int, token: str, what: str, *, minimum: int = 0) -> int:
        try:
            value = int(token)
        except ValueError:
            raise self.error(line, f"{what} must be an integer", token) from None
        if value < minimum:
            raise self.error(line, f"{what} must be at least {minimum}", value)
        return value

    def float_token(self, line: int, token: str, what: str) -> float:
        try:
            value = float(token)
        except ValueError:
            raise self.error(line, f"{what} must be a number", token) from None
        if not math.isfinite(value):
            raise self.error(line, f"{what} must be finite", token)
        return value

    def header(self, what: str, names: Sequence[str]) -> tuple[int, list[int]]:
        number, tokens = self.next(what)
        if len(tokens) != len(names):
            raise self.error(number, f"expected {what} ({len(names)} integers), found {len(tokens)} fields",
                             " ".join(tokens))
        return number, [self.int_token(number, t, name) for t, name in zip(tokens, names)]


def parse_entries(lines: Lines, count: int, n: int, base: int, context: str, *, fields: int = 3,
                  index_fields: int = 2) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Read ``count`` lines of ``index_fields`` indices then values; check shape, numbers and range.

    Returns (indices (count, index_fields) 0-based int64, values (count, fields - index_fields)
    float64, line numbers). Vectorised; only a failing block is re-scanned line by line to name
    the line.
    """
    check_entries(lines.source, context, count, lines.size)
    available = len(lines.lines) - lines.pos
    if available < count:
        end = lines.pos + available
        for number, tokens in lines.lines[lines.pos:end]:
            if len(tokens) != fields:
                raise _shape_error(lines, number, tokens, fields, count, context)
        last = lines.lines[-1][0] if lines.lines else 0
        raise InputError(lines.source, Issue(f"line {last + 1}", f"file ends after {available} of the {count} "
                                             f"entries {context} declares"))
    block = lines.lines[lines.pos:lines.pos + count]
    lines.pos += count
    numbers = [number for number, _ in block]
    widths = np.fromiter((len(tokens) for _, tokens in block), dtype=np.int64, count=count)
    if count and np.any(widths != fields):
        k = int(np.argmax(widths != fields))
        raise _shape_error(lines, numbers[k], block[k][1], fields, count, context)
    tokens = np.array([t for _, t in block], dtype=str).reshape(count, fields) if count else \
        np.empty((0, fields), dtype=str)
    issues: list[Issue] = []
    try:
        index = tokens[:, :index_fields].astype(np.int64)
    except (ValueError, TypeError, OverflowError):
        for number, row in zip(numbers, tokens[:, :index_fields]):
            try:
                [int(t) for t in row]
            except ValueError:
                issues.append(Issue(f"line {number}", "indices must be integers", " ".join(row)))
                if len(issues) >= 20:
                    break
        raise InputError(lines.source, issues) from None
    try:
        values = tokens[:, index_fields:].astype(np.float64)
    except (ValueError, TypeError):
        for number, row in zip(numbers, tokens[:, index_fields:]):
            for t in row:
                try:
                    float(t)
                except ValueError:
                    issues.append(Issue(f"line {number}", "weight must be a number", t))
                    break
            if len(issues) >= 20:
                break
        raise InputError(lines.source, issues) from None
    bad = ~np.isfinite(values).all(axis=1)
    for k in np.flatnonzero(bad)[:20]:
        issues.append(Issue(f"line {numbers[k]}", "weight must be finite", " ".join(tokens[k, index_fields:])))
    out_of_range = ((index < base) | (index >= n + base)).any(axis=1)
    for k in np.flatnonzero(out_of_range)[:20]:
        row = index[k]
        bad_index = int(row[(row < base) | (row >= n + base)][0])
        issues.append(Issue(f"line {numbers[k]}", f"index out of range: {context} has {n} variables, indices run "
                            f"from {base} to {n - 1 + base}", bad_index))
    if issues:
        raise InputError(lines.source, issues[:20])
    return index - base, values, numbers


def _shape_error(lines: Lines, number: int, tokens: list[str], fields: int, count: int, context: str) -> InputError:
    hint = " (a header? the entry count in the header may be wrong)" if len(tokens) == fields - 1 else ""
    return lines.error(number, f"expected an entry of {fields} fields, found {len(tokens)}{hint}; "
                       f"{context} declares {count} entries", " ".join(tokens))


def qfreight_comments(lines: Lines, n: int) -> tuple[float, tuple[str, ...]]:
    """The offset and labels qfreight's writers keep in comment lines, if any."""
    offset = 0.0
    labels: dict[int, str] = {}
    for number, body in lines.comments:
        parts = body.split(None, 2)
        if len(parts) < 3 or parts[0] != "qfreight":
            continue
        if parts[1] == "offset":
            offset = lines.float_token(number, parts[2], "qfreight offset")
        elif parts[1] == "label":
            index, _, label = parts[2].partition(" ")
            i = lines.int_token(number, index, "label index")
            if i >= n or not label.strip():
                raise lines.error(number, f"qfreight label needs an index below {n} and a name", body)
            labels[i] = label.strip()
    if not labels:
        return offset, ()
    if len(labels) != n:
        raise InputError(lines.source, Issue("labels", f"qfreight label comments name {len(labels)} of "
                                             f"{n} variables; give all or none"))
    names = tuple(labels[i] for i in range(n))
    if len(set(names)) != n:
        raise InputError(lines.source, Issue("labels", "qfreight label comments repeat a name"))
    return offset, names


# ---------------------------------------------------------------------------------------- writing text
def number(value: float) -> str:
    """Integers without a decimal point (as OR-Library and qbsolv files have them), else repr."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def default_labels(labels: Sequence[str]) -> bool:
    return tuple(labels) == tuple(f"x{i}" for i in range(len(labels)))


def label_comments(labels: Sequence[str], offset: float, prefix: str) -> list[str]:
    out = []
    if offset:
        out.append(f"{prefix} qfreight offset {offset!r}")
    if not default_labels(labels) and all(
            label == label.strip() and label and "\n" not in label and "\r" not in label for label in labels):
        out += [f"{prefix} qfreight label {i} {label}" for i, label in enumerate(labels)]
    return out


def check_finite(source: str, named: Sequence[tuple[str, np.ndarray]], labels: Sequence[str] | None = None) -> None:
    """Refuse non-finite coefficients (an LP's ``1e400`` is read as infinity), naming the term."""
    issues = []
    for what, values in named:
        values = np.asarray(values, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values.ravel()))
        for k in bad[:5]:
            name = labels[k] if labels is not None and values.ndim == 1 and k < len(labels) else str(int(k))
            issues.append(Issue(f"{what} of {name}", "must be finite (a coefficient such as 1e400 reads as "
                                "infinity)", float(values.ravel()[k])))
    if issues:
        raise InputError(source, issues)
