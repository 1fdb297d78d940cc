"""An immutable target grid (CRS, affine transform, shape) and its chunking.

Everything geometric about a cube is computed from a :class:`Grid`: pixel-centre
coordinates, bounds, sub-grids of chunks, snapping of bounds to a resolution
grid. No IO happens here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from affine import Affine
from pyproj import CRS

__all__ = ["Grid", "snap_bounds"]

# Bounds within this fraction of a pixel of a grid line count as on it (float noise).
_EPS = 1e-6


def snap_bounds(
    bounds: tuple[float, float, float, float],
    resolution: float,
    anchor: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, float, float, float]:
    """Grow ``bounds`` outwards to the nearest lines of a grid of ``resolution``.

    The grid has lines at ``anchor + k * resolution``; use a tile's upper-left
    corner as anchor so output pixels coincide with the tile's pixels.

    Examples
    --------
    >>> snap_bounds((300005.0, 5299003.0, 300095.0, 5299995.0), 10, anchor=(0, 40))
    (300000.0, 5299000.0, 300100.0, 5300000.0)

    Bounds already on the grid stay:

    >>> snap_bounds((300000, 5299000, 300100, 5299990), 10, anchor=(0, 40))
    (300000.0, 5299000.0, 300100.0, 5299990.0)
    """
    left, bottom, right, top = bounds
    ax, ay = anchor

    def down(value: float, origin: float) -> float:
        return float(origin + math.floor((value - origin) / resolution + _EPS) * resolution)

    def up(value: float, origin: float) -> float:
        return float(origin + math.ceil((value - origin) / resolution - _EPS) * resolution)

    return (down(left, ax), down(bottom, ay), up(right, ax), up(top, ay))


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, affine transform and ``(height, width)``.

    Parameters
    ----------
    crs : str
        CRS as ``"EPSG:32634"`` (or WKT); normalised to an ``EPSG:n`` string when it has one.
    transform : affine.Affine
        Maps (col, row) of pixel corners to map (x, y); north-up (no rotation).
    shape : tuple of int
        ``(height, width)`` in pixels.

    Examples
    --------
    >>> g = Grid.from_bounds((300000, 5290040, 300100, 5300040), "EPSG:32634", 10)
    >>> g.shape, g.resolution
    ((1000, 10), 10.0)
    """

    crs: str
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        crs = CRS.from_user_input(self.crs)
        epsg = crs.to_epsg()
        object.__setattr__(self, "crs", f"EPSG:{epsg}" if epsg else crs.to_wkt())
        height, width = (int(v) for v in self.shape)
        if height < 0 or width < 0:
            raise ValueError(f"grid shape must be non-negative, got {self.shape}")
        object.__setattr__(self, "shape", (height, width))
        t = self.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise ValueError(f"grid transform must be north-up with no rotation, got {t!r}")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_bounds(
        cls,
        bounds: tuple[float, float, float, float],
        crs: str | int,
        resolution: float,
        anchor: tuple[float, float] = (0.0, 0.0),
    ) -> Grid:
        """Smallest grid of ``resolution`` pixels covering ``bounds``, snapped to ``anchor``."""
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        left, bottom, right, top = snap_bounds(bounds, resolution, anchor)
        width = round((right - left) / resolution)
        height = round((top - bottom) / resolution)
        crs_text = f"EPSG:{crs}" if isinstance(crs, int) else crs
        return cls(crs_text, Affine(resolution, 0, left, 0, -resolution, top), (height, width))

    # -- properties -------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (square pixels; the x size if not square)."""
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)``."""
        t = self.transform
        return (t.c, t.f + self.height * t.e, t.c + self.width * t.a, t.f)

    @cached_property
    def epsg(self) -> int | None:
        return CRS.from_user_input(self.crs).to_epsg()

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)`` as float64 arrays (y decreasing)."""
        t = self.transform
        x = t.c + (np.arange(self.width) + 0.5) * t.a
        y = t.f + (np.arange(self.height) + 0.5) * t.e
        return x, y

    def __dask_tokenize__(self) -> tuple:
        return ("sentinel_cube.Grid", self.crs, tuple(self.transform)[:6], self.shape)

    # -- sub-grids --------------------------------------------------------------------
    def window(self, row_start: int, row_stop: int, col_start: int, col_stop: int) -> Grid:
        """The sub-grid of rows ``[row_start, row_stop)`` and columns ``[col_start, col_stop)``."""
        transform = self.transform @ Affine.translation(col_start, row_start)
        return Grid(self.crs, transform, (row_stop - row_start, col_stop - col_start))

    def chunk_sizes(
        self, chunks: tuple[int, int], align: tuple[float, float] | None = None
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Dask chunk sizes along ``(y, x)``: blocks of ``chunks`` pixels.

        With ``align`` (a map point, e.g. a tile's upper-left corner on this grid's
        lattice), block edges fall on ``align + k * chunk`` so that each block covers
        whole internal tiles of the source file; the first and last blocks may be
        smaller.
        """
        cy, cx = chunks
        if cy <= 0 or cx <= 0:
            raise ValueError(f"chunks must be positive, got {chunks}")
        col_offset = row_offset = 0
        if align is not None:
            col, row = ~self.transform @ align
            col_offset = round(col) % cx
            row_offset = round(row) % cy
        return _split(self.height, cy, row_offset), _split(self.width, cx, col_offset)

    def iter_chunks(
        self, chunk_sizes: tuple[tuple[int, ...], tuple[int, ...]]
    ) -> Iterator[tuple[tuple[int, int], Grid]]:
        """Yield ``((iy, ix), sub_grid)`` for every block of ``chunk_sizes``."""
        rows = np.concatenate([[0], np.cumsum(chunk_sizes[0])]).astype(int)
        cols = np.concatenate([[0], np.cumsum(chunk_sizes[1])]).astype(int)
        for iy in range(len(rows) - 1):
            for ix in range(len(cols) - 1):
                yield (iy, ix), self.window(rows[iy], rows[iy + 1], cols[ix], cols[ix + 1])


def _split(length: int, size: int, first_offset: int) -> tuple[int, ...]:
    """Split ``length`` into blocks of ``size`` whose first edge lies at ``first_offset``."""
    if length == 0:
        return (0,)
    sizes = []
    start = 0
    first = first_offset if 0 < first_offset < length else 0
    if first:
        sizes.append(first)
        start = first
    while start < length:
        step = min(size, length - start)
        sizes.append(step)
        start += step
    return tuple(sizes)
