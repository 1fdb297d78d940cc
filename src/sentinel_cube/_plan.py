"""Plan a cube: products -> time steps, target grid, chunks and the sources of every chunk.

Pure planning: reads no pixel and opens no file. Everything it needs comes from
the products' metadata (:class:`~sentinel_cube.safe.Product`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ._source import RESAMPLINGS, Source
from .aoi import reproject_geometry
from .bands import normalize_band
from .exceptions import SentinelCubeError
from .grid import Grid
from .safe import Product

__all__ = ["Block", "CubePlan", "TimeStep", "plan_cube"]

#: Internal JP2 tile side (pixels) of ESA band files by nominal resolution. Reads
#: aligned to whole tiles decode ~4x faster than misaligned ones (see the README).
ESA_JP2_TILES = {10: 1024, 20: 640, 60: 192}
#: Bounds of the default chunk side in output pixels: at least 256 so the graph
#: stays small, at most 2048 (16 MB of float32) so memory per task stays bounded
#: when bands are up-sampled.
CHUNK_SIDE_RANGE = (256, 2048)
UNITS = ("reflectance", "dn")

#: Columns of the per-time metadata coordinates and how fused steps combine them.
PERCENT_COORDS = {
    "cloudcoverpercentage": "cloud_cover",
    "vegetationpercentage": "vegetation",
    "notvegetatedpercentage": "not_vegetated",
    "waterpercentage": "water",
    "snowicepercentage": "snow_ice",
}


@dataclass(frozen=True)
class TimeStep:
    """One time step of the cube: the products mosaicked into it, first valid pixel wins.

    Attributes
    ----------
    time : pandas.Timestamp
        Earliest sensing start of the products (UTC).
    products : tuple of Product
        In mosaic order (see :func:`mosaic_order`).
    weights : tuple of float
        Share of the cube's extent each product covers (for metadata averages).
    """

    time: pd.Timestamp
    products: tuple[Product, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class Block:
    """Everything one read task needs: the chunk grid and its sources in mosaic order."""

    band: str
    grid: Grid
    sources: tuple[Source, ...]
    offsets: tuple[float, ...]
    quantifications: tuple[float, ...]


@dataclass(frozen=True)
class CubePlan:
    """A cube, planned: grid, chunking, time steps, bands and each chunk's sources."""

    grid: Grid
    chunks: tuple[tuple[int, ...], tuple[int, ...]]
    bands: tuple[str, ...]
    steps: tuple[TimeStep, ...]
    units: str
    #: resampling name (``"nearest"``, ``"average"``...)
    resampling: str
    #: (time index, band index, chunk row, chunk col) -> Block, only for chunks with data
    blocks: dict[tuple[int, int, int, int], Block] = field(repr=False)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.steps), len(self.bands), *self.grid.shape)

    @property
    def n_chunks(self) -> int:
        return len(self.steps) * len(self.bands) * len(self.chunks[0]) * len(self.chunks[1])


def mosaic_order(product: Product) -> tuple:
    """Sort key of products within one time step; the first valid pixel wins.

    Earliest sensing time first, then tile id, then the newest processing
    (baseline, then generation time) first, then product id, so reprocessed
    duplicates of the same tile yield to their newest version.
    """
    generated = product.generation_time.timestamp() if product.generation_time else 0.0
    baseline = float(product.processing_baseline or 0)
    return (product.sensing_start, product.tile_id, -baseline, -generated, product.product_id)


def solar_day(product: Product) -> pd.Timestamp:
    """Local solar date of an acquisition: UTC shifted by the footprint's longitude / 15 h."""
    lon = product.footprint.centroid.x
    local = pd.Timestamp(product.sensing_start) + timedelta(hours=lon / 15.0)
    return local.normalize().tz_localize(None)


