"""Public benchmark data: where the data folder is, and fetching its files from their publishers.

**The data folder** (:func:`find_data_folder`), first match wins:

1. ``QFREIGHT_DATA``, when set and not empty. It is used as given: when it names no folder there
   is no data folder, with that reason (a typo is never silently replaced by another folder).
2. ``../shared/data`` beside the repository checkout, only when qfreight runs from a checkout
   (``pyproject.toml`` and ``.git`` next to the ``optimizer`` package), never from an installed wheel.
3. The user cache: ``$XDG_CACHE_HOME/qfreight/data``, else ``~/.cache/qfreight/data``.

**Fetching** (:func:`fetch`, ``qfreight data fetch``): the sets in ``optimizer/data_sources.toml``
(OR-Library bqp, the iitis railway QUBOs, Gset, QPLIB) are downloaded from their original URLs
(or from ``--mirror``, a base URL holding the same layout), each file's SHA-256 is checked
against the manifest, and only then is it moved into place. A download is written to a temporary
file in the destination folder and renamed (atomic on POSIX), so a failed, interrupted or
mismatching download leaves nothing behind. Where the manifest records no sum (files nobody could
hash when it was written), the file is refused unless ``accept_unverified``: the computed sum is
printed either way, and FETCHED.json in the destination records what was verified.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from optimizer.errors import InputError, Issue, QfreightError

__all__ = ["DataLookup", "DataFile", "DataSet", "FetchError", "FetchResult", "find_data_folder", "data_folder",
           "default_destination", "data_sets", "published_values", "fetch", "fetch_file", "MAX_DOWNLOAD_BYTES"]

#: Largest file fetch accepts (bqp2500.txt, the largest listed file, is about 44 MB).
MAX_DOWNLOAD_BYTES = 512 * 2**20
_CHUNK = 1 << 16
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


class FetchError(QfreightError):
    """A download failed, or its content is not the file the manifest names (exit status 1)."""

    exit_code = 1


# ---------------------------------------------------------------------------------------- the data folder
@dataclass(frozen=True)
class DataLookup:
    """The data folder found (or None) and every place looked at, for messages and skip reasons."""

    path: Path | None
    tried: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.tried)


def _checkout_root(package_root: Path = _PACKAGE_ROOT) -> Path | None:
    """The repository checkout qfreight runs from, if it does (not an installed wheel)."""
    if (package_root / "pyproject.toml").is_file() and (package_root / ".git").exists():
        return package_root
    return None


def _cache_folder(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base else Path(environ.get("HOME", str(Path.home()))) / ".cache"
    return root / "qfreight" / "data"


def find_data_folder(*, environ: Mapping[str, str] | None = None,
                     checkout: Path | None | str = "auto") -> DataLookup:
    """Look for the data folder (see the module docstring); ``environ`` and ``checkout`` for tests."""
    environ = os.environ if environ is None else environ
    tried: list[str] = []
    explicit = environ.get("QFREIGHT_DATA", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():
            return DataLookup(path, (f"QFREIGHT_DATA={explicit}",))
        return DataLookup(None, (f"QFREIGHT_DATA={explicit} is not a folder (it is used as given, without "
                                 "falling back to other places)",))
    tried.append("QFREIGHT_DATA is not set")
    root = _checkout_root() if checkout == "auto" else (Path(checkout) if checkout is not None else None)
    if root is not None:
        shared = root.parent / "shared" / "data"
        if shared.is_dir():
            return DataLookup(shared, (*tried, f"found {shared} beside the checkout"))
        tried.append(f"no {shared} beside the checkout")
    else:
        tried.append("not running from a repository checkout (no ../shared/data lookup)")
    cache = _cache_folder(environ)
    if cache.is_dir() and any(cache.iterdir()):
        return DataLookup(cache, (*tried, f"found the user cache {cache}"))
    tried.append(f"no data in the user cache {cache} (fill it with `qfreight data fetch`)")
    return DataLookup(None, tuple(tried))


def data_folder() -> Path | None:
    """The data folder, or None when there is none (see :func:`find_data_folder` for why)."""
    return find_data_folder().path


def default_destination(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``fetch`` writes without ``--dest``: QFREIGHT_DATA if set, else the user cache."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("QFREIGHT_DATA", "").strip()
    return Path(explicit).expanduser() if explicit else _cache_folder(environ)


# ---------------------------------------------------------------------------------------- the manifest
@dataclass(frozen=True)
class DataFile:
    url: str
    path: str  # relative to the data folder, '/'-separated
    sha256: str = ""  # "" when no sum is recorded
    checked: str = ""  # how the sum was obtained
    converted: str = ""  # the readable file written from it, for sets with a converter


@dataclass(frozen=True)
class DataSet:
    name: str
    title: str
    publisher: str
    citation: str
    format: str
    sense: str
    files: tuple[DataFile, ...]
    convert: str = ""
    published: Mapping[str, object] = field(default_factory=dict)


def _manifest_text() -> str:
    return resources.files("optimizer").joinpath("data_sources.toml").read_text(encoding="utf-8")


def data_sets(text: str | None = None) -> dict[str, DataSet]:
    """The sets of the manifest (``optimizer/data_sources.toml``), by name."""
    raw = tomllib.loads(_manifest_text() if text is None else text)
    out = {}
    for name, entry in raw.get("sets", {}).items():
        files = tuple(DataFile(**f) for f in entry.get("files", ()))
        out[name] = DataSet(name=name, title=entry["title"], publisher=entry["publisher"], citation=entry["citation"],
                            format=entry["format"], sense=entry["sense"], files=files,
                            convert=entry.get("convert", ""), published=dict(entry.get("published", {})))
    return out


def published_values(name: str) -> dict[str, float]:
    """Published values of a set (instance name -> value, in the files' own convention)."""
    sets = data_sets()
    if name not in sets:
        raise InputError("data_sources.toml", Issue("sets", f"unknown data set; known: {', '.join(sets)}", name))
    return {k: float(v) for k, v in dict(sets[name].published.get("values", {})).items()}


# ---------------------------------------------------------------------------------------- fetching
@dataclass(frozen=True)
class FetchResult:
    path: Path
    url: str
    sha256: str
    verified: bool
    status: str  # "installed" | "present" | "refused"
    converted: Path | None = None


def _download(url: str, target_dir: Path, *, timeout: float, max_bytes: int) -> tuple[Path, str]:
    """Stream ``url`` into a temporary file in ``target_dir``; return (temporary path, sha256)."""
    digest = hashlib.sha256()
    handle, name = tempfile.mkstemp(prefix=".fetch-", suffix=".part", dir=target_dir)
    temporary = Path(name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "qfreight-data-fetch"})
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"{url}: more than {max_bytes:,} bytes; refused")
                digest.update(chunk)
                out.write(chunk)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, FetchError | KeyboardInterrupt):
            raise
        if isinstance(exc, urllib.error.HTTPError):
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        if isinstance(exc, urllib.error.URLError):
            raise FetchError(f"{url}: cannot connect ({exc.reason})") from None
        if isinstance(exc, TimeoutError | OSError):
            raise FetchError(f"{url}: {type(exc).__name__}: {exc} (timeout {timeout:g} s)") from None
        raise
    return temporary, digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _NoObjects(pickle.Unpickler):
    """An unpickler for data only: any class or function reference is refused, so nothing runs."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only plain data is accepted")


def railway_pickle_to_triples(data: bytes, source: str) -> str:
    """The published railway pickle (a dict with "qubo": {(i, j): w}, both orders) as triples text."""
    try:
        obj = _NoObjects(io.BytesIO(data)).load()
    except Exception as exc:  # damaged or hostile pickle: refused, never executed
        raise FetchError(f"{source}: not a plain-data pickle ({exc})") from None
    qubo = obj.get("qubo") if isinstance(obj, dict) else None
    if not isinstance(qubo, dict) or not qubo:
        raise FetchError(f"{source}: expected a dict with a non-empty 'qubo' mapping (i, j) -> w")
    folded: dict[tuple[int, int], float] = {}
    for key, weight in qubo.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, int) for k in key)):
            raise FetchError(f"{source}: a 'qubo' key is not an (i, j) pair of integers: {key!r}")
        i, j = min(key), max(key)
        folded[(i, j)] = folded.get((i, j), 0.0) + float(weight)
    n = max(j for _, j in folded) + 1
    lines = [f"# iitis/quantum-stochastic-optimization-railways QUBOs/gates, converted by qfreight from {source}",
             "# E(x) = sum_{i<=j} w_ij x_i x_j, x in {0,1}, 0-based; MINIMISE",
             f"{n} {len(folded)}"]
    lines += [f"{i} {j} {w!r}" for (i, j), w in sorted(folded.items())]
    return "\n".join(lines) + "\n"


_CONVERTERS: dict[str, Callable[[bytes, str], str]] = {"railway-pickle": railway_pickle_to_triples}


def _write_atomic(path: Path, data: bytes) -> None:
    handle, name = tempfile.mkstemp(prefix=".fetch-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _record(dest: Path, result: FetchResult) -> None:
    """Keep FETCHED.json in the destination: which files were verified against the manifest."""
    log = dest / "FETCHED.json"
    try:
        entries = json.loads(log.read_text()) if log.is_file() else {}
    except (OSError, ValueError):
        entries = {}
    entries[str(result.path.relative_to(dest))] = {
        "url": result.url, "sha256": result.sha256, "verified": result.verified,
        "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_atomic(log, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())


def fetch_file(entry: DataFile, dest: Path, *, mirror: str | None = None, accept_unverified: bool = False,
               timeout: float = 30.0, convert: str = "", max_bytes: int = MAX_DOWNLOAD_BYTES,
               log: Callable[[str], None] = print) -> FetchResult:
    """Download one file into ``dest / entry.path``, checked against its recorded SHA-256."""
    target = dest / entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{mirror.rstrip('/')}/{entry.path}" if mirror else entry.url
    if target.is_file() and entry.sha256 and _sha256(target) == entry.sha256:
        log(f"present  {entry.path} (sha256 matches)")
        return FetchResult(target, url, entry.sha256, True, "present")
    temporary, digest = _download(url, target.parent, timeout=timeout, max_bytes=max_bytes)
    try:
        if entry.sha256:
            if digest != entry.sha256:
                raise FetchError(f"{url}: SHA-256 {digest} does not match the recorded {entry.sha256}; "
                                 f"{entry.path} was not installed")
            verified = True
        elif accept_unverified:
            verified = False
            log(f"UNVERIFIED {entry.path}: no SHA-256 is recorded for it; downloaded sha256 {digest} "
                "(installed because of --accept-unverified)")
        else:
            raise FetchError(f"{url}: no SHA-256 is recorded for {entry.path}, so it cannot be verified; the "
                             f"download has sha256 {digest}. It was not installed: rerun with --accept-unverified "
                             "to install it anyway (and record the sum once checked against another copy)")
        converted = None
        if convert:
            text = _CONVERTERS[convert](temporary.read_bytes(), entry.path)
            converted = dest / entry.converted
            converted.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(converted, text.encode())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    result = FetchResult(target, url, digest, verified, "installed", converted)
    _record(dest, result)
    if verified:
        log(f"verified {entry.path} (sha256 {digest[:16]}...)")
    return result


def _write_published(dataset: DataSet, dest: Path) -> None:
    """For bqp sets, the published optima beside the file, in shared/data's layout."""
    values = dict(dataset.published.get("values", {}))
    if dataset.format != "bqp" or not values:
        return
    doc = {name: {"value": value, "sense": dataset.sense, "status": dataset.published.get("status", ""),
                  "index_in_file": int(name.rsplit(".", 1)[1]), "source": dataset.published.get("source", "")}
           for name, value in values.items()}
    target = dest / "bqp" / f"{dataset.name}_optima.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(target, (json.dumps(doc, indent=1) + "\n").encode())


