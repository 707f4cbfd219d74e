"""Where backtest days run: this process, worker processes, or a Dask cluster.

Every executor has ``map(fn, jobs)`` yielding ``(index, result)`` as jobs finish, in any order;
the engine puts them back in day order, so results never depend on the executor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any


class InlineExecutor:
    """Runs jobs one after another in this process (``--workers 1``): simplest to debug."""

    name = "inline"

    def map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> Iterator[tuple[int, Any]]:
        for index, job in enumerate(jobs):
            yield index, fn(job)

    def close(self) -> None:
        pass


class LocalExecutor:
    """Worker processes on this machine."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers)

    def map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> Iterator[tuple[int, Any]]:
        futures = {self._pool.submit(fn, job): index for index, job in enumerate(jobs)}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskExecutor:
    """A Dask distributed cluster (``dask://HOST:PORT``), so many machines share the days."""

    name = "dask"

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise RuntimeError("--executor dask:// needs the 'distributed' package") from exc
        self.address = address
        self._client = Client(address, set_as_default=False)

    def map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed as dask_completed

        futures = self._client.map(fn, jobs, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future in dask_completed(futures, loop=self._client.loop):
            yield index[future.key], future.result()

    def close(self) -> None:
        self._client.close()


def make_executor(spec: str, workers: int | None) -> InlineExecutor | LocalExecutor | DaskExecutor:
    """``local`` (processes; ``--workers`` of them, default all cores) or ``dask://HOST:PORT``."""
    if spec.startswith("dask://"):
        return DaskExecutor("tcp://" + spec.removeprefix("dask://"))
    if spec not in ("local", "inline"):
        raise ValueError(f"--executor {spec!r}: use 'local' or 'dask://HOST:PORT'")
    count = workers or os.cpu_count() or 1
    if spec == "inline" or count == 1:
        return InlineExecutor()
    return LocalExecutor(count)
