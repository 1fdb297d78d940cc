"""odc-stac reads for the tests, in a child process.

odc-stac leaves a rasterio environment in the threads it reads in, and later cubes of
the test session would capture its settings (seen as a JP2 read in 13 requests instead
of 4). Reading in a separate process keeps the test process's GDAL state untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["odc_dn"]


def odc_dn(items: list[dict[str, Any]], key: str, shape: tuple[int, int],
           transform: list[float], crs: str, dtype: str) -> np.ndarray:  # fmt: skip
    """odc-stac's ``(time, y, x)`` DN of asset ``key`` of ``items`` on a grid, nearest,
    no data 0, same-day items fused."""
    import odc.stac
    import pystac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    geobox = GeoBox(shape, Affine(*transform[:6]), crs)
    loaded = odc.stac.load(
        [pystac.Item.from_dict(i) for i in items], bands=[key], geobox=geobox,
        resampling="nearest", dtype=dtype, nodata=0, groupby="solar_day",
    )  # fmt: skip
    return np.asarray(loaded[key].values)
