"""Image-content percentages of a synthetic product, from its SCL raster.

Image-content percentages (:func:`scl_percentages`) use ESA's denominators,
checked against real products: ``NODATA_PIXEL_PERCENTAGE`` is the share of
SCL == 0 among *all* pixels of the 20 m SCL raster; every other class percentage
is the share among *valid* pixels (SCL != 0), so they sum to 100; cloud cover
(``Cloud_Coverage_Assessment``, ``CLOUDY_PIXEL_PERCENTAGE``) is classes
8 + 9 + 10 among valid pixels. Values are written with six decimals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SCL_PERCENTAGE_ELEMENTS", "ContentStats", "scl_percentages"]

#: ``Image_Content_QI`` element of each SCL class (0 is ``NODATA_PIXEL_PERCENTAGE``).
SCL_PERCENTAGE_ELEMENTS: dict[int, str] = {
    1: "SATURATED_DEFECTIVE_PIXEL_PERCENTAGE",
    2: "DARK_FEATURES_PERCENTAGE",
    3: "CLOUD_SHADOW_PERCENTAGE",
    4: "VEGETATION_PERCENTAGE",
    5: "NOT_VEGETATED_PERCENTAGE",
    6: "WATER_PERCENTAGE",
    7: "UNCLASSIFIED_PERCENTAGE",
    8: "MEDIUM_PROBA_CLOUDS_PERCENTAGE",
    9: "HIGH_PROBA_CLOUDS_PERCENTAGE",
    10: "THIN_CIRRUS_PERCENTAGE",
    11: "SNOW_ICE_PERCENTAGE",
}


# --------------------------------------------------------------------------------------
# Percentages
# --------------------------------------------------------------------------------------


def _counts(scl: ArrayLike) -> np.ndarray:
    return np.bincount(np.asarray(scl, dtype=np.int64).ravel(), minlength=12)[:12]


def scl_percentages(scl: ArrayLike, *, counts: bool = False) -> dict[str, float]:
    """Image-content percentages of an SCL raster, with ESA's denominators.

    Parameters
    ----------
    scl : array_like
        SCL class codes (0..11), or with ``counts=True`` the 12 pixel counts.

    Returns
    -------
    dict
        ``NODATA_PIXEL_PERCENTAGE`` (of all pixels), one ``*_PERCENTAGE`` per
        class 1..11 (of valid pixels) and ``CLOUDY_PIXEL_PERCENTAGE``
        (classes 8 + 9 + 10 of valid pixels). 0 for every class when no pixel is valid.

    Examples
    --------
    >>> p = scl_percentages([[0, 4], [9, 9]])
    >>> p["NODATA_PIXEL_PERCENTAGE"], round(p["VEGETATION_PERCENTAGE"], 3)
    (25.0, 33.333)
    >>> round(p["CLOUDY_PIXEL_PERCENTAGE"], 3)
    66.667
    """
    c = np.asarray(scl, dtype=np.int64)[:12] if counts else _counts(scl)
    total = int(c.sum())
    valid = total - int(c[0])
    out = {"NODATA_PIXEL_PERCENTAGE": 100.0 * int(c[0]) / total if total else 0.0}
    for cls, name in SCL_PERCENTAGE_ELEMENTS.items():
        out[name] = 100.0 * int(c[cls]) / valid if valid else 0.0
    out["CLOUDY_PIXEL_PERCENTAGE"] = 100.0 * int(c[8] + c[9] + c[10]) / valid if valid else 0.0
    return out


@dataclass(frozen=True)
class ContentStats:
    """Pixel counts gathered while writing a product (on the 20 m grid)."""

    scl_counts: tuple[int, ...]
    land_valid: int
    cloud_over_land: int

    @property
    def percentages(self) -> dict[str, float]:
        out = scl_percentages(np.array(self.scl_counts), counts=True)
        land = self.land_valid
        out["CLOUDY_PIXEL_OVER_LAND_PERCENTAGE"] = (
            100.0 * self.cloud_over_land / land if land else 0.0
        )
        return out
