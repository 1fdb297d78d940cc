"""Sentinel-2 radiometric rules as plain numpy functions (no rasterio, no dask).

From processing baseline 04.00 on, products carry an additive offset of -1000
(``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET``) and ``reflectance = (DN + offset) /
QUANTIFICATION_VALUE``. Older products have no offset. DN 0 is no data and
65535 marks saturated pixels.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "HARMONIZED_OFFSET",
    "HARMONIZED_QUANTIFICATION",
    "NODATA_DN",
    "SATURATED_DN",
    "harmonize_dn",
    "invalid_dn",
    "to_reflectance",
]

NODATA_DN = 0
SATURATED_DN = 65535
#: The DN convention every product is brought to with ``units="dn"`` (baseline >= 04.00).
HARMONIZED_OFFSET = -1000.0
HARMONIZED_QUANTIFICATION = 10000.0


def to_reflectance(
    dn: np.ndarray,
    offset: float,
    quantification: float,
    *,
    mask_saturated: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``(DN + offset) / quantification`` as float32, NaN where DN is no data (or saturated).

    ``out``: a float32 array of ``dn``'s shape to write into (returned), so that a
    mosaic converts straight into its output block.

    Examples
    --------
    >>> to_reflectance(np.array([0, 1000, 3500, 65535], "uint16"), -1000, 10000)
    array([   nan, 0.  , 0.25,    nan], dtype=float32)
    """
    values = np.add(dn, np.float32(offset), out=out, dtype=np.float32)
    values /= np.float32(quantification)
    invalid = invalid_dn(dn, mask_saturated=mask_saturated)
    if invalid.any():  # most chunks lie inside a product: nothing to mask
        np.copyto(values, np.nan, where=invalid)
    return values


def invalid_dn(dn: np.ndarray, *, mask_saturated: bool = True) -> np.ndarray:
    """Where ``dn`` is no data (or saturated): the pixels reflectance makes NaN.

    Examples
    --------
    >>> invalid_dn(np.array([0, 1000, 65535], "uint16")).tolist()
    [True, False, True]
    """
    invalid = dn == NODATA_DN
    if mask_saturated:
        invalid |= dn == SATURATED_DN
    return invalid


def harmonize_dn(
    dn: np.ndarray,
    offset: float,
    quantification: float,
    *,
    target_offset: float = HARMONIZED_OFFSET,
    target_quantification: float = HARMONIZED_QUANTIFICATION,
) -> np.ndarray:
    """Re-express DNs of one product in the convention ``(target_offset, target_quantification)``.

    The reflectance a pixel stands for is unchanged: a baseline 03.01 DN of 2500
    (offset 0) becomes 3500 in the 04.00 convention (offset -1000). No data stays 0
    and saturated stays 65535; other values are clipped to ``1..65534``.

    Examples
    --------
    >>> harmonize_dn(np.array([0, 2500, 65535], "uint16"), 0, 10000)
    array([    0,  3500, 65535], dtype=uint16)
    """
    if offset == target_offset and quantification == target_quantification:
        return dn.astype(np.uint16, copy=False)
    scale = target_quantification / quantification
    values = (dn.astype(np.float64) + offset) * scale - target_offset
    out = np.clip(np.rint(values), 1, SATURATED_DN - 1).astype(np.uint16)
    out[dn == NODATA_DN] = NODATA_DN
    out[dn == SATURATED_DN] = SATURATED_DN
    return out
