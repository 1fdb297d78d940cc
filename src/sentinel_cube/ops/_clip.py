"""Clip a cube to an AOI chunk by chunk: no full-size mask is ever built."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import shapely
import xarray as xr
from affine import Affine
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from rasterio.features import geometry_mask
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from .._graph import clipped_array
from ..aoi import aoi_to_crs
from ..exceptions import SentinelCubeError

__all__ = ["aoi_in_crs", "clip"]


def aoi_in_crs(aoi: Any, crs: Any) -> BaseGeometry:
    """The AOI (anything :func:`sentinel_cube.read_aoi` takes) in the cube's CRS.

    :func:`sentinel_cube.aoi.aoi_to_crs`: densified exactly as planning does it.
    """
    return aoi_to_crs(aoi, crs)


def clip(
    cube: xr.DataArray,
    aoi: Any,
    crop: bool = True,
    all_touched: bool = False,
    drop_empty_time: bool = False,
) -> xr.DataArray:
    """Keep the pixels of ``cube`` inside ``aoi``; no data elsewhere.

    Crops to the AOI's extent (the rows and columns holding at least one pixel
    inside it), then masks chunk by chunk with each chunk's own transform: chunks
    wholly inside the AOI pass through untouched, chunks wholly outside become
    fills that read nothing, and only chunks on the outline are rasterised.
    Memory is bounded by one chunk, whatever the cube's or the AOI's extent.

    A cube straight from :func:`sentinel_cube.open_cube` (not yet computed, sliced
    or transformed) is instead read only inside the AOI: within a chunk on the
    outline, JPEG 2000 tiles that hold no pixel inside it are never decoded (as
    ``open_cube(..., clip=True)`` does). Clip first, then select or compute.

    Parameters
    ----------
    cube
        A cube with ``y``/``x`` dims and a CRS (``cube.rio.crs``).
    aoi
        Anything :func:`sentinel_cube.read_aoi` takes, in any CRS (files and
        GeoDataFrames are reprojected); holes and multipolygons are honoured.
    crop
        Crop to the AOI's extent (as ``rio.clip(drop=True)``).
    all_touched
        Keep every pixel the AOI touches, not only those whose centre it holds.
    drop_empty_time
        Drop time steps with no valid pixel left (computes that reduction now).

    Returns
    -------
    xarray.DataArray
        Lazy; no data is NaN for float cubes and 0 for integer (DN) cubes.
        Equal pixel for pixel to ``cube.rio.clip([aoi], drop=crop,
        all_touched=all_touched)`` of the computed cube.

    Raises
    ------
    SentinelCubeError
        When the AOI misses the cube.

    Examples
    --------
    With ``cube`` from :func:`sentinel_cube.open_cube` (12 x 12 km in UTM zone 34):

    >>> clipped = sc.clip(cube, (19.0, 47.45, 19.1, 47.55))  # a lon/lat box
    >>> cube.sizes["x"], clipped.sizes["x"]
    (24, 16)
    >>> clipped = sc.clip(cube, "budapest.geojson")           # doctest: +SKIP
    """
    if cube.rio.crs is None:
        raise SentinelCubeError("the cube has no CRS: build it with open_cube or set .rio.crs")
    geometry = aoi_in_crs(aoi, cube.rio.crs)
    transform = cube.rio.transform()
    height, width = cube.sizes["y"], cube.sizes["x"]
    extent = _mask_extent(geometry, transform, (height, width), all_touched)
    if extent is None:
        raise SentinelCubeError(
            f"the AOI (bounds {tuple(round(v, 1) for v in geometry.bounds)} in {cube.rio.crs}) "
            f"misses the cube (bounds {tuple(round(v, 1) for v in cube.rio.bounds())})"
        )
    # a cube fresh from open_cube reads only the JP2 tiles holding AOI pixels
    read_inside = (
        clipped_array(cube.data, geometry, all_touched)
        if isinstance(cube.data, da.Array) and cube.dims == ("time", "band", "y", "x")
        else None
    )
    if read_inside is not None:
        cube = cube.copy(data=read_inside)
    if crop:
        (r0, r1), (c0, c1) = extent
        cube = cube.isel(y=slice(r0, r1), x=slice(c0, c1))
        transform = cube.rio.transform()
    if read_inside is not None:
        result = cube
    else:
        data = cube.data if isinstance(cube.data, da.Array) else da.from_array(cube.data)
        y_axis, x_axis = cube.dims.index("y"), cube.dims.index("x")
        fill = np.nan if cube.dtype.kind == "f" else 0
        masked = _masked_array(data, y_axis, x_axis, geometry, transform, all_touched, fill)
        result = cube.copy(data=masked)
    if drop_empty_time and "time" in result.dims:
        valid = result.notnull() if cube.dtype.kind == "f" else result != 0
        keep = valid.any([d for d in result.dims if d != "time"]).compute()
        result = result.isel(time=np.flatnonzero(keep.values))
    return result


def _mask_extent(
    geometry: BaseGeometry, transform: Affine, shape: tuple[int, int], all_touched: bool
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Rows and columns holding at least one pixel inside the AOI, found along the edges.

    Starts from the AOI's bounding box on the grid and moves each edge inwards
    while its row (column) of pixels holds no pixel of the AOI, rasterising
    only thin strips: cost grows with the AOI's outline, not its area.
    """
    height, width = shape
    inverse = ~transform
    left, bottom, right, top = geometry.bounds
    cols = [(inverse @ (x, y))[0] for x in (left, right) for y in (bottom, top)]
    rows = [(inverse @ (x, y))[1] for x in (left, right) for y in (bottom, top)]
    c0, c1 = max(0, int(np.floor(min(cols))) - 1), min(width, int(np.ceil(max(cols))) + 1)
    r0, r1 = max(0, int(np.floor(min(rows))) - 1), min(height, int(np.ceil(max(rows))) + 1)
    if c0 >= c1 or r0 >= r1:
        return None

    def inside(rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        sub = transform @ Affine.translation(cols[0], rows[0])
        return geometry_mask([geometry], out_shape=(rows[1] - rows[0], cols[1] - cols[0]),
                             transform=sub, all_touched=all_touched, invert=True)  # fmt: skip

    strip = 16
    while r0 < r1:  # top edge down
        hits = np.flatnonzero(inside((r0, min(r1, r0 + strip)), (c0, c1)).any(axis=1))
        if hits.size:
            r0 += int(hits[0])
            break
        r0 = min(r1, r0 + strip)
    if r0 >= r1:
        return None
    while r1 > r0:  # bottom edge up
        hits = np.flatnonzero(inside((max(r0, r1 - strip), r1), (c0, c1)).any(axis=1))
        if hits.size:
            r1 = max(r0, r1 - strip) + int(hits[-1]) + 1
            break
        r1 = max(r0, r1 - strip)
    while c0 < c1:  # left edge right
        hits = np.flatnonzero(inside((r0, r1), (c0, min(c1, c0 + strip))).any(axis=0))
        if hits.size:
            c0 += int(hits[0])
            break
        c0 = min(c1, c0 + strip)
    while c1 > c0:  # right edge left
        hits = np.flatnonzero(inside((r0, r1), (max(c0, c1 - strip), c1)).any(axis=0))
        if hits.size:
            c1 = max(c0, c1 - strip) + int(hits[-1]) + 1
            break
        c1 = max(c0, c1 - strip)
    return (r0, r1), (c0, c1)


def _chunk_mask(geometry: BaseGeometry, transform: Affine, shape: tuple[int, int],
                all_touched: bool) -> np.ndarray:  # fmt: skip
    return geometry_mask([geometry], out_shape=shape, transform=transform,
                         all_touched=all_touched, invert=True)  # fmt: skip


def _apply(block: np.ndarray, mask: np.ndarray, fill: float, y_axis: int, x_axis: int):
    shape = [1] * block.ndim
    shape[y_axis], shape[x_axis] = mask.shape
    return np.where(mask.reshape(shape), block, np.asarray(fill, dtype=block.dtype))


def _masked_array(data: da.Array, y_axis: int, x_axis: int, geometry: BaseGeometry,
                  transform: Affine, all_touched: bool, fill: float) -> da.Array:  # fmt: skip
    """A dask graph where each block is untouched, a fill, or masked by its own mask."""
    name = "clip-" + tokenize(data.name, geometry.wkb, tuple(transform)[:6], all_touched)
    mask_name = "clip-mask-" + name[5:]
    y_edges = np.concatenate([[0], np.cumsum(data.chunks[y_axis])])
    x_edges = np.concatenate([[0], np.cumsum(data.chunks[x_axis])])
    shapely.prepare(geometry)  # fast repeated contains/intersects
    kinds: dict[tuple[int, int], str] = {}
    layer: dict[Any, Any] = {}
    for iy in range(len(y_edges) - 1):
        for ix in range(len(x_edges) - 1):
            sub = transform @ Affine.translation(x_edges[ix], y_edges[iy])
            shape = (int(y_edges[iy + 1] - y_edges[iy]), int(x_edges[ix + 1] - x_edges[ix]))
            left, top = sub.c, sub.f
            cell = box(left, top + shape[0] * sub.e, left + shape[1] * sub.a, top)
            if geometry.contains(cell):
                kinds[(iy, ix)] = "inside"
            elif not geometry.intersects(cell):
                kinds[(iy, ix)] = "outside"
            else:
                kinds[(iy, ix)] = "partial"
                layer[(mask_name, iy, ix)] = (_chunk_mask, geometry, sub, shape, all_touched)
    for key in _keys(data):
        index = key[1:]
        iy, ix = index[y_axis], index[x_axis]
        kind = kinds[(iy, ix)]
        out_key = (name, *index)
        if kind == "inside":
            layer[out_key] = key  # alias: the block passes through
        elif kind == "outside":
            block_shape = tuple(int(data.chunks[a][i]) for a, i in enumerate(index))
            layer[out_key] = (np.full, block_shape, fill, data.dtype)
        else:
            layer[out_key] = (_apply, key, (mask_name, iy, ix), fill, y_axis, x_axis)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[data])  # type: ignore[list-item]
    return da.Array(graph, name, data.chunks, dtype=data.dtype, meta=data._meta)


def _keys(data: da.Array):
    """Every block key of a dask array, flat."""
    for index in np.ndindex(*data.numblocks):
        yield (data.name, *index)
