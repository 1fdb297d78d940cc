"""Generated products published as STAC providers publish Sentinel-2 L2A.

From ``.SAFE`` folders of :func:`sentinel_cube.testing.make_archive`,
:func:`publish_items` writes the file tree a provider serves and returns STAC item
dicts shaped like the provider's real ``sentinel-2-l2a`` items, every value computed
from the product (grid, time, baseline, percentages, angles):

``"earth_search"`` (Earth Search v1)
    COGs in flat per-item folders (``red``, ``nir08``, ``scl``... assets) and their
    JPEG 2000 twins (``red-jp2``...); ``raster:bands`` scale 0.0001 and offset -0.1
    from baseline 04.00; ``proj:epsg``, ``grid:code``, ``earthsearch:*``.
``"planetary_computer"`` (Planetary Computer)
    COGs inside a ``.SAFE`` layout (``B04``, ``SCL``... assets), no scale or offset
    (``PlanetaryComputer(raster_bands=True)`` adds ``raster:bands`` nodata and type).
``"cdse"`` (CDSE STAC, STAC 1.1)
    The ``.SAFE`` folder's JPEG 2000 files under ``Sentinel-2/MSI/L2A/YYYY/MM/DD/``
    (``B04_10m``, ``SCL_20m``... assets, every resolution present), ``proj:code``,
    ``raster:scale``/``raster:offset``, ``bands``, ``file:*``, ``alternate``.

:func:`stac_items` gives the same items without writing files (a tree already
published, pointed at from elsewhere). Hrefs are ``base_url/<path in the tree>``:
serve the tree with :class:`~sentinel_cube.testing.FolderServer`
(``http://127.0.0.1:PORT``) or upload it to a loopback S3 server
(``s3://bucket/prefix``).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from sentinel_cube.testing import default_specs, make_archive
>>> from sentinel_cube.testing.stac import publish_items
>>> tmp = Path(tempfile.mkdtemp())
>>> specs = default_specs(tiles="34TCT", dates=["2023-07-06"], partial=None)
>>> paths = make_archive(tmp / "safe", specs, scale=61, bands=["B04", "SCL"])
>>> items = publish_items(paths, tmp / "es", "earth_search", "http://127.0.0.1:8000")
>>> items[0]["id"], sorted(items[0]["assets"])
('S2A_34TCT_20230706_0_L2A', ['granule_metadata', 'red', 'red-jp2', 'scl', 'scl-jp2'])
>>> items[0]["assets"]["red"]["raster:bands"][0]["offset"]
-0.1
"""

from ._bands import BAND_INFO, BandInfo
from ._cdse import CDSE
from ._cog import EARTH_SEARCH_COG, PLANETARY_COMPUTER_COG, CogProfile, write_cog
from ._earth_search import EarthSearch
from ._facts import ImageFile, ProductFacts, product_facts
from ._planetary import PlanetaryComputer
from ._publish import (
    PROVIDERS,
    Provider,
    item_collection,
    provider,
    publish_items,
    stac_items,
)

__all__ = [
    "BAND_INFO",
    "CDSE",
    "EARTH_SEARCH_COG",
    "PLANETARY_COMPUTER_COG",
    "PROVIDERS",
    "BandInfo",
    "CogProfile",
    "EarthSearch",
    "ImageFile",
    "PlanetaryComputer",
    "ProductFacts",
    "Provider",
    "item_collection",
    "product_facts",
    "provider",
    "publish_items",
    "stac_items",
    "write_cog",
]
