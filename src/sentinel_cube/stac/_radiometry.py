"""Radiometry of a STAC asset: the offset and quantification that turn its DN into reflectance.

The cube stores, per band file, ``reflectance = (DN + offset) / quantification``
(:class:`~sentinel_cube.safe.BandFile`). For a STAC asset they come from, first
rule that applies:

1. **Class bands** (``SCL``): offset 0, quantification 1 (codes, not reflectance).
2. **Earth Search's flag**: a cloud-optimised GeoTIFF of an item carrying
   ``earthsearch:boa_offset_applied: true`` (``sentinel:boa_offset_applied`` in its
   earlier API) has offset 0 and quantification ``1 / scale`` (10000). Earth Search
   converted ESA's JPEG 2000 files of baseline >= 04.00 to COGs *with the offset
   already added to the pixels* (back to the pre-04.00 range) and says so with this
   flag; the ``raster:bands`` of the same assets still carry ESA's
   ``offset: -0.1``, and applying it too would subtract 0.1 twice (Element 84:
   "the offset property may be incorrectly set to -0.1 even when it has been
   applied but [...] the ``boa_offset_applied`` is the truth", Element84/earth-search#9;
   also microsoft/PlanetaryComputer#349, cirrus-geo/cirrus-earth-search#21). The flag
   says nothing about the item's JPEG 2000 assets (``red-jp2``...): those are ESA's
   files, unchanged, and follow rules 3-4.
3. **raster:bands**: when the asset gives a ``scale`` (``raster:bands[0].scale``, or
   STAC 1.1's ``raster:scale`` on the asset or its single ``bands`` entry):
   ``quantification = 1 / scale`` and ``offset = offset / scale`` (``DN * scale +
   offset`` rewritten), rounded to whole DN when within 1e-6 of them. An offset
   without a scale is not used (the extension's default scale of 1 is never what a
   Sentinel-2 band means).
4. **Processing baseline** (``s2:processing_baseline``, ``processing:version``, else
   the ``_Nxxxx_`` of the product name): offset -1000 from baseline 04.00 on, 0
   before; quantification 10000 (ESA's ``BOA_ADD_OFFSET``/``RADIO_ADD_OFFSET`` and
   ``QUANTIFICATION_VALUE`` since 2022-01-25, and in the reprocessed archive).

What Earth Search's flag cannot tell: some ``sentinel-2-l2a`` items say
``earthsearch:boa_offset_applied: false`` although their COG pixels *were* shifted
(cirrus-geo/cirrus-earth-search#33, Element84/earth-search#66 and #71, mostly
2022 and some 2025 scenes). No metadata of the item tells those apart, and reading
pixels to guess would be a heuristic: the rule follows the flag, so such an item
comes out 0.1 too dark. Earth Search's ``sentinel-2-c1-l2a`` collection (ESA's DN,
a correct ``raster:bands`` offset, no flag) is not affected; nor are Planetary
Computer (ESA's DN, no ``raster:bands`` scale: rule 4) and CDSE (ESA's files,
``raster:scale``/``raster:offset``: rule 3).

Pure: no IO.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._radiometry import NODATA_DN
from ..bands import CLASS_BANDS

__all__ = ["EARTH_SEARCH_FLAGS", "AssetRadiometry", "asset_radiometry", "baseline_offset"]

#: Item properties by which Earth Search says its COG pixels carry the BOA offset already.
EARTH_SEARCH_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")

#: ESA's quantification of reflectance bands (``QUANTIFICATION_VALUE``).
QUANTIFICATION = 10000.0
#: ESA's additive offset from processing baseline 04.00 on.
BASELINE_OFFSET = -1000.0


@dataclass(frozen=True)
class AssetRadiometry:
    """``reflectance = (DN + offset) / quantification`` of one asset, and why.

    Attributes
    ----------
    offset : float
        Additive offset in DN.
    quantification : float
        DN per unit of reflectance.
    nodata : int
        DN of no data (``raster:bands`` ``nodata``, default 0).
    rule : str
        Which rule gave them: ``"class band"``, ``"earthsearch:boa_offset_applied"``,
        ``"raster:bands"`` or ``"baseline 05.09"``.
    """

    offset: float
    quantification: float
    nodata: int
    rule: str


def baseline_offset(baseline: str) -> float:
    """ESA's offset for a processing baseline: -1000 from 04.00 on, else 0.

    Examples
    --------
    >>> baseline_offset("05.09"), baseline_offset("04.00"), baseline_offset("02.12")
    (-1000.0, -1000.0, 0.0)
    """
    return BASELINE_OFFSET if float(baseline) >= 4.0 else 0.0


def _round(value: float) -> float:
    nearest = round(value)
    return float(nearest) if math.isclose(value, nearest, rel_tol=1e-6, abs_tol=1e-6) else value


def raster_scaling(asset: Mapping[str, Any]) -> tuple[float | None, float, Any]:
    """``(scale, offset, nodata)`` an asset gives (raster extension v1 or v2); scale None if absent.

    Examples
    --------
    >>> raster_scaling({"raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]})
    (0.0001, -0.1, 0)
    >>> raster_scaling({"raster:scale": 0.0001, "raster:offset": -0.1})
    (0.0001, -0.1, None)
    >>> raster_scaling({"bands": [{"raster:scale": 0.0001, "nodata": 0}]})
    (0.0001, 0.0, 0)
    """
    places: list[Mapping[str, Any]] = []
    for field in ("raster:bands", "bands"):
        entries = asset.get(field)
        if isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], Mapping):
            places.append(entries[0])
    places.append(asset)
    scale = offset = nodata = None
    for place in places:
        if scale is None:
            scale = place.get("scale", place.get("raster:scale"))
        if offset is None:
            offset = place.get("offset", place.get("raster:offset"))
        if nodata is None:
            nodata = place.get("nodata")
    if scale is not None:
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            scale = None
    if scale is not None and (not math.isfinite(scale) or scale <= 0):
        scale = None
    try:
        offset_value = float(offset) if offset is not None else 0.0
    except (TypeError, ValueError):
        offset_value = 0.0
    return scale, offset_value if math.isfinite(offset_value) else 0.0, nodata


def _nodata(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return NODATA_DN
    return int(number) if math.isfinite(number) and number.is_integer() else NODATA_DN


def _true(flag: Any) -> bool:
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")


def asset_radiometry(
    band: str,
    asset: Mapping[str, Any],
    properties: Mapping[str, Any],
    baseline: str | None,
    *,
    jp2: bool,
) -> AssetRadiometry | None:
    """The radiometry of ``band``'s asset by the rules of this module; None if unknown.

    Parameters
    ----------
    band
        ESA band name.
    asset
        The asset (its ``raster:*`` fields are read).
    properties
        The item's properties (Earth Search's flag).
    baseline
        The item's processing baseline (``"05.09"``), None if unknown.
    jp2
        Whether the asset is a JPEG 2000 file (Earth Search's flag is about its COGs).

    Returns
    -------
    AssetRadiometry or None
        None when no rule applies: no ``raster:bands`` scale and no baseline.

    Examples
    --------
    >>> red = {"raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]}
    >>> asset_radiometry("B04", red, {"earthsearch:boa_offset_applied": True}, "05.09",
    ...                  jp2=False)  # doctest: +NORMALIZE_WHITESPACE
    AssetRadiometry(offset=0.0, quantification=10000.0, nodata=0,
                    rule='earthsearch:boa_offset_applied')
    >>> asset_radiometry("B04", red, {"earthsearch:boa_offset_applied": True}, "05.09",
    ...                  jp2=True)
    AssetRadiometry(offset=-1000.0, quantification=10000.0, nodata=0, rule='raster:bands')
    >>> asset_radiometry("B04", {}, {}, "02.12", jp2=False)
    AssetRadiometry(offset=0.0, quantification=10000.0, nodata=0, rule='baseline 02.12')
    """
    scale, offset, nodata_value = raster_scaling(asset)
    nodata = _nodata(nodata_value)
    if band in CLASS_BANDS:
        return AssetRadiometry(0.0, 1.0, nodata, "class band")
    quantification = _round(1.0 / scale) if scale is not None else QUANTIFICATION
    flag = next((properties[k] for k in EARTH_SEARCH_FLAGS if k in properties), None)
    if _true(flag) and not jp2:
        return AssetRadiometry(0.0, quantification, nodata, EARTH_SEARCH_FLAGS[0])
    if scale is not None:
        return AssetRadiometry(_round(offset / scale), quantification, nodata, "raster:bands")
    if baseline:
        return AssetRadiometry(
            baseline_offset(baseline), QUANTIFICATION, nodata, f"baseline {baseline}"
        )
    return None
