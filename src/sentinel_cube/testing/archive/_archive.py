"""Synthetic Sentinel-2 products on disk: specs, band JP2s, SAFE folders, zips, breakage."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...bands import L1C_BANDS, NATIVE_RESOLUTION, TILE_SIZE_10M, normalize_band
from ...mgrs import TILE_EXTENT_M, parse_tile_id, tile_epsg, tile_origin
from . import _metadata as md
from ._scene import _WATER_KIND, SwathEdge, _conditions, _Scene, _to_date

__all__ = [
    "ALLOWED_SCALES",
    "BREAK_MODES",
    "BUDAPEST_TILES",
    "DEFAULT_DATES",
    "ZONE_BOUNDARY_TILES",
    "ProductSpec",
    "baseline_for",
    "break_product",
    "default_specs",
    "make_archive",
    "make_product",
    "platform_for",
]

#: The two MGRS tiles of Budapest (UTM zone 34), overlapping by 9.8 km at x = 400-409.8 km.
BUDAPEST_TILES: tuple[str, ...] = ("34TCT", "34TDT")
#: Tiles on both sides of the UTM zone 33/34 boundary; they overlap around 18.3-19.1 deg E.
ZONE_BOUNDARY_TILES: tuple[str, ...] = ("33TYN", "34TCT")
#: Default acquisition dates: relative orbit 79 passes of 2023 (S2B on 2023-06-01 + 10 n,
#: S2A five days later). Default weather: 01-12 winter with snow and 20 % clouds, 05-07
#: nearly clear (2 %) and partial (swath edge, see ``default_specs(partial=1)``), 06-01
#: overcast (85 %), 07-06 clear, 08-10 20 % clouds.
DEFAULT_DATES: tuple[str, ...] = (
    "2023-01-12",
    "2023-05-07",
    "2023-06-01",
    "2023-07-06",
    "2023-08-10",
)
#: Allowed values of ``scale``: the divisors of 1830 (60 m pixels per tile side).
ALLOWED_SCALES: tuple[int, ...] = tuple(d for d in range(1, 1831) if 1830 % d == 0)
#: What :func:`break_product` can do.
BREAK_MODES: tuple[str, ...] = (
    "truncate_zip",
    "drop_mtd",
    "drop_band",
    "malform_xml",
    "corrupt_jp2",
)

_OFFSET_START = dt.date(2022, 1, 25)  # processing baseline 04.00: radiometric offset introduced
_R079_S2B = dt.date(2023, 6, 1)  # S2B flew relative orbit 79 over Budapest on this day
_CLOCK = {"S2A": dt.time(9, 45, 51, 24000), "S2B": dt.time(9, 45, 49, 24000),
          "S2C": dt.time(9, 45, 51, 24000)}  # fmt: skip
_GENERATION_DELAY = {"L2A": dt.timedelta(hours=2, minutes=57, seconds=57),
                     "L1C": dt.timedelta(hours=2, minutes=6, seconds=32)}  # fmt: skip
# (reference time, absolute orbit, relative-orbit phase) from real product names
_ORBIT_REFERENCE = {
    "S2A": (dt.datetime(2023, 8, 21, 22, 19, 41, tzinfo=dt.UTC), 42640, 2),
    "S2B": (dt.datetime(2023, 6, 1, 9, 45, 49, tzinfo=dt.UTC), 32566, -27),
    "S2C": (dt.datetime(2025, 3, 1, 9, 45, 49, tzinfo=dt.UTC), 2580, 2),
}
_ORBIT_SECONDS = 10 * 86400 / 143
_L2A_NATIVE = {10: ("B02", "B03", "B04", "B08"),
               20: ("B05", "B06", "B07", "B8A", "B11", "B12", "SCL"),
               60: ("B01", "B09")}  # fmt: skip
_L2A_ALL = {10: ("B02", "B03", "B04", "B08"),
            20: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL"),
            60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12",
                 "SCL")}  # fmt: skip
_ESA_BLOCKS = {10: 1024, 20: 640, 60: 192}  # tile sizes of real full-size band JP2s


def _utc(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip())
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime or ISO string, got {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"sensing/generation times must be timezone-aware (UTC), got {value!r}")
    return value.astimezone(dt.UTC)


def baseline_for(date: Any) -> str:
    """Processing baseline of a product sensed on ``date`` by the archive rule.

    ``"03.01"`` (no radiometric offset) before 2022-01-25, ``"05.09"`` (offset
    -1000) from then on.

    Examples
    --------
    >>> baseline_for("2021-06-01"), baseline_for("2023-06-01")
    ('03.01', '05.09')
    """
    return "03.01" if _to_date(date) < _OFFSET_START else "05.09"


def platform_for(date: Any) -> str:
    """Platform flying relative orbit 79 over Budapest nearest to ``date``.

    S2B on 2023-06-01 + 10 n days, S2A five days later; other days get the
    platform whose pass is closest.

    Examples
    --------
    >>> platform_for("2023-08-10"), platform_for("2023-07-16")
    ('S2B', 'S2A')
    """
    offset = (_to_date(date) - _R079_S2B).days % 10
    return "S2B" if offset <= 2 or offset >= 8 else "S2A"


def check_scale(scale: int) -> int:
    """Return ``scale`` if it divides 1830, else raise ValueError naming the allowed values."""
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, np.integer))
        or int(scale) not in ALLOWED_SCALES
    ):
        raise ValueError(
            f"scale must divide 1830 so that 10, 20 and 60 m bands tile exactly; got {scale!r}, "
            f"allowed: {', '.join(map(str, ALLOWED_SCALES))}"
        )
    return int(scale)


def _absolute_orbit(platform: str, when: dt.datetime, relative_orbit: int) -> int:
    ref_time, ref_orbit, phase = _ORBIT_REFERENCE[platform]
    estimate = ref_orbit + (when - ref_time).total_seconds() / _ORBIT_SECONDS
    residue = (relative_orbit - 1 - phase) % 143
    base = math.floor(estimate) - (math.floor(estimate) - residue) % 143
    return min((base, base + 143), key=lambda n: abs(n - estimate))


@dataclass(frozen=True)
class ProductSpec:
    """Everything that identifies and shapes one synthetic product (one tile, one datatake).

    Parameters
    ----------
    tile : str
        MGRS tile (``"34TCT"`` or ``"T34TCT"``).
    sensing_time : datetime or str
        Datatake sensing start, timezone-aware (converted to UTC).
    level : {"L2A", "L1C"}
    platform : {"S2A", "S2B", "S2C"}
    baseline : str, optional
        Processing baseline ``"NN.NN"``; default :func:`baseline_for` the date.
    relative_orbit : int
        1..143 (79 for Budapest).
    generation_time : datetime, optional
        Default: sensing time + 2:57:57 (L2A) or + 2:06:32 (L1C), whole seconds.
    valid_edge : SwathEdge, optional
        Swath edge in the tile's CRS; the other side is no data (DN 0, SCL 0).
    cloud_fraction : float, optional
        Target cloud fraction of the datatake; default drawn from the date.
    cloud_seed : int, optional
        Cloud pattern seed; default derived from the date.
    absolute_orbit : int, optional
        Default estimated from the platform, time and relative orbit.
    orbit_direction : str
        ``"DESCENDING"`` (all Sentinel-2 daytime acquisitions).
    corner : (float, float), optional
        Upper-left corner ``(x, y)`` of the tile grid in its UTM CRS; default the
        MGRS rule (:func:`sentinel_cube.mgrs.tile_origin`). Real tiles sit a few tens
        of metres off that rule; set this to write such a tile.

    Examples
    --------
    >>> spec = ProductSpec("34TCT", "2023-08-10T09:45:49.024+00:00", platform="S2B")
    >>> spec.name
    'S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346'
    >>> spec.offset, spec.epsg
    (1000, 32634)
    """

    tile: str
    sensing_time: dt.datetime
    level: str = "L2A"
    platform: str = "S2B"
    baseline: str = field(default=None)  # type: ignore[assignment]
    relative_orbit: int = 79
    generation_time: dt.datetime = field(default=None)  # type: ignore[assignment]
    valid_edge: SwathEdge | None = None
    cloud_fraction: float | None = None
    cloud_seed: int | None = None
    absolute_orbit: int = field(default=None)  # type: ignore[assignment]
    orbit_direction: str = "DESCENDING"
    corner: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        zone, band, col, row = parse_tile_id(self.tile)
        put("tile", f"{zone:02d}{band}{col}{row}")
        sensing = _utc(self.sensing_time)
        put("sensing_time", sensing)
        level = str(self.level).upper().removeprefix("MSI")
        if level not in ("L1C", "L2A"):
            raise ValueError(f"level must be 'L1C' or 'L2A', got {self.level!r}")
        put("level", level)
        platform = str(self.platform).upper()
        if platform not in _ORBIT_REFERENCE:
            raise ValueError(f"platform must be one of S2A, S2B, S2C, got {self.platform!r}")
        put("platform", platform)
        baseline = baseline_for(sensing) if self.baseline is None else str(self.baseline)
        if not re.fullmatch(r"\d{2}\.\d{2}", baseline):
            raise ValueError(f"baseline must look like '05.09', got {self.baseline!r}")
        put("baseline", baseline)
        if not 1 <= int(self.relative_orbit) <= 143:
            raise ValueError(f"relative_orbit must be 1..143, got {self.relative_orbit!r}")
        put("relative_orbit", int(self.relative_orbit))
        if self.generation_time is None:
            gen = (sensing + _GENERATION_DELAY[level]).replace(microsecond=0)
        else:
            gen = _utc(self.generation_time)
        put("generation_time", gen)
        if self.absolute_orbit is None:
            put("absolute_orbit", _absolute_orbit(platform, sensing, self.relative_orbit))
        if self.cloud_fraction is not None and not 0.0 <= float(self.cloud_fraction) <= 1.0:
            raise ValueError(f"cloud_fraction must be within [0, 1], got {self.cloud_fraction!r}")
        direction = str(self.orbit_direction).upper()
        if direction not in ("DESCENDING", "ASCENDING"):
            raise ValueError(f"orbit_direction must be DESCENDING or ASCENDING, got {direction!r}")
        put("orbit_direction", direction)
        if self.corner is not None:
            x, y = (float(v) for v in self.corner)
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f"corner must be two finite numbers, got {self.corner!r}")
            put("corner", (x, y))

    # --- identifiers -------------------------------------------------------------------

    @property
    def date(self) -> dt.date:
        """UTC date of the acquisition."""
        return self.sensing_time.date()

    @property
    def name(self) -> str:
        """ESA product name without ``.SAFE``."""
        return (
            f"{self.platform}_MSI{self.level}_{self.sensing_time:%Y%m%dT%H%M%S}"
            f"_N{self.baseline.replace('.', '')}_R{self.relative_orbit:03d}_T{self.tile}"
            f"_{self.generation_time:%Y%m%dT%H%M%S}"
        )

    @property
    def product_type(self) -> str:
        """``"S2MSI2A"`` or ``"S2MSI1C"``."""
        return f"S2MSI{self.level[1:]}"

    @property
    def offset(self) -> int:
        """DN offset added to ``round(reflectance * 10000)``: 1000 from baseline 04.00, else 0."""
        major, minor = (int(p) for p in self.baseline.split("."))
        return 1000 if (major, minor) >= (4, 0) else 0

    @property
    def epsg(self) -> int:
        """EPSG code of the tile's UTM CRS."""
        return tile_epsg(self.tile)

    @property
    def origin(self) -> tuple[float, float]:
        """Upper-left corner ``(x, y)`` of the tile: ``corner``, else the MGRS rule.

        The rule is :func:`sentinel_cube.mgrs.tile_origin`; real tiles differ from it by
        a few tens of metres, which ``corner`` reproduces.
        """
        return tile_origin(self.tile) if self.corner is None else self.corner

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the tile in its CRS (109.8 km square)."""
        x, y = self.origin
        return (x, y - TILE_EXTENT_M, x + TILE_EXTENT_M, y)

    @property
    def processing_centre(self) -> str:
        return f"{self.platform[1:]}PS"

    @property
    def datatake_id(self) -> str:
        when = f"{self.sensing_time:%Y%m%dT%H%M%S}"
        return f"G{self.platform}_{when}_{self.absolute_orbit:06d}_N{self.baseline}"

    @property
    def datastrip_id(self) -> str:
        return (
            f"{self.platform}_OPER_MSI_{self.level}_DS_{self.processing_centre}_"
            f"{self.generation_time:%Y%m%dT%H%M%S}_S{self.sensing_time:%Y%m%dT%H%M%S}_N{self.baseline}"
        )

    @property
    def granule_id(self) -> str:
        """``granuleIdentifier`` / ``TILE_ID`` of the single granule."""
        return (
            f"{self.platform}_OPER_MSI_{self.level}_TL_{self.processing_centre}_"
            f"{self.generation_time:%Y%m%dT%H%M%S}_A{self.absolute_orbit:06d}_T{self.tile}_N{self.baseline}"
        )

    @property
    def granule_name(self) -> str:
        """Folder under ``GRANULE/`` (``L2A_T34TCT_A033567_20230810T094549``)."""
        when = f"{self.sensing_time:%Y%m%dT%H%M%S}"
        return f"{self.level}_T{self.tile}_A{self.absolute_orbit:06d}_{when}"

    def band_path(self, band: str, resolution: int | None = None) -> str:
        """Path of a band file inside the ``.SAFE`` folder (``/`` separated, with ``.jp2``).

        Examples
        --------
        >>> spec = ProductSpec("34TCT", "2023-08-10T09:45:49.024Z")
        >>> spec.band_path("B04")
        'GRANULE/L2A_T34TCT_A033567_20230810T094549/IMG_DATA/R10m/T34TCT_20230810T094549_B04_10m.jp2'
        """
        band = normalize_band(band)
        stem = f"T{self.tile}_{self.sensing_time:%Y%m%dT%H%M%S}_{band}"
        if self.level == "L1C":
            return f"GRANULE/{self.granule_name}/IMG_DATA/{stem}.jp2"
        res = NATIVE_RESOLUTION[band] if resolution is None else int(resolution)
        return f"GRANULE/{self.granule_name}/IMG_DATA/R{res}m/{stem}_{res}m.jp2"

    def band_files(self, all_resolutions: bool = False) -> list[tuple[str, int]]:
        """``(band, resolution)`` of every band file of the complete product, in MTD order."""
        if self.level == "L1C":
            return [(b, NATIVE_RESOLUTION[b]) for b in L1C_BANDS]
        table = _L2A_ALL if all_resolutions else _L2A_NATIVE
        return [(b, res) for res in (10, 20, 60) for b in table[res]]


# --------------------------------------------------------------------------------------
# default_specs
# --------------------------------------------------------------------------------------


def _per_date(option: Any, index: int, date: dt.date) -> Any:
    if option is None or isinstance(option, (str, int, float)):
        return option
    if isinstance(option, Mapping):
        for key, value in option.items():
            if _to_date(key) == date:
                return value
        return None
    return list(option)[index]


def _tile_list(tiles: str | Iterable[str]) -> list[str]:
    return [tiles] if isinstance(tiles, str) else list(tiles)


def _edge_for(first: ProductSpec, tile: str) -> SwathEdge | None:
    """Swath edge crossing the first tile, expressed in ``tile``'s CRS, if it crosses it."""
    from pyproj import Transformer

    left, bottom, right, top = first.bounds
    top_pt = (left + 0.30 * TILE_EXTENT_M, top)
    bottom_pt = (left + 0.15 * TILE_EXTENT_M, bottom)
    to_ll = Transformer.from_crs(first.epsg, 4326, always_xy=True)
    (lon0, lat0), (lon1, lat1) = to_ll.transform(*top_pt), to_ll.transform(*bottom_pt)
    edge = SwathEdge.from_lonlat(lon0, lat0, lon1, lat1, tile_epsg(tile), keep="east")
    x, y = tile_origin(tile)
    bounds = (x, y - TILE_EXTENT_M, x + TILE_EXTENT_M, y)
    area = edge.polygon(bounds).area
    return edge if 0.0 < area < 0.999 * TILE_EXTENT_M**2 else None


