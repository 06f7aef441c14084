"""Reading user files as contracts: regular files only, size-capped, decoded as UTF-8.

Every input file (problem, config, QUBO, model, results.json, events) goes through
:func:`read_input`: only a regular file is read (a FIFO, a device such as ``/dev/zero``, a
socket or a directory is refused, also through a symlink, before a byte is read), and at most
:func:`max_input_bytes` bytes (256 MiB unless ``QFREIGHT_MAX_INPUT_BYTES`` says otherwise).
Errors name the file and the reason.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from optimizer.errors import InputError, Issue

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "max_input_bytes", "read_input", "decode", "read_text"]


#: Default cap on the bytes read from one input file (``QFREIGHT_MAX_INPUT_BYTES`` overrides it).
DEFAULT_MAX_INPUT_BYTES = 256 * 2**20


def max_input_bytes() -> int:
    """The cap on bytes read from one input file."""
    raw = os.environ.get("QFREIGHT_MAX_INPUT_BYTES", "")
    try:
        value = int(raw) if raw.strip() else DEFAULT_MAX_INPUT_BYTES
    except ValueError:
        raise InputError("environment", Issue("QFREIGHT_MAX_INPUT_BYTES", "must be a whole number of bytes",
                                              raw)) from None
    return max(1, value)


_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


def read_input(path: str | Path, *, what: str = "QUBO file", limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or an InputError naming the file.

    The file is opened non-blocking (opening a FIFO for reading would otherwise wait for a
    writer) and checked with ``fstat`` on the open descriptor, so a symlink named ``.json`` or
    ``.qubo`` that points at ``/dev/urandom`` is refused like the device itself.
    """
    source = str(path)
    limit = max_input_bytes() if limit is None else limit
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(source, Issue("file", "no such file")) from None
    except IsADirectoryError:
        raise InputError(source, Issue("file", f"is a directory, expected a {what}")) from None
    except OSError as exc:
        raise InputError(source, Issue("file", f"cannot be read: {exc.strerror or exc}")) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise InputError(source, Issue("file", f"is {kind}, expected a regular {what}; qfreight reads only "
                                           "regular files"))
        if info.st_size > limit:
            raise InputError(source, Issue("file", f"is {info.st_size:,} bytes, more than the {limit:,}-byte limit "
                                           "on input files (set QFREIGHT_MAX_INPUT_BYTES to raise it)"))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(source, Issue("file", f"cannot be read: {exc.strerror or exc}")) from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:  # it grew while being read
        raise InputError(source, Issue("file", f"is more than the {limit:,}-byte limit on input files"))
    return data


def decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(source, Issue("file", f"not a text file (byte {exc.start} is not UTF-8)")) from None


def read_text(path: str | Path, *, what: str, limit: int | None = None) -> str:
    """:func:`read_input` then :func:`decode`: the UTF-8 text of a regular file."""
    return decode(read_input(path, what=what, limit=limit), str(path))
