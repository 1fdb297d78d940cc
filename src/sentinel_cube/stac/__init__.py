"""STAC items as cube sources: Earth Search, Planetary Computer, CDSE STAC and others.

:func:`items_to_products` turns STAC items (a ``pystac.ItemCollection``, ``pystac.Item``
objects, item dicts or a FeatureCollection) into the same
:class:`~sentinel_cube.safe.Product` a ``.SAFE`` folder gives, so
:func:`sentinel_cube.open_cube` plans, reads, mosaics and converts them by the same
rules; :func:`sentinel_cube.open_cube` calls it for you when given items.

- Bands: :data:`PROVIDER_ASSET_KEYS` maps each provider's asset keys to ESA band names
  (:func:`band_assets`).
- Grids: from the projection extension, without opening files (:mod:`._proj`).
- Radiometry: ``raster:bands`` scale and offset, else the processing baseline, with
  Earth Search's ``earthsearch:boa_offset_applied`` flag respected
  (:mod:`._radiometry`, where the rule and its sources are written out).
- Planetary Computer: unsigned hrefs are signed with the optional
  ``planetary-computer`` package (``pip install 'sentinel-cube[pc]'``).

Examples
--------
>>> import pystac_client, sentinel_cube as sc                                  # doctest: +SKIP
>>> items = pystac_client.Client.open("https://earth-search.aws.element84.com/v1").search(
...     collections=["sentinel-2-l2a"], bbox=(19.0, 47.4, 19.2, 47.6),
...     datetime="2023-07").item_collection()                                    # doctest: +SKIP
>>> cube = sc.open_cube(items, bands=["B04", "B08", "SCL"], resolution=20)      # doctest: +SKIP
"""

from ._bands import (
    BAND_NAMES,
    COMMON_NAMES,
    PROVIDER_ASSET_KEYS,
    PROVIDERS,
    AssetChoice,
    asset_band,
    band_assets,
    describe_assets,
)
from ._items import (
    STAC_PATH_PREFIX,
    as_items,
    detect_provider,
    is_stac_item,
    is_stac_items,
    item_record,
    item_to_product,
    items_to_products,
    registered,
)
from ._radiometry import AssetRadiometry, asset_radiometry, baseline_offset
from ._sign import is_planetary_computer, is_signed, sign_hrefs, strip_signature

__all__ = [
    "BAND_NAMES",
    "COMMON_NAMES",
    "PROVIDERS",
    "PROVIDER_ASSET_KEYS",
    "STAC_PATH_PREFIX",
    "AssetChoice",
    "AssetRadiometry",
    "as_items",
    "asset_band",
    "asset_radiometry",
    "band_assets",
    "baseline_offset",
    "describe_assets",
    "detect_provider",
    "is_planetary_computer",
    "is_signed",
    "is_stac_item",
    "is_stac_items",
    "item_record",
    "item_to_product",
    "items_to_products",
    "registered",
    "sign_hrefs",
    "strip_signature",
]
