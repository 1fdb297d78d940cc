"""Geometry of Sentinel-2 MGRS tiles: UTM CRS and upper-left corner of a tile id.

Sentinel-2 tiles follow the MGRS 100 km grid but are 109.8 km wide, so that
neighbouring tiles overlap by 9.8 km. The upper-left corner of a tile is the
north-west corner of its 100 km square, give or take a few tens of metres that
differ from tile to tile. :func:`tile_origin` gives that rule only: it lays out the
tiles of the synthetic archive and is never used to read a real product, whose grid
comes from its ``MTD_TL.xml`` or, without one, from its band files.

The 100 km square arithmetic is standard MGRS; no maintained Python package gives
the Sentinel-2 tile corner, so it is written out here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pyproj import Transformer

__all__ = ["TILE_EXTENT_M", "parse_tile_id", "tile_epsg", "tile_origin"]

#: Side of a Sentinel-2 tile in metres (10980 px at 10 m).
TILE_EXTENT_M = 109_800

_TILE_RE = re.compile(r"^T?(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")
_LAT_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_COLUMN_SETS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")  # indexed by zone % 3
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"


def parse_tile_id(tile_id: str) -> tuple[int, str, str, str]:
    """Split ``"34TCT"`` (or ``"T34TCT"``) into ``(34, "T", "C", "T")``.

    Raises
    ------
    ValueError
        If ``tile_id`` is not an MGRS tile id.
    """
    match = _TILE_RE.match(str(tile_id).strip().upper())
    if not match:
        raise ValueError(f"not an MGRS tile id: {tile_id!r} (expected e.g. '34TCT')")
    zone, band, col, row = match.groups()
    if not 1 <= int(zone) <= 60:
        raise ValueError(f"not an MGRS tile id: {tile_id!r} (UTM zone must be 1..60)")
    return int(zone), band, col, row


def tile_epsg(tile_id: str) -> int:
    """EPSG code of the WGS 84 / UTM zone of a tile (326zz north, 327zz south).

    Examples
    --------
    >>> tile_epsg("34TCT"), tile_epsg("T22HBD")
    (32634, 32722)
    """
    zone, band, _, _ = parse_tile_id(tile_id)
    return (32600 if band >= "N" else 32700) + zone


@lru_cache(maxsize=4096)
def _square_southwest(tile_id: str) -> tuple[float, float]:
    zone, band, col, row = parse_tile_id(tile_id)
    columns = _COLUMN_SETS[zone % 3]
    if col not in columns:
        raise ValueError(f"not an MGRS tile id: {tile_id!r} (column {col} not used in zone {zone})")
    easting = (columns.index(col) + 1) * 100_000.0
    shift = 5 if zone % 2 == 0 else 0
    row_northing = ((_ROW_LETTERS.index(row) - shift) % 20) * 100_000.0
    # The row letter repeats every 2,000 km: pick the repeat whose square centre
    # falls in (or closest to) the latitude band.
    south = -80.0 + 8.0 * _LAT_BANDS.index(band)
    north = south + (12.0 if band == "X" else 8.0)
    to_lonlat = Transformer.from_crs(tile_epsg(tile_id), 4326, always_xy=True)
    best: tuple[float, float] | None = None
    for k in range(5):
        northing = row_northing + k * 2_000_000.0
        _, lat = to_lonlat.transform(easting + 50_000.0, northing + 50_000.0)
        distance = max(south - lat, lat - north, 0.0)
        if best is None or distance < best[0]:
            best = (distance, northing)
    assert best is not None
    return easting, best[1]


def tile_origin(tile_id: str) -> tuple[float, float]:
    """Upper-left corner ``(x, y)`` of a Sentinel-2 tile in its UTM CRS.

    The north-west corner of the 100 km MGRS square raised by 40 m (the most
    common Sentinel-2 convention). Real tiles can differ from it by a few tens of
    metres (``33TYN`` starts 40 m west of it): use it to lay out synthetic tiles,
    never as the grid of a real product.

    Examples
    --------
    >>> tile_origin("34TCT")
    (300000.0, 5300040.0)
    """
    key = str(tile_id).strip().upper().removeprefix("T")
    easting, northing = _square_southwest(key)
    return easting, northing + 100_040.0
