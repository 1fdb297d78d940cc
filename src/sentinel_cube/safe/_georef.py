"""The grid of a band file from its own georeferencing (GeoJP2/GMLJP2 box, GeoTIFF tags).

Only used for products that lack ``GRANULE/*/MTD_TL.xml``: the reader then opens
one band file per resolution, reads its header (never its pixels) and takes the
grid from it. rasterio is imported on first use, so reading products that have
their tile metadata never loads GDAL here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from affine import Affine

__all__ = ["FileGrid", "GeoreferenceError", "read_file_grid"]

#: GDAL settings for reading a header: no folder listing (a .SAFE holds dozens of
#: files), no .aux.xml side files, one decoding thread (nothing is decoded anyway).
_HEADER_ENV: dict[str, str | int] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_PAM_ENABLED": "NO",
    "GDAL_NUM_THREADS": 1,
}
#: Largest side accepted (a 10 m band is 10980 px): refuses absurd headers.
_MAX_SIDE = 1_000_000


class GeoreferenceError(Exception):
    """A band file cannot give its grid; the message says why (without the path)."""


@dataclass(frozen=True)
class FileGrid:
    """CRS, shape and transform read from a band file.

    Attributes
    ----------
    epsg : int or None
        EPSG code of the file's CRS, None if it has no EPSG code.
    crs : str
        The CRS as GDAL describes it (for messages).
    shape : tuple of int
        ``(rows, cols)``.
    transform : affine.Affine
        Pixel-to-map transform (north up).
    """

    epsg: int | None
    crs: str
    shape: tuple[int, int]
    transform: Affine


def read_file_grid(
    path: str,
    env: Mapping[str, object] | None = None,
    credentials: Mapping[str, str] | None = None,
) -> FileGrid:
    """Open ``path`` (any GDAL path, ``/vsizip/`` too), read its grid from the header.

    Parameters
    ----------
    path : str
        The band file.
    env : mapping, optional
        GDAL settings for the open (e.g. a remote endpoint's, see
        :meth:`sentinel_cube._cloud.Remote.gdal_env`), besides the header settings.
    credentials : mapping, optional
        Secret GDAL settings (``AWS_ACCESS_KEY_ID``...), given to GDAL through a
        rasterio session, never as plain settings.

    Returns
    -------
    FileGrid

    Raises
    ------
    GeoreferenceError
        The file cannot be opened, carries no CRS or transform, or its grid is not a
        north-up grid of finite coordinates.

    Examples
    --------
    >>> read_file_grid("T34TCT_20230810T094549_B04.jp2").shape  # doctest: +SKIP
    (10980, 10980)
    """
    import rasterio
    from rasterio.errors import RasterioError

    settings = {**(env or {}), **_HEADER_ENV}
    session = None
    if credentials:
        from .._read import _Keys

        session = _Keys(credentials)
    try:
        with rasterio.Env(session=session, **settings), rasterio.open(path) as ds:
            crs, transform, shape = ds.crs, ds.transform, (ds.height, ds.width)
            epsg = crs.to_epsg() if crs else None
            crs_text = crs.to_string() if crs else ""
    except (RasterioError, OSError) as exc:
        raise GeoreferenceError(f"cannot be opened as a raster ({exc})") from exc
    if not crs or transform == Affine.identity():
        raise GeoreferenceError("carries no georeferencing (no GeoJP2/GMLJP2 box, no GeoTIFF tags)")
    values = (transform.a, transform.c, transform.e, transform.f)
    if (
        transform.b != 0
        or transform.d != 0
        or not all(math.isfinite(v) for v in values)
        or transform.a <= 0
        or transform.e >= 0
    ):
        raise GeoreferenceError(f"has a rotated or degenerate transform {tuple(transform)[:6]}")
    if not (0 < shape[0] <= _MAX_SIDE and 0 < shape[1] <= _MAX_SIDE):
        raise GeoreferenceError(f"has an impossible size of {shape[1]} x {shape[0]} pixels")
    return FileGrid(epsg=epsg, crs=crs_text, shape=shape, transform=transform)
