"""The product metadata of a Sentinel-2 product: ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``.

Identity, times, processing baseline, per-band radiometry (offsets, quantification,
special values), the footprint and the image-content percentages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..bands import SPECTRAL_BANDS, normalize_band
from ._xml import (
    _DN_MAX,
    _RELATIVE_ORBITS,
    MetadataError,
    _float,
    _Index,
    _int,
    _required,
    _time,
    local_name,
    parse_xml,
)

__all__ = ["ProductMetadata", "parse_product_metadata"]


@dataclass(frozen=True)
class ProductMetadata:
    """Values of a product-level ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``.

    Attributes
    ----------
    product_uri : str or None
        ``PRODUCT_URI`` (with ``.SAFE``) if present.
    platform : str
        ``"S2A"``... from ``SPACECRAFT_NAME``.
    processing_level : str
        ``"L1C"`` or ``"L2A"``.
    product_type : str
        ``PRODUCT_TYPE`` (``"S2MSI2A"``).
    processing_baseline : str
        ``PROCESSING_BASELINE`` (``"05.09"``).
    sensing_start, generation_time : datetime
        ``PRODUCT_START_TIME`` and ``GENERATION_TIME`` (None if absent), tz-aware UTC.
    relative_orbit : int
        ``SENSING_ORBIT_NUMBER``.
    orbit_direction : str or None
        ``SENSING_ORBIT_DIRECTION``, upper case.
    image_files : tuple of str
        The ``IMAGE_FILE`` entries (relative, without extension), in document order.
    image_format : str or None
        The ``imageFormat`` attribute of the granule (``"JPEG2000"``, ``"GeoTIFF"``).
    footprint : tuple of (lon, lat)
        ``EXT_POS_LIST`` of the global footprint, reordered to (lon, lat).
    quantification : float
        ``QUANTIFICATION_VALUE`` (L1C) or ``BOA_QUANTIFICATION_VALUE`` (L2A).
    offsets : Mapping[str, float]
        ``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` by band; empty before baseline 04.00.
    nodata, saturated : int
        ``Special_Values`` NODATA and SATURATED (0 and 65535 when absent).
    cloud_cover : float or None
        ``Cloud_Coverage_Assessment``.
    percentages : Mapping[str, float]
        Every ``*_PERCENTAGE`` element, keyed by lower-case local name.
    """

    product_uri: str | None
    platform: str
    processing_level: str
    product_type: str
    processing_baseline: str
    sensing_start: datetime
    generation_time: datetime | None
    relative_orbit: int
    orbit_direction: str | None
    image_files: tuple[str, ...]
    image_format: str | None
    footprint: tuple[tuple[float, float], ...]
    quantification: float
    offsets: Mapping[str, float] = field(default_factory=dict)
    nodata: int = 0
    saturated: int = 65535
    cloud_cover: float | None = None
    percentages: Mapping[str, float] = field(default_factory=dict)


_PLATFORM_RE = re.compile(r"SENTINEL[-_ ]?2([A-Z])", re.IGNORECASE)
_LEVEL_RE = re.compile(r"(?:LEVEL-?|MSIL?|^L)(1C|2A)", re.IGNORECASE)


def _level(index: _Index, hint: str | None, name: str) -> str:
    for candidate in (
        index.text("PROCESSING_LEVEL"),
        index.text("PRODUCT_TYPE"),
        local_name(index.root.tag),
        hint,
    ):
        if candidate:
            match = _LEVEL_RE.search(candidate)
            if match:
                return "L" + match.group(1).upper()
    raise MetadataError(
        f"{name}: cannot tell Level-1C from Level-2A (<PROCESSING_LEVEL> and <PRODUCT_TYPE> "
        "are missing or unknown); this is not Sentinel-2 MSI product metadata"
    )


def _spectral_order(index: _Index) -> dict[int, str]:
    """``bandId`` -> band name, from ``Spectral_Information`` or the standard order."""
    order = dict(enumerate(SPECTRAL_BANDS))
    for element in index.all("Spectral_Information"):
        band_id, physical = element.get("bandId"), element.get("physicalBand")
        if band_id is None or physical is None:
            continue
        try:
            order[int(band_id)] = normalize_band(physical)
        except ValueError:
            continue
    return order


def _footprint(index: _Index, name: str) -> tuple[tuple[float, float], ...]:
    # The product footprint; EXT_POS_LIST also appears in datastrip metadata, take the first.
    text = _required(index.text("EXT_POS_LIST"), "EXT_POS_LIST", name)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise MetadataError(f"{name}: <EXT_POS_LIST> holds a value that is not a number") from None
    if len(values) % 2 or len(values) < 6:
        raise MetadataError(
            f"{name}: <EXT_POS_LIST> must hold at least three 'lat lon' pairs, "
            f"found {len(values)} numbers"
        )
    points = tuple((values[i + 1], values[i]) for i in range(0, len(values), 2))
    for lon, lat in points:
        if not (-90.0 <= lat <= 90.0 and -540.0 <= lon <= 540.0):
            raise MetadataError(
                f"{name}: <EXT_POS_LIST> has the point lat={lat} lon={lon}, outside the globe"
            )
    return points


def parse_product_metadata(
    data: bytes, name: str, *, level_hint: str | None = None
) -> ProductMetadata:
    """Parse a product-level ``MTD_MSIL1C.xml`` or ``MTD_MSIL2A.xml``.

    Parameters
    ----------
    data : bytes
        Content of the file.
    name : str
        File name for messages (its ``MSIL1C``/``MSIL2A`` is the level of last resort).
    level_hint : str, optional
        ``"L1C"``/``"L2A"`` if known from elsewhere (the file name).

    Returns
    -------
    ProductMetadata

    Raises
    ------
    MetadataError
        Malformed XML, entity declarations, or a missing or invalid required element.

    Examples
    --------
    >>> from pathlib import Path
    >>> mtd = Path("S2B_MSIL2A_....SAFE/MTD_MSIL2A.xml")  # doctest: +SKIP
    >>> parse_product_metadata(mtd.read_bytes(), mtd.name).quantification  # doctest: +SKIP
    10000.0
    """
    index = _Index(parse_xml(data, name))
    level = _level(index, level_hint or name, name)

    def required(*names: str) -> str:
        return _required(index.text(*names), names[0], name)

    spacecraft = required("SPACECRAFT_NAME")
    match = _PLATFORM_RE.search(spacecraft)
    if match is None:
        raise MetadataError(f"{name}: <SPACECRAFT_NAME> is {spacecraft!r}, not Sentinel-2A/B/C/D")
    generation = index.text("GENERATION_TIME")
    direction = index.text("SENSING_ORBIT_DIRECTION")

    if level == "L1C":
        quant_names: tuple[str, ...] = ("QUANTIFICATION_VALUE",)
        offset_names: tuple[str, ...] = ("RADIO_ADD_OFFSET",)
    else:
        quant_names = ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE")
        offset_names = ("BOA_ADD_OFFSET", "L2A_BOA_ADD_OFFSET")
    # reflectance = (DN + offset) / quantification: it must be a positive number.
    quantification = _float(required(*quant_names), quant_names[0], name, 0.0, strict=True)

    order = _spectral_order(index)
    offsets: dict[str, float] = {}
    for element in index.all(*offset_names):
        band_id = element.get("band_id", element.get("bandId"))
        text = (element.text or "").strip()
        if band_id is None or not text:
            raise MetadataError(f"{name}: a <{offset_names[0]}> lacks its band_id or value")
        band = order.get(_int(band_id, f"{offset_names[0]} band_id", name))
        if band is None:
            raise MetadataError(f"{name}: <{offset_names[0]} band_id={band_id!r}> is not a band")
        offsets[band] = _float(text, offset_names[0], name, -_DN_MAX, _DN_MAX)

    special: dict[str, int] = {}
    for element in index.all("Special_Values"):
        label = value = None
        for child in element:
            if local_name(child.tag) == "SPECIAL_VALUE_TEXT":
                label = (child.text or "").strip().upper()
            elif local_name(child.tag) == "SPECIAL_VALUE_INDEX":
                value = (child.text or "").strip()
        if label and value:
            special[label] = _int(value, "SPECIAL_VALUE_INDEX", name, 0, _DN_MAX)

    percentages: dict[str, float] = {}
    for tag in index.names():
        if tag.upper().endswith("_PERCENTAGE"):
            found = index.text(tag)
            if found is None:
                continue
            try:
                number = float(found)
            except ValueError:
                continue
            if math.isfinite(number):  # optional values: skip what is not a number
                percentages[tag.lower()] = number
    cloud = index.text("Cloud_Coverage_Assessment")

    granules = index.all("Granule", "Granules")
    return ProductMetadata(
        product_uri=index.text("PRODUCT_URI", "PRODUCT_URI_2A"),
        platform="S2" + match.group(1).upper(),
        processing_level=level,
        product_type=required("PRODUCT_TYPE"),
        processing_baseline=required("PROCESSING_BASELINE"),
        sensing_start=_time(required("PRODUCT_START_TIME"), "PRODUCT_START_TIME", name),
        generation_time=_time(generation, "GENERATION_TIME", name) if generation else None,
        relative_orbit=_int(
            required("SENSING_ORBIT_NUMBER"), "SENSING_ORBIT_NUMBER", name, 1, _RELATIVE_ORBITS
        ),
        orbit_direction=direction.upper() if direction else None,
        image_files=tuple(
            e.text.strip()
            for e in index.all("IMAGE_FILE", "IMAGE_FILE_2A")
            if e.text and e.text.strip()
        ),
        image_format=granules[0].get("imageFormat") if granules else None,
        footprint=_footprint(index, name),
        quantification=quantification,
        offsets=offsets,
        nodata=special.get("NODATA", 0),
        saturated=special.get("SATURATED", 65535),
        cloud_cover=_float(cloud, "Cloud_Coverage_Assessment", name, 0.0, 100.0) if cloud else None,
        percentages=percentages,
    )