def plan_cube(
    products: Sequence[Product],
    bands: Sequence[str],
    resolution: float = 10,
    *,
    aoi: BaseGeometry | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    crs: str | int | None = None,
    chunks: int | tuple[int, int] | None = None,
    resampling: object = "nearest",
    units: str = "reflectance",
    groupby: str | None = "solar_day",
) -> CubePlan:
    """Plan a cube from product metadata; see :func:`sentinel_cube.open_cube` for arguments.

    ``aoi`` is a polygon in EPSG:4326; ``bounds`` are in the target CRS.
    """
    products = _check_products(products)
    band_names = _check_bands(products, bands)
    if units not in UNITS:
        raise SentinelCubeError(f"units={units!r} is not one of {', '.join(UNITS)}")
    if groupby not in ("solar_day", None):
        raise SentinelCubeError(f"groupby={groupby!r}: use 'solar_day' or None")
    method = _resampling(resampling)
    if not resolution or resolution <= 0:
        raise SentinelCubeError(f"resolution={resolution!r} must be a positive number of metres")

    target_crs = _target_crs(crs, aoi, products)
    footprints = _footprints_in(products, target_crs, buffer=2 * max(resolution, 60.0))
    if aoi is not None:
        aoi_target = reproject_geometry(aoi, 4326, target_crs)  # densified, as clip does
        touching = [
            p for p, f in zip(products, footprints, strict=True) if f.intersects(aoi_target)
        ]
        if not touching:
            raise SentinelCubeError(
                f"the aoi (bounds {tuple(round(v, 4) for v in aoi.bounds)}) touches none of the "
                f"{len(products)} products' footprints: check the AOI or search again with it"
            )
        keep = {id(p) for p in touching}
        footprints = [f for p, f in zip(products, footprints, strict=True) if id(p) in keep]
        products = touching
        extent = bounds or aoi_target.bounds
    else:
        extent = bounds or shapely.union_all(footprints).bounds
    anchor = _anchor(products, target_crs)
    grid = Grid.from_bounds(extent, target_crs, resolution, anchor=anchor)
    if grid.height == 0 or grid.width == 0:
        raise SentinelCubeError(f"bounds={extent} give an empty grid at resolution {resolution}")

    default_side = _default_chunk_side(products, band_names, resolution)
    if chunks is None:
        side = (default_side, default_side)
    elif isinstance(chunks, int):
        side = (chunks, chunks)
    else:
        side = (int(chunks[0]), int(chunks[1]))
    chunk_sizes = grid.chunk_sizes(side, align=anchor)

    steps = _time_steps(products, footprints, grid, groupby)
    blocks = _blocks(steps, band_names, grid, chunk_sizes, footprints, products)
    return CubePlan(grid, chunk_sizes, band_names, steps, units, method, blocks)


# ----------------------------------------------------------------------------- checks


def _check_products(products: Sequence[Product]) -> list[Product]:
    products = list(products)
    if not products:
        raise SentinelCubeError(
            "products is empty: the search matched nothing; widen the date range, AOI or "
            "cloud cover range"
        )
    levels = defaultdict(list)
    for product in products:
        levels[product.processing_level].append(product.product_id)
    if len(levels) > 1:
        detail = "; ".join(f"{level}: e.g. {ids[0]}" for level, ids in sorted(levels.items()))
        raise SentinelCubeError(
            f"products mix processing levels ({detail}); select one producttype "
            "(S2MSI1C or S2MSI2A) for a cube"
        )
    return products


def _check_bands(products: Sequence[Product], bands: Sequence[str]) -> tuple[str, ...]:
    if isinstance(bands, str):
        bands = [bands]
    if not bands:
        raise SentinelCubeError("bands is empty: name at least one band, e.g. ['B04']")
    try:
        names = tuple(normalize_band(b) for b in bands)
    except ValueError as error:
        raise SentinelCubeError(f"bands: {error}") from error
    if len(set(names)) != len(names):
        raise SentinelCubeError(f"bands={list(bands)!r} names a band twice")
    for product in products:
        for name in names:
            if name in product.bands:
                continue
            if name in product.missing_bands:
                problem = (
                    f"the file of band {name} is missing (partial download?): download band "
                    f"{name} of this product or leave the band out"
                )
            else:
                problem = f"has no band {name} (a {product.processing_level} product has "
                problem += f"{', '.join(product.bands) or 'no band files'})"
            raise SentinelCubeError(f"product {product.product_id} at {product.path}: {problem}")
    return names


def _resampling(value: object) -> str:
    """The resampling's name (a name or a rasterio ``Resampling`` member is given)."""
    name = str(getattr(value, "name", value))
    if name not in RESAMPLINGS:
        names = ", ".join((*RESAMPLINGS[:8], "rms"))
        raise SentinelCubeError(
            f"resampling={value!r} is not a rasterio resampling; use one of {names}"
        )
    return name


# ----------------------------------------------------------------------------- geometry


def _target_crs(
    crs: str | int | None, aoi: BaseGeometry | None, products: Sequence[Product]
) -> str:
    """The given CRS, else the UTM zone holding most of the AOI (or of the footprints)."""
    if crs is not None:
        parsed = CRS.from_user_input(crs)
        epsg = parsed.to_epsg()
        return f"EPSG:{epsg}" if epsg else parsed.to_wkt()
    area = aoi if aoi is not None else shapely.union_all([p.footprint for p in products])
    shares = [
        area.intersection(box(-180 + 6 * (zone - 1), -90, -180 + 6 * zone, 90)).area
        for zone in range(1, 61)
    ]
    best = int(np.argmax(shares)) + 1
    north = area.centroid.y >= 0
    return f"EPSG:{(32600 if north else 32700) + best}"


