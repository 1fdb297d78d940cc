"""The measured steps of a benchmark, each a plain function of a dask client.

Each returns its wall time and what it produced; :mod:`._run` puts them in order and
:class:`~._results.Phase` collects the rounds. Only the public API is used
(:func:`~sentinel_cube.open_cube`, :func:`~sentinel_cube.to_zarr`,
:func:`~sentinel_cube.open_zarr`, :func:`~sentinel_cube.clip`,
:func:`~sentinel_cube.stretch`, :func:`~sentinel_cube.aggregate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import shapely
import xarray as xr
from shapely import affinity
from shapely.geometry.base import BaseGeometry

from ..aoi import reproject_geometry
from ..cube import open_cube
from ..ops import aggregate, clip, stretch
from ..store import WriteReport, open_zarr, to_zarr
from ._cluster import WorkerUse, WorkerWatch, restricted
from ._store import clear_store

__all__ = [
    "OPERATIONS",
    "IngestRun",
    "OperationRun",
    "default_clip_area",
    "ingest",
    "operation",
    "plan",
]

#: The operations measured on the store, in order.
OPERATIONS = ("clip", "stretch", "aggregate")


def plan(open_args: Mapping[str, Any]) -> tuple[xr.DataArray, float, int]:
    """``open_cube(**open_args)``: the cube, the seconds it took and its graph's tasks."""
    started = time.perf_counter()
    cube = open_cube(**open_args)
    seconds = time.perf_counter() - started
    return cube, seconds, len(cube.data.__dask_graph__())


@dataclass(frozen=True)
class IngestRun:
    """One ingest: wall time of :func:`~sentinel_cube.to_zarr`, its report, the workers' use."""

    seconds: float
    report: WriteReport
    uses: dict[str, WorkerUse]


def ingest(
    client: Any,
    open_args: Mapping[str, Any],
    store: str | Path,
    workers: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> IngestRun:
    """Open the cube and write it to an emptied ``store``, on ``workers`` only.

    The store is removed first (not timed); the time is that of
    ``to_zarr(cube, store, mode="w")``.
    """
    clear_store(store)
    watch = WorkerWatch(client)
    with restricted(client, workers):
        cube = open_cube(**open_args)  # in the block: its graph carries the restriction
        watch.start()
        started = time.perf_counter()
        report = to_zarr(cube, store, mode="w", progress=progress or False)
        seconds = time.perf_counter() - started
    return IngestRun(seconds, report, watch.stop())


@dataclass(frozen=True)
class OperationRun:
    """One operation computed from the store."""

    seconds: float
    pixels: int
    uses: dict[str, WorkerUse]


def operation(client: Any, name: str, store: str | Path, area: BaseGeometry) -> OperationRun:
    """Open the store and compute ``name`` (one of :data:`OPERATIONS`) of its cube.

    ``clip``: to ``area`` (EPSG:4326); ``stretch``: 2-98 % per band over time and space;
    ``aggregate``: monthly median. Every output chunk is computed on the workers and
    dropped there (nothing is gathered), so memory stays that of the workers. Pixels are
    those of the stored cube (the operation's input).
    """
    watch = WorkerWatch(client).start()
    started = time.perf_counter()
    cube = open_zarr(store)
    if name == "clip":
        result = clip(cube, area)
    elif name == "stretch":
        result = stretch(cube, (2, 98))
    elif name == "aggregate":
        result = aggregate(cube, freq="MS", how="median")
    else:
        raise ValueError(f"unknown operation {name!r}: one of {', '.join(OPERATIONS)}")
    da.store(da.asarray(result.data), _Discard(), lock=False)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return OperationRun(seconds, int(np.prod(cube.shape)), watch.stop())


class _Discard:
    """A store target that drops what it is given: computes every chunk, keeps none."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def default_clip_area(cube: xr.DataArray) -> BaseGeometry:
    """An octagon over the middle of the cube's extent (half its width and height), in
    EPSG:4326: a clip with chunks inside, outside and on the outline."""
    left, bottom, right, top = cube.rio.bounds()
    centre = shapely.Point((left + right) / 2, (bottom + top) / 2)
    octagon = centre.buffer(1.0, quad_segs=2)
    shape = affinity.scale(octagon, (right - left) / 4, (top - bottom) / 4, origin=centre)
    return reproject_geometry(shape, cube.rio.crs.to_string(), 4326)
