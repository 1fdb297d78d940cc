"""Plan a cube: products -> time steps, target grid, chunks and the sources of every chunk.

Pure planning: reads no pixel and opens no file. Everything it needs comes from
the products' metadata (:class:`~sentinel_cube.safe.Product`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ._source import RESAMPLINGS
from .aoi import reproject_geometry
from .bands import normalize_band
from .exceptions import SentinelCubeError
from .grid import Grid
from .safe import Product

__all__ = ["CubePlan", "TimeStep", "chunk_members", "plan_cube"]

#: Internal JP2 tile side (pixels) of ESA band files by nominal resolution. Reads
#: aligned to whole tiles decode ~4x faster than misaligned ones (see the README).
ESA_JP2_TILES = {10: 1024, 20: 640, 60: 192}
#: Default chunk side, in JP2 tiles of the finest band: 2 x 2 tiles (2048 px at 10 m)
#: per task keeps a 1,000-product cube near 36,000 tasks where one tile per task gave
#: 4x as many (the scheduler's cost grows with tasks, a task's cost with pixels).
TILES_PER_CHUNK = 2
#: A cube whose steps would have fewer tasks than this by default gets one JP2 tile per
#: chunk, then one band per task, so that one step still keeps several workers busy.
MIN_TASKS_PER_STEP = 8
#: Bounds of the default chunk side in output pixels: at least 256 so the graph
#: stays small, at most 2048 (16 MB of float32 per band) so memory per task stays
#: bounded when bands are up-sampled.
CHUNK_SIDE_RANGE = (256, 2048)
#: Largest default chunk in bytes: bands of one native resolution share a task up to
#: this size (4 float32 bands of 2048 x 2048 px), see :func:`_band_chunks`.
CHUNK_BYTES = 64 * 2**20
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
    #: each product's data footprint in the cube's CRS, slightly grown (see
    #: :func:`chunk_members`)
    footprints: tuple[BaseGeometry, ...] = field(repr=False, compare=False)


@dataclass(frozen=True)
class CubePlan:
    """A cube, planned: grid, chunking, time steps and bands.

    Its size grows with the products, never with the chunks: which products a chunk
    reads is found when the chunk is read (:func:`chunk_members`), from the step's
    footprints.
    """

    grid: Grid
    #: chunk sizes along ``(y, x)``
    chunks: tuple[tuple[int, ...], tuple[int, ...]]
    bands: tuple[str, ...]
    steps: tuple[TimeStep, ...]
    units: str
    #: resampling name (``"nearest"``, ``"average"``...)
    resampling: str
    #: chunk sizes along ``band``: bands read by one task
    band_chunks: tuple[int, ...] = ()
    #: with ``clip=True``: the AOI in the cube's CRS; pixels outside are no data and
    #: JP2 tiles outside it are never decoded
    aoi: BaseGeometry | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.band_chunks:
            object.__setattr__(self, "band_chunks", (1,) * len(self.bands))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.steps), len(self.bands), *self.grid.shape)

    @property
    def dask_chunks(self) -> tuple[tuple[int, ...], ...]:
        """Chunk sizes of the ``(time, band, y, x)`` dask array."""
        return ((1,) * len(self.steps), self.band_chunks, *self.chunks)

    @property
    def n_chunks(self) -> int:
        return len(self.steps) * len(self.band_chunks) * len(self.chunks[0]) * len(self.chunks[1])


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
    chunks: int | tuple[int, int] | Mapping[str, int] | None = None,
    resampling: object = "nearest",
    units: str = "reflectance",
    groupby: str | None = "solar_day",
    clip: bool = False,
) -> CubePlan:
    """Plan a cube from product metadata; see :func:`sentinel_cube.open_cube` for arguments.

    ``aoi`` is a polygon in EPSG:4326; ``bounds`` are in the target CRS.
    """
    if clip and aoi is None:
        raise SentinelCubeError("clip=True needs an aoi: pass aoi=... or leave clip out")
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
        clip_area = aoi_target if clip else None
    else:
        clip_area = None
        extent = bounds or shapely.union_all(footprints).bounds
    anchor = _anchor(products, target_crs)
    grid = Grid.from_bounds(extent, target_crs, resolution, anchor=anchor)
    if grid.height == 0 or grid.width == 0:
        raise SentinelCubeError(f"bounds={extent} give an empty grid at resolution {resolution}")

    side, per_task = _chunking(chunks, products, band_names, resolution, units)
    chunk_sizes = grid.chunk_sizes(side, align=anchor)
    band_chunks = _band_chunks(products[0], band_names, per_task)
    if chunks is None:  # a small cube: smaller tasks, so one step still spreads over workers
        for bands_per_task in (per_task, 1):
            if len(chunk_sizes[0]) * len(chunk_sizes[1]) * len(band_chunks) >= MIN_TASKS_PER_STEP:
                break
            tile = _default_chunk_side(products, band_names, resolution, tiles=1)
            chunk_sizes = grid.chunk_sizes((tile, tile), align=anchor)
            band_chunks = _band_chunks(products[0], band_names, bands_per_task)
    steps = _time_steps(products, footprints, grid, groupby)
    return CubePlan(grid, chunk_sizes, band_names, steps, units, method, band_chunks, clip_area)


def chunk_members(
    footprints: Sequence[BaseGeometry], bounds: tuple[float, float, float, float]
) -> list[int]:
    """Indices of a step's products whose footprint meets a chunk, in mosaic order.

    ``footprints`` are a :class:`TimeStep`'s. A chunk no product meets is no data and
    reads nothing. The footprints are the products' data footprints grown by twice the
    pixel size (at least 120 m), so a chunk on a footprint's edge still reads the pixels
    that the outline cuts.
    """
    hits = shapely.intersects(np.asarray(footprints, dtype=object), box(*bounds))
    return [int(i) for i in np.flatnonzero(hits)]


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


def _chunking(
    chunks: int | tuple[int, int] | Mapping[str, int] | None,
    products: Sequence[Product],
    bands: Sequence[str],
    resolution: float,
    units: str,
) -> tuple[tuple[int, int], int]:
    """``((y, x) chunk side, bands per task at most)`` from ``chunks`` and the defaults."""
    side = _default_chunk_side(products, bands, resolution)
    sides = (side, side)
    per_task = None
    if isinstance(chunks, Mapping):
        unknown = set(chunks) - {"band", "y", "x"}
        if unknown:
            raise SentinelCubeError(
                f"chunks={dict(chunks)!r}: keys must be among 'band', 'y', 'x' (not "
                f"{', '.join(map(repr, sorted(unknown)))})"
            )
        sides = (int(chunks.get("y", side)), int(chunks.get("x", side)))
        per_task = chunks.get("band")
    elif isinstance(chunks, int):
        sides = (chunks, chunks)
    elif chunks is not None:
        sides = (int(chunks[0]), int(chunks[1]))
    if min(sides) <= 0 or (per_task is not None and int(per_task) <= 0):
        raise SentinelCubeError(f"chunks={chunks!r}: chunk sizes must be positive")
    if per_task is None:
        itemsize = 4 if units == "reflectance" else 2
        per_task = max(1, CHUNK_BYTES // (sides[0] * sides[1] * itemsize))
    return sides, int(per_task)


def _default_chunk_side(
    products: Sequence[Product],
    bands: Sequence[str],
    resolution: float,
    tiles: int = TILES_PER_CHUNK,
) -> int:
    """``tiles`` ESA JP2 tiles of the finest band, in output pixels, in CHUNK_SIDE_RANGE."""
    product = products[0]
    finest = min(bands, key=lambda b: product.bands[b].transform.a)
    band_file = product.bands[finest]
    tile = ESA_JP2_TILES.get(band_file.resolution, 1024)
    side = round(tiles * tile * band_file.transform.a / resolution)
    low, high = CHUNK_SIDE_RANGE
    return min(high, max(low, side))


def _band_chunks(product: Product, bands: Sequence[str], per_task: int) -> tuple[int, ...]:
    """Chunk sizes along ``band``: runs of neighbouring bands of one native pixel size.

    Bands of one pixel size share their JP2 tile grid, so one task reads the same
    windows of each; at most ``per_task`` bands per chunk.

    >>> from types import SimpleNamespace as S
    >>> p = S(bands={b: S(resolution=r) for b, r in
    ...       [("B02", 10), ("B03", 10), ("B04", 10), ("B05", 20), ("B08", 10)]})
    >>> _band_chunks(p, ["B02", "B03", "B04", "B05", "B08"], 2)
    (2, 1, 1, 1)
    """
    sizes: list[int] = []
    previous = None
    for band in bands:
        resolution = product.bands[band].resolution
        if sizes and resolution == previous and sizes[-1] < per_task:
            sizes[-1] += 1
        else:
            sizes.append(1)
        previous = resolution
    return tuple(sizes)


# ----------------------------------------------------------------------------- time + blocks


def _time_steps(
    products: Sequence[Product],
    footprints: Sequence[BaseGeometry],
    grid: Grid,
    groupby: str | None,
) -> tuple[TimeStep, ...]:
    extent = box(*grid.bounds)
    footprint_of = {id(p): f for p, f in zip(products, footprints, strict=True)}
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
        steps.append(
            TimeStep(
                time,
                tuple(members),
                tuple(share[id(p)] for p in members),
                tuple(footprint_of[id(p)] for p in members),
            )
        )
    steps.sort(key=lambda s: (s.time, s.products[0].product_id))
    return tuple(steps)