def default_specs(
    tiles: str | Iterable[str] = BUDAPEST_TILES,
    dates: Iterable[Any] = DEFAULT_DATES,
    levels: str | Iterable[str] = ("L2A",),
    *,
    baselines: str | Sequence[str] | Mapping[Any, str] | None = None,
    cloud_fractions: float | Sequence[float | None] | Mapping[Any, float] | None = None,
    relative_orbit: int = 79,
    time_of_day: dt.time | None = None,
    partial: int | None = 1,
) -> list[ProductSpec]:
    """Specs of a realistic archive: one datatake per date, split across ``tiles``.

    Every date is one acquisition: all its tiles (and levels) share the sensing
    time, platform, baseline and weather. The platform follows the relative
    orbit 79 cycle (:func:`platform_for`), the sensing time is 09:45:49.024 (S2B)
    or 09:45:51.024 (S2A) UTC unless ``time_of_day`` is given, the baseline
    follows :func:`baseline_for` unless ``baselines`` (one value, one per date
    or ``{date: baseline}``) says otherwise.

    Parameters
    ----------
    partial : int or None
        Index of the date whose datatake has its swath edge across the first
        tile (default the second date): tiles the edge crosses get a
        ``valid_edge`` and are partly empty (west of the edge). None: no edge.

    Returns
    -------
    list of ProductSpec
        Ordered by date, then tile, then level.

    Examples
    --------
    >>> specs = default_specs(dates=("2023-06-05", "2023-06-15", "2023-07-10"))
    >>> len(specs), specs[0].sensing_time == specs[1].sensing_time
    (6, True)
    >>> [s.valid_edge is not None for s in specs]
    [False, False, True, False, False, False]
    """
    tile_ids = _tile_list(tiles)
    level_ids = _tile_list(levels)
    day_list = [_to_date(d) for d in dates]
    specs: list[ProductSpec] = []
    for i, day in enumerate(day_list):
        platform = platform_for(day)
        clock = time_of_day or _CLOCK[platform]
        sensing = dt.datetime.combine(day, clock).replace(tzinfo=dt.UTC)
        baseline = _per_date(baselines, i, day) or baseline_for(day)
        fraction = _per_date(cloud_fractions, i, day)
        first = ProductSpec(tile_ids[0], sensing, platform=platform, relative_orbit=relative_orbit)
        for tile in tile_ids:
            edge = _edge_for(first, tile) if partial is not None and i == partial else None
            for level in level_ids:
                specs.append(
                    ProductSpec(
                        tile, sensing, level=level, platform=platform, baseline=baseline,
                        relative_orbit=relative_orbit, valid_edge=edge, cloud_fraction=fraction,
                    )
                )  # fmt: skip
    return specs


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
) -> md.ContentStats:
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
    return md.ContentStats(tuple(int(c) for c in counts), land_valid, cloud_land)


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
    return md.footprint_text(lonlat), centre


