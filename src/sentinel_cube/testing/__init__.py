"""Realistic synthetic Sentinel-2 archives for tests, demos and benchmarks.

The generator writes L1C and L2A products (``.SAFE`` folders or hub-style
``.zip`` files) that a reader written for ESA's real products reads unchanged:
ESA names and folder layout, lossless tiled JPEG 2000 band files georeferenced
with GMLJP2, ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``, ``MTD_TL.xml`` and
``manifest.safe`` with ESA's element names and namespaces, radiometric offsets
from processing baseline 04.00, percentages computed from the written SCL.

Every pixel is a documented function of *(band, date, x, y)*
(:func:`reflectance`, :func:`scene_class`, :func:`expected_dn`; see
:mod:`sentinel_cube.testing.archive._scene`), so a test can compute the expected value of
any pixel independently of the files.

Examples
--------
>>> import tempfile
>>> from sentinel_cube.testing import default_specs, make_archive, expected_dn
>>> specs = default_specs(tiles=("34TCT", "34TDT"), dates=("2023-06-05", "2023-06-15"))
>>> folder = tempfile.TemporaryDirectory()
>>> paths = make_archive(folder.name, specs, scale=61, bands=["B04", "SCL"])
>>> len(paths), paths[0].suffix
(4, '.SAFE')
>>> folder.cleanup()

Geometry: ``scale=k`` keeps the true tile footprint (UTM CRS, real upper-left
corner, 109.8 km) and multiplies pixel sizes by ``k`` (10 m bands get
``10980 / k`` pixels of ``10 k`` m); ``k`` must divide 1830. Neighbouring tiles of
the same UTM zone overlap as real ones do and see identical ground there; at
scales that do not divide 10000 / 10 their pixel grids do not coincide.

Tiles: :data:`BUDAPEST_TILES` ``("34TCT", "34TDT")`` overlap at x = 400-409.8 km
of zone 34; :data:`ZONE_BOUNDARY_TILES` ``("33TYN", "34TCT")`` lie on both sides
of the UTM zone 33/34 boundary and overlap around 18.3-19.1 deg E (different
CRSs; each zone has its own synthetic ground).

Layout: :mod:`sentinel_cube.testing.archive` holds the generator,
:mod:`sentinel_cube.testing.servers` the loopback catalogue servers, the loopback
S3 server (:class:`S3Server`, extra ``demo-s3``) and the folder server,
:mod:`sentinel_cube.testing.stac` the products published as STAC providers do
(COGs, provider-shaped items); their public names are imported from here.
"""

from .archive._archive import make_archive, make_product
from .archive._break import BREAK_MODES, break_product
from .archive._demo_archive import DEMO_AOI, DEMO_DATES, DEMO_EDGE_DATES, demo_specs
from .archive._percentages import SCL_PERCENTAGE_ELEMENTS, scl_percentages
from .archive._scene import (
    DEFAULT_CLOUD_FRACTIONS,
    SwathEdge,
    cloud_fraction_for,
    expected_dn,
    reflectance,
    scene_class,
)
from .archive._spec import (
    ALLOWED_SCALES,
    BUDAPEST_TILES,
    DEFAULT_DATES,
    ZONE_BOUNDARY_TILES,
    ProductSpec,
    baseline_for,
    default_specs,
    platform_for,
)
from .servers._cdse import CDSEServer
from .servers._files import FolderServer
from .servers._loopback import Faults, LoopbackServer, ServedProduct, served_archive
from .servers._s3 import S3Server, Traffic
from .stac import PROVIDERS as STAC_PROVIDERS
from .stac import publish_items

__all__ = [
    "CDSEServer",
    "FolderServer",
    "STAC_PROVIDERS",
    "publish_items",
    "DEMO_AOI",
    "DEMO_DATES",
    "DEMO_EDGE_DATES",
    "demo_specs",
    "Faults",
    "LoopbackServer",
    "S3Server",
    "ServedProduct",
    "Traffic",
    "served_archive",
    "ALLOWED_SCALES",
    "BREAK_MODES",
    "BUDAPEST_TILES",
    "DEFAULT_CLOUD_FRACTIONS",
    "DEFAULT_DATES",
    "SCL_PERCENTAGE_ELEMENTS",
    "ZONE_BOUNDARY_TILES",
    "ProductSpec",
    "SwathEdge",
    "baseline_for",
    "break_product",
    "cloud_fraction_for",
    "default_specs",
    "expected_dn",
    "make_archive",
    "make_product",
    "platform_for",
    "reflectance",
    "scene_class",
    "scl_percentages",
]
