"""Where independent pieces of work run: in this process, in a process pool, or on Dask.

One tiny interface, :class:`Executor`: ``map(fn, items) -> list`` in the order of ``items``,
used as a context manager so that whatever it started (a pool, a Dask cluster and client)
is closed again. ``fn`` must be a module-level function and ``items`` picklable when the work
leaves this process (a process pool, or Dask with ``processes=True`` or a remote scheduler).

Results never depend on the executor: callers derive every seed before mapping, and ``map``
keeps the order, so local and Dask runs with the same seed give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "create_executor", "EXECUTOR_KINDS", "CONNECT_TIMEOUT"]

EXECUTOR_KINDS = ("local", "dask")


@runtime_checkable
class Executor(Protocol):
    kind: str

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


class _Closing:
    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class LocalExecutor(_Closing):
    """Sequential in this process (``workers=1``), or a process pool of ``workers`` processes.

    The pool is started on first use with the ``spawn`` method (safe beside threads) and shut
    down by :meth:`close`.
    """

    kind = "local"

    def __init__(self, *, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool = None

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"


#: Seconds to reach a remote Dask scheduler before giving up with a clear message.
CONNECT_TIMEOUT = 10.0


def _connect(client_cls, address: str, timeout: float):
    """A client of the scheduler at ``address``, or a ConfigError naming it and why (refused,
    malformed, unroutable: all within ``timeout`` seconds, never a traceback)."""
    from optimizer.errors import ConfigError, Issue

    if not isinstance(address, str) or "://" not in address:
        raise ConfigError(None, Issue("executor.address", "expected a scheduler address such as tcp://host:8786",
                                      address))
    try:
        return client_cls(address, timeout=timeout)
    except MemoryError:
        # Something answered, but not in Dask's protocol: its first "frame length" was garbage.
        raise ConfigError(None, Issue("executor.address", "the peer at this address is not a Dask scheduler "
                                      "(its reply is not Dask's protocol)", address)) from None
    except Exception as exc:  # noqa: BLE001 - any failure to connect to an outside service is a config issue
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(None, Issue("executor.address", f"cannot reach a Dask scheduler within {timeout:g} s: "
                                      f"{reason}", address)) from None


class DaskExecutor(_Closing):
    """Dask distributed: connect to ``address`` (``"tcp://host:8786"``) or start a LocalCluster.

    A cluster started here (``n_workers`` workers of ``threads_per_worker`` threads, threads
    in this process unless ``processes=True``) is closed with the client by :meth:`close`;
    a remote scheduler is only disconnected from.
    """

    kind = "dask"

    def __init__(self, *, address: str | None = None, n_workers: int = 1, threads_per_worker: int = 1,
                 processes: bool = False, connect_timeout: float = CONNECT_TIMEOUT):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dependency is declared
            from optimizer.errors import MissingDependency

            raise MissingDependency("hybrid", "distributed", "pip install 'dask[distributed]'") from exc
        self.address = address
        self._cluster = None
        self._client = None
        if address is None:
            self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                         processes=processes, dashboard_address=None)
            self._client = Client(self._cluster)
        else:
            self._client = _connect(Client, address, connect_timeout)

    @property
    def client(self):
        return self._client

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if not items:
            return []
        # pure=False: every task runs, even when two items hash alike.
        futures = self._client.map(fn, items, pure=False)
        return self._client.gather(futures)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __repr__(self) -> str:
        return f"DaskExecutor(address={self.address!r})"


def create_executor(kind: str = "local", *, workers: int = 1, address: str | None = None,
                    processes: bool = False) -> Executor:
    """An executor from config values: ``kind`` is ``"local"`` or ``"dask"``.

    ``workers`` is the process-pool size (local) or the LocalCluster's worker count (dask
    without ``address``).
    """
    if kind == "local":
        if address is not None:
            raise ValueError("executor.address is only used with kind = 'dask'")
        return LocalExecutor(workers=workers)
    if kind == "dask":
        return DaskExecutor(address=address, n_workers=workers, processes=processes)
    raise ValueError(f"unknown executor kind {kind!r}; known: {', '.join(EXECUTOR_KINDS)}")
