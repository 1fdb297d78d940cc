"""The band rasters of a synthetic product: tiled, georeferenced JPEG 2000 files.

Pixels come from the scene model (:mod:`._scene`), computed in strips so memory
stays bounded at full size; the image-content statistics of the SCL raster are
gathered on the way for the metadata.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...mgrs import TILE_EXTENT_M
from ._metadata import footprint_text
from ._percentages import ContentStats
from ._scene import _WATER_KIND, _conditions, _Scene
from ._spec import ProductSpec

__all__: list[str] = []  # helpers of make_product only

_ESA_BLOCKS = {10: 1024, 20: 640, 60: 192}  # tile sizes of real full-size band JP2s

# --------------------------------------------------------------------------------------
# Rasters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    resolution: int  # nominal: 10, 20, 60
    pixel: int  # metres
    size: int  # pixels per side
    ulx: float
    uly: float

    @classmethod
    def of(cls, spec: ProductSpec, resolution: int, scale: int) -> _Grid:
        pixel = resolution * scale
        ulx, uly = spec.origin
        return cls(resolution, pixel, TILE_EXTENT_M // pixel, ulx, uly)

    @property
    def transform(self) -> Any:
        from affine import Affine

        return Affine(self.pixel, 0.0, self.ulx, 0.0, -self.pixel, self.uly)

    def xs(self) -> np.ndarray:
        return self.ulx + self.pixel * (np.arange(self.size) + 0.5)

    def ys(self) -> np.ndarray:
        return self.uly - self.pixel * (np.arange(self.size) + 0.5)


def _jp2_options(size: int, block: int) -> dict[str, Any]:
    """JP2OpenJPEG creation options of ESA's band files (lossless, tiled, 5 levels)."""
    # GDAL clamps a block larger than the image and refuses blocks under 32 px; it
    # accepts RESOLUTIONS=r only if the (clamped) block has at least 2**r pixels.
    block = max(32, block)
    levels = max(1, min(5, int(math.log2(min(block, size)))))
    return {
        "BLOCKXSIZE": block, "BLOCKYSIZE": block, "QUALITY": "100", "REVERSIBLE": "YES",
        "YCC": "NO", "RESOLUTIONS": levels, "GMLJP2": "YES", "GeoJP2": "NO",
    }  # fmt: skip


def _write_jp2(path: Path, array: np.ndarray, transform: Any, epsg: int, block: int) -> None:
    """Encode ``array`` as a georeferenced JPEG 2000 (GDAL CreateCopy of an in-memory TIFF)."""
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    height, width = array.shape
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), MemoryFile() as mem:
        with mem.open(
            driver="GTiff", width=width, height=height, count=1, dtype=array.dtype.name,
            crs=f"EPSG:{epsg}", transform=transform,
        ) as src:  # fmt: skip
            src.write(array, 1)
            rio_copy(src, str(path), driver="JP2OpenJPEG", **_jp2_options(min(array.shape), block))


@dataclass
class _Output:
    band: str
    resolution: int
    relpath: str
    write: bool


_STRIP_PIXELS = 1_000_000  # pixels computed at once (memory ~ 40 x 8 bytes each)


def _strip(
    spec: ProductSpec,
    cond: Any,
    grid: _Grid,
    bands: Sequence[str],
    r0: int,
    rows: int,
    with_stats: bool,
) -> tuple[int, list[np.ndarray], tuple[np.ndarray, int, int] | None]:
    """DN arrays of ``bands`` for grid rows ``r0:r0+rows`` (and 20 m content counts)."""
    xs = grid.xs()[None, :]
    y = grid.ys()[r0 : r0 + rows, None]
    scene = _Scene(cond, xs, y)
    edge = spec.valid_edge
    valid = edge.valid(xs, y) if edge is not None else np.ones(scene.shape, bool)
    arrays = []
    for band in bands:
        if band == "SCL":
            arrays.append(np.where(valid, scene.scl, 0).astype(np.uint8))
        else:
            dn = scene.units(band, spec.level) + spec.offset
            arrays.append(np.where(valid, dn, 0).astype(np.uint16))
    stats = None
    if with_stats:
        scl = np.where(valid, scene.scl, 0)
        land = valid & (scene.kind != _WATER_KIND)
        cloudy = land & (scl >= 8) & (scl <= 10)
        counts = np.bincount(scl.ravel(), minlength=12)[:12]
        stats = (counts, int(land.sum()), int(cloudy.sum()))
    return r0, arrays, stats


def _strips(
    spec: ProductSpec, cond: Any, grid: _Grid, bands: Sequence[str], with_stats: bool
) -> Iterable[tuple[int, list[np.ndarray], tuple[np.ndarray, int, int] | None]]:
    """Strips of the grid in order; large grids are computed on all cores (numpy frees the GIL)."""
    rows = max(1, _STRIP_PIXELS // grid.size)
    starts = list(range(0, grid.size, rows))
    if len(starts) == 1:
        yield _strip(spec, cond, grid, bands, 0, rows, with_stats)
        return
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for r0 in starts:
            pending.append(pool.submit(_strip, spec, cond, grid, bands, r0, rows, with_stats))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _write_rasters(
    spec: ProductSpec,
    safe: Path,
    outputs: list[_Output],
    scale: int,
    block_size: int | None,
) -> ContentStats:
    """Write the band JP2s and return the content statistics (20 m grid)."""
    cond = _conditions(spec.date, spec.cloud_fraction, spec.cloud_seed)
    counts = np.zeros(12, dtype=np.int64)
    land_valid = cloud_land = 0
    resolutions = sorted({o.resolution for o in outputs if o.write} | {20})
    for res in resolutions:
        grid = _Grid.of(spec, res, scale)
        block = block_size or (_ESA_BLOCKS[res] if scale == 1 else 128)
        group = [o for o in outputs if o.write and o.resolution == res]
        arrays = [
            np.zeros((grid.size, grid.size), np.uint8 if o.band == "SCL" else np.uint16)
            for o in group
        ]
        bands = [o.band for o in group]
        for r0, strips, stats in _strips(spec, cond, grid, bands, with_stats=res == 20):
            for full, strip in zip(arrays, strips, strict=True):
                full[r0 : r0 + strip.shape[0]] = strip
            if stats is not None:
                counts += stats[0]
                land_valid += stats[1]
                cloud_land += stats[2]
        for out, array in zip(group, arrays, strict=True):
            path = safe / out.relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_jp2(path, array, grid.transform, spec.epsg, block)
        del arrays
    return ContentStats(tuple(int(c) for c in counts), land_valid, cloud_land)


def _footprint(spec: ProductSpec) -> tuple[str, tuple[float, float]]:
    """``EXT_POS_LIST`` text of the valid-data polygon and the tile centre (lon, lat)."""
    from pyproj import Transformer
    from shapely.geometry import box
    from shapely.geometry.polygon import orient

    tile_box = box(*spec.bounds)
    poly = tile_box if spec.valid_edge is None else spec.valid_edge.polygon(spec.bounds)
    if poly.is_empty or poly.area <= 0:
        raise ValueError(f"{spec.name}: valid_edge leaves no data in tile {spec.tile}")
    if poly.geom_type != "Polygon":
        poly = max(poly.geoms, key=lambda g: g.area)
    ring = list(orient(poly, sign=-1.0).exterior.coords)
    to_ll = Transformer.from_crs(spec.epsg, 4326, always_xy=True)
    lonlat = [to_ll.transform(x, y) for x, y in ring]
    centre = to_ll.transform(*tile_box.centroid.coords[0])
    return footprint_text(lonlat), centre
