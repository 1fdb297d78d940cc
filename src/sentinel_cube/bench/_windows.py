"""The JPEG 2000 windows a cube's chunks read: the work of the decode limit (pure).

For every output chunk of a cube, every time step and every band, the band files of
the step's products whose footprint meets the chunk, each with the window of its own
pixels that covers the chunk (rounded outwards to whole pixels, clipped to the file).
Decoding exactly those windows, and nothing else, is the least any ingest of the cube
has to decode: the *decode limit* of ``sentinel-cube bench``.

Computed from public metadata only (the products' band grids and footprints, the
cube's grid and chunks), not from the planner's internals. Two simplifications, both
making the limit a little more work than the ingest may do: where products of one time
step overlap, every one is decoded (the ingest's mosaic stops once a chunk is full), and
a chunk's window is read at full resolution even when the cube is coarser than the band
(the ingest may then decode a JPEG 2000 reduced level). Chunks outside the AOI polygon
(when there is one) are left out: they need not be decoded at all.

This module is pure: no rasterio, dask or xarray.

Examples
--------
>>> from affine import Affine
>>> grid = ChunkGrid("EPSG:32634", Affine(20, 0, 1000, 0, -20, 2000), (50, 80),
...                  ((25, 25), (40, 40)))
>>> [box.bounds for box in grid.boxes()][:2]
[(1000.0, 1500.0, 1800.0, 2000.0), (1800.0, 1500.0, 2600.0, 2000.0)]
>>> window_of((1000.0, 1500.0, 1800.0, 2000.0), Affine(10, 0, 0, 0, -10, 2000), (300, 300))
FileWindow(path='', col_off=100, row_off=0, width=80, height=50)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ..aoi import reproject_geometry

if TYPE_CHECKING:
    from ..safe import Product

__all__ = [
    "BandGrid",
    "ChunkBox",
    "ChunkGrid",
    "DecodeTask",
    "FileWindow",
    "decode_tasks",
    "window_of",
]

#: Pixel fractions below this are rounding noise, not a pixel more to read.
EPS = 1e-6
#: A product's data reaching less than this share of an output pixel into a chunk does not
#: make the chunk read it: reprojected outlines move by up to ~1 cm (see
#: :func:`sentinel_cube.aoi.reproject_geometry`), so an edge shared with a chunk can
#: seem to cross it by that much.
SLIVER = 0.01


@dataclass(frozen=True)
class FileWindow:
    """A window of one band file: ``width`` x ``height`` pixels from ``(col_off, row_off)``."""

    path: str
    col_off: int
    row_off: int
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """Pixels of the window."""
        return self.width * self.height


@dataclass(frozen=True)
class ChunkBox:
    """One output chunk: its index, its pixel offsets in the cube and its map bounds."""

    iy: int
    ix: int
    row_off: int
    col_off: int
    height: int
    width: int
    bounds: tuple[float, float, float, float]

    @property
    def pixels(self) -> int:
        """Output pixels of the chunk."""
        return self.height * self.width


@dataclass(frozen=True)
class ChunkGrid:
    """A cube's grid and chunking: CRS, transform, ``(height, width)``, ``(y, x)`` chunks.

    Build it from a cube with :meth:`of`.
    """

    crs: str
    transform: Affine
    shape: tuple[int, int]
    chunks: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def of(cls, cube: Any) -> ChunkGrid:
        """The grid of a ``(time, band, y, x)`` cube (uses ``cube.rio`` and ``cube.chunks``)."""
        chunks = cube.chunks
        if chunks is None:  # a computed cube: one chunk
            chunks = tuple((n,) for n in cube.shape)
        return cls(
            cube.rio.crs.to_string(),
            cube.rio.transform(),
            (cube.sizes["y"], cube.sizes["x"]),
            (tuple(chunks[-2]), tuple(chunks[-1])),
        )

    def boxes(self) -> Iterator[ChunkBox]:
        """The chunks, row by row, with their bounds ``(left, bottom, right, top)``."""
        t = self.transform
        row = 0
        for iy, height in enumerate(self.chunks[0]):
            col = 0
            for ix, width in enumerate(self.chunks[1]):
                xs = (t.c + t.a * col, t.c + t.a * (col + width))
                ys = (t.f + t.e * row, t.f + t.e * (row + height))
                bounds = (min(xs), min(ys), max(xs), max(ys))
                yield ChunkBox(iy, ix, row, col, height, width, bounds)
                col += width
            row += height


@dataclass(frozen=True)
class BandGrid:
    """What the windows need of one band file: its path, CRS, grid and product footprint.

    ``footprint`` is the product's data footprint in EPSG:4326 (``Product.footprint``).
    """

    path: str
    crs: str
    transform: Affine
    shape: tuple[int, int]
    footprint: BaseGeometry

    @classmethod
    def of(cls, product: Product, band: str) -> BandGrid:
        """The grid of ``band`` of a :class:`~sentinel_cube.safe.Product`."""
        file = product.band(band)
        rows, cols = file.shape
        return cls(file.path, product.crs, file.transform, (rows, cols), product.footprint)


@dataclass(frozen=True)
class DecodeTask:
    """The windows one output chunk of one time step and band reads."""

    step: int
    band: str
    chunk: ChunkBox
    reads: tuple[FileWindow, ...]

    @property
    def source_pixels(self) -> int:
        """Pixels decoded from the band files."""
        return sum(w.pixels for w in self.reads)


def window_of(
    bounds: tuple[float, float, float, float],
    transform: Affine,
    shape: tuple[int, int],
    path: str = "",
) -> FileWindow | None:
    """The window of a raster (``transform``, ``(rows, cols)``) covering ``bounds``.

    Rounded outwards to whole pixels (a pixel touched by less than :data:`EPS` of its
    side is not counted) and clipped to the raster; None when nothing of it is left.
    ``bounds`` are ``(left, bottom, right, top)`` in the raster's CRS.
    """
    left, bottom, right, top = bounds
    inverse = ~transform
    corners = [inverse @ (x, y) for x in (left, right) for y in (bottom, top)]
    cols = [c for c, _ in corners]
    rows = [r for _, r in corners]
    col0 = max(0, math.floor(min(cols) + EPS))
    row0 = max(0, math.floor(min(rows) + EPS))
    col1 = min(shape[1], math.ceil(max(cols) - EPS))
    row1 = min(shape[0], math.ceil(max(rows) - EPS))
    if col1 <= col0 or row1 <= row0:
        return None
    return FileWindow(path, col0, row0, col1 - col0, row1 - row0)


def decode_tasks(
    grid: ChunkGrid,
    steps: Sequence[Sequence[Mapping[str, BandGrid]]],
    bands: Sequence[str],
    aoi: BaseGeometry | None = None,
) -> list[DecodeTask]:
    """The windows every chunk of every time step and band reads.

    Parameters
    ----------
    grid
        The cube's grid and chunks.
    steps
        Per time step, its products in mosaic order, each as ``{band: BandGrid}``.
    bands
        The cube's bands.
    aoi
        The AOI polygon in EPSG:4326, or None: chunks it does not meet are left out.

    Returns
    -------
    list of DecodeTask
        Only chunks that read at least one window, ordered by step, band, then chunk.
    """
    boxes = list(grid.boxes())
    if aoi is not None:
        area = reproject_geometry(aoi, 4326, grid.crs)
        boxes = [b for b in boxes if area.intersects(box(*b.bounds))]
    tree = shapely.STRtree([box(*b.bounds) for b in boxes])
    meets: dict[str, list[int]] = {}  # band file -> the chunks its data meets
    tasks: list[DecodeTask] = []
    for step, products in enumerate(steps):
        for band in bands:
            reads: dict[int, list[FileWindow]] = {}
            for product in products:
                source = product[band]
                if source.path not in meets:
                    area = _area(source, grid.crs).buffer(-SLIVER * abs(grid.transform.a))
                    meets[source.path] = _meeting(tree, area)
                for index in meets[source.path]:
                    window = window_of(
                        _bounds_in(boxes[index].bounds, grid.crs, source.crs),
                        source.transform,
                        source.shape,
                        source.path,
                    )
                    if window is not None:
                        reads.setdefault(index, []).append(window)
            tasks.extend(DecodeTask(step, band, boxes[i], tuple(reads[i])) for i in sorted(reads))
    return tasks


def _meeting(tree: shapely.STRtree, area: BaseGeometry) -> list[int]:
    """The chunks ``area`` shares pixels with: intersecting it, not only touching it."""
    touching = set(tree.query(area, predicate="touches").tolist())
    return sorted(i for i in tree.query(area, predicate="intersects").tolist() if i not in touching)


def _area(source: BandGrid, crs: str) -> BaseGeometry:
    """Where the band file holds data, in ``crs``: its footprint within its own extent."""
    left, bottom, right, top = _extent(source)
    extent = reproject_geometry(box(left, bottom, right, top), source.crs, crs)
    footprint = reproject_geometry(source.footprint, 4326, crs)
    return footprint.intersection(extent)


def _extent(source: BandGrid) -> tuple[float, float, float, float]:
    rows, cols = source.shape
    t = source.transform
    xs = (t.c, t.c + t.a * cols)
    ys = (t.f, t.f + t.e * rows)
    return (min(xs), min(ys), max(xs), max(ys))


def _bounds_in(
    bounds: tuple[float, float, float, float], src: str, dst: str
) -> tuple[float, float, float, float]:
    """``bounds`` in ``src`` as the box of their densified outline in ``dst``."""
    transformer = _transformer(src, dst)
    if transformer is None:
        return bounds
    return transformer.transform_bounds(*bounds, densify_pts=21)


@functools.lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer | None:
    """The transformation from ``src`` to ``dst``; None when they are the same CRS."""
    if CRS.from_user_input(src) == CRS.from_user_input(dst):
        return None
    return Transformer.from_crs(src, dst, always_xy=True)
