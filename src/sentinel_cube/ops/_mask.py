"""Mask clouds with the Level-2A Scene Classification (SCL), read lazily in the same graph."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from ..exceptions import SentinelCubeError

__all__ = ["DEFAULT_CLOUD_CLASSES", "mask_clouds", "scene_classification"]

#: SCL classes masked by default: cloud shadows, cloud medium / high probability, thin cirrus.
DEFAULT_CLOUD_CLASSES = (3, 8, 9, 10)
SNOW_CLASS = 11


def scene_classification(cube: xr.DataArray) -> xr.DataArray:
    """The SCL of every pixel of ``cube`` as a lazy ``(time, y, x)`` uint8 array.

    Taken from the cube's ``SCL`` band when it has one, else read from the
    products listed in its ``product_path`` coordinate onto the cube's own grid
    (nearest, same mosaic order), as a separate lazy cube.
    """
    if "band" in cube.dims and "SCL" in list(cube.band.values):
        scl = cube.sel(band="SCL", drop=True)
        return scl.fillna(0).astype(np.uint8) if scl.dtype.kind == "f" else scl.astype(np.uint8)
    if "product_path" not in cube.coords:
        raise SentinelCubeError(
            "the cube has neither an SCL band nor product paths: build it with open_cube "
            "(optionally with 'SCL' in bands) or pass scl= explicitly"
        )
    from ..cube import open_cube, to_products

    paths = sorted({p for joined in cube.product_path.values for p in str(joined).split("\n")})
    products = to_products(paths)
    levels = {p.processing_level for p in products}
    if levels != {"L2A"}:
        raise SentinelCubeError(
            "mask_clouds needs Level-2A products (their SCL band); these are "
            f"{', '.join(sorted(levels))}: search producttype='S2MSI2A', or pass your own "
            "cloud mask as a boolean DataArray to aggregate(mask=...) / cube.where(...)"
        )
    fused = bool((cube.n_products > 1).any()) if "n_products" in cube.coords else True
    left, bottom, right, top = cube.rio.bounds()
    scl = open_cube(
        products,
        bands=["SCL"],
        resolution=abs(cube.rio.resolution()[0]),
        bounds=(left, bottom, right, top),
        crs=cube.rio.crs.to_wkt(),
        chunks=(max(cube.chunks[-2]), max(cube.chunks[-1])) if cube.chunks else None,
        units="dn",
        groupby="solar_day" if fused else None,
    )
    scl = scl.sel(time=cube.time.values).isel(band=0, drop=True)
    scl = scl.assign_coords(x=cube.x.values, y=cube.y.values)
    return scl.astype(np.uint8)


def mask_clouds(
    cube: xr.DataArray,
    classes: Iterable[int] = DEFAULT_CLOUD_CLASSES,
    *,
    snow: bool = False,
    scl: xr.DataArray | None = None,
) -> xr.DataArray:
    """Set pixels whose Scene Classification is in ``classes`` to no data.

    Parameters
    ----------
    cube
        A Level-2A cube from :func:`sentinel_cube.open_cube` (or a store).
    classes
        SCL classes to mask; default cloud shadows (3), cloud medium (8) and high
        (9) probability, thin cirrus (10).
    snow
        Also mask snow and ice (11).
    scl
        An explicit ``(time, y, x)`` SCL array on the cube's grid; default: the
        cube's SCL band, else the products' SCL read lazily on the cube's grid
        with nearest resampling.

    Returns
    -------
    xarray.DataArray
        Lazy; masked pixels are NaN (reflectance) or 0 (DN). An ``SCL`` band in
        the cube is left unmasked.

    Raises
    ------
    SentinelCubeError
        For Level-1C products (they have no SCL).
    """
    codes = sorted({int(c) for c in classes} | ({SNOW_CLASS} if snow else set()))
    for code in codes:
        if not 0 <= code <= 11:
            raise SentinelCubeError(f"SCL class {code} does not exist (classes are 0..11)")
    if scl is None:
        scl = scene_classification(cube)
    cloudy = scl.isin(codes)
    if "band" in cube.dims and "SCL" in list(cube.band.values):
        cloudy = cloudy & (cube.band != "SCL")
    fill = np.nan if cube.dtype.kind == "f" else 0
    result = cube.where(~cloudy, fill).astype(cube.dtype)
    result.attrs = dict(cube.attrs, masked_scl_classes=codes)
    return result.transpose(*cube.dims)
