"""Specs of synthetic products and archives: what to write, not how.

:class:`ProductSpec` fixes one product (tile, sensing time, level, platform,
baseline, orbit, weather); :func:`default_specs` makes the specs of a realistic
archive; :func:`baseline_for` and :func:`platform_for` are the archive's rules.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...bands import L1C_BANDS, NATIVE_RESOLUTION, normalize_band
from ...mgrs import TILE_EXTENT_M, parse_tile_id, tile_epsg, tile_origin
from ._scene import SwathEdge, _to_date

__all__ = [
    "ALLOWED_SCALES",
    "BUDAPEST_TILES",
    "DEFAULT_DATES",
    "ZONE_BOUNDARY_TILES",
    "ProductSpec",
    "baseline_for",
    "check_scale",
    "default_specs",
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