def fetch(names: Sequence[str] = (), *, dest: Path | None = None, mirror: str | None = None,
          accept_unverified: bool = False, timeout: float = 30.0, sets: Mapping[str, DataSet] | None = None,
          log: Callable[[str], None] = print) -> list[FetchResult]:
    """Fetch the named sets (or files, by their file name, e.g. ``G14``); all sets when none are named.

    Every file is attempted; failures are collected and raised together at the end as one
    :class:`FetchError`, after the files that did verify were installed.
    """
    sets = data_sets() if sets is None else sets
    dest = Path(dest) if dest is not None else default_destination()
    chosen: list[tuple[DataSet, DataFile]] = []
    for name in names or list(sets):
        if name in sets:
            chosen += [(sets[name], f) for f in sets[name].files]
            continue
        matches = [(s, f) for s in sets.values() for f in s.files
                   if Path(f.path).name == name or Path(f.path).stem == name]
        if not matches:
            known = ", ".join(sets)
            raise InputError("command line", Issue("NAMES", f"unknown data set or file; sets: {known} (or a file "
                                                   "name such as G14)", name))
        chosen += matches
    dest.mkdir(parents=True, exist_ok=True)
    results, failures, filled = [], [], {}
    for dataset, entry in chosen:
        try:
            results.append(fetch_file(entry, dest, mirror=mirror, accept_unverified=accept_unverified,
                                      timeout=timeout, convert=dataset.convert, log=log))
            filled[dataset.name] = dataset
        except FetchError as exc:
            failures.append(str(exc))
            log(f"FAILED   {entry.path}: {exc}")
    for dataset in filled.values():
        _write_published(dataset, dest)
    if failures:
        raise FetchError(f"{len(failures)} of {len(chosen)} files not installed:\n  " + "\n  ".join(failures))
    return results
