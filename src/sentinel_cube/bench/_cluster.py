"""The dask cluster of a benchmark: connect or start it, pick workers, watch them.

- :func:`connect`: a client of the scheduler at ``--scheduler``, or of a new
  ``LocalCluster`` of process workers.
- :func:`first_workers` and :func:`restricted`: run a computation on the first ``k``
  workers only, also on a cluster this process cannot add or remove workers of.
- :class:`WorkerWatch`: peak memory and tasks run per worker over a phase, from each
  worker's own system monitor (sampled by the worker every 0.5 s, so nothing polls).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dask

from ..exceptions import SentinelCubeError

__all__ = [
    "WorkerWatch",
    "cluster_info",
    "connect",
    "first_workers",
    "restricted",
    "scaling_steps",
]


@contextlib.contextmanager
def connect(
    scheduler: str | None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    timeout: float = 30.0,
) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler``, or of a new local cluster.

    Parameters
    ----------
    scheduler
        ``tcp://host:port`` (or any address ``distributed.Client`` takes), or None for a
        ``LocalCluster`` of ``workers`` process workers (default: the CPU count) with
        ``threads_per_worker`` threads each, on the loopback, started with
        :func:`sentinel_cube._local_cluster.local_cluster`.
    timeout
        Seconds to wait for the scheduler, and for its first worker.

    Raises
    ------
    SentinelCubeError
        When the scheduler cannot be reached or has no worker: the message names the
        address and what to do.
    """
    from distributed import Client

    from .._local_cluster import local_cluster

    if scheduler is None:
        n = workers or os.cpu_count() or 1
        with local_cluster(
            n_workers=n, threads_per_worker=threads_per_worker, processes=True,
            host="127.0.0.1", dashboard_address="127.0.0.1:0",
        ) as cluster, Client(cluster) as client:  # fmt: skip
            yield client
        return
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise SentinelCubeError(
            f"could not reach the dask scheduler at {scheduler!r} within {timeout:g} s "
            f"({type(error).__name__}: {error}): check the address (e.g. tcp://host:8786), "
            "that the scheduler runs and that this machine may connect to it; or leave out "
            "--scheduler to start a local cluster"
        ) from error
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError as error:
            raise SentinelCubeError(
                f"the dask scheduler at {scheduler!r} has no worker after {timeout:g} s: "
                "start workers (dask worker ADDRESS) or scale the cluster up, then run again"
            ) from error
        yield client


def first_workers(client: Any, n: int | None = None) -> list[str]:
    """The addresses of the cluster's first ``n`` workers (all by default), sorted."""
    addresses = sorted(client.nthreads())
    return addresses if n is None else addresses[:n]


def scaling_steps(n: int) -> list[int]:
    """Worker counts of a scaling curve: 1, 2, 4, ... and ``n``.

    Examples
    --------
    >>> scaling_steps(1), scaling_steps(6), scaling_steps(8)
    ([1], [1, 2, 4, 6], [1, 2, 4, 8])
    """
    steps = [1]
    while steps[-1] * 2 < n:
        steps.append(steps[-1] * 2)
    if n > 1:
        steps.append(n)
    return steps


@contextlib.contextmanager
def restricted(client: Any, workers: Sequence[str]) -> Iterator[None]:
    """Inside the block, dask computations run on ``workers`` only.

    Two ways at once, so that it holds however a computation reaches the cluster:
    graphs built in the block carry the restriction as an annotation, and computes
    through dask's default scheduler go through ``client.get(..., workers=...)``.
    Nothing is added to or removed from the cluster. :class:`WorkerWatch` shows where
    the tasks ran.
    """
    get = functools.partial(client.get, workers=list(workers), allow_other_workers=False)
    with (
        dask.annotate(workers=list(workers), allow_other_workers=False),
        dask.config.set(scheduler=get),
    ):
        yield


@dataclass(frozen=True)
class WorkerUse:
    """What one worker did over a phase."""

    peak_mb: float
    tasks: int


def _monitor_state(dask_worker: Any) -> tuple[int, int]:
    """(samples taken by the worker's system monitor, tasks the worker has run)."""
    return dask_worker.monitor.count, dask_worker.state.executed_count


def _monitor_since(dask_worker: Any, starts: dict[str, tuple[int, int]]) -> tuple[float, int]:
    """(peak RSS in bytes since the start, tasks run since the start) of this worker."""
    samples, executed = starts.get(dask_worker.address, (0, 0))
    memory = dask_worker.get_monitor_info(start=samples)["range_query"].get("memory", [])
    now = dask_worker.monitor.proc.memory_info().rss
    peak = max([m for m in memory if m is not None] + [now])
    return float(peak), dask_worker.state.executed_count - executed


class WorkerWatch:
    """Peak memory (RSS) and tasks run per worker between :meth:`start` and :meth:`stop`.

    Read from each worker's system monitor (``distributed``'s, sampling every 0.5 s
    by default) and task counter; the peak includes the worker process's baseline
    (interpreter and libraries).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._starts: dict[str, tuple[int, int]] = {}

    def start(self) -> WorkerWatch:
        self._starts = self.client.run(_monitor_state)
        return self

    def stop(self) -> dict[str, WorkerUse]:
        """Per worker address: its peak memory in MB and the tasks it ran."""
        found = self.client.run(_monitor_since, starts=self._starts)
        return {a: WorkerUse(peak / 1e6, tasks) for a, (peak, tasks) in sorted(found.items())}


def cluster_info(client: Any) -> dict[str, Any]:
    """Workers, threads and memory limits of the cluster, and its dashboard."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    limits = [w.get("memory_limit") for w in workers.values()]
    return {
        "scheduler": info.get("address"),
        "dashboard": client.dashboard_link,
        "workers": len(client.nthreads()),
        "threads": dict(sorted(client.nthreads().items())),
        "memory_limit_mb": [round(m / 1e6) if m else None for m in limits],
    }
