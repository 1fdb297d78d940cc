"""Turn a :class:`~sentinel_cube._plan.CubePlan` into a dask array.

The graph holds one :class:`CubeReader` (the plan's sources, one entry per product
and band: its size grows with the products, not with the chunks) and one small task
per chunk that indexes it, as ``dask.array.from_array`` builds for any array-like.
A task finds the products that meet its chunk from their footprints
(:func:`~sentinel_cube._plan.chunk_members`); a chunk no product meets is a
constant fill, not a read. Nothing in the graph is unpicklable, so it runs
unchanged on the threaded scheduler and on ``dask.distributed`` process workers,
which receive the reader once each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import dask.array as da
import numpy as np
import shapely
from dask.base import tokenize
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ._plan import CubePlan, chunk_members
from ._radiometry import NODATA_DN, SATURATED_DN, harmonize_dn, to_reflectance
from ._read import pixels_inside, read_source
from ._source import Source, read_rules
from .bands import CLASS_BANDS
from .grid import Grid

__all__ = [
    "CLASS_BANDS",
    "CubeReader",
    "Reader",
    "clipped_array",
    "cube_array",
    "mosaic",
    "reread_array",
]


class Reader(Protocol):
    """Reads one source band onto a grid as uint16 DN with 0 for no data.

    ``inside`` (passed for clipped cubes, and for every product of a mosaic after the
    first: the pixels the products before it left without a valid value): the pixels
    that matter; the rest may be left 0 unread.
    """

    def __call__(
        self,
        source: Source,
        grid: Grid,
        resampling: str,
        *,
        env: Mapping[str, object] | None,
        reduced_levels: bool | None,
        on_error: str,
        inside: np.ndarray | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class _Step:
    """What the tasks of one time step read: per product, in mosaic order."""

    #: ``files[p][b]``: band ``b`` of product ``p``
    files: tuple[tuple[Source, ...], ...]
    offsets: tuple[tuple[float, ...], ...]
    quantifications: tuple[tuple[float, ...], ...]
    #: the products' footprints in the cube's CRS (the products themselves stay on
    #: the client: the graph carries only what reading needs)
    footprints: tuple[BaseGeometry, ...]


class CubeReader:
    """The cube as an array-like that reads on indexing: ``reader[t, b, rows, cols]``.

    ``dask.array.from_array`` makes one task per chunk of it; each task calls
    ``__getitem__`` with its chunk's slices. Steps and bands are read one after the
    other within the task; products are mosaicked by :func:`mosaic`.
    """

    ndim = 4

    def __init__(
        self,
        plan: CubePlan,
        *,
        env: Mapping[str, object],
        on_error: str = "raise",
        reduced_levels: bool | None = None,
        reader: Reader | Callable[..., np.ndarray] | None = None,
    ) -> None:
        self.grid = plan.grid
        self.bands = plan.bands
        self.units = plan.units
        self.resampling = plan.resampling
        self.aoi = plan.aoi
        self.all_touched = False
        self.shape = plan.shape
        self.dtype = np.dtype("float32") if plan.units == "reflectance" else np.dtype("uint16")
        self.env = tuple(sorted((str(k), v) for k, v in env.items()))
        self.on_error = on_error
        self.reduced_levels = reduced_levels
        #: None: :func:`~sentinel_cube._read.read_source`, looked up when reading
        self.reader = reader
        self.steps = tuple(
            _Step(
                tuple(tuple(_source(p, band) for band in plan.bands) for p in step.products),
                tuple(tuple(p.bands[b].offset for b in plan.bands) for p in step.products),
                tuple(tuple(p.bands[b].quantification for b in plan.bands) for p in step.products),
                step.footprints,
            )
            for step in plan.steps
        )

    def __getitem__(self, index: tuple[slice, ...]) -> np.ndarray:
        times, bands, rows, cols = (
            range(*s.indices(n)) for s, n in zip(index, self.shape, strict=True)
        )
        grid = self.grid.window(rows.start, rows.stop, cols.start, cols.stop)
        fill = np.nan if self.units == "reflectance" else 0
        shape = (len(times), len(bands), *grid.shape)
        inside = None
        if self.aoi is not None:
            chunk_box = box(*grid.bounds)
            if not self.aoi.intersects(chunk_box):
                return np.full(shape, fill, dtype=self.dtype)  # outside the AOI: no read
            if not self.aoi.contains(chunk_box):
                inside = pixels_inside(self.aoi, grid, self.all_touched)
        out = np.empty(shape, dtype=self.dtype)  # every band of every step is set below
        for i, t in enumerate(times):
            step = self.steps[t]
            members = chunk_members(step.footprints, grid.bounds)
            if not members:
                out[i] = fill
                continue
            for j, b in enumerate(bands):
                mosaic(
                    self.bands[b],
                    [step.files[m][b] for m in members],
                    [step.offsets[m][b] for m in members],
                    [step.quantifications[m][b] for m in members],
                    grid,
                    self,
                    inside,
                    out=out[i, j],
                )
        return out

    def clipped(self, aoi: BaseGeometry, all_touched: bool) -> CubeReader:
        """The same cube read only inside ``aoi`` (in the cube's CRS), no data outside."""
        copy = object.__new__(CubeReader)
        copy.__dict__.update(self.__dict__)
        copy.aoi = aoi
        copy.all_touched = all_touched
        return copy


def clipped_array(data: da.Array, aoi: BaseGeometry, all_touched: bool) -> da.Array | None:
    """``data`` read only inside ``aoi``, when it is a cube fresh from :func:`cube_array`.

    Then JP2 tiles outside the AOI are never decoded. Anything else (a computed
    cube, a cube from a store, a cube already sliced or transformed) gives None: the
    caller masks the pixels instead.
    """
    source = _fresh_reader(data)
    if source is None or source.aoi is not None:
        return None
    name = "sentinel-cube-clip-" + tokenize(data.name, shapely.to_wkb(aoi), all_touched)
    return _from_reader(source.clipped(aoi, all_touched), data.chunks, name)


def reread_array(data: da.Array, chunks: tuple[tuple[int, ...], ...]) -> da.Array | None:
    """``data`` in other ``chunks``, each block reading its own window, when ``data`` is a
    cube fresh from :func:`cube_array` (or :func:`clipped_array`); else None.

    A rechunk would read the cube's blocks and cut and join them in memory (a copy of
    every pixel, and for a block straddling the old chunk lines, reads of up to four
    blocks); reading the new windows directly costs no more decoding, since the JPEG
    2000 tiles neighbouring windows share are decoded once (:mod:`sentinel_cube._tiles`).
    """
    source = _fresh_reader(data)
    if source is None:
        return None
    name = "sentinel-cube-reread-" + tokenize(data.name, chunks)
    return _from_reader(source, chunks, name)


def _fresh_reader(data: da.Array) -> CubeReader | None:
    """The :class:`CubeReader` ``data`` reads from, if nothing was done to it since."""
    layer = data.dask.layers.get(f"original-{data.name}")
    if set(data.dask.layers) != {data.name, f"original-{data.name}"} or layer is None:
        return None
    source = dict(layer).get(f"original-{data.name}")
    if not isinstance(source, CubeReader) or source.shape != data.shape:
        return None
    return source


def _from_reader(cube: CubeReader, chunks: Any, name: str) -> da.Array:
    return da.from_array(
        cube,
        chunks=chunks,
        name=name,
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0, 0, 0, 0), dtype=cube.dtype),
    )


