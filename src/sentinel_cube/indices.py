"""Spectral indices of a cube, by band name: ``sc.indices.ndvi(cube)`` and friends.

Every index takes a ``(time, band, y, x)`` cube holding the bands it needs and
returns a lazy ``(time, y, x)`` float32 array named after it. DN cubes
(``units="dn"``, baseline >= 04.00 convention) are converted to reflectance first.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .exceptions import SentinelCubeError

__all__ = ["evi", "nbr", "ndbi", "ndmi", "ndvi", "ndwi", "normalized_difference", "savi"]


def _band(cube: xr.DataArray, name: str, index: str) -> xr.DataArray:
    if "band" not in cube.dims:
        raise SentinelCubeError(f"{index} needs a cube with a 'band' dimension, got {cube.dims}")
    bands = [str(b) for b in cube.band.values]
    if name not in bands:
        raise SentinelCubeError(
            f"{index} needs band {name}, the cube has {', '.join(bands)}: build it with "
            f"bands including {name}"
        )
    values = cube.sel(band=name, drop=True)
    if values.dtype.kind in "iu":  # harmonised DN -> reflectance
        values = ((values.astype(np.float32) - 1000) / 10000).where(values != 0)
    return values


def normalized_difference(cube: xr.DataArray, a: str, b: str, name: str) -> xr.DataArray:
    """``(a - b) / (a + b)`` of two bands, NaN where the sum is 0."""
    first, second = _band(cube, a, name), _band(cube, b, name)
    total = first + second
    result = ((first - second) / total.where(total != 0)).astype(np.float32)
    result.name = name
    result.attrs = {"long_name": f"({a} - {b}) / ({a} + {b})", "units": "1"}
    return result


def ndvi(cube: xr.DataArray) -> xr.DataArray:
    """Normalized difference vegetation index, ``(B08 - B04) / (B08 + B04)``."""
    return normalized_difference(cube, "B08", "B04", "ndvi")


def ndwi(cube: xr.DataArray) -> xr.DataArray:
    """Normalized difference water index (McFeeters), ``(B03 - B08) / (B03 + B08)``."""
    return normalized_difference(cube, "B03", "B08", "ndwi")


def ndbi(cube: xr.DataArray) -> xr.DataArray:
    """Normalized difference built-up index, ``(B11 - B08) / (B11 + B08)``."""
    return normalized_difference(cube, "B11", "B08", "ndbi")


def ndmi(cube: xr.DataArray) -> xr.DataArray:
    """Normalized difference moisture index, ``(B08 - B11) / (B08 + B11)``."""
    return normalized_difference(cube, "B08", "B11", "ndmi")


def nbr(cube: xr.DataArray) -> xr.DataArray:
    """Normalized burn ratio, ``(B08 - B12) / (B08 + B12)``."""
    return normalized_difference(cube, "B08", "B12", "nbr")


def savi(cube: xr.DataArray, soil: float = 0.5) -> xr.DataArray:
    """Soil-adjusted vegetation index, ``(1 + L)(B08 - B04) / (B08 + B04 + L)``."""
    nir, red = _band(cube, "B08", "savi"), _band(cube, "B04", "savi")
    result = ((1 + soil) * (nir - red) / (nir + red + soil)).astype(np.float32)
    result.name = "savi"
    return result


def evi(cube: xr.DataArray) -> xr.DataArray:
    """Enhanced vegetation index, ``2.5 (B08 - B04) / (B08 + 6 B04 - 7.5 B02 + 1)``."""
    nir, red, blue = (_band(cube, b, "evi") for b in ("B08", "B04", "B02"))
    result = (2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)).astype(np.float32)
    result.name = "evi"
    return result
