"""How the tests call ``open_cube`` on STAC items (issue #12): the one place to adjust.

The API these tests assume (``sentinel_cube.open_cube`` taking STAC items):

- ``open_cube(items, bands=[...], resolution=..., units="dn" | "reflectance", bounds=...,
  crs=..., ...)``, the same keywords as for ``.SAFE`` products, where ``items`` is a
  list of STAC item dicts, a list of ``pystac.Item``, a ``pystac.ItemCollection``, or
  the products table of ``STACCatalog.search`` (its rows keep their items);
- bands are named as ESA names them (``"B04"``, ``"B8A"``, ``"SCL"``) whatever the
  provider's asset keys (``red``/``nir08``/``scl``, ``B04``, ``B04_10m``);
- band files are read from the asset hrefs (COG or JP2; ``https://`` or ``s3://``, the
  S3 settings from the environment as for ``.SAFE`` products on S3), on the grid of
  the projection extension (``proj:epsg`` or ``proj:code``, ``proj:transform``,
  ``proj:shape``);
- radiometry: ``raster:bands`` scale/offset (or ``raster:scale``/``raster:offset``)
  when the item has them, else the processing baseline's (offset -1000 from 04.00);
  ``units="dn"`` gives the DN of the baseline >= 04.00 convention, as for ``.SAFE``
  products, so the cube of the items equals the cube of the products;
- the result has the dims, coordinates (``time``, ``band``, ``y``, ``x``) and pixels of
  ``open_cube`` on the same products' ``.SAFE`` folders.

The tests that need it skip until the API is there: :func:`stac_api_available` looks
for the module :data:`API_MODULE`, or a mention of STAC items in ``open_cube``'s
docstring; set ``SENTINEL_CUBE_STAC_PARITY=1`` to run them regardless (they then
fail, not skip, if the API is missing).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

from sentinel_cube import open_cube

__all__ = ["API_MODULE", "FORCE_ENV", "open_items", "require_stac_api", "stac_api_available"]

#: The module of issue #12's STAC reading.
API_MODULE = "sentinel_cube.stac"
#: Set to run the parity tests whether or not the API is detected.
FORCE_ENV = "SENTINEL_CUBE_STAC_PARITY"


def stac_api_available() -> bool:
    """Whether ``open_cube`` takes STAC items here (see the module docstring)."""
    if os.environ.get(FORCE_ENV):
        return True
    try:
        if importlib.util.find_spec(API_MODULE) is not None:
            return True
    except ModuleNotFoundError:
        pass
    return "STAC item" in (open_cube.__doc__ or "")


def require_stac_api() -> None:
    """Skip the calling test when ``open_cube`` does not take STAC items yet."""
    if not stac_api_available():
        pytest.skip(f"open_cube does not take STAC items yet (no {API_MODULE}; issue #12)")


def open_items(items: Any, bands: list[str], resolution: float, **kwargs: Any) -> Any:
    """``open_cube`` on STAC items, as issue #12 describes it."""
    return open_cube(items, bands=bands, resolution=resolution, **kwargs)