def _source(product: Any, band: str) -> Source:
    file = product.bands[band]
    return Source(file.path, product.crs, file.transform, file.shape, product.product_id)


def mosaic(
    band: str,
    sources: Sequence[Source],
    offsets: Sequence[float],
    quantifications: Sequence[float],
    grid: Grid,
    cube: CubeReader,
    inside: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Mosaic one band's sources in order (first valid pixel wins) onto ``grid``.

    Valid means neither no data (DN 0) nor, for reflectance bands, saturated (DN
    65535), in both units, so DN and reflectance cubes take each pixel from the same
    product; a pixel no product has valid is 0 in DN and NaN in reflectance. Class
    bands are read with nearest from full-resolution pixels (:func:`read_rules`).
    With ``inside`` (a mask of the pixels inside the cube's AOI), the reader decodes
    only the JPEG 2000 tiles that hold such pixels, and pixels outside are no data.
    Each product after the first is read only where the products before it left no
    valid pixel (its ``inside``), so tiles it shares with them are decoded only where
    they are needed. ``out``: the array of ``grid``'s shape to write into (returned).
    """
    units = cube.units
    fill = np.nan if units == "reflectance" else 0
    dtype = np.float32 if units == "reflectance" else np.uint16
    if out is None:
        out = np.empty(grid.shape, dtype=dtype)
    resampling, reduced_levels = read_rules(band, cube.resampling, cube.reduced_levels)
    filled: np.ndarray | None = None  # pixels given a valid value so far
    saturated = False  # DN units: saturated pixels left in `out` that no product filled
    env = dict(cube.env)
    reader = cube.reader or read_source
    needed = inside  # the pixels the next product must read (None: all)
    left = 0  # how many (counted once per product after the first)
    if not sources:
        out[...] = fill
        return out
    last = len(sources) - 1
    for k, (source, offset, quantification) in enumerate(
        zip(sources, offsets, quantifications, strict=True)
    ):
        options: dict[str, Any] = {} if needed is None else {"inside": needed}
        dn = reader(
            source,
            grid,
            resampling,
            env=env,
            reduced_levels=reduced_levels,
            on_error=cube.on_error,
            **options,
        )
        if units == "reflectance":
            # NaN marks exactly the pixels no product gave a valid value yet (a valid
            # reflectance is never NaN): no mask of filled pixels is kept. The first
            # product is converted straight into `out` (most chunks have one).
            if k == 0:
                _reflectance(band, dn, offset, quantification, out)
            elif needed is not None and left < SPARSE * needed.size:
                # the later products of a chunk often fill a sliver of it: convert only
                # there (below ~half the chunk, cheaper than converting all of it)
                out[needed] = _reflectance(band, dn[needed], offset, quantification)
            else:  # only where no product before gave a valid value
                values = _reflectance(band, dn, offset, quantification)
                np.copyto(out, values, where=needed)
        else:
            valid = dn != NODATA_DN
            if band in CLASS_BANDS:  # class codes: no radiometry
                values = dn.astype(dtype)
            else:
                values = harmonize_dn(dn, offset, quantification)
                is_saturated = dn == SATURATED_DN
                if is_saturated.any():
                    valid &= ~is_saturated
                    saturated = True
            if filled is None:
                out[...] = values
                filled = valid
            else:
                take = valid & ~filled
                np.copyto(out, values, where=take)
                filled |= take
        if k == last:
            break
        # the next products matter only where no product gave a valid pixel yet: their
        # tiles under pixels already filled are never decoded (a pixel they would give
        # there would be discarded anyway)
        missing = np.isnan(out) if filled is None else ~filled
        needed = missing if inside is None else inside & missing
        left = int(np.count_nonzero(needed))
        if not left:
            break
    if saturated and filled is not None:  # saturated wherever seen: no data, like NaN
        out[~filled] = NODATA_DN
    if inside is not None:
        out[~inside] = fill
    return out


#: Below this fraction of a chunk's pixels left to fill, a later product is converted
#: to reflectance at those pixels only (measured crossover: ~0.5 of 1024 x 1024).
SPARSE = 0.4


def _reflectance(
    band: str, dn: np.ndarray, offset: float, quantification: float, out: np.ndarray | None = None
) -> np.ndarray:
    """``dn`` of ``band`` as float32 reflectance, NaN where not valid (into ``out``)."""
    if band not in CLASS_BANDS:
        return to_reflectance(dn, offset, quantification, out=out)
    # class codes: no radiometry; class 0 (no data) is NaN
    values = np.empty(dn.shape, np.float32) if out is None else out
    values[...] = dn
    values[dn == NODATA_DN] = np.nan
    return values


def cube_array(
    plan: CubePlan,
    *,
    env: Mapping[str, object],
    on_error: str = "raise",
    reduced_levels: bool | None = None,
    reader: Reader | Callable[..., np.ndarray] | None = None,
) -> da.Array:
    """The lazy ``(time, band, y, x)`` dask array of a plan.

    ``reduced_levels`` is that of :func:`sentinel_cube.open_cube`; each read task
    resolves it per band with :func:`~sentinel_cube._read.read_rules`.
    """
    cube = CubeReader(
        plan, env=env, on_error=on_error, reduced_levels=reduced_levels, reader=reader
    )
    name = "sentinel-cube-" + tokenize(
        plan.grid,
        plan.dask_chunks,
        plan.bands,
        plan.units,
        plan.resampling,
        [(s.time.value, [p.path for p in s.products]) for s in plan.steps],
        cube.env,
        on_error,
        reduced_levels,
        None if plan.aoi is None else shapely.to_wkb(plan.aoi),
        getattr(reader, "__qualname__", repr(reader)),
    )
    return _from_reader(cube, plan.dask_chunks, name)
