"""Write cube slices as pictures (PNG) and (Cloud-Optimized) GeoTIFFs."""

from __future__ import annotations

import os
import warnings

import dask
import dask.array as da
import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning

from .exceptions import SentinelCubeError

__all__ = ["to_geotiff", "to_png"]

_RGB = ("B04", "B03", "B02")


def to_png(rgb: xr.DataArray, path: str | os.PathLike[str], *, nodata: str = "transparent"):
    """Write a true-colour picture: three bands in R, G, B order, stretched.

    Parameters
    ----------
    rgb
        ``(band, y, x)`` with 3 bands (a single time step: select it with
        ``.isel(time=i)``), either stretched (``uint8``, or float in ``[0, 1]``
        from :func:`sentinel_cube.stretch`) or raw, in which case a 2-98 %
        stretch per band is applied. Bands named B04, B03, B02 (or given in R, G,
        B order).
    nodata
        ``"transparent"`` (an alpha channel) or ``"black"``.

    Returns
    -------
    pathlib.Path
    """
    from pathlib import Path

    from .ops import stretch

    rgb = _single_time(rgb, "to_png")
    if "band" not in rgb.dims or rgb.sizes["band"] != 3:
        raise SentinelCubeError(
            f"to_png expects a (band, y, x) array with 3 bands in R, G, B order, got dims "
            f"{dict(rgb.sizes)}: select e.g. cube.sel(band=['B04', 'B03', 'B02']).isel(time=0)"
        )
    names = [str(b) for b in rgb.band.values]
    if sorted(names) == sorted(_RGB) and names != list(_RGB):
        raise SentinelCubeError(f"bands {names} are not in R, G, B order: use {list(_RGB)}")
    if nodata not in ("transparent", "black"):
        raise SentinelCubeError(f"nodata={nodata!r}: use 'transparent' or 'black'")
    rgb = rgb.transpose("band", "y", "x")
    if rgb.dtype != np.uint8 and not (rgb.dtype.kind == "f" and "stretch_percentiles" in rgb.attrs):
        # percentiles now (one pass), the stretch below chunk by chunk
        stretched = stretch(rgb.expand_dims("time"), (2, 98), dims=("time", "y", "x"), out="float")
        rgb = stretched.isel(time=0)
    # 8-bit chunk by chunk: only the picture itself is ever whole in memory
    values = rgb.data
    if rgb.dtype == np.uint8:
        picture, valid = values, (values > 0).any(axis=0)
    else:
        valid = ~np.isnan(values).any(axis=0)
        if isinstance(values, da.Array):
            picture = da.map_blocks(_to_uint8, values, dtype=np.uint8)
        else:
            picture = _to_uint8(values)
    picture, valid = dask.compute(picture, valid)
    bands = [picture[i] for i in range(3)]
    if nodata == "transparent":
        bands.append(np.where(valid, 255, 0).astype(np.uint8))
    data = np.stack(bands)
    target = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a picture, no georeference
        count, height, width = data.shape
        profile = {"driver": "PNG", "width": width, "height": height, "count": count}
        with rasterio.open(target, "w", dtype="uint8", **profile) as dst:
            dst.write(data)
    aux = target.with_name(target.name + ".aux.xml")
    if aux.exists():
        aux.unlink()
    return target


def to_geotiff(
    cube: xr.DataArray, path: str | os.PathLike[str], *, cog: bool = True, compress: str = "zstd"
):
    """Write a ``(band, y, x)`` or ``(y, x)`` array as a GeoTIFF with CRS and nodata.

    ``cog=True`` writes a Cloud-Optimized GeoTIFF (tiled, with overviews). A cube
    with a time dimension must hold one time step (``.isel(time=i)``).
    """
    from pathlib import Path

    array = _single_time(cube, "to_geotiff")
    if array.ndim not in (2, 3) or array.dims[-2:] != ("y", "x"):
        raise SentinelCubeError(f"to_geotiff expects (band, y, x) or (y, x), got dims {array.dims}")
    if array.rio.crs is None:
        raise SentinelCubeError("the array has no CRS: keep spatial_ref (build it with open_cube)")
    nodata = np.nan if array.dtype.kind == "f" else 0
    array = array.rio.write_nodata(nodata, encoded=False)
    options = {"driver": "COG"} if cog else {"driver": "GTiff", "tiled": True}
    array.rio.to_raster(Path(path), compress=compress.upper(), **options)
    return Path(path)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Stretched floats in [0, 1] (NaN for no data) as 0..255."""
    return np.rint(np.nan_to_num(values) * 255).astype(np.uint8)


def _single_time(array: xr.DataArray, what: str) -> xr.DataArray:
    if "time" in array.dims:
        if array.sizes["time"] != 1:
            raise SentinelCubeError(
                f"{what} writes one time step, the array has {array.sizes['time']}: select one "
                "with .isel(time=i) or .sel(time='2023-08-10', method='nearest')"
            )
        array = array.isel(time=0)
    return array