# --------------------------------------------------------------------------------------
# make_product / make_archive
# --------------------------------------------------------------------------------------


def _select_bands(spec: ProductSpec, bands: Iterable[str] | None) -> set[str] | None:
    if bands is None:
        return None
    available = {b for b, _ in spec.band_files(all_resolutions=True)}
    chosen = {normalize_band(b) for b in ([bands] if isinstance(bands, str) else bands)}
    unknown = chosen - available
    if unknown:
        raise ValueError(
            f"{spec.level} products have no band {', '.join(sorted(unknown))}; "
            f"available: {', '.join(sorted(available))}"
        )
    return chosen


def _zip_safe(safe: Path, zip_path: Path) -> None:
    part = zip_path.with_name(zip_path.name + ".part")
    base = safe.parent
    with zipfile.ZipFile(part, "w") as zf:
        for folder, dirs, files in os.walk(safe):
            dirs.sort()
            rel = Path(folder).relative_to(base).as_posix()
            zf.writestr(zipfile.ZipInfo(rel + "/"), b"")
            for name in sorted(files):
                path = Path(folder) / name
                method = zipfile.ZIP_STORED if name.endswith(".jp2") else zipfile.ZIP_DEFLATED
                zf.write(path, f"{rel}/{name}", compress_type=method)
    os.replace(part, zip_path)


