"""The synthetic Sentinel-2 scene: a documented, bit-exact pixel function.

Every pixel of a synthetic product is a pure function of *(band, date, x, y)*,
where *x, y* are the pixel-centre coordinates in the tile's own UTM CRS (metres,
floored to whole metres before use). A test can therefore compute the expected
value of any pixel without reading the generator's output::

    reflectance(band, date, x, y)   -> float64 reflectance (DN / 10000 of L2A at baseline < 04.00)
    scene_class(date, x, y)         -> uint8 Scene Classification (SCL) code
    expected_dn(band, spec, x, y)   -> uint16 DN written in the product ``spec``

All arithmetic on coordinates is integer (``int64``) and the only random source
is the integer hash *splitmix64*, so results are identical on every platform.
Reflectances are computed in integer *units* of 1e-4 and only divided by 10000 at
the end; ``expected_dn = units + 1000`` for processing baselines >= 04.00 (whose
metadata carry ``BOA_ADD_OFFSET``/``RADIO_ADD_OFFSET`` = -1000) and ``units``
before, and 0 where the product has no data.

The scene, layer by layer
-------------------------
**Ground** (fixed in space, shared by every date). Map coordinates are cut into
1000 m *fields* (``cx = x // 1000``, ``cy = y // 1000``). A smooth *region*
field (value noise on a 16 384 m lattice, sampled at the field centre) sets the
local share of bare/urban fields (5-40 %), forests (12-37 %) and small lakes
(1.5 %); the remaining fields are early crops (green April-June, peak day 145)
or late crops (green June-September, peak day 205), chosen by the field's hash.
Each field also gets a brightness factor in [224, 288] / 256. North-south rivers
1 km wide meander (triangle wave, period 36 km, amplitude 4 km) around
``x = 352 000 m (mod 262 144 m)``; in zone 34 one runs through Budapest like
the Danube. Signatures (units of 1e-4, bands B01..B12):

=========== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ====
class        B01  B02  B03  B04  B05  B06  B07  B08  B8A  B09  B10  B11  B12
=========== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ====
green veg    250  300  600  350 1000 2800 3400 3800 3900 1200   10 2000 1000
dormant veg  450  550  750  900 1150 1350 1450 1550 1650  600   10 2600 1900
bare/urban   900 1000 1200 1400 1600 1750 1850 2000 2100  800   15 2800 2400
water        700  600  500  300  200  150  130  100   90   50    5   30   20
snow        8000 8200 8000 7800 7600 7300 7000 6800 6500 4000   20  600  400
thick cloud 5500 5600 5600 5700 5800 5900 6000 6100 6100 3500 1800 4500 3200
=========== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ==== ====

Vegetation is ``(dormant * (256 - g) + green * g) // 256`` with a greenness
``g`` in [0, 256] that is a triangle function of the day of year per field kind
(forests never drop below g = 100); the field value is then ``sig * factor >> 8``.
This is the seasonal signal: NIR of crop fields rises and falls through the year.

**Weather** (per date). Three fields of two-octave integer value noise
``F = (3 * N(big) + N(small)) >> 2`` in [0, 1023] (bilinear interpolation of
hashed lattice values, power-of-two cells), seeded by the date (or by
``cloud_seed``): clouds (8192 m / 2048 m cells), thin cirrus (16 384 / 4096 m)
and snow (32 768 / 4096 m). A threshold calibrated on a fixed sample of the
noise turns a target fraction into a threshold, so a *cloud_fraction* of 0.3
covers about 30 % of a large area with clouds (SCL 8 + 9; a single 110 km tile
varies around that). Pixels with ``F`` in the top ``0.55 * cloud_fraction`` are
thick clouds (SCL 9, pure cloud signature); the rest of the cloudy area is
medium-probability cloud (SCL 8), blended with the ground by an opacity rising
from 64/256 to 240/256 towards the core. Thin cirrus (SCL 10, +600 units, B10
+900) covers a further ``0.15 * cloud_fraction + 1 %`` on three cloudy dates out
of four. Cloud shadows (SCL 3, ground x 110/256) lie 1.5 km west and 2.4 km
north of thick clouds (sun in the south-east at ~09:45 UTC). Snow (SCL 11, high
visible, low SWIR) exists only from 1 December to the end of February, on land
(15-60 % of it by date). With no explicit fraction, each date draws its cloud
fraction from :data:`DEFAULT_CLOUD_FRACTIONS` by the hash of the date, so some
dates are clear and others overcast.

**Texture**. Every band adds a static per-pixel term (a multiplicative re-hash
per band of the hash of ``(x, y)``; +-120 units on vegetation, +-200 bare, +-25
water, +-150 cloud, +-100 snow) and a small per-date term (-8..+7 units), so
neighbouring pixels differ and the same ground differs slightly between dates.

**Level-1C** values are top-of-atmosphere: the L2A units plus a per-band path
radiance (B01 +900, B02 +600, B03 +350, B04 +200, B05 +150, B06 +100, B07 +80,
B08/B8A +60, B09 +30, B11 +20, B12 +10). Units are clipped to [1, 64534] so a
valid DN is never 0 (no data) nor 65535 (saturated).

**Scene classification** at a point: 9/8 thick/medium cloud, else 10 cirrus,
else 3 shadow, else 11 snow, else the ground class: 6 water, 5 bare or dormant
vegetation (g < 90), 4 green vegetation; 0.4 % of ground pixels (by hash) are 7
unclassified. Classes 1 (saturated) and 2 (dark features) never occur. SCL is
point-sampled at the centres of its own (20 m) pixels, so at any point it agrees
with the reflectance of every band evaluated at that point.

Consistency: the ground and the weather depend on map coordinates only, never
on the tile, so overlapping tiles of the *same UTM zone* see identical values at
identical points on the same date. Across a UTM zone boundary the coordinates
differ and so does the synthetic pattern (each zone is its own synthetic world;
only geometry and validity are comparable there).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ...bands import SPECTRAL_BANDS, normalize_band
from ._noise import _S40, _TABLE_LIMIT, _field, _hash2, _seed, _uniform, _value_noise

__all__ = [
    "DEFAULT_CLOUD_FRACTIONS",
    "SwathEdge",
    "cloud_fraction_for",
    "expected_dn",
    "reflectance",
    "scene_class",
]


@lru_cache(maxsize=1)
def _field_quantiles() -> NDArray[np.int64]:
    """Sorted sample of :func:`_field` used to turn a fraction into a threshold."""
    n = 400
    xs = (123_457 + 997 * np.arange(n, dtype=np.int64))[None, :]
    ys = (4_567_891 + 1_009 * np.arange(n, dtype=np.int64))[:, None]
    values = [_field(_seed(99, k), xs, ys, *_CLOUD_CELLS).ravel() for k in range(4)]
    return np.sort(np.concatenate(values))


def _threshold(fraction: float) -> int:
    """Field threshold ``t`` so that about ``fraction`` of the area has ``F >= t``."""
    if fraction <= 0.0:
        return 1 << 20  # above every value: nothing
    if fraction >= 1.0:
        return -1
    q = _field_quantiles()
    return int(q[min(len(q) - 1, int(round((1.0 - fraction) * (len(q) - 1))))])


# --------------------------------------------------------------------------------------
# Spectral signatures (units of 1e-4 reflectance), bands in SPECTRAL_BANDS order
# --------------------------------------------------------------------------------------

_N_BANDS = len(SPECTRAL_BANDS)
_BAND_INDEX = {band: i for i, band in enumerate(SPECTRAL_BANDS)}

_VEG_GREEN = (250, 300, 600, 350, 1000, 2800, 3400, 3800, 3900, 1200, 10, 2000, 1000)
_VEG_DORMANT = (450, 550, 750, 900, 1150, 1350, 1450, 1550, 1650, 600, 10, 2600, 1900)
_BARE = (900, 1000, 1200, 1400, 1600, 1750, 1850, 2000, 2100, 800, 15, 2800, 2400)
_WATER = (700, 600, 500, 300, 200, 150, 130, 100, 90, 50, 5, 30, 20)
_SNOW = np.array((8000, 8200, 8000, 7800, 7600, 7300, 7000, 6800, 6500, 4000, 20, 600, 400))
_CLOUD = np.array((5500, 5600, 5600, 5700, 5800, 5900, 6000, 6100, 6100, 3500, 1800, 4500, 3200))
_CIRRUS_ADD = np.array((600, 600, 600, 600, 600, 600, 600, 600, 600, 500, 900, 400, 300))
_TOA_ADD = np.array((900, 600, 350, 200, 150, 100, 80, 60, 60, 30, 0, 20, 10))

# Ground kinds (per 1000 m field)
_CROP_EARLY, _CROP_LATE, _FOREST, _BARE_KIND, _WATER_KIND = range(5)
#: Texture amplitude (units) by final SCL class 0..11.
_TEXTURE_AMP = np.array((0, 0, 60, 60, 120, 200, 25, 120, 150, 150, 120, 100), dtype=np.int64)

_FIELD_M = 1000  # field size, metres
_REGION_CELL = 14  # region noise: 2**14 = 16384 m lattice
_CLOUD_CELLS = (13, 11)  # 8192 m / 2048 m
_CIRRUS_CELLS = (14, 12)  # 16384 m / 4096 m
_SNOW_CELLS = (15, 12)  # 32768 m / 4096 m
_RIVER_PERIOD, _RIVER_AMPLITUDE, _RIVER_HALF_WIDTH = 36_000, 4_000, 500
_RIVER_SHIFT, _RIVER_X = 18, 352_000  # rivers every 2**18 = 262144 m, one at x = 352 km
_SHADOW_DX, _SHADOW_DY = 1_500, -2_400  # cloud position relative to its shadow
_UNCLASSIFIED_TOP24 = 67_109  # hash top-24-bit threshold: 0.4 % of ground pixels

_SEED_REGION = _seed(1, 1)
_SEED_FIELDS = _seed(1, 2)
_SEED_FIELDS2 = _seed(1, 3)
_SEED_UNCLASSIFIED = _seed(1, 4)
_SEED_TEXTURE = _seed(1, 5)

#: Cloud fractions a date draws from (by the hash of its date) when none is given.
DEFAULT_CLOUD_FRACTIONS: tuple[float, ...] = (0.0, 0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.6, 0.85)


def _greenness(kind: int, doy: int) -> int:
    """Greenness in [0, 256] of a vegetation kind on a day of year (triangle functions)."""
    if kind == _CROP_EARLY:
        return max(0, 256 - (256 * abs(doy - 145)) // 85)
    if kind == _CROP_LATE:
        return max(0, 256 - (256 * abs(doy - 205)) // 70)
    if kind == _FOREST:
        return 100 + max(0, 156 - (156 * abs(doy - 185)) // 110)
    return 0


# --------------------------------------------------------------------------------------
# Dates and per-date conditions
# --------------------------------------------------------------------------------------


class _SpecLike(Protocol):
    sensing_time: dt.datetime
    level: str
    cloud_fraction: float | None
    cloud_seed: int | None
    valid_edge: SwathEdge | None

    @property
    def offset(self) -> int: ...


DateLike = dt.date | dt.datetime | str | np.datetime64


def _to_date(value: Any) -> dt.date:
    if hasattr(value, "sensing_time"):
        value = value.sensing_time
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return dt.date.fromisoformat(str(value.astype("datetime64[D]")))
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            pass
    raise TypeError(f"expected a date, datetime, 'YYYY-MM-DD' string or ProductSpec, got {value!r}")


def cloud_fraction_for(date: DateLike) -> float:
    """Default cloud fraction of a date, drawn from :data:`DEFAULT_CLOUD_FRACTIONS`.

    Examples
    --------
    >>> cloud_fraction_for("2023-08-10") in DEFAULT_CLOUD_FRACTIONS
    True
    """
    ordinal = _to_date(date).toordinal()
    return DEFAULT_CLOUD_FRACTIONS[_seed(7, ordinal) % len(DEFAULT_CLOUD_FRACTIONS)]


@dataclass(frozen=True)
class _Conditions:
    doy: int
    cloud_seed: int
    noise_seed: int
    cloud_t: int
    cloud_t9: int
    alpha_lut: NDArray[np.int64]  # cloud opacity (0..256) by cloud field value 0..1023
    cirrus_t: int
    snow_t: int
    ground_sig: NDArray[np.int64]  # (5, 13) units per ground kind, greenness applied
    ground_scl: NDArray[np.int64]  # (5,) SCL class per ground kind


@lru_cache(maxsize=256)
def _conditions(date: dt.date, cloud_fraction: float | None, cloud_seed: int | None) -> _Conditions:
    ordinal = date.toordinal()
    doy = date.timetuple().tm_yday
    fraction = cloud_fraction_for(date) if cloud_fraction is None else float(cloud_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"cloud_fraction must be within [0, 1], got {cloud_fraction!r}")
    seed = _seed(11, ordinal) if cloud_seed is None else _seed(13, int(cloud_seed))
    cirrus_on = fraction > 0.0 and seed % 4 != 0
    cirrus_fraction = min(0.3, 0.15 * fraction + 0.01) if cirrus_on else 0.0
    winter = doy <= 59 or doy >= 335
    snow_fraction = (0.15, 0.3, 0.45, 0.6)[_seed(17, ordinal) % 4] if winter else 0.0

    sig = np.zeros((5, _N_BANDS), dtype=np.int64)
    scl = np.zeros(5, dtype=np.int64)
    green, dormant = np.array(_VEG_GREEN), np.array(_VEG_DORMANT)
    for kind in (_CROP_EARLY, _CROP_LATE, _FOREST):
        g = _greenness(kind, doy)
        sig[kind] = (dormant * (256 - g) + green * g) // 256
        scl[kind] = 4 if g >= 90 else 5
    sig[_BARE_KIND], scl[_BARE_KIND] = _BARE, 5
    sig[_WATER_KIND], scl[_WATER_KIND] = _WATER, 6
    cloud_t, cloud_t9 = _threshold(fraction), _threshold(0.55 * fraction)
    f = np.arange(1024, dtype=np.int64)
    span = max(cloud_t9 - cloud_t, 1)
    alpha = np.where(f >= cloud_t9, 256, 64 + 176 * (f - cloud_t) // span)
    alpha_lut = np.where(f >= cloud_t, alpha, 0)
    return _Conditions(
        doy=doy,
        cloud_seed=seed,
        noise_seed=_seed(19, ordinal),
        cloud_t=cloud_t,
        cloud_t9=cloud_t9,
        alpha_lut=alpha_lut,
        cirrus_t=_threshold(cirrus_fraction),
        snow_t=_threshold(snow_fraction),
        ground_sig=sig,
        ground_scl=scl,
    )


# --------------------------------------------------------------------------------------
# Swath edge (valid-data half plane)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwathEdge:
    """A straight swath edge in map coordinates: one side of it has no data.

    The edge is the line through ``(x0, y0)`` and ``(x1, y1)`` (whole metres in
    the tile's UTM CRS; the points are reordered north first). ``keep="east"``
    keeps the pixels whose centre lies on the line or east of it, ``"west"``
    those strictly west of it, so two edges that differ only by ``keep``
    partition any tile exactly. Horizontal lines are not allowed.

    Examples
    --------
    >>> edge = SwathEdge(330000, 5300040, 315000, 5190240, keep="east")
    >>> edge.valid([320000, 340000], [5250000, 5250000]).tolist()
    [False, True]
    """

    x0: int
    y0: int
    x1: int
    y1: int
    keep: str = "east"

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = (int(round(float(v))) for v in (self.x0, self.y0, self.x1, self.y1))
        if y0 == y1:
            raise ValueError("a SwathEdge must not be horizontal (y0 == y1)")
        if y0 < y1:
            x0, y0, x1, y1 = x1, y1, x0, y0
        keep = str(self.keep).lower()
        if keep not in ("east", "west"):
            raise ValueError(f"SwathEdge.keep must be 'east' or 'west', got {self.keep!r}")
        for name, value in zip(
            ("x0", "y0", "x1", "y1", "keep"), (x0, y0, x1, y1, keep), strict=True
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def from_lonlat(
        cls, lon0: float, lat0: float, lon1: float, lat1: float, epsg: int, keep: str = "east"
    ) -> SwathEdge:
        """The edge through two (lon, lat) points, expressed in the CRS ``epsg``."""
        from pyproj import Transformer

        to_map = Transformer.from_crs(4326, epsg, always_xy=True)
        x0, y0 = to_map.transform(lon0, lat0)
        x1, y1 = to_map.transform(lon1, lat1)
        return cls(x0, y0, x1, y1, keep=keep)

    def valid(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.bool_]:
        """True where the point ``(x, y)`` (floored to whole metres) has data."""
        xi, yi = _coords(x, y)
        cross = (self.x1 - self.x0) * (yi - self.y0) - (self.y1 - self.y0) * (xi - self.x0)
        valid = cross >= 0 if self.keep == "east" else cross < 0
        return valid.reshape(_shape(x, y))

    def polygon(self, bounds: tuple[float, float, float, float]) -> Any:
        """The part of the box ``(left, bottom, right, top)`` that has data (shapely)."""
        from shapely.geometry import Polygon, box

        dx, dy = self.x1 - self.x0, self.y1 - self.y0
        norm = math.hypot(dx, dy)
        ux, uy = dx / norm, dy / norm
        nx, ny = (-uy, ux) if self.keep == "east" else (uy, -ux)
        far = 10.0 * (abs(bounds[2] - bounds[0]) + abs(bounds[3] - bounds[1]) + norm)
        far += abs(self.x0 - bounds[0]) + abs(self.y0 - bounds[1])
        a = (self.x0 - ux * far, self.y0 - uy * far)
        b = (self.x0 + ux * far, self.y0 + uy * far)
        half = Polygon(
            [a, b, (b[0] + nx * far, b[1] + ny * far), (a[0] + nx * far, a[1] + ny * far)]
        )
        return box(*bounds).intersection(half)


# --------------------------------------------------------------------------------------
# Scene evaluation
# --------------------------------------------------------------------------------------


def _shape(x: ArrayLike, y: ArrayLike) -> tuple[int, ...]:
    return np.broadcast_shapes(np.shape(x), np.shape(y))


def _coords(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Whole-metre int64 coordinates, at least 1-d (0-d arithmetic would warn on overflow)."""
    xa, ya = np.atleast_1d(x), np.atleast_1d(y)
    xi = xa.astype(np.int64) if xa.dtype.kind in "iu" else np.floor(xa).astype(np.int64)
    yi = ya.astype(np.int64) if ya.dtype.kind in "iu" else np.floor(ya).astype(np.int64)
    return xi, yi


def _ground_cells(
    gx: NDArray[np.int64], gy: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Kind and brightness factor of the 1000 m fields ``(gx, gy)`` (elementwise)."""
    centre_x, centre_y = gx * _FIELD_M + 500, gy * _FIELD_M + 500
    region = _value_noise(_SEED_REGION, centre_x, centre_y, _REGION_CELL)
    u = _uniform(_SEED_FIELDS, gx, gy, 1000)
    v = _uniform(_SEED_FIELDS2, gx, gy, 1 << 20)
    bare = 50 + region * 350 // 1023
    lake = bare + 15
    forest = lake + 120 + (1023 - region) * 250 // 1023
    crop = np.where(v % 2 == 0, _CROP_EARLY, _CROP_LATE)
    kind = np.where(u < forest, _FOREST, crop)
    kind = np.where(u < lake, _WATER_KIND, kind)
    kind = np.where(u < bare, _BARE_KIND, kind)
    factor = 224 + (v >> 1) % 65
    return kind, factor


def _cell_lookup(cx: NDArray[np.int64], cy: NDArray[np.int64]) -> tuple[NDArray, NDArray]:
    if cx.size and cy.size:
        x0, x1 = int(cx.min()), int(cx.max())
        y0, y1 = int(cy.min()), int(cy.max())
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= _TABLE_LIMIT:
            gx = np.arange(x0, x1 + 1, dtype=np.int64)[None, :]
            gy = np.arange(y0, y1 + 1, dtype=np.int64)[:, None]
            kind, factor = _ground_cells(gx, gy)
            ix, iy = cx - x0, cy - y0
            return kind[iy, ix], factor[iy, ix]
    return _ground_cells(cx, cy)


class _Scene:
    """All layers of the scene at a set of points; bands are derived cheaply from it.

    Points are ``np.broadcast(x, y)``; a separable grid (``x`` of shape (1, W),
    ``y`` of shape (H, 1)) is evaluated fastest. Layers that are empty on the
    whole set (no cloud, no snow...) are stored as ``None`` and skipped.
    """

    def __init__(self, cond: _Conditions, x: ArrayLike, y: ArrayLike) -> None:
        xi, yi = _coords(x, y)
        shape = np.broadcast_shapes(xi.shape, yi.shape)
        self.cond, self.xi, self.yi, self.shape = cond, xi, yi, shape

        kind, factor = _cell_lookup(xi // _FIELD_M, yi // _FIELD_M)
        s = (yi % _RIVER_PERIOD) * (4 * _RIVER_AMPLITUDE) // _RIVER_PERIOD
        meander = np.abs(s - 2 * _RIVER_AMPLITUDE) - _RIVER_AMPLITUDE
        spacing = 1 << _RIVER_SHIFT
        d = (xi - meander - _RIVER_X) & (spacing - 1)
        river = (d < _RIVER_HALF_WIDTH) | (d >= spacing - _RIVER_HALF_WIDTH)
        self.kind = np.broadcast_to(np.where(river, _WATER_KIND, kind), shape)
        self.factor = np.broadcast_to(np.where(river, 256, factor), shape)

        def some(mask: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
            mask = np.broadcast_to(mask, shape)
            return mask if mask.any() else None

        self.alpha: NDArray[np.int64] | None = None
        self.shadow = self.cirrus = self.snow = None
        cloud = None
        if cond.cloud_t <= 1023:
            f = _field(cond.cloud_seed, xi, yi, *_CLOUD_CELLS)
            alpha = np.broadcast_to(cond.alpha_lut[f], shape)
            if alpha.any():
                self.alpha, cloud = alpha, alpha > 0
            shifted = _field(cond.cloud_seed, xi + _SHADOW_DX, yi + _SHADOW_DY, *_CLOUD_CELLS)
            shadow = shifted >= cond.cloud_t9
            self.shadow = some(shadow & ~cloud if cloud is not None else shadow)
        if cond.cirrus_t <= 1023:
            g = _field(_seed(cond.cloud_seed, 2), xi, yi, *_CIRRUS_CELLS)
            cirrus = g >= cond.cirrus_t
            self.cirrus = some(cirrus & ~cloud if cloud is not None else cirrus)
        if cond.snow_t <= 1023:
            sn = _field(_seed(cond.noise_seed, 3), xi, yi, *_SNOW_CELLS)
            self.snow = some((sn >= cond.snow_t) & (self.kind != _WATER_KIND))

        cls = cond.ground_scl[self.kind]
        h = _hash2(_SEED_UNCLASSIFIED, xi, yi) >> _S40
        cls = np.where(h < np.uint64(_UNCLASSIFIED_TOP24), 7, cls)
        if self.snow is not None:
            cls = np.where(self.snow, 11, cls)
        if self.shadow is not None:
            cls = np.where(self.shadow, 3, cls)
        if self.cirrus is not None:
            cls = np.where(self.cirrus, 10, cls)
        if self.alpha is not None:
            cls = np.where(self.alpha == 256, 9, np.where(self.alpha > 0, 8, cls))
        self.scl = np.broadcast_to(cls, shape).astype(np.uint8)
        amp = _TEXTURE_AMP[self.scl]
        self._amp = amp
        self._span = (2 * amp + 1).view(np.uint64)
        self._texture_hash = _hash2(_SEED_TEXTURE, xi, yi)

    def units(self, band: str, level: str = "L2A") -> NDArray[np.int64]:
        """Reflectance of ``band`` in integer units of 1e-4 at every point."""
        b = _BAND_INDEX[band]
        cond = self.cond
        value = (np.take(cond.ground_sig[:, b], self.kind) * self.factor) >> 8
        if self.snow is not None:
            value = np.where(self.snow, _SNOW[b], value)
        if self.shadow is not None:
            value = np.where(self.shadow, (value * 110) >> 8, value)
        if self.cirrus is not None:
            value = np.where(self.cirrus, value + _CIRRUS_ADD[b], value)
        if self.alpha is not None:
            value = (value * (256 - self.alpha) + _CLOUD[b] * self.alpha) >> 8
        # per band: multiplicative re-hash of the pixel hash (odd constants, bijective)
        h = self._texture_hash * np.uint64(_seed(_SEED_TEXTURE, b) | 1)
        texture = (((h >> _S40) * self._span) >> np.uint64(24)).view(np.int64) - self._amp
        daily = ((h * np.uint64(cond.noise_seed | 1)) >> np.uint64(60)).view(np.int64) - 8
        value = value + texture + daily
        if level == "L1C":
            value = value + _TOA_ADD[b]
        return np.clip(value, 1, 64534)


def _spec_options(date: Any) -> tuple[float | None, int | None, SwathEdge | None, str | None]:
    if hasattr(date, "sensing_time"):
        return (
            getattr(date, "cloud_fraction", None),
            getattr(date, "cloud_seed", None),
            getattr(date, "valid_edge", None),
            getattr(date, "level", None),
        )
    return None, None, None, None


def _scene_for(
    date: Any, x: ArrayLike, y: ArrayLike, cloud_fraction: float | None, cloud_seed: int | None
) -> tuple[_Scene, SwathEdge | None, str | None]:
    spec_fraction, spec_seed, edge, level = _spec_options(date)
    fraction = spec_fraction if cloud_fraction is None else cloud_fraction
    seed = spec_seed if cloud_seed is None else cloud_seed
    cond = _conditions(_to_date(date), None if fraction is None else float(fraction), seed)
    return _Scene(cond, x, y), edge, level


def _band_name(band: str) -> str:
    name = normalize_band(band)
    if name not in _BAND_INDEX:
        raise ValueError(
            f"{name} is not a spectral band with a reflectance (expected one of "
            f"{', '.join(SPECTRAL_BANDS)})"
        )
    return name


def reflectance(
    band: str,
    date: DateLike | _SpecLike,
    x: ArrayLike,
    y: ArrayLike,
    *,
    level: str | None = None,
    cloud_fraction: float | None = None,
    cloud_seed: int | None = None,
) -> NDArray[np.float64]:
    """Reflectance of ``band`` on ``date`` at map points ``(x, y)``, quantised to 1e-4.

    Parameters
    ----------
    band : str
        Spectral band (``"B04"``, ``"B8A"``...).
    date : date, datetime, str or ProductSpec
        Acquisition date. A :class:`~sentinel_cube.testing.ProductSpec` also
        supplies its level, cloud options and swath edge (NaN where it has no data).
    x, y : array_like
        Pixel-centre coordinates in the tile's UTM CRS (broadcast together,
        floored to whole metres).
    level : {"L2A", "L1C"}, optional
        Bottom- or top-of-atmosphere; default the spec's level or ``"L2A"``.
    cloud_fraction, cloud_seed : optional
        Override the date's weather (see the module docstring).

    Returns
    -------
    numpy.ndarray of float64
        ``units / 10000``: exactly the DN of a baseline < 04.00 product / 10000.

    Examples
    --------
    >>> r = reflectance("B08", "2023-07-16", [352150.0], [5262150.0], cloud_fraction=0.0)
    >>> r.dtype, r.shape
    (dtype('float64'), (1,))
    """
    name = _band_name(band)
    scene, edge, spec_level = _scene_for(date, x, y, cloud_fraction, cloud_seed)
    units = scene.units(name, (level or spec_level or "L2A").upper())
    out = units / 10000.0
    if edge is not None:
        out = np.where(np.broadcast_to(edge.valid(x, y), out.shape), out, np.nan)
    return out.reshape(_shape(x, y))


def scene_class(
    date: DateLike | _SpecLike,
    x: ArrayLike,
    y: ArrayLike,
    *,
    cloud_fraction: float | None = None,
    cloud_seed: int | None = None,
) -> NDArray[np.uint8]:
    """Scene Classification (SCL) code at map points ``(x, y)`` on ``date``.

    With a ProductSpec as ``date``, points outside its valid area are 0 (no data).

    Examples
    --------
    >>> import numpy as np
    >>> c = scene_class("2023-07-16", np.arange(300150, 409800, 300), 5262150)
    >>> set(np.unique(c).tolist()) <= set(range(1, 12))
    True
    """
    scene, edge, _ = _scene_for(date, x, y, cloud_fraction, cloud_seed)
    out = scene.scl
    if edge is not None:
        out = np.where(np.broadcast_to(edge.valid(x, y), out.shape), out, 0).astype(np.uint8)
    return out.reshape(_shape(x, y))


def expected_dn(band: str, spec: _SpecLike, x: ArrayLike, y: ArrayLike) -> NDArray:
    """DN that the product ``spec`` holds for ``band`` at map points ``(x, y)``.

    ``round(reflectance * 10000) + offset`` where the offset is 1000 for
    processing baselines >= 04.00 (metadata ``*_ADD_OFFSET`` = -1000) and 0
    before; 0 outside the valid area. ``band="SCL"`` gives the uint8 class codes.

    Examples
    --------
    >>> from sentinel_cube.testing import ProductSpec
    >>> spec = ProductSpec("34TCT", "2023-08-10T09:45:49.024Z", baseline="05.09")
    >>> dn = expected_dn("B04", spec, [352150.0], [5262150.0])
    >>> bool(dn[0] == round(reflectance("B04", spec, [352150.0], [5262150.0])[0] * 1e4) + 1000)
    True
    """
    if normalize_band(band) == "SCL":
        return scene_class(spec, x, y)
    name = _band_name(band)
    scene, edge, level = _scene_for(spec, x, y, None, None)
    dn = scene.units(name, (level or "L2A").upper()) + int(spec.offset)
    if edge is not None:
        dn = np.where(np.broadcast_to(edge.valid(x, y), dn.shape), dn, 0)
    return dn.astype(np.uint16).reshape(_shape(x, y))
