"""Where the pixels of a grid fall in a band file of another CRS (or another lattice).

Nearest-neighbour reprojection only needs, for each output pixel centre, the source
pixel that holds it. GDAL's warper either transforms every pixel exactly (slow: 7x the
cost of the approximate transformer, more than decoding the JPEG 2000 itself) or
interpolates the transformation across each *destination window*, so that a pixel's
value depends on how the cube is chunked. Here the exact transformation (pyproj) is
evaluated on a lattice of nodes fixed in map coordinates, every ``LATTICE`` metres, and
interpolated bilinearly in between: a pixel's source position depends only on where it
is, never on the chunk it is read in, and lies within ~1e-6 source pixel of the exact
one, as close as GDAL's warper with the tolerance the reader used (tested against pyproj
at every pixel). Grids of pixels coarser than half the lattice spacing are transformed
exactly at every pixel centre. No maintained library offers a
chunking-independent approximate transformer, hence this module.
"""

from __future__ import annotations

import functools
import math
import threading

import cachetools
import numpy as np
from affine import Affine
from pyproj import Transformer

from .grid import Grid

__all__ = ["LATTICE", "forget_nodes", "source_pixels"]

#: Metres between lattice nodes for 10 m source pixels (the transformation is exact at
#: the nodes): UTM to UTM across a zone boundary, interpolation over 80 m errs by < 1e-6
#: of a 10 m pixel. The error grows with the square of the spacing, so for source pixels
#: of ``s`` metres the spacing is ``LATTICE * sqrt(s / 10)`` for the same error in pixels.
LATTICE = 80.0


#: Lattice nodes are transformed in square blocks of ``NODE_BLOCK`` x ``NODE_BLOCK``
#: nodes, fixed in map coordinates, and kept (``NODE_CACHE_BYTES`` per process): the
#: same chunk of every date, and the parts of neighbouring chunks, reuse them. pyproj
#: costs ~0.2 us per node, about half the rest of a chunk's gather plan.
NODE_BLOCK = 64
NODE_CACHE_BYTES = 64 * 2**20
# cachetools' byte-bounded LRU; it is not thread-safe by itself, hence the lock
_NODES: cachetools.LRUCache[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = (
    cachetools.LRUCache(NODE_CACHE_BYTES, getsizeof=lambda xy: xy[0].nbytes + xy[1].nbytes)
)
_NODES_LOCK = threading.Lock()


def forget_nodes() -> None:
    """Forget the lattice nodes kept by this process."""
    with _NODES_LOCK:
        _NODES.clear()


@functools.lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def source_pixels(grid: Grid, crs: str, transform: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Fractional ``(rows, cols)`` in a source raster of every pixel centre of ``grid``.

    ``crs`` and ``transform`` are the source's; the nearest source pixel of output
    pixel ``(i, j)`` is ``(floor(rows[i, j]), floor(cols[i, j]))``.

    Examples
    --------
    >>> grid = Grid("EPSG:32634", Affine(10, 0, 300000, 0, -10, 5300000), (2, 3))
    >>> rows, cols = source_pixels(grid, "EPSG:32634", Affine(20, 0, 300000, 0, -20, 5300000))
    >>> rows.round(9).tolist(), cols.round(9).tolist()
    ([[0.25, 0.25, 0.25], [0.75, 0.75, 0.75]], [[0.25, 0.75, 1.25], [0.25, 0.75, 1.25]])
    """
    t = grid.transform
    xs = t.c + (np.arange(grid.width) + 0.5) * t.a
    ys = t.f + (np.arange(grid.height) + 0.5) * t.e
    inverse = ~transform
    step = LATTICE * math.sqrt(abs(transform.a) / 10.0)
    if step < 2 * grid.resolution:  # pixels as coarse as the lattice: exact at every centre
        mesh_x, mesh_y = np.meshgrid(xs, ys)
        if grid.crs != crs:
            mesh_x, mesh_y = _transformer(grid.crs, crs).transform(mesh_x, mesh_y)
        rows = inverse.d * mesh_x + inverse.e * mesh_y + inverse.f
        cols = inverse.a * mesh_x + inverse.b * mesh_y + inverse.c
        return rows, cols
    # nodes at multiples of `step` in map coordinates: the same for every chunk
    kx0, ky0 = math.floor(xs.min() / step), math.floor(ys.min() / step)
    nx = math.floor(xs.max() / step) - kx0 + 2
    ny = math.floor(ys.max() / step) - ky0 + 2
    mesh_x, mesh_y = _lattice(grid.crs, crs, step, kx0, ky0, nx, ny)
    node_cols = inverse.a * mesh_x + inverse.b * mesh_y + inverse.c
    node_rows = inverse.d * mesh_x + inverse.e * mesh_y + inverse.f
    fx, fy = xs / step, ys / step
    ix, iy = np.floor(fx).astype(np.intp) - kx0, np.floor(fy).astype(np.intp) - ky0
    wx, wy = fx - np.floor(fx), (fy - np.floor(fy))[:, np.newaxis]

    def interpolate(nodes: np.ndarray) -> np.ndarray:
        # along x on the (few) node rows, then along y on the full grid: two gathers, one
        # multiply and one add over the grid's pixels, all in place
        along_x = nodes[:, ix] + (nodes[:, ix + 1] - nodes[:, ix]) * wx  # (node rows, width)
        result = np.take(along_x, iy, axis=0)
        slope = np.take(np.diff(along_x, axis=0), iy, axis=0)
        slope *= wy
        result += slope
        return result

    return interpolate(node_rows), interpolate(node_cols)


def _lattice(
    grid_crs: str, crs: str, step: float, kx0: int, ky0: int, nx: int, ny: int
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``(kx0 + i) * step, (ky0 + j) * step`` (``i < nx``, ``j < ny``) of the grid's
    CRS, in ``crs``: ``(x, y)`` arrays of shape ``(ny, nx)``, assembled from cached blocks."""
    bx0, by0 = kx0 // NODE_BLOCK, ky0 // NODE_BLOCK
    bx1, by1 = (kx0 + nx - 1) // NODE_BLOCK, (ky0 + ny - 1) // NODE_BLOCK
    rows = [
        [_node_block(grid_crs, crs, step, bx, by) for bx in range(bx0, bx1 + 1)]
        for by in range(by0, by1 + 1)
    ]
    x = np.block([[b[0] for b in row] for row in rows])
    y = np.block([[b[1] for b in row] for row in rows])
    r, c = ky0 - by0 * NODE_BLOCK, kx0 - bx0 * NODE_BLOCK
    return x[r : r + ny, c : c + nx], y[r : r + ny, c : c + nx]


def _node_block(
    grid_crs: str, crs: str, step: float, bx: int, by: int
) -> tuple[np.ndarray, np.ndarray]:
    """One block of lattice nodes in ``crs``, kept in :data:`_NODES`."""
    key = (grid_crs, crs, step, bx, by)
    with _NODES_LOCK:
        found = _NODES.get(key)
    if found is not None:
        return found
    k = np.arange(NODE_BLOCK)
    x, y = np.meshgrid((bx * NODE_BLOCK + k) * step, (by * NODE_BLOCK + k) * step)
    if grid_crs != crs:
        x, y = _transformer(grid_crs, crs).transform(x, y)
    x.flags.writeable = y.flags.writeable = False
    with _NODES_LOCK:
        _NODES[key] = (x, y)
    return x, y