def make_product(
    root: str | os.PathLike[str],
    spec: ProductSpec,
    *,
    scale: int = 30,
    bands: Iterable[str] | None = None,
    zipped: bool = False,
    block_size: int | None = None,
    all_resolutions: bool = False,
    checksum: str = "MD5",
) -> Path:
    """Write one synthetic product under ``root`` and return its path.

    Parameters
    ----------
    root : path
        Folder that receives ``NAME.SAFE`` (or ``NAME.zip``); created if needed.
        An existing product of the same name is replaced.
    spec : ProductSpec
    scale : int
        Pixel size multiplier; must divide 1830 (:data:`ALLOWED_SCALES`). The
        tile keeps its ground footprint; 10 m bands get ``10980 / scale`` pixels
        of ``10 * scale`` m. ``scale=1`` is full size.
    bands : iterable of str, optional
        Band files to write (``"B04"``, ``"SCL"``...); default all. The metadata
        still lists every file of the complete product (a partial download);
        ``manifest.safe`` lists the files actually present.
    zipped : bool
        Write ``NAME.zip`` holding ``NAME.SAFE/`` (as hubs deliver) and no folder.
    block_size : int, optional
        JPEG 2000 tile size (>= 32; GDAL clamps it to the image size); default
        ESA's (1024/640/192 px for 10/20/60 m) at ``scale=1``, 128 otherwise.
        Up to 5 resolution levels (``RESOLUTIONS``), fewer for tiny images.
    all_resolutions : bool
        L2A only: also write (and list) the 20 m and 60 m versions of bands, as
        real products carry them (point-sampled from the same scene).
    checksum : {"MD5", "SHA3-256"}
        ``checksumName`` of ``manifest.safe`` (older products use MD5, newer SHA3-256).

    Returns
    -------
    pathlib.Path
        ``root / "NAME.SAFE"`` or ``root / "NAME.zip"``.

    Examples
    --------
    >>> import tempfile
    >>> spec = default_specs(tiles="34TCT", dates=["2023-08-10"])[0]
    >>> path = make_product(tempfile.mkdtemp(), spec, scale=61, bands=["B04"])
    >>> path.name
    'S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346.SAFE'
    """
    scale = check_scale(scale)
    if block_size is not None and int(block_size) < 32:
        raise ValueError(f"block_size must be at least 32 (GDAL's minimum), got {block_size!r}")
    if checksum not in ("MD5", "SHA3-256"):
        raise ValueError(f"checksum must be 'MD5' or 'SHA3-256', got {checksum!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    chosen = _select_bands(spec, bands)
    outputs = [
        _Output(b, res, spec.band_path(b, res), chosen is None or b in chosen)
        for b, res in spec.band_files(all_resolutions)
    ]
    if chosen is not None:  # bands only at a non-listed resolution: nothing to write
        missing = chosen - {o.band for o in outputs}
        if missing:
            raise ValueError(f"band(s) {', '.join(sorted(missing))} need all_resolutions=True")
    footprint, centre = _footprint(spec)

    safe_name = f"{spec.name}.SAFE"
    final = root / (f"{spec.name}.zip" if zipped else safe_name)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=root))
    try:
        safe = work / safe_name
        granule = safe / "GRANULE" / spec.granule_name
        granule.mkdir(parents=True)
        stats = _write_rasters(spec, safe, outputs, scale, block_size)

        sizes = {r: TILE_SIZE_10M * 10 // (r * scale) for r in (10, 20, 60)}
        pixels = {r: r * scale for r in (10, 20, 60)}
        (granule / "MTD_TL.xml").write_text(
            md.tile_metadata(spec, sizes, pixels, spec.origin, centre, stats), encoding="utf-8"
        )
        mtd_name = f"MTD_MSI{spec.level}.xml"
        image_files = [o.relpath.removesuffix(".jp2") for o in outputs]
        (safe / mtd_name).write_text(
            md.product_metadata(spec, image_files, footprint, stats), encoding="utf-8"
        )
        entries = [
            md.ManifestEntry(f"S2_Level-{spec.level[1:]}_Product_Metadata", mtd_name, "text/xml")
        ]
        entries += [
            md.ManifestEntry(_object_id(spec, o), o.relpath, "application/octet-stream")
            for o in outputs
            if o.write
        ]
        entries.append(
            md.ManifestEntry(
                f"S2_Level-{spec.level[1:]}_Tile1_Metadata",
                f"GRANULE/{spec.granule_name}/MTD_TL.xml",
                "application/xml",
            )
        )
        (safe / "manifest.safe").write_text(
            md.manifest(spec, safe, entries, footprint, checksum), encoding="utf-8"
        )
        if final.is_dir():
            shutil.rmtree(final)
        elif final.exists():
            final.unlink()
        if zipped:
            _zip_safe(safe, final)
        else:
            os.replace(safe, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _object_id(spec: ProductSpec, out: _Output) -> str:
    if spec.level == "L2A":
        return f"IMG_DATA_Band_{out.band}_{out.resolution}m_Tile1_Data"
    same_res = [b for b in L1C_BANDS if NATIVE_RESOLUTION[b] == out.resolution]
    return f"IMG_DATA_Band_{out.resolution}m_{same_res.index(out.band) + 1}_Tile1_Data"


def make_archive(
    root: str | os.PathLike[str],
    specs: Iterable[ProductSpec] | None = None,
    *,
    tiles: str | Iterable[str] = BUDAPEST_TILES,
    dates: Iterable[Any] = DEFAULT_DATES,
    levels: str | Iterable[str] = ("L2A",),
    scale: int = 30,
    bands: Iterable[str] | None = None,
    zipped: bool = False,
    block_size: int | None = None,
    all_resolutions: bool = False,
    checksum: str = "MD5",
    baselines: str | Sequence[str] | Mapping[Any, str] | None = None,
) -> list[Path]:
    """Write a synthetic archive: ``specs``, or :func:`default_specs` of tiles x dates x levels.

    Returns the product paths in spec order. Options are those of :func:`make_product`.

    Examples
    --------
    >>> import tempfile
    >>> paths = make_archive(tempfile.mkdtemp(), dates=["2023-06-01"], scale=61, bands=["B04"])
    >>> [p.name[:26] for p in paths]
    ['S2B_MSIL2A_20230601T094549', 'S2B_MSIL2A_20230601T094549']
    """
    check_scale(scale)
    if specs is None:
        specs = default_specs(tiles, dates, levels, baselines=baselines)
    return [
        make_product(
            root, spec, scale=scale, bands=bands, zipped=zipped, block_size=block_size,
            all_resolutions=all_resolutions, checksum=checksum,
        )
        for spec in specs
    ]  # fmt: skip


# --------------------------------------------------------------------------------------
# break_product
# --------------------------------------------------------------------------------------


def _find_member(names: Iterable[str], pattern: str) -> str | None:
    regex = re.compile(pattern)
    hits = sorted(n for n in names if regex.search(n))
    return hits[0] if hits else None


def _band_pattern(band: str) -> str:
    res = NATIVE_RESOLUTION[band]
    return rf"/IMG_DATA/(R{res}m/)?T\w+_\d{{8}}T\d{{6}}_{band}(_{res}m)?\.jp2$"


def _rewrite_zip(zip_path: Path, member: str, transform: Callable[[bytes], bytes | None]) -> None:
    part = zip_path.with_name(zip_path.name + ".part")
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(part, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                new = transform(data)
                if new is None:
                    continue
                data = new
            dst.writestr(info, data, compress_type=info.compress_type)
    os.replace(part, zip_path)


def _malform(data: bytes) -> bytes:
    cut = data[: int(len(data) * 0.6)]
    broken = cut + b'\n<Unclosed attr="\n'
    with contextlib.suppress(ET.ParseError):
        ET.fromstring(broken)
        raise RuntimeError("malform_xml produced a parseable document")  # pragma: no cover
    return broken


def _decode_fails(path: Path) -> bool:
    """True if the JP2 opens but a single-threaded full read raises."""
    import rasterio
    from rasterio.errors import RasterioError

    with rasterio.Env(GDAL_NUM_THREADS="1", GDAL_PAM_ENABLED="NO"):
        try:
            ds = rasterio.open(path)
        except RasterioError:
            return False
        with ds:
            try:
                ds.read(1)
            except RasterioError:
                return True
    return False


def _corrupt_jp2_bytes(data: bytes) -> bytes:
    """Overwrite a tile-part header in the middle of the codestream with 0xFF bytes."""
    soc = data.find(b"\xff\x4f\xff\x51")
    sots = []
    pos = data.find(b"\xff\x90", soc + 4)
    while pos != -1:
        sots.append(pos)
        pos = data.find(b"\xff\x90", pos + 2)
    if soc < 0 or not sots:
        raise RuntimeError("not a JPEG 2000 codestream with tile parts")
    order = sorted(range(len(sots)), key=lambda i: abs(i - len(sots) // 2))
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.jp2"
        for i in order:
            start = sots[i]
            length = min(256, len(data) - 2 - start)
            candidate = data[:start] + b"\xff" * length + data[start + length :]
            probe.write_bytes(candidate)
            if _decode_fails(probe):
                return candidate
    raise RuntimeError("could not corrupt the JP2 so that decoding fails")  # pragma: no cover


def break_product(path: str | os.PathLike[str], how: str, *, band: str = "B04") -> Path:
    """Damage a product in place, for error-handling tests.

    Parameters
    ----------
    path : path
        A ``.SAFE`` folder or ``.zip`` written by :func:`make_product`.
    how : str
        One of :data:`BREAK_MODES`:

        - ``"truncate_zip"``: cut a zipped product to half its size (no central
          directory: ``zipfile.BadZipFile``). Zips only.
        - ``"drop_mtd"``: delete ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``.
        - ``"drop_band"``: delete the native-resolution JP2 of ``band`` (the
          metadata still lists it).
        - ``"malform_xml"``: cut the MTD at 60 % and append an unclosed tag, so
          XML parsing fails.
        - ``"corrupt_jp2"``: overwrite a tile-part header in the middle of the
          ``band`` JP2 with 0xFF bytes: the file opens (header intact) but
          decoding fails. Checked before returning: a read with
          ``GDAL_NUM_THREADS=1`` raises ``RasterioIOError``. Note that GDAL's
          multi-threaded JP2OpenJPEG reads of several tiles at once may log the
          error and return zeros instead of raising.
    band : str
        Band for ``drop_band`` / ``corrupt_jp2`` (default B04).

    Returns
    -------
    pathlib.Path
        For a folder, the file deleted or damaged; for a zip, the zip itself.

    Examples
    --------
    >>> import tempfile, zipfile
    >>> spec = default_specs("34TCT", ["2023-07-06"])[0]
    >>> path = make_product(tempfile.mkdtemp(), spec, scale=61, bands=["B04"], zipped=True)
    >>> break_product(path, "truncate_zip") == path, zipfile.is_zipfile(path)
    (True, False)
    """
    path = Path(path)
    if how not in BREAK_MODES:
        raise ValueError(f"unknown break mode {how!r}; expected one of {', '.join(BREAK_MODES)}")
    band = normalize_band(band)
    is_zip = path.is_file() and zipfile.is_zipfile(path)
    if how == "truncate_zip":
        if not is_zip:
            raise ValueError(f"truncate_zip needs a zipped product, got {path}")
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.truncate(size // 2)
        return path

    mtd_pattern = r"(^|/)MTD_MSIL(1C|2A)\.xml$"
    pattern = mtd_pattern if how in ("drop_mtd", "malform_xml") else _band_pattern(band)
    if is_zip:
        with zipfile.ZipFile(path) as zf:
            member = _find_member(zf.namelist(), pattern)
    else:
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        member = _find_member(["/" + n for n in names], pattern)
        member = member[1:] if member else None
    if member is None:
        what = "MTD" if pattern == mtd_pattern else f"{band} JP2"
        raise FileNotFoundError(f"{path}: no {what} to break")

    if how in ("drop_mtd", "drop_band"):
        action: Callable[[bytes], bytes | None] = lambda data: None  # noqa: E731
    elif how == "malform_xml":
        action = _malform
    else:
        action = _corrupt_jp2_bytes
    if is_zip:
        _rewrite_zip(path, member, action)
        return path
    target = path / member
    new = action(target.read_bytes())
    if new is None:
        target.unlink()
    else:
        target.write_bytes(new)
    return target
