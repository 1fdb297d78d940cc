"""Turn a :class:`~sentinel_cube._plan.CubePlan` into a dask array: one task per chunk.

A chunk that no product overlaps is a constant fill, not a read. Each read
task opens its files itself and holds nothing unpicklable, so the graph runs
unchanged on the threaded scheduler and on ``dask.distributed`` process workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import dask.array as da
import numpy as np
from dask.base import tokenize

from ._plan import Block, CubePlan
from ._radiometry import NODATA_DN, SATURATED_DN, harmonize_dn, to_reflectance
from ._read import read_source
from ._source import Source, read_rules
from .bands import CLASS_BANDS
from .grid import Grid

__all__ = ["CLASS_BANDS", "Reader", "ReadTask", "cube_array", "read_block"]


class Reader(Protocol):
    """Reads one source band onto a grid as uint16 DN with 0 for no data."""

    def __call__(
        self,
        source: Source,
        grid: Grid,
        resampling: str,
        *,
        env: Mapping[str, object] | None,
        reduced_levels: bool | None,
        on_error: str,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class ReadTask:
    """Arguments of one read task, bundled so dask does not look inside them."""

    block: Block
    units: str
    resampling: str
    env: tuple[tuple[str, Any], ...]
    on_error: str
    reduced_levels: bool | None
    reader: Reader


def read_block(task: ReadTask) -> np.ndarray:
    """Mosaic the block's sources in order (first valid pixel wins) as a (1, 1, y, x) array.

    Valid means neither no data (DN 0) nor, for reflectance bands, saturated (DN
    65535), in both units, so DN and reflectance cubes take each pixel from the same
    product; a pixel no product has valid is 0 in DN and NaN in reflectance. Class
    bands are read with nearest from full-resolution pixels (:func:`read_rules`).
    """
    block = task.block
    shape = block.grid.shape
    fill = np.nan if task.units == "reflectance" else 0
    dtype = np.float32 if task.units == "reflectance" else np.uint16
    resampling, reduced_levels = read_rules(block.band, task.resampling, task.reduced_levels)
    out: np.ndarray | None = None
    filled = np.zeros((0, 0), dtype=bool)
    saturated = False  # DN units: saturated pixels left in `out` that no product filled
    for source, offset, quantification in zip(
        block.sources, block.offsets, block.quantifications, strict=True
    ):
        dn = task.reader(
            source,
            block.grid,
            resampling,
            env=dict(task.env),
            reduced_levels=reduced_levels,
            on_error=task.on_error,
        )
        valid = dn != NODATA_DN
        if block.band in CLASS_BANDS:  # class codes: no radiometry
            values = dn.astype(dtype)
        elif task.units == "reflectance":
            values = to_reflectance(dn, offset, quantification)
            valid = ~np.isnan(values)
        else:
            values = harmonize_dn(dn, offset, quantification)
            is_saturated = dn == SATURATED_DN
            if is_saturated.any():
                valid &= ~is_saturated
                saturated = True
        if out is None:  # the first source: no copy through masks (most chunks have one)
            out, filled = values, valid
            if block.band in CLASS_BANDS and task.units == "reflectance":
                out[~valid] = np.nan  # class 0 (no data) becomes NaN like other bands
        else:
            take = valid & ~filled
            np.copyto(out, values, where=take)
            filled |= take
        if filled.all():
            break
    if out is None:  # no source: a fill
        out = np.full(shape, fill, dtype=dtype)
    elif saturated:  # saturated everywhere it was seen: no data, like NaN in reflectance
        out[~filled] = NODATA_DN
    return out[np.newaxis, np.newaxis]


def cube_array(
    plan: CubePlan,
    *,
    env: Mapping[str, object],
    on_error: str = "raise",
    reduced_levels: bool | None = None,
    reader: Reader | Callable[..., np.ndarray] = read_source,
) -> da.Array:
    """The lazy ``(time, band, y, x)`` dask array of a plan.

    ``reduced_levels`` is that of :func:`sentinel_cube.open_cube`; each read task
    resolves it per band with :func:`~sentinel_cube._read.read_rules`.
    """
    dtype = np.dtype("float32") if plan.units == "reflectance" else np.dtype("uint16")
    fill = np.nan if plan.units == "reflectance" else 0
    frozen_env = tuple(sorted((str(k), v) for k, v in env.items()))
    name = "sentinel-cube-" + tokenize(
        plan.grid,
        plan.chunks,
        plan.bands,
        plan.units,
        plan.resampling,
        [(s.time.value, [p.path for p in s.products]) for s in plan.steps],
        frozen_env,
        on_error,
        reduced_levels,
        getattr(reader, "__qualname__", repr(reader)),
    )
    rows, cols = plan.chunks
    graph: dict[tuple, Any] = {}
    for t in range(len(plan.steps)):
        for b in range(len(plan.bands)):
            for iy, height in enumerate(rows):
                for ix, width in enumerate(cols):
                    key = (name, t, b, iy, ix)
                    block = plan.blocks.get((t, b, iy, ix))
                    if block is None:
                        graph[key] = (np.full, (1, 1, height, width), fill, dtype)
                    else:
                        task = ReadTask(
                            block,
                            plan.units,
                            plan.resampling,
                            frozen_env,
                            on_error,
                            reduced_levels,
                            reader,
                        )
                        graph[key] = (read_block, task)
    chunks = ((1,) * len(plan.steps), (1,) * len(plan.bands), rows, cols)
    return da.Array(graph, name, chunks, dtype=dtype)
