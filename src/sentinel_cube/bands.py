"""Sentinel-2 MSI band facts: names, native resolutions and product contents.

Pure data and small helpers; nothing here touches files.
"""

from __future__ import annotations

import re

__all__ = [
    "CLASS_BANDS",
    "L1C_BANDS",
    "L2A_BANDS",
    "NATIVE_RESOLUTION",
    "SCL_CLASSES",
    "TILE_SIZE_10M",
    "normalize_band",
]

#: Native ground resolution in metres of every band a product can carry.
NATIVE_RESOLUTION: dict[str, int] = {
    "B01": 60,
    "B02": 10,
    "B03": 10,
    "B04": 10,
    "B05": 20,
    "B06": 20,
    "B07": 20,
    "B08": 10,
    "B8A": 20,
    "B09": 60,
    "B10": 60,
    "B11": 20,
    "B12": 20,
    "SCL": 20,
    "AOT": 10,
    "WVP": 10,
    "TCI": 10,
}

#: Spectral band order of the MTD ``bandId`` attribute (0..12).
SPECTRAL_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip

#: Band files of a Level-1C product (``IMG_DATA/T..._B04.jp2``), TCI left out.
L1C_BANDS: tuple[str, ...] = SPECTRAL_BANDS

#: Band files of a Level-2A product at their native resolution (B10 is not in L2A).
L2A_BANDS: tuple[str, ...] = tuple(b for b in SPECTRAL_BANDS if b != "B10") + ("SCL",)

#: Pixels per side of a 10 m band of a full MGRS tile (109.8 km).
TILE_SIZE_10M = 10980

#: Scene Classification (SCL) classes of Level-2A products.
SCL_CLASSES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}

#: Bands whose values are codes, not measurements: never blended at any resolution, always
#: resampled with nearest from their full-resolution pixels, whatever resampling the cube
#: uses for reflectance bands. Only the Scene Classification is read today; a coded band
#: added later (e.g. a cloud or snow mask) belongs here too.
CLASS_BANDS: frozenset[str] = frozenset({"SCL"})

_BAND_RE = re.compile(r"^B?0?(\d{1,2}|8A)$", re.IGNORECASE)


def normalize_band(name: str) -> str:
    """Return the canonical name of a band (``"B4"``, ``"b04"``, ``"4"`` -> ``"B04"``).

    Examples
    --------
    >>> normalize_band("B8a"), normalize_band("b4"), normalize_band("scl")
    ('B8A', 'B04', 'SCL')
    """
    text = str(name).strip().upper()
    if text in NATIVE_RESOLUTION:
        return text
    match = _BAND_RE.match(text)
    if match:
        number = match.group(1).upper()
        canonical = "B8A" if number == "8A" else f"B{int(number):02d}"
        if canonical in NATIVE_RESOLUTION:
            return canonical
    raise ValueError(
        f"unknown Sentinel-2 band {name!r}: expected one of {', '.join(NATIVE_RESOLUTION)}"
    )
