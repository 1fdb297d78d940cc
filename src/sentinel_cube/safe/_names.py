"""Parse the names ESA gives Sentinel-2 products, granule folders and band files.

Only the compact naming convention (products since December 2016, and the whole
archive after ESA's reprocessing) is understood::

    S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346.SAFE
    GRANULE/L2A_T34TCT_A033663_20230810T095256/IMG_DATA/R10m/T34TCT_20230810T094549_B04_10m.jp2

Nothing here touches files; every function returns ``None`` for a name it does
not recognise instead of raising.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "BandFileName",
    "ProductName",
    "parse_band_file",
    "parse_product_name",
    "tile_from_name",
]

_PRODUCT_RE = re.compile(
    r"(?P<mission>S2[A-Z_])_MSI(?P<level>L1C|L2A|L2AP)_(?P<sensing>\d{8}T\d{6})"
    r"_N(?P<baseline>\d{4})_R(?P<orbit>\d{3})_T(?P<tile>\d{2}[C-X][A-Z]{2})"
    r"_(?P<discriminator>\d{8}T\d{6})",
    re.IGNORECASE,
)

# A tile id inside a granule folder, product or band-file name: ``_T34TCT_`` or ``T34TCT_``.
_TILE_RE = re.compile(r"(?:^|[_/])T(\d{2}[C-X][A-Z]{2})(?=_|$|\.)")

# ``T34TCT_20230810T094549_B04`` (L1C) or ``..._B04_10m`` (L2A), extension optional.
_BAND_FILE_RE = re.compile(
    r"_(?P<band>B\d{2}|B8A|SCL|TCI|AOT|WVP)(?:_(?P<resolution>\d{2,3})m)?"
    r"(?:\.(?:jp2|tiff?))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ProductName:
    """The fields of a compact Sentinel-2 product name.

    Attributes
    ----------
    product_id : str
        The name itself, without ``.SAFE`` or ``.zip``.
    platform : str
        ``"S2A"``, ``"S2B"``, ``"S2C"``...
    processing_level : str
        ``"L1C"`` or ``"L2A"`` (``MSIL2AP`` pilot products give ``"L2A"``).
    sensing_start : datetime
        Datatake sensing start, to the second (tz-aware UTC).
    processing_baseline : str
        ``"05.09"``-style baseline (``N0509``).
    relative_orbit : int
        Relative orbit number (``R079`` -> 79).
    tile_id : str
        MGRS tile without the ``T`` (``"34TCT"``).
    """

    product_id: str
    platform: str
    processing_level: str
    sensing_start: datetime
    processing_baseline: str
    relative_orbit: int
    tile_id: str


@dataclass(frozen=True)
class BandFileName:
    """The band and resolution encoded in an image file name.

    Attributes
    ----------
    band : str
        ``"B04"``, ``"B8A"``, ``"SCL"``, ``"TCI"``, ``"AOT"`` or ``"WVP"``.
    resolution : int or None
        Resolution in metres from an ``_10m`` suffix (L2A), None without one (L1C).
    """

    band: str
    resolution: int | None


def parse_product_name(name: str) -> ProductName | None:
    """Parse a compact product name (anywhere in ``name``), or return None.

    Prefixes and suffixes such as ``esa_`` or ``.SAFE.zip`` are ignored.

    Examples
    --------
    >>> p = parse_product_name("S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346.SAFE")
    >>> p.platform, p.processing_level, p.processing_baseline, p.relative_orbit, p.tile_id
    ('S2B', 'L2A', '05.09', 79, '34TCT')
    >>> parse_product_name("holiday_photos.zip") is None
    True
    """
    match = _PRODUCT_RE.search(str(name))
    if match is None:
        return None
    try:
        sensing = datetime.strptime(match["sensing"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    baseline = match["baseline"]
    return ProductName(
        product_id=match.group(0),
        platform=match["mission"].upper(),
        processing_level=match["level"].upper()[:3],
        sensing_start=sensing,
        processing_baseline=f"{baseline[:2]}.{baseline[2:]}",
        relative_orbit=int(match["orbit"]),
        tile_id=match["tile"].upper(),
    )


def tile_from_name(name: str) -> str | None:
    """The MGRS tile id (without ``T``) in a product, granule or file name, or None.

    Examples
    --------
    >>> tile_from_name("GRANULE/L2A_T01KAB_A042640_20230821T221944")
    '01KAB'
    >>> tile_from_name("T34TCT_20230810T094549_B04.jp2")
    '34TCT'
    """
    match = _TILE_RE.search(str(name).upper())
    return match.group(1) if match else None


def parse_band_file(path: str) -> BandFileName | None:
    """The band (and resolution, for L2A) of an ``IMAGE_FILE`` entry, or None.

    Examples
    --------
    >>> parse_band_file("GRANULE/G/IMG_DATA/R20m/T34TCT_20230810T094549_SCL_20m")
    BandFileName(band='SCL', resolution=20)
    >>> parse_band_file("GRANULE/G/IMG_DATA/T34TCT_20230810T094549_B8A.jp2")
    BandFileName(band='B8A', resolution=None)
    >>> parse_band_file("GRANULE/G/QI_DATA/T34TCT_20230810T094549_CLD_60m") is None
    True
    """
    match = _BAND_FILE_RE.search(str(path).rsplit("/", 1)[-1])
    if match is None:
        return None
    resolution = match["resolution"]
    return BandFileName(match["band"].upper(), int(resolution) if resolution else None)