def _footprints_in(products: Sequence[Product], crs: str, buffer: float) -> list[BaseGeometry]:
    """Each product's data footprint in ``crs``, clipped to its tile and slightly grown."""
    result = []
    for product in products:
        # densified within 1 % of the margin they are grown by: ample, and cheap
        footprint = reproject_geometry(product.footprint, 4326, crs, tolerance=buffer / 100)
        tile = box(*next(iter(product.bands.values())).bounds)
        if product.crs != crs:
            tile = reproject_geometry(tile, product.crs, crs, tolerance=buffer / 100)
        result.append(footprint.buffer(buffer).intersection(tile.buffer(1e-6)))
    return result


def _anchor(products: Sequence[Product], crs: str) -> tuple[float, float]:
    """Upper-left corner of the first product in ``crs``: output pixels align with its pixels."""
    for product in products:
        if product.crs == crs:
            band = next(iter(product.bands.values()))
            return (band.transform.c, band.transform.f)
    return (0.0, 0.0)


def _default_chunk_side(products: Sequence[Product], bands: Sequence[str], resolution: float):
    """One ESA JP2 tile of the finest band, in output pixels, within CHUNK_SIDE_RANGE."""
    product = products[0]
    finest = min(bands, key=lambda b: product.bands[b].transform.a)
    band_file = product.bands[finest]
    tile = ESA_JP2_TILES.get(band_file.resolution, 1024)
    side = round(tile * band_file.transform.a / resolution)
    low, high = CHUNK_SIDE_RANGE
    return min(high, max(low, side))


# ----------------------------------------------------------------------------- time + blocks


def _time_steps(
    products: Sequence[Product],
    footprints: Sequence[BaseGeometry],
    grid: Grid,
    groupby: str | None,
) -> tuple[TimeStep, ...]:
    extent = box(*grid.bounds)
    share = {
        id(p): f.intersection(extent).area / extent.area
        for p, f in zip(products, footprints, strict=True)
    }
    groups: dict[object, list[Product]] = defaultdict(list)
    for product in products:
        key = solar_day(product) if groupby == "solar_day" else product.product_id
        groups[key].append(product)
    steps = []
    for members in groups.values():
        members.sort(key=mosaic_order)
        time = pd.Timestamp(min(p.sensing_start for p in members)).tz_convert("UTC")
        steps.append(TimeStep(time, tuple(members), tuple(share[id(p)] for p in members)))
    steps.sort(key=lambda s: (s.time, s.products[0].product_id))
    return tuple(steps)


def _blocks(
    steps: Sequence[TimeStep],
    bands: Sequence[str],
    grid: Grid,
    chunk_sizes: tuple[tuple[int, ...], tuple[int, ...]],
    footprints: Sequence[BaseGeometry],
    products: Sequence[Product],
) -> dict[tuple[int, int, int, int], Block]:
    """Sources of every chunk: only the products whose footprint meets the chunk."""
    footprint_of = {id(p): f for p, f in zip(products, footprints, strict=True)}
    chunk_grids = dict(grid.iter_chunks(chunk_sizes))
    keys = list(chunk_grids)
    boxes = np.array([box(*chunk_grids[k].bounds) for k in keys], dtype=object)
    tree = shapely.STRtree(boxes)
    hits: dict[int, list[int]] = {}
    for product in products:
        if id(product) not in hits:
            hits[id(product)] = sorted(tree.query(footprint_of[id(product)], "intersects"))
    blocks: dict[tuple[int, int, int, int], Block] = {}
    for t, step in enumerate(steps):
        per_chunk: dict[int, list[Product]] = defaultdict(list)
        for product in step.products:  # mosaic order is kept
            for index in hits[id(product)]:
                per_chunk[int(index)].append(product)
        for index, members in per_chunk.items():
            iy, ix = keys[index]
            for b, band in enumerate(bands):
                files = [p.bands[band] for p in members]
                blocks[(t, b, iy, ix)] = Block(
                    band,
                    chunk_grids[(iy, ix)],
                    tuple(
                        Source(f.path, p.crs, f.transform, f.shape, p.product_id)
                        for p, f in zip(members, files, strict=True)
                    ),
                    tuple(f.offset for f in files),
                    tuple(f.quantification for f in files),
                )
    return blocks
