"""The grid of a STAC asset from the projection extension, without opening its file.

Fields read (projection extension v1 and v2), on the asset first, else on the item's
properties (which, by the extension, apply to every asset that does not set them):

- CRS: ``proj:code`` (``"EPSG:32634"``, v2, as CDSE's STAC writes it) or ``proj:epsg``
  (``32634``, v1, Earth Search and Planetary Computer);
- grid: ``proj:shape`` (``[rows, cols]``) with ``proj:transform`` (6 or 9 numbers,
  GDAL/rasterio order ``[a, b, c, d, e, f]``), or with ``proj:bbox`` (the corners in
  the asset's CRS).

Pure: no IO.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from affine import Affine

__all__ = ["ProjError", "proj_epsg", "proj_grid"]

#: Largest side accepted (a 10 m band is 10980 px): refuses absurd metadata.
_MAX_SIDE = 1_000_000


class ProjError(ValueError):
    """Projection fields that are present but unusable; the message says which and why."""


def proj_epsg(fields: Mapping[str, Any]) -> int | None:
    """The EPSG code of ``proj:code`` or ``proj:epsg``, None when neither is set.

    Raises
    ------
    ProjError
        ``proj:code`` names a CRS that is not an EPSG code (``proj:wkt2`` only...).

    Examples
    --------
    >>> proj_epsg({"proj:code": "EPSG:32634"}), proj_epsg({"proj:epsg": 32613}), proj_epsg({})
    (32634, 32613, None)
    """
    code = fields.get("proj:code")
    if code is not None:
        text = str(code).strip()
        authority, _, number = text.partition(":")
        if authority.upper() == "EPSG" and number.isdigit():
            return int(number)
        raise ProjError(f"proj:code {text!r} is not an EPSG code")
    epsg = fields.get("proj:epsg")
    if epsg is not None:
        try:
            return int(epsg)
        except (TypeError, ValueError):
            raise ProjError(f"proj:epsg {epsg!r} is not an EPSG code") from None
    if fields.get("proj:wkt2") or fields.get("proj:projjson"):
        raise ProjError("the CRS is given as proj:wkt2/proj:projjson only, with no EPSG code")
    return None


def _shape(value: Any) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ProjError(f"proj:shape {value!r} is not [rows, cols]") from None
    if not (0 < rows <= _MAX_SIDE and 0 < cols <= _MAX_SIDE):
        raise ProjError(f"proj:shape {value!r} is not a possible raster size")
    return rows, cols


def _transform(value: Any) -> Affine:
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ProjError(f"proj:transform {value!r} is not a list of numbers") from None
    if len(numbers) not in (6, 9) or not all(math.isfinite(v) for v in numbers):
        raise ProjError(f"proj:transform {value!r} is not 6 or 9 finite numbers")
    transform = Affine(*numbers[:6])
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        raise ProjError(f"proj:transform {value!r} is not a north-up grid")
    return transform


def _from_bbox(value: Any, shape: tuple[int, int]) -> Affine:
    try:
        left, bottom, right, top = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ProjError(f"proj:bbox {value!r} is not [left, bottom, right, top]") from None
    if not all(math.isfinite(v) for v in (left, bottom, right, top)) or not (
        right > left and top > bottom
    ):
        raise ProjError(f"proj:bbox {value!r} is not a box")
    rows, cols = shape
    return Affine((right - left) / cols, 0.0, left, 0.0, -(top - bottom) / rows, top)


def proj_grid(fields: Mapping[str, Any]) -> tuple[tuple[int, int], Affine] | None:
    """``(shape, transform)`` from ``proj:shape`` and ``proj:transform``/``proj:bbox``.

    Returns None when ``proj:shape`` or both of the others are missing.

    Raises
    ------
    ProjError
        The fields are present but unusable (not north-up, impossible sizes...).

    Examples
    --------
    >>> proj_grid({"proj:shape": [5490, 5490], "proj:transform": [20, 0, 399960, 0, -20, 4500000]})
    ((5490, 5490), Affine(20.0, 0.0, 399960.0,
           0.0, -20.0, 4500000.0))
    >>> proj_grid({"proj:shape": [2, 4], "proj:bbox": [0, 0, 40, 20]})[1].a
    10.0
    >>> proj_grid({"proj:transform": [10, 0, 0, 0, -10, 0]}) is None
    True
    """
    if fields.get("proj:shape") is None:
        return None
    if fields.get("proj:transform") is not None:
        shape = _shape(fields["proj:shape"])
        return shape, _transform(fields["proj:transform"])
    if fields.get("proj:bbox") is not None:
        shape = _shape(fields["proj:shape"])
        return shape, _from_bbox(fields["proj:bbox"], shape)
    return None
